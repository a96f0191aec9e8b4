// Robustness, issue 21's smaller items (run alone: bun run scripts/bench/robustness-misc.ts):
// 1. The --metrics endpoint of a running `probe capture -i lo` under odd requests (HTTP/1.0
//    without Host, a Host that is no authority, DELETE/PUT/OPTIONS, absolute and "*" targets,
//    garbage, a header flood, half-sent requests held open) while a real scraper polls: tries,
//    the statuses each kind got (500 counts as a failure), scrapes answered, scrape latency,
//    log lines the endpoint wrote.
// 2. The stop watchdog: SIGTERM to a clean run and to a run whose output is a pipe nobody reads
//    (`-r big.pcap -w -`): time to exit, exit status, the line.
// Every loop is bounded in count and time (the whole run < 60 s); numbers are noisy on a shared
// machine.
import { connect, type Socket } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, probeBinary, repoRoot } from "./support/measure.ts";

/** Rounds of every odd request kind (bounded), sent 10 at a time. */
const ROUNDS = Number(process.env.BENCH_MISC_ROUNDS ?? 40);
/** Connections that send half a request and hold it (a slow-loris). */
const HELD_CONNECTIONS = 200;
/** Stop on a hung output: the watchdog's 5 s, plus a bound for a watchdog that never fires. */
const HUNG_STOP_BOUND_MS = 15_000;

const ODD_REQUESTS: Record<string, string> = {
  "HTTP/1.0 GET, no Host": "GET /metrics HTTP/1.0\r\n\r\n",
  "HTTP/1.0 HEAD, no Host": "HEAD /metrics HTTP/1.0\r\n\r\n",
  "HTTP/1.0 DELETE": "DELETE /metrics HTTP/1.0\r\n\r\n",
  "HTTP/1.1 PUT with body": "PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
  "OPTIONS *": "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  "Host: [::1 (no authority)": "GET /metrics HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n",
  "Host with a space": "GET /metrics HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
  "absolute-form target": "GET http://evil.example/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  "query string": "GET /metrics?x=%00%ff HTTP/1.0\r\n\r\n",
  "body over 1 KiB": `POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n${"x".repeat(4096)}`,
  "64 KiB of headers": `GET /metrics HTTP/1.1\r\nHost: x\r\n${"X-A: b\r\n".repeat(8192)}Connection: close\r\n\r\n`,
  "garbage": "\x16\x03\x01\x00\xff\r\n\r\nSSH-2.0-x\r\n\r\n",
};

/** Sends one request; resolves with the status (0: closed without an answer, -1: no answer in 5 s). */
function request(port: number, text: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(text));
    let got = "";
    const done = (status: number) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => done(-1), 5000);
    socket.on("data", (chunk: Buffer) => {
      got += chunk.toString("latin1");
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(got);
      if (match) done(Number(match[1]));
    });
    socket.on("error", () => done(0));
    socket.on("close", () => done(0));
  });
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function metricsUnderOddRequests(): Promise<void> {
  const port = await freePort();
  const proc = Bun.spawn([probeBinary, "capture", "-i", "lo", "-q", "-w", "/dev/null", "--metrics", `127.0.0.1:${port}`], { stdout: "ignore", stderr: "pipe" });
  let log = "";
  void (async () => {
    for await (const chunk of proc.stderr) log += new TextDecoder().decode(chunk);
  })();
  const deadline = Date.now() + 10_000;
  while (!log.includes("metrics on http://") && Date.now() < deadline) await Bun.sleep(50);
  const logBefore = log.length;
  // The real scraper, every 100 ms while the attack runs.
  const scrapes: number[] = [];
  let scrapeFailures = 0;
  let attacking = true;
  const scraper = (async () => {
    while (attacking) {
      const started = performance.now();
      try {
        const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
        const text = await response.text();
        if (response.status === 200 && text.includes("probe_process_resident_memory_bytes")) scrapes.push(performance.now() - started);
        else scrapeFailures++;
      } catch {
        scrapeFailures++;
      }
      await Bun.sleep(100);
    }
  })();
  const held: Socket[] = [];
  for (let i = 0; i < HELD_CONNECTIONS; i++) {
    const socket = connect(port, "127.0.0.1", () => socket.write("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
    socket.on("error", () => {});
    held.push(socket);
  }
  const statuses = new Map<string, Map<number, number>>();
  const attackStarted = performance.now();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [kind, text] of Object.entries(ODD_REQUESTS)) {
      const results = await Promise.all(Array.from({ length: 10 }, () => request(port, text)));
      const counts = statuses.get(kind) ?? new Map<number, number>();
      for (const status of results) counts.set(status, (counts.get(status) ?? 0) + 1);
      statuses.set(kind, counts);
    }
  }
  const attackSeconds = (performance.now() - attackStarted) / 1000;
  attacking = false;
  await scraper;
  for (const socket of held) socket.destroy();
  proc.kill("SIGTERM");
  const code = await proc.exited;
  const endpointLines = log.slice(logBefore).split("\n").filter((l) => l.includes("metrics"));
  console.log(`\nmetrics endpoint under odd requests (${ROUNDS} rounds x 10 of each kind, ${HELD_CONNECTIONS} half-sent requests held open, ${attackSeconds.toFixed(1)} s)`);
  console.log("| request | tries | statuses (status x count; 0 = closed unanswered) | 500s |");
  console.log("| --- | ---: | --- | ---: |");
  let total500 = 0;
  for (const [kind, counts] of statuses) {
    const tries = [...counts.values()].reduce((a, b) => a + b, 0);
    const fiveHundreds = counts.get(500) ?? 0;
    total500 += fiveHundreds;
    console.log(`| ${kind} | ${tries} | ${[...counts].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s} x${n}`).join(", ")} | ${fiveHundreds} |`);
  }
  console.log(`\nreal scrapes answered: ${scrapes.length}/${scrapes.length + scrapeFailures}; latency p50 ${percentile(scrapes, 0.5).toFixed(1)} ms, max ${Math.max(...scrapes).toFixed(1)} ms`);
  console.log(`500s in all: ${total500}; endpoint log lines: ${endpointLines.length}${endpointLines.length ? ` (first: ${endpointLines[0]})` : ""}; probe exit status after SIGTERM: ${code}`);
}

async function stopWatchdog(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-misc-"));
  try {
    const big = join(dir, "big.pcap");
    // 20,000 records of 230 bytes: far more than a pipe holds.
    const record = new Uint8Array(16 + 214);
    const view = new DataView(record.buffer);
    const file = new Uint8Array(24 + 20_000 * record.byteLength);
    const header = new DataView(file.buffer);
    header.setUint32(0, 0xa1b2c3d4, true);
    header.setUint16(4, 2, true);
    header.setUint16(6, 4, true);
    header.setUint32(16, 65535, true);
    header.setUint32(20, 1, true);
    for (let i = 0; i < 20_000; i++) {
      view.setUint32(0, 1_700_000_000 + Math.floor(i / 1000), true);
      view.setUint32(4, (i % 1000) * 1000, true);
      view.setUint32(8, 214, true);
      view.setUint32(12, 214, true);
      file.set(record, 24 + i * record.byteLength);
    }
    writeFileSync(big, file);
    console.log("\nstop watchdog: SIGTERM, time to exit");
    console.log("| run | exit status | ms from SIGTERM to exit | line |");
    console.log("| --- | ---: | ---: | --- |");
    // Clean: a live capture into a file.
    const clean = Bun.spawn([probeBinary, "capture", "-i", "lo", "-q", "-w", join(dir, "clean.pcap")], { stdout: "ignore", stderr: "pipe" });
    await Bun.sleep(1000);
    let sent = performance.now();
    clean.kill("SIGTERM");
    const [cleanErr, cleanCode] = await Promise.all([new Response(clean.stderr).text(), clean.exited]);
    console.log(`| capture -i lo -w file | ${cleanCode} | ${(performance.now() - sent).toFixed(0)} | ${cleanErr.trim() || "(none)"} |`);
    // Hung: -w - into a pipe nobody reads (test/support/unread-stdout.py holds it).
    const launcher = Bun.spawn(["/usr/bin/python3", join(repoRoot, "test/support/unread-stdout.py"), probeBinary, "capture", "-r", big, "-w", "-"], { stdout: "pipe", stderr: "ignore" });
    const killer = setTimeout(() => launcher.kill("SIGKILL"), 20_000 + HUNG_STOP_BOUND_MS);
    const reader = launcher.stdout.getReader();
    let text = "";
    const nextLine = async (): Promise<string | undefined> => {
      for (;;) {
        const nl = text.indexOf("\n");
        if (nl >= 0) {
          const line = text.slice(0, nl);
          text = text.slice(nl + 1);
          return line;
        }
        const { value, done } = await reader.read();
        if (done) return undefined;
        text += new TextDecoder().decode(value);
      }
    };
    const started = JSON.parse((await nextLine()) ?? "{}") as { pid?: number; full?: boolean };
    if (started.pid) {
      sent = performance.now();
      process.kill(started.pid, "SIGTERM");
      const endedLine = await nextLine();
      const ended = endedLine ? (JSON.parse(endedLine) as { status: number; stderr: string }) : undefined;
      console.log(`| capture -r big.pcap -w - (pipe full: ${started.full}) | ${ended?.status ?? "hung"} | ${(performance.now() - sent).toFixed(0)} | ${ended?.stderr.trim().replace(dir, "DIR") ?? "(none)"} |`);
      if (!ended) process.kill(started.pid, "SIGKILL");
    }
    clearTimeout(killer);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchRobustnessMisc(): Promise<void> {
  await metricsUnderOddRequests();
  await stopWatchdog();
}

if (import.meta.main) await benchRobustnessMisc();
