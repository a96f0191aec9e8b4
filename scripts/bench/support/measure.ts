// Shared benchmark plumbing: run a command under a bounded load, collect its CPU time and
// peak RSS from the kernel's rusage, and print aligned comparison tables.
import type { Subprocess } from "bun";

export const repoRoot = new URL("../../..", import.meta.url).pathname;
/** The binary measured: dist/probe, or PROBE_BENCH_BINARY to compare another build. */
export const probeBinary = process.env.PROBE_BENCH_BINARY ?? `${repoRoot}dist/probe`;
export const bunBinary = process.execPath;

export interface Measurement {
  name: string;
  packets: number;
  seconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  kernelDrops?: number;
  note?: string;
}

/**
 * Peak RSS of a running process, sampled from /proc/PID/status VmHWM. rusage's ru_maxrss is
 * no use here: it survives exec, so a child forked from this (large) Bun process reports the
 * parent's high-water mark (measured: `sleep 0.1` showed 16 MiB).
 */
export function watchPeakRss(pid: number, intervalMs = 20): { stop(): number } {
  let peakKiB = 0;
  const sample = () => {
    try {
      const status = require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8") as string;
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      if (hwm > peakKiB) peakKiB = hwm;
    } catch {
      // process gone
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return peakKiB / 1024;
    },
  };
}

/**
 * Puts an executable's file out of the page cache before it is measured: the state of a host
 * that has not run it since it booted, and one that does not depend on when the file was
 * written. Why: on a fault the kernel also maps the neighbouring pages (fault-around, up to
 * 64 KiB) that are in the page cache, and a file the build has just written is cached whole:
 * the same dist/probe peaked 3-5 MiB higher then than after its pages had been read from disk
 * on demand once (docs/capture-history.md, "Sixth round"). BENCH_WARM_FILES=1 skips this (measures the
 * executables as they are cached). `command` is a path or a name looked up in PATH.
 */
export function startsCold(command: string): void {
  if (process.env.BENCH_WARM_FILES === "1") return;
  const path = command.includes("/") ? command : Bun.which(command);
  if (!path) return;
  // Written pages must reach the disk before the kernel can drop them (fsync), then dd's
  // nocache with count=0 drops the whole file (posix_fadvise POSIX_FADV_DONTNEED).
  const fs = require("node:fs") as typeof import("node:fs");
  const fd = fs.openSync(path, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  Bun.spawnSync(["dd", `if=${path}`, "iflag=nocache", "count=0", "status=none"]);
}

/** Waits for exit: CPU (user+system) seconds from rusage, peak RSS from VmHWM samples. */
export async function finish(proc: Subprocess, rss: { stop(): number }): Promise<{ cpuSeconds: number; peakRssMiB: number; exitCode: number }> {
  const exitCode = await proc.exited;
  const peakRssMiB = rss.stop();
  const usage = proc.resourceUsage();
  if (!usage) throw new Error("no resource usage");
  // Bun reports cpuTime in microseconds.
  return { cpuSeconds: Number(usage.cpuTime.total) / 1e6, peakRssMiB, exitCode };
}

export function printTable(title: string, rows: Measurement[]): void {
  console.log(`\n## ${title}`);
  const header = ["what", "packets", "packets/s", "CPU s per 1M pkts", "peak RSS MiB", "kernel drops", "note"];
  const lines = rows.map((r) => [
    r.name,
    String(r.packets),
    r.seconds > 0 ? Math.round(r.packets / r.seconds).toLocaleString("en-US") : "-",
    r.packets > 0 ? ((r.cpuSeconds / r.packets) * 1e6).toFixed(2) : "-",
    r.peakRssMiB.toFixed(1),
    r.kernelDrops === undefined ? "-" : String(r.kernelDrops),
    r.note ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(fmt(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const l of lines) console.log(fmt(l));
}

/** Sends a bounded UDP load to 127.0.0.1:port from a separate process; resolves with its report. */
export async function udpLoad(port: number, count: number, size: number, rate = 0): Promise<{ sent: number; seconds: number }> {
  const proc = Bun.spawn([bunBinary, `${repoRoot}scripts/bench/support/udp-load.ts`, String(port), String(count), String(size), String(rate), "60"], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  return JSON.parse(out.trim());
}

/** A TCP port on 127.0.0.1 that was free a moment ago (listen on port 0, close). */
export async function freePort(): Promise<number> {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

/** Parses tcpdump-style summary lines from stderr. */
export function parseSummary(stderr: string): { captured: number; drops: number } {
  const captured = Number(/(\d+) packets? captured/.exec(stderr)?.[1] ?? NaN);
  const drops = Number(/(\d+) packets? dropped by kernel/.exec(stderr)?.[1] ?? NaN);
  return { captured, drops };
}

/** CPU seconds (user + system) a live process has used so far, from /proc/PID/stat. */
export function cpuSecondsOf(pid: number): number {
  const stat = require("node:fs").readFileSync(`/proc/${pid}/stat`, "utf8") as string;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** Every process below `root` (children, grandchildren), for a pipeline's or a forking daemon's CPU. */
export function descendants(root: number): number[] {
  const fs = require("node:fs") as typeof import("node:fs");
  const parents = new Map<number, number>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parents) if (ppid === out[i]) out.push(pid);
  return out;
}

/** CPU seconds of a set of processes (those that have exited count 0). */
export function cpuOfTree(pids: number[]): number {
  return pids.reduce((n, pid) => {
    try {
      return n + cpuSecondsOf(pid);
    } catch {
      return n;
    }
  }, 0);
}
