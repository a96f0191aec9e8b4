// Red team for hook results (issue 21): hostile hooks whose tags, log lines and errors carry
// NUL, lone surrogates, control sequences, or text shaped like the result framing, each run by
// dist/probe over a 200-packet file (`capture -r --hook -F pcapng`). tshark reads the comments
// back; the table gives packets out, packets whose tags are exactly what the hook asked for,
// forged tags (a tag the hook never gave that packet: must be 0), lost tags, raw control bytes
// on standard error (must be 0), whether the expected (escaped) log text arrived, and the
// run's wall time. Bounded: one run per hook, each killed after RUN_TIMEOUT_MS, the whole
// script stops starting runs after TOTAL_MAX_MS.
// Usage: bun run scripts/bench/robustness-hooks.ts (after bun run scripts/build.ts)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { syntheticFrame } from "../../src/capture/synthetic-source.ts";
import { probeBinary } from "./support/measure.ts";

const PACKETS = 200;
const FRAME_BYTES = 100;
/** One probe run (compile + 200 packets + write) takes ~1 s; a stuck one is killed. */
const RUN_TIMEOUT_MS = 20_000;
/** No new run starts after this long, so the script ends within a minute on a busy machine. */
const TOTAL_MAX_MS = 50_000;

/**
 * k lone surrogates: under the old string framing each came back as three characters on the
 * host, so the parser ended a log line 2k characters early, inside the hook's text; an injected
 * record of 2k characters then parsed as the hook wished.
 */
const slide = (k: number) => "\\ud800".repeat(k);
const FFFD7 = "\ufffd".repeat(7);

interface HostileHook {
  name: string;
  /** Body run per packet with `n` = 1..200 (the packet's number in the file). */
  body: string;
  /** The tags packet n must carry, in order. */
  expected: (n: number) => string[];
  /** Text that must appear on standard error (escaped as the logger prints it). */
  stderrMust?: string[];
  /** Text that must not appear on standard error. */
  stderrMustNot?: string[];
}

const HOOKS: HostileHook[] = [
  // In a pcapng comment NUL is written as U+FFFD (readers cut a comment at NUL).
  { name: "nul-tag", body: `ctx.tag("ok"); if (n === 8) { ctx.tag("\\0"); ctx.tag("a\\0b"); }`, expected: (n) => (n === 8 ? ["ok", "\ufffd", "a\ufffdb"] : ["ok"]) },
  { name: "nul-log", body: `if (n === 1) ctx.log("a\\0b"); if (n === 2) ctx.log("after"); ctx.tag("t");`, expected: () => ["t"], stderrMust: ['"a\\x00b"', '"after"'] },
  { name: "nul-error", body: `if (n === 3) throw new Error("a\\0b"); ctx.tag("t");`, expected: (n) => (n === 3 ? [] : ["t"]), stderrMust: ['first: "Error: a\\x00b"'] },
  { name: "surrogate-tag", body: `ctx.tag("ok"); if (n === 9) ctx.tag("x\\ud800y");`, expected: (n) => (n === 9 ? ["ok", "x\ufffdy"] : ["ok"]) },
  { name: "surrogate-log", body: `if (n === 2) ctx.log("\\ud800"); ctx.tag("ok");`, expected: () => ["ok"], stderrMust: ['"\ufffd"'] },
  {
    name: "forge-tag",
    body: `if (n !== 1) return; ctx.log("${slide(7)}T4;6:FORGEDL0:"); ctx.tag("${slide(7)}T4;6:FORGED");`,
    expected: (n) => (n === 1 ? [`${FFFD7}T4;6:FORGED`] : []),
  },
  { name: "forge-warning", body: `if (n === 1) ctx.log("${slide(6)}E1;4:nopeL0:");`, expected: () => [], stderrMustNot: ["packet(s) failed"] },
  { name: "control-tags", body: `ctx.tag("a\\nb\\x1b[31m"); if (n === 5) ctx.tag("\\u202e\\x07");`, expected: (n) => (n === 5 ? ["a\nb\x1b[31m", "\u202e\x07"] : ["a\nb\x1b[31m"]) },
  { name: "name-per-packet", body: `ctx.tag("n" + n); ctx.tag("all");`, expected: (n) => [`n${n}`, "all"] },
];

/** A classic little-endian microsecond pcap of PACKETS synthetic Ethernet/IPv4/UDP frames. */
function inputFile(dir: string): string {
  const record = 16 + FRAME_BYTES;
  const file = new Uint8Array(24 + PACKETS * record);
  const view = new DataView(file.buffer);
  view.setUint32(0, 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, 262144, true);
  view.setUint32(20, 1, true);
  for (let i = 0; i < PACKETS; i++) {
    const at = 24 + i * record;
    view.setUint32(at, 1_700_000_000 + i, true);
    view.setUint32(at + 8, FRAME_BYTES, true);
    view.setUint32(at + 12, FRAME_BYTES, true);
    file.set(syntheticFrame(i, FRAME_BYTES), at + 16);
  }
  const path = join(dir, "in.pcap");
  writeFileSync(path, file);
  return path;
}

async function output(argv: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number }> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { stdout, stderr, code };
}

interface Row {
  hook: string;
  exit: number;
  packetsOut: number;
  tagsRight: number;
  forged: number;
  lost: number;
  rawControl: number;
  logText: string;
  ms: number;
}

async function runOne(hook: HostileHook, dir: string, input: string): Promise<Row> {
  const path = join(dir, `${hook.name}.js`);
  writeFileSync(path, `export default function (pkt, ctx) {\n  const n = (ctx.state.n = (ctx.state.n ?? 0) + 1);\n  ${hook.body}\n}\n`);
  const out = join(dir, `${hook.name}.pcapng`);
  const started = performance.now();
  const run = await output([probeBinary, "capture", "-r", input, "--hook", path, "-F", "pcapng", "-w", out], RUN_TIMEOUT_MS);
  const ms = performance.now() - started;
  const row: Row = { hook: hook.name, exit: run.code, packetsOut: 0, tagsRight: 0, forged: 0, lost: 0, rawControl: 0, logText: "-", ms };
  row.rawControl = (run.stderr.match(/[\x00-\x09\x0b-\x1f\x7f]/g) ?? []).length;
  const must = hook.stderrMust ?? [];
  const mustNot = hook.stderrMustNot ?? [];
  if (must.length + mustNot.length > 0) {
    row.logText = must.every((t) => run.stderr.includes(t)) && !mustNot.some((t) => run.stderr.includes(t)) ? "ok" : "WRONG";
  }
  if (run.code !== 0) return row;
  const json = await output(["tshark", "-r", out, "-T", "json", "-e", "frame.comment"], RUN_TIMEOUT_MS);
  const frames = JSON.parse(json.stdout || "[]") as { _source: { layers: { "frame.comment"?: string[] } } }[];
  row.packetsOut = frames.length;
  frames.forEach((frame, i) => {
    const got = frame._source.layers["frame.comment"] ?? [];
    const want = hook.expected(i + 1);
    if (got.length === want.length && got.every((t, k) => t === want[k])) row.tagsRight++;
    row.forged += got.filter((t) => !want.includes(t)).length;
    row.lost += want.filter((t) => !got.includes(t)).length;
  });
  return row;
}

export async function benchRobustnessHooks(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "probe-robustness-hooks-"));
  try {
    const input = inputFile(dir);
    const began = performance.now();
    const rows: Row[] = [];
    for (const hook of HOOKS) {
      if (performance.now() - began > TOTAL_MAX_MS) break;
      rows.push(await runOne(hook, dir, input));
    }
    console.log(`hostile hooks over ${PACKETS} packets (${probeBinary} capture -r --hook -F pcapng; tshark reads the comments)`);
    console.log("hook             exit  out  tags-right  forged  lost  raw-ctl  log-text     ms");
    for (const r of rows) {
      console.log(
        `${r.hook.padEnd(16)} ${String(r.exit).padStart(4)} ${String(r.packetsOut).padStart(4)} ${String(r.tagsRight).padStart(11)} ${String(r.forged).padStart(7)} ${String(r.lost).padStart(5)} ${String(r.rawControl).padStart(8)}  ${r.logText.padEnd(8)} ${r.ms.toFixed(0).padStart(6)}`,
      );
    }
    const forged = rows.reduce((n, r) => n + r.forged, 0);
    const lost = rows.reduce((n, r) => n + r.lost, 0);
    const survivors = rows.filter((r) => r.exit === 0 && r.packetsOut === PACKETS && r.tagsRight === PACKETS && r.rawControl === 0 && r.logText !== "WRONG").length;
    console.log(`${rows.length} of ${HOOKS.length} hooks run; all correct: ${survivors}; forged tags ${forged} (must be 0); lost tags ${lost} (must be 0)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchRobustnessHooks();
