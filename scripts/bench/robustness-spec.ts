// Hostile spec files (npm run bench -- robustness): `dist/probe run FILE` on files an attacker or
// a slip of the keyboard could hand it — alias bombs, deep nesting, tags, __proto__, duplicate
// keys, terminal escapes in keys, binary and non-UTF-8 files, /etc/shadow, devices, a FIFO, a
// directory, files over the 1 MiB cap, a printed pipeline with a redacted passphrase. Each must
// be refused with exit status 2, in one line (a spec with many mistakes: at most 11), with no raw
// control bytes, nothing on standard output, no stack, and none of a canary string planted in
// the file's values. Prints one row per file and the totals. Bounded: one run per file, each
// killed after RUN_TIMEOUT_MS.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeBinary, watchPeakRss } from "./support/measure.ts";

/** A run that takes longer than this is killed and counted as a hang. */
const RUN_TIMEOUT_MS = 10_000;
/** Planted in the values of hostile files: it must never appear in probe's output. */
const CANARY = "CANARY-5f0e1d";
const GOOD = "inputs:\n  - kind: file\n    path: a.pcap\noutputs:\n  - kind: file\n    path: b.pcap\n";

interface HostileFile {
  name: string;
  /** File contents, or a path to use as it is (devices, directories). */
  text?: string | Uint8Array;
  path?: string;
  extension?: string;
  /** Lines the refusal may take (default 1). */
  lines?: number;
}

function hostileFiles(dir: string): HostileFile[] {
  const laughs = ["a: &a [\"" + CANARY + "\", \"" + CANARY + "\"]"];
  for (let i = 1; i < 12; i++) laughs.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [*${String.fromCharCode(96 + i)}, *${String.fromCharCode(96 + i)}, *${String.fromCharCode(96 + i)}]`);
  const fifo = join(dir, "fifo");
  Bun.spawnSync(["mkfifo", fifo]);
  const socketPath = join(dir, "socket");
  const listener = Bun.listen({ unix: socketPath, socket: { data() {} } });
  setTimeout(() => listener.stop(true), RUN_TIMEOUT_MS * 3).unref();
  const shadowLink = join(dir, "shadow-link.yaml");
  symlinkSync("/etc/shadow", shadowLink);
  const subdir = join(dir, "a-directory.yaml");
  mkdirSync(subdir);
  return [
    { name: "alias bomb (3^11 expansions)", text: `${GOOD}stopAfterPackets:\n${laughs.map((line) => `  ${line}`).join("\n")}\n` },
    { name: "alias bomb as the whole spec", text: `${laughs.join("\n")}\n` },
    { name: "alias bomb 2^40 (Bun's alias limit)", text: `${GOOD}${Array.from({ length: 40 }, (_, i) => (i === 0 ? `k0: &n0 ["${CANARY}", "${CANARY}"]` : `k${i}: &n${i} [*n${i - 1}, *n${i - 1}]`)).join("\n")}\n` },
    { name: "flow nesting 100k deep (YAML)", text: `inputs: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n` },
    { name: "block nesting 1k deep (YAML)", text: `${Array.from({ length: 1000 }, (_, i) => `${" ".repeat(i)}k${i}:`).join("\n")} ${CANARY}\n` },
    { name: "nesting 200k deep (JSON)", text: `{"inputs": ${"[".repeat(200_000)}${"]".repeat(200_000)}}`, extension: "json" },
    { name: "tag !!python/object/apply", text: `${GOOD}quiet: !!python/object/apply:os.system ["echo ${CANARY}"]\n` },
    { name: "local tag !shell", text: `${GOOD}precision: !shell ${CANARY}\n` },
    { name: "flow nesting 1k deep (YAML)", text: `${GOOD}quiet: ${"[".repeat(1000)}${"]".repeat(1000)}\n` },
    { name: "__proto__ key (YAML)", text: `${GOOD}__proto__:\n  quiet: ${CANARY}\n` },
    { name: "__proto__ key (JSON)", text: `{"inputs": [{"kind": "file", "path": "a"}], "outputs": [{"kind": "file", "path": "b"}], "__proto__": {"quiet": "${CANARY}"}}`, extension: "json" },
    { name: "constructor.prototype keys", text: `${GOOD}constructor:\n  prototype:\n    polluted: ${CANARY}\n` },
    { name: "duplicate key (YAML block)", text: `${GOOD}    path: ${CANARY}\n` },
    { name: "duplicate key (YAML flow)", text: `inputs: [{kind: file, path: a, path: ${CANARY}}]\noutputs: [{kind: file, path: b}]\n` },
    { name: "duplicate key (JSON)", text: `{"quiet": true, "quiet": "${CANARY}"}`, extension: "json" },
    { name: "unknown key with ESC, BEL, CR, newline", text: `${GOOD}"\\e]0;title\\a\\e[2J\\rprobe: ok\\n": ${CANARY}\n` },
    { name: "unknown key with bidi overrides", text: `${GOOD}"admin\u202e\u2066x": ${CANARY}\n` },
    { name: "unknown key 100 KB long", text: `${GOOD}${"k".repeat(100_000)}: ${CANARY}\n` },
    { name: "value with ESC in an error", text: `inputs:\n  - kind: "\u001b[31m${CANARY}"\noutputs: [{kind: file, path: b}]\n` },
    { name: "syntax error after a canary", text: `${GOOD}filter: "${CANARY}\n  more: [\n` },
    { name: "JSON syntax error at a canary", text: `{"inputs": [${CANARY}]}`, extension: "json" },
    { name: "shadow-like lines", text: `root:$6$${CANARY}$hash:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n` },
    { name: "/etc/shadow", path: "/etc/shadow" },
    { name: "symlink to /etc/shadow", path: shadowLink },
    { name: "shell script", text: `#!/bin/sh\nexport TOKEN=${CANARY}\necho "$TOKEN"\n` },
    { name: "binary (ELF header, NUL bytes)", text: Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, ...new TextEncoder().encode(CANARY)]) },
    { name: "not UTF-8", text: Uint8Array.from([...new TextEncoder().encode(`k: ${CANARY}`), 0xff, 0xfe, 0x0a]) },
    { name: "UTF-16 with BOM", text: Uint8Array.from([0xff, 0xfe, ...[...`q: ${CANARY}`].flatMap((c) => [c.charCodeAt(0), 0])]) },
    { name: "list, not a mapping", text: `- ${CANARY}\n- ${CANARY}\n` },
    { name: "multi-document YAML", text: `${GOOD}---\nquiet: ${CANARY}\n` },
    { name: "printed pipeline, passphrase redacted", text: `inputs:\n  - kind: file\n    path: a.pcap\nstages:\n  - kind: anonymize\n    passphrase: "<redacted>"\noutputs:\n  - kind: file\n    path: ${CANARY}.pcap\n` },
    { name: "rpcap URL password redacted", text: `inputs:\n  - kind: rpcap\n    url: rpcap://u:<redacted>@127.0.0.1/${CANARY}\noutputs:\n  - kind: file\n    path: b.pcap\n` },
    { name: "40 unknown keys (at most 11 lines)", text: `${GOOD}${Array.from({ length: 40 }, (_, i) => `k${i}: ${CANARY}\n`).join("")}`, lines: 11 },
    { name: "1 MiB + 1 byte", text: `${GOOD}#${"x".repeat(1024 * 1024 - GOOD.length)}` },
    { name: "8 MiB of one line", text: `k: ${CANARY}${"x".repeat(8 * 1024 * 1024)}\n` },
    { name: "/dev/zero", path: "/dev/zero" },
    { name: "/dev/urandom", path: "/dev/urandom" },
    { name: "/dev/null", path: "/dev/null" },
    { name: "FIFO without a writer", path: fifo },
    { name: "Unix socket", path: socketPath },
    { name: "directory", path: subdir },
    { name: "missing file", path: join(dir, "absent.yaml") },
  ];
}

interface Outcome {
  name: string;
  exitCode: number | null;
  lines: number;
  allowedLines: number;
  ms: number;
  peakRssMiB: number;
  controlBytes: boolean;
  echoed: boolean;
  stdout: boolean;
  stack: boolean;
  first: string;
}

async function runOne(file: HostileFile, path: string): Promise<Outcome> {
  const started = performance.now();
  const proc = Bun.spawn([probeBinary, "run", path], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const rss = watchPeakRss(proc.pid);
  const timer = setTimeout(() => proc.kill("SIGKILL"), RUN_TIMEOUT_MS);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  const lines = stderr.endsWith("\n") ? stderr.slice(0, -1).split("\n") : stderr.split("\n");
  return {
    name: file.name,
    exitCode: proc.signalCode ? null : exitCode,
    lines: stderr === "" ? 0 : lines.length,
    allowedLines: file.lines ?? 1,
    ms: performance.now() - started,
    peakRssMiB: rss.stop(),
    controlBytes: /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(stderr),
    echoed: stderr.includes(CANARY) || stderr.includes("root:"),
    stdout: stdout.length > 0,
    stack: /\n\s+at /.test(stderr),
    first: lines[0] ?? "",
  };
}

function survived(o: Outcome): boolean {
  return o.exitCode === 2 && o.lines >= 1 && o.lines <= o.allowedLines && !o.controlBytes && !o.echoed && !o.stdout && !o.stack;
}

export async function benchRobustnessSpec(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "robustness-spec-"));
  try {
    const files = hostileFiles(dir);
    const outcomes: Outcome[] = [];
    for (const [i, file] of files.entries()) {
      let path = file.path;
      if (!path) {
        path = join(dir, `hostile-${i}.${file.extension ?? "yaml"}`);
        writeFileSync(path, file.text!);
      }
      outcomes.push(await runOne(file, path));
    }
    const width = Math.max(...outcomes.map((o) => o.name.length));
    console.log(`\nHostile spec files: probe run FILE (exit 2, <= allowed lines, no control bytes, no canary, no stdout, no stack)`);
    console.log(`${"file".padEnd(width)}  exit  lines     ms  rss MiB  verdict  first line (cut)`);
    for (const o of outcomes) {
      const flags = [o.controlBytes && "CONTROL", o.echoed && "ECHO", o.stdout && "STDOUT", o.stack && "STACK", o.exitCode === null && "HANG"].filter(Boolean).join(",");
      const verdict = survived(o) ? "ok" : `FAIL ${flags}`;
      const first = o.first.replace(/^probe: \S+: /, "").slice(0, 90);
      console.log(`${o.name.padEnd(width)}  ${String(o.exitCode ?? "kill").padStart(4)}  ${`${o.lines}/${o.allowedLines}`.padStart(5)}  ${o.ms.toFixed(0).padStart(5)}  ${o.peakRssMiB.toFixed(0).padStart(7)}  ${verdict.padEnd(7)}  ${first}`);
    }
    const ok = outcomes.filter(survived).length;
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    const peak = Math.max(...outcomes.map((o) => o.peakRssMiB));
    console.log(`tries ${outcomes.length}, refused cleanly ${ok}, failed ${outcomes.length - ok}; canary echoed ${outcomes.filter((o) => o.echoed).length}, raw control bytes ${outcomes.filter((o) => o.controlBytes).length}, hangs ${outcomes.filter((o) => o.exitCode === null).length}; slowest ${slowest.toFixed(0)} ms, peak RSS ${peak.toFixed(0)} MiB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchRobustnessSpec();
