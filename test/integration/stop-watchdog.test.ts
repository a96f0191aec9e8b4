// The stop watchdog (src/cli/stop-watchdog.ts): after SIGTERM a stop completes within 5 s or
// the process ends with one line naming what did not stop and a nonzero status. The hang is a
// real one: `-w -` into a pipe nobody reads (the file input waits for the output forever);
// the spinning main thread (what the issue saw once) is the real watchdog in a child process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeCommand, repoRoot, runProbe } from "../support/probe-binary.ts";
import { processesStoppedAfterEach } from "../support/process-cleanup.ts";
import { taggedPcap } from "../support/synthetic-pcap.ts";

let dir: string;
let big: string;
const procs = processesStoppedAfterEach();
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "probe-stop-watchdog-"));
  big = join(dir, "big.pcap");
  // ~4.6 MB: far more than a pipe holds (64 KiB), so the writer is stuck long before the end.
  writeFileSync(big, taggedPcap(Array.from({ length: 20_000 }, (_, i) => ({ sec: 1_700_000_000 + Math.floor(i / 1000), frac: (i % 1000) * 1000, tag: `r${i}`.padEnd(200, ".") }))));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Reads the JSON lines a child prints, in order. */
async function* jsonLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<Record<string, unknown>> {
  let text = "";
  for await (const chunk of stream) {
    text += new TextDecoder().decode(chunk);
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
      yield JSON.parse(text.slice(0, nl)) as Record<string, unknown>;
      text = text.slice(nl + 1);
    }
  }
}

describe("stop watchdog", () => {
  test("SIGTERM while -w - writes into a pipe nobody reads: exit 1 with one line naming the input and the output it waits for", async () => {
    const launcher = Bun.spawn(["/usr/bin/python3", join(repoRoot, "test/support/unread-stdout.py"), ...probeCommand(), "capture", "-r", big, "-w", "-"], { stdout: "pipe", stderr: "pipe" });
    procs.push(launcher);
    // Bounded: a stop that hangs forever (no watchdog) fails here instead of holding the suite.
    const killer = setTimeout(() => launcher.kill("SIGKILL"), 30_000);
    const lines = jsonLines(launcher.stdout);
    const started = (await lines.next()).value as { pid: number; full: boolean };
    expect(started.full).toBe(true);
    process.kill(started.pid, "SIGTERM");
    const ended = (await lines.next()).value as { status: number; stderr: string } | undefined;
    clearTimeout(killer);
    if (!ended) process.kill(started.pid, "SIGKILL");
    expect(ended).toEqual({
      status: 1,
      stderr: `probe: stop did not complete within 5 s: input file ${big} (waiting for output file - (standard output) to take its packets) did not stop; exiting\n`,
    });
  }, 40_000);

  test("a stop that completes prints no watchdog line and exits 0", async () => {
    const r = await runProbe(["capture", "-r", big, "-w", join(dir, "copy.pcap")]);
    expect(r).toEqual({ exitCode: 0, stdout: "", stderr: "20000 packets captured\n" });
  });
});

describe("StopWatchdog in a child process", () => {
  const child = (mode: string) => Bun.spawn([process.execPath, join(repoRoot, "test/support/stop-watchdog-child.ts"), mode], { stdout: "pipe", stderr: "pipe" });
  const line = "probe: stop did not complete within 0.3 s: output file - (standard output), input lo did not stop; exiting\n";

  test("a main thread that spins: the Worker writes the line and kills the process (SIGKILL)", async () => {
    const proc = child("spin");
    procs.push(proc);
    const [stderr] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect([proc.signalCode, stderr]).toEqual(["SIGKILL", line]);
  });

  test("a main thread that waits forever: its own timer writes the line once, exit 1", async () => {
    const proc = child("wait");
    procs.push(proc);
    const [stderr, status] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect([status, stderr]).toEqual([1, line]);
  });

  test("disarmed: nothing fires after the deadline", async () => {
    const proc = child("disarm");
    procs.push(proc);
    const [stdout, stderr, status] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect([status, stdout, stderr]).toEqual([0, "lingered\n", ""]);
  });
});
