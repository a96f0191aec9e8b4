// Issue 9, session slots and AUTH floods on real loopback sockets, several peers played from
// 127.0.0.2, 127.0.0.3, ...: a per-address cap on connections, a short pre-auth deadline (and
// eviction of an overdue pre-auth connection) once the slots fill up, a slot kept only by a
// capture (not by STATS), and abandoned AUTHs that are never hashed while a real login succeeds.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Authenticator, hashPasswordLine, loadUsersFile, usersFileBackend, type PasswordBackend } from "../../src/daemon/auth/index.ts";
import { encodeAuthRequest, encodeMessage, RpcapAuthType, RpcapErrorCode as E, RpcapMessageType as T } from "../../src/protocols/rpcap/index.ts";
import { waitFor } from "../support/probe-binary.ts";
import { rawPeerFrom, type RawPeer } from "../support/raw-rpcap-peer.ts";
import { startTestDaemon } from "../support/rpcapd-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "probe-slots-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Harness = Awaited<ReturnType<typeof startTestDaemon>>;
let harness: Harness | undefined;
const peers: RawPeer[] = [];
afterEach(async () => {
  for (const peer of peers.splice(0)) peer.end();
  await harness?.stop();
  harness = undefined;
});

async function connect(port: number, from: string) {
  const peer = await rawPeerFrom(port, from);
  peers.push(peer);
  return peer;
}

const nullAuth = () => encodeMessage(0, T.AUTH_REQ, 0, encodeAuthRequest({ authType: RpcapAuthType.NULL, username: "", password: "" }));
const pwdAuth = (username: string, password: string) => encodeMessage(0, T.AUTH_REQ, 0, encodeAuthRequest({ authType: RpcapAuthType.PWD, username, password }));

describe("session slots (issue 9)", () => {
  test("one address gets at most --max-sessions-per-address connections; another address still gets in", async () => {
    harness = await startTestDaemon({ maxSessionsPerAddress: 3 });
    const hogs = [];
    for (let i = 0; i < 3; i++) hogs.push(await connect(harness.port, "127.0.0.2"));
    const fourth = await connect(harness.port, "127.0.0.2");
    const refusal = await fourth.nth(1);
    expect(refusal.header.type).toBe(T.ERROR);
    expect(refusal.header.value).toBe(E.NETWORK);
    await fourth.waitClosed();
    expect(harness.log.lines.some((line) => line.includes("limit 3 per address"))).toBe(true);
    const real = await connect(harness.port, "127.0.0.3");
    real.write(nullAuth());
    expect((await real.nth(1)).header.type).toBe(T.AUTH_REPLY);
    expect(hogs.every((hog) => !hog.closed)).toBe(true);
  });

  test("idle pre-auth connections filling every slot are cut at the short deadline, and a real client gets in", async () => {
    harness = await startTestDaemon({ maxSessions: 4, maxSessionsPerAddress: 8, pressureAuthTimeoutMs: 300, authTimeoutMs: 90_000 });
    const hogs = [];
    for (let i = 0; i < 4; i++) hogs.push(await connect(harness.port, "127.0.0.2"));
    const daemon = harness.daemon;
    await waitFor(() => daemon.sessionCount === 4, 5_000, "the four idle connections admitted");
    // A real client retries as libpcap users do (bounded: 40 tries, 100 ms apart).
    let authenticated = false;
    for (let attempt = 0; attempt < 40 && !authenticated; attempt++) {
      const real = await connect(harness.port, "127.0.0.3");
      real.write(nullAuth());
      await waitFor(() => real.messages.length > 0 || real.closed, 5_000, "an answer");
      authenticated = real.messages[0]?.header.type === T.AUTH_REPLY;
      if (!authenticated) await Bun.sleep(100);
    }
    expect(authenticated).toBe(true);
    // Hogs were cut (told why: INITTIMEOUT) long before the 90 s auth timeout; once the slots are
    // no longer 3/4 taken, the rest keep the full deadline.
    const cut = hogs.filter((hog) => hog.closed);
    expect(cut.length).toBeGreaterThan(0);
    expect(cut.every((hog) => hog.messages.some((m) => m.header.type === T.ERROR && m.header.value === E.INITTIMEOUT))).toBe(true);
  }, 15_000);

  test("an authenticated client that only sends STATS does not keep its slot", async () => {
    harness = await startTestDaemon({ idleTimeoutMs: 600 });
    const client = await connect(harness.port, "127.0.0.2");
    client.write(nullAuth());
    expect((await client.nth(1)).header.type).toBe(T.AUTH_REPLY);
    // STATS every 100 ms for at most 5 s: each answered (with an error: nothing is open), none progress.
    for (let i = 0; i < 50 && !client.closed; i++) {
      client.write(encodeMessage(0, T.STATS_REQ, 0));
      await Bun.sleep(100);
    }
    expect(client.closed).toBe(true);
    expect(client.messages.some((m) => m.header.type === T.ERROR && m.header.value === E.RUNTIMETIMEOUT)).toBe(true);
  });
});

describe("a redialling attacker from many addresses (issue 21)", () => {
  test("wrong-password AUTHs filling every slot: a real login gets in at its first try, and the attacker redialling cannot put it out", async () => {
    // The pressure deadline is far away: only eviction can let the real client in.
    harness = await startTestDaemon({ maxSessions: 6, maxSessionsPerAddress: 6, pressureAuthTimeoutMs: 60_000, authTimeoutMs: 90_000 });
    const attackers: RawPeer[] = [];
    for (let i = 1; i <= 6; i++) {
      const peer = await connect(harness.port, `127.0.5.${i}`);
      peer.write(pwdAuth("test", `guess-${i}`));
      attackers.push(peer);
    }
    // Every slot taken by a session whose AUTH failed (each told so) and that stays connected.
    for (const peer of attackers) expect((await peer.nth(1)).header.value).toBe(E.AUTH_FAILED);
    expect(harness.daemon.sessionCount).toBe(6);
    const real = await connect(harness.port, "127.0.0.3");
    real.write(pwdAuth("test", "secret"));
    expect((await real.nth(1)).header.type).toBe(T.AUTH_REPLY);
    // The oldest failed session made room, told why.
    await attackers[0]!.waitClosed();
    expect(attackers[0]!.messages.map((m) => m.header.value)).toEqual([E.AUTH_FAILED, E.INITTIMEOUT]);
    expect(attackers.slice(1).every((peer) => !peer.closed)).toBe(true);
    // The attacker redials 12 times from new addresses: each puts out another failed or silent
    // session, never the authenticated one.
    for (let i = 7; i <= 18; i++) {
      const peer = await connect(harness.port, `127.0.5.${i}`);
      peer.write(pwdAuth("test", `guess-${i}`));
      expect((await peer.nth(1)).header.value).toBe(E.AUTH_FAILED);
    }
    expect(real.closed).toBe(false);
    real.write(encodeMessage(0, T.FINDALLIF_REQ, 0));
    expect((await real.nth(2)).header.type).toBe(T.FINDALLIF_REPLY);
    expect(harness.log.lines.filter((line) => line.includes("every session slot is taken: closing session")).length).toBe(13);
    expect(harness.log.lines.some((line) => line.includes("Too many connections") || line.includes("sessions already"))).toBe(false);
  });

  test("with -l, hosts outside the list are refused before a TLS handshake and hold no handshake slot", async () => {
    const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key2.pem"), "-out", join(dir, "cert2.pem"), "-subj", "/CN=localhost", "-days", "1"], { stdout: "ignore", stderr: "ignore" });
    expect(made.exitCode).toBe(0);
    harness = await startTestDaemon({
      tls: { cert: join(dir, "cert2.pem"), key: join(dir, "key2.pem") },
      isHostAllowed: (address) => address === "127.0.0.3",
      maxSessions: 2,
      pressureAuthTimeoutMs: 60_000,
    });
    // Plain TCP from outside the list: closed at once, without waiting for a ClientHello.
    const outsiders = [await connect(harness.port, "127.0.6.1"), await connect(harness.port, "127.0.6.2"), await connect(harness.port, "127.0.6.3")];
    for (const peer of outsiders) await peer.waitClosed();
    expect(harness.log.lines.filter((line) => line.includes("not in the host list")).length).toBe(3);
    expect(harness.log.lines.some((line) => line.includes("TLS handshakes pending"))).toBe(false);
  });
});

describe("TLS connections that never finish their handshake (issue 9)", () => {
  test("issue 21: when every handshake place is taken, a newcomer closes the oldest pending handshake at once", async () => {
    const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key3.pem"), "-out", join(dir, "cert3.pem"), "-subj", "/CN=localhost", "-days", "1"], { stdout: "ignore", stderr: "ignore" });
    expect(made.exitCode).toBe(0);
    harness = await startTestDaemon({ tls: { cert: join(dir, "cert3.pem"), key: join(dir, "key3.pem") }, maxSessions: 2, maxSessionsPerAddress: 8, pressureAuthTimeoutMs: 60_000 });
    const first = await connect(harness.port, "127.0.0.2");
    await Bun.sleep(50);
    const second = await connect(harness.port, "127.0.0.3");
    await Bun.sleep(50);
    const third = await connect(harness.port, "127.0.0.4");
    await first.waitClosed(); // long before the 60 s deadline
    expect([second.closed, third.closed]).toEqual([false, false]);
    expect(harness.log.lines.some((line) => line.includes("2 TLS handshakes pending: closing the oldest (127.0.0.2) to admit 127.0.0.4"))).toBe(true);
  });

  test("are bounded per address and closed at the pressure deadline", async () => {
    const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-subj", "/CN=localhost", "-days", "1"], { stdout: "ignore", stderr: "ignore" });
    expect(made.exitCode).toBe(0);
    harness = await startTestDaemon({ tls: { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") }, maxSessionsPerAddress: 2, pressureAuthTimeoutMs: 300 });
    // Plain TCP: no ClientHello ever comes.
    const silent = [await connect(harness.port, "127.0.0.2"), await connect(harness.port, "127.0.0.2")];
    const third = await connect(harness.port, "127.0.0.2");
    await third.waitClosed(); // over the per-address bound: closed at once
    for (const peer of silent) await peer.waitClosed(); // and the others at the deadline, not never
    const log = harness.log.lines.join("\n");
    expect(log).toContain("TLS handshakes pending from this address");
    expect(log).toContain("not done within 300 ms");
  });
});

describe("AUTH flood on the wire (issue 9)", () => {
  test("abandoned AUTHs from one address are not hashed after their clients leave; a real login from another address succeeds", async () => {
    const usersFile = join(dir, "users");
    writeFileSync(usersFile, `${await hashPasswordLine("alice", "s3cret", { memoryCost: 4096, timeCost: 2 })}\n`);
    chmodSync(usersFile, 0o600);
    const real = usersFileBackend(loadUsersFile(usersFile).users);
    const checked: string[] = [];
    const backend: PasswordBackend = {
      description: real.description,
      check: (username, password) => {
        checked.push(password);
        return real.check(username, password);
      },
    };
    const authenticator = await Authenticator.create({ usersFile, failurePauseMs: 10_000, maxFailurePauseMs: 10_000 }, { backend });
    harness = await startTestDaemon({ authenticator });
    // 8 connections from one address, 12 wrong AUTHs each (96 in all), then all hang up.
    const flood: RawPeer[] = [];
    for (let i = 0; i < 8; i++) flood.push(await connect(harness.port, "127.0.0.2"));
    for (const peer of flood) for (let j = 0; j < 12; j++) peer.write(pwdAuth("alice", `guess-${j}`));
    await waitFor(() => checked.length >= 1, 5_000, "the first flood AUTH checked");
    for (const peer of flood) peer.end();
    await waitFor(() => authenticator.pendingChecks() === 0, 5_000, "the abandoned checks dropped");
    const client = await connect(harness.port, "127.0.0.3");
    client.write(pwdAuth("alice", "s3cret"));
    expect((await client.nth(1)).header.type).toBe(T.AUTH_REPLY);
    // The address's first failure made its later AUTHs wait; they were dropped when it hung up.
    expect(checked.filter((p) => p !== "s3cret").length).toBeLessThanOrEqual(2);
  });
});
