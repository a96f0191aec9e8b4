// The auth layer inside a real RpcapDaemon on loopback: what a peer sees on the wire for every
// kind of failed AUTH (one identical ERROR 18 "Authentication failed", CVE-2019-15162), null
// auth with and without -n, the pause before the next AUTH is read, and the host list (-l).
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Authenticator, hashPasswordLine, loadHostList } from "../../src/daemon/auth/index.ts";
import {
  decodeErrorText,
  encodeAuthRequest,
  encodeMessage,
  RpcapAuthType,
  RpcapErrorCode as E,
  RpcapMessageType as T,
} from "../../src/protocols/rpcap/index.ts";
import { rawPeer, type RawPeer } from "../support/raw-rpcap-peer.ts";
import { startTestDaemon } from "../support/rpcapd-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "probe-auth-wire-"));
const usersFile = join(dir, "users");
writeFileSync(usersFile, `${await hashPasswordLine("alice", "s3cret", { memoryCost: 256, timeCost: 1 })}\n`);
chmodSync(usersFile, 0o600);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Harness = Awaited<ReturnType<typeof startTestDaemon>>;
let harness: Harness | undefined;
const peers: RawPeer[] = [];
afterEach(async () => {
  for (const peer of peers.splice(0)) peer.end();
  await harness?.stop();
  harness = undefined;
});

/** Short pauses keep the test quick; the default (1 s) is covered by the unit tests. */
async function daemon(settings: Parameters<typeof Authenticator.create>[0] = {}, hosts?: string[]) {
  const authenticator = await Authenticator.create({ usersFile, failurePauseMs: 20, maxFailurePauseMs: 80, ...settings });
  harness = await startTestDaemon({ authenticator, ...(hosts ? { isHostAllowed: await loadHostList(hosts) } : {}) });
  return harness;
}

async function connect(port: number) {
  const peer = await rawPeer(port);
  peers.push(peer);
  return peer;
}

function auth(username: string, password: string, authType: number = RpcapAuthType.PWD) {
  return encodeMessage(0, T.AUTH_REQ, 0, encodeAuthRequest({ authType, username, password }));
}

function wireBytes(message: { header: { ver: number; type: number; value: number }; payload: Uint8Array }) {
  return encodeMessage(message.header.ver, message.header.type, message.header.value, message.payload);
}

describe("AUTH over the wire", () => {
  test("right password: AUTH reply", async () => {
    const { port } = await daemon();
    const peer = await connect(port);
    peer.write(auth("alice", "s3cret"));
    expect((await peer.nth(1)).header.type).toBe(T.AUTH_REPLY);
  });

  test("wrong password, unknown user, empty name and null auth get byte-identical ERROR 18", async () => {
    const { port } = await daemon();
    const replies: Uint8Array[] = [];
    for (const request of [auth("alice", "guess"), auth("mallory", "guess"), auth("", ""), auth("", "", RpcapAuthType.NULL)]) {
      const peer = await connect(port);
      peer.write(request);
      const reply = await peer.nth(1);
      expect(reply.header.type).toBe(T.ERROR);
      expect(reply.header.value).toBe(E.AUTH_FAILED);
      expect(decodeErrorText(reply.payload)).toBe("Authentication failed");
      replies.push(wireBytes(reply));
    }
    for (const reply of replies.slice(1)) expect(reply).toEqual(replies[0]!);
    // The operator's log has the real reasons.
    const log = harness!.log.lines.join("\n");
    expect(log).toContain('wrong password for "alice"');
    expect(log).toContain('no user "mallory"');
    expect(log).toContain("null authentication is not permitted");
  });

  test("after a failure the same connection may try again once the pause is over", async () => {
    const { port } = await daemon();
    const peer = await connect(port);
    peer.write(auth("alice", "guess"));
    peer.write(auth("alice", "s3cret"));
    expect((await peer.nth(1)).header.value).toBe(E.AUTH_FAILED);
    expect((await peer.nth(2)).header.type).toBe(T.AUTH_REPLY);
    expect(peer.closed).toBe(false);
  });

  test("null auth accepted with -n", async () => {
    const { port } = await daemon({ nullAuth: true });
    const peer = await connect(port);
    peer.write(auth("", "", RpcapAuthType.NULL));
    expect((await peer.nth(1)).header.type).toBe(T.AUTH_REPLY);
  });
});

describe("host list (-l), checked before AUTH", () => {
  test("a peer not in the list gets ERROR 10 and the connection is closed", async () => {
    const { port } = await daemon({}, ["192.0.2.1"]);
    const peer = await connect(port);
    const reply = await peer.nth(1);
    expect(reply.header.type).toBe(T.ERROR);
    expect(reply.header.value).toBe(E.HOSTNOAUTH);
    await peer.waitClosed();
  });

  test("'localhost' in the list lets 127.0.0.1 in", async () => {
    const { port } = await daemon({}, ["192.0.2.1", "localhost"]);
    const peer = await connect(port);
    peer.write(auth("alice", "s3cret"));
    expect((await peer.nth(1)).header.type).toBe(T.AUTH_REPLY);
  });
});
