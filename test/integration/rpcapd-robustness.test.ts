// rpcapd robustness on real loopback sockets (issue 9): error replies echo the version of a
// header that arrived in pieces, active mode retries once per outage with bounded logs,
// peer text cannot forge log lines, and a STARTCAP aimed at a closed port is one log line.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { encodeHeader, RpcapErrorCode as E, RpcapMessageType as T } from "../../src/protocols/rpcap/index.ts";
import { waitFor } from "../support/probe-binary.ts";
import { rawPeer } from "../support/raw-rpcap-peer.ts";
import { startTestDaemon } from "../support/rpcapd-harness.ts";

type Harness = Awaited<ReturnType<typeof startTestDaemon>>;
let harness: Harness | undefined;
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await harness?.stop();
  harness = undefined;
});

describe("error replies to a header split in pieces (issue 9)", () => {
  // ver 1, AUTH_REQ, value 0x0203, plen far over the cap: every byte after the first differs
  // from the version, so an error that echoed the chunk's first byte would show it.
  const header = encodeHeader({ ver: 1, type: T.AUTH_REQ, value: 0x0203, plen: 0xfffffff0 });

  for (let split = 1; split < header.byteLength; split++) {
    test(`header split after byte ${split}: the ERROR carries version 1`, async () => {
      harness ??= await startTestDaemon();
      const peer = await rawPeer(harness.port);
      cleanups.push(() => peer.end());
      peer.write(header.subarray(0, split));
      await Bun.sleep(30); // a separate segment, so the daemon sees two chunks
      peer.write(header.subarray(split));
      const reply = await peer.nth(1);
      expect(reply.header.type).toBe(T.ERROR);
      expect(reply.header.value).toBe(E.WRONGMSG);
      expect(reply.header.ver).toBe(1);
      await peer.waitClosed();
    });
  }
});
