// Runs the compiled dist/probe (what operators run) — or the sources with PROBE_TEST_SOURCE=1 —
// and collects its exit status and output; starts it in the background and waits for a line of
// its log (the one way tests do that: startProbe, startProbeUntil, waitForLine).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Subprocess } from "bun";

export const repoRoot = new URL("../..", import.meta.url).pathname;
export const probeBinary = `${repoRoot}dist/probe`;

/** argv prefix that starts probe: the compiled binary unless PROBE_TEST_SOURCE is set. */
export function probeCommand(): string[] {
  if (process.env.PROBE_TEST_SOURCE) return [process.execPath, `${repoRoot}src/cli/main.ts`];
  if (!existsSync(probeBinary)) throw new Error("dist/probe is missing: run `npm run build` (npm test does)");
  return [probeBinary];
}

export interface ProbeResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runProbe(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; prefix?: string[] } = {},
): Promise<ProbeResult> {
  const proc = Bun.spawn([...(options.prefix ?? []), ...probeCommand(), ...args], {
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    env: { ...process.env, ...options.env },
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { exitCode, stdout, stderr };
}

/** Starts probe in the background; the caller ends it (signal) and awaits `exited`. */
export function spawnProbe(args: string[], options: { env?: Record<string, string>; stdout?: "pipe" | "ignore" } = {}) {
  return Bun.spawn([...probeCommand(), ...args], {
    stdout: options.stdout ?? "pipe",
    stderr: "pipe",
    stdin: "ignore",
    env: { ...process.env, ...options.env },
  });
}

/** A child running in the background, its standard error collected as it comes. */
export interface RunningProbe {
  proc: Subprocess;
  /** Everything the child wrote to standard error so far. */
  log(): string;
  /** Settles once standard error has ended (the child exited and the pipe is read out). */
  drained: Promise<void>;
}

/** Collects the standard error of a child spawned with `stderr: "pipe"` (probe or another program). */
export function collectStderr(proc: Subprocess): RunningProbe {
  let text = "";
  // One decoder for the whole stream: a character split across two reads comes out whole.
  const decoder = new TextDecoder();
  const drained = (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    text += decoder.decode();
  })();
  return { proc, log: () => text, drained };
}

export interface StartProbeOptions {
  env?: Record<string, string>;
  /** Standard output: ignored unless the test reads it. */
  stdout?: "pipe" | "ignore";
  /** argv put before probe's (a wrapper such as prlimit or setpriv). */
  prefix?: string[];
  /** The file's process list (process-cleanup.ts): the child is stopped after the test. */
  procs?: Subprocess[];
}

/** Starts probe in the background with its standard error collected; the caller (or `procs`) stops it. */
export function startProbe(args: string[], options: StartProbeOptions = {}): RunningProbe {
  const proc = Bun.spawn([...(options.prefix ?? []), ...probeCommand(), ...args], {
    stdout: options.stdout ?? "ignore",
    stderr: "pipe",
    stdin: "ignore",
    env: { ...process.env, ...options.env },
  });
  options.procs?.push(proc);
  return collectStderr(proc);
}

/**
 * Waits until the child's log holds `line` (a pattern, or text taken literally) or the child
 * has exited, whichever comes first; throws after `timeoutMs`. Resolves with the match (its
 * groups carry what the line says, a port for instance), or undefined when the child exited
 * without writing the line: the test's own checks of exit status and log then say why.
 */
export async function waitForLine(running: RunningProbe, line: RegExp | string, timeoutMs = 10_000, what = `"${line}" in the log`): Promise<RegExpExecArray | undefined> {
  const pattern = typeof line === "string" ? new RegExp(line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : line;
  let match: RegExpExecArray | null = null;
  await waitFor(() => (match = pattern.exec(running.log())) !== null || running.proc.exitCode !== null, timeoutMs, what);
  if (match) return match;
  // Exited: what it wrote last may still be in the pipe.
  await Promise.race([running.drained, Bun.sleep(1_000)]);
  return pattern.exec(running.log()) ?? undefined;
}

/**
 * startProbe, then waitForLine: resolves once probe has logged `line` (with the match);
 * throws, log included, if probe exits first or the line does not come within `timeoutMs`.
 */
export async function startProbeUntil(
  args: string[],
  line: RegExp | string,
  options: StartProbeOptions & { timeoutMs?: number } = {},
): Promise<RunningProbe & { match: RegExpExecArray }> {
  const running = startProbe(args, options);
  const match = await waitForLine(running, line, options.timeoutMs, `probe ${args[0] ?? ""}: "${line}"`);
  if (!match) throw new Error(`probe ${args.join(" ")} exited ${running.proc.exitCode} before "${line}": ${running.log()}`);
  return { ...running, match };
}

/**
 * Starts probe in the background with its standard error written to `stderrPath` (a file
 * the caller owns) instead of a pipe; `stderr()` reads what it holds so far. Bun's
 * ReadableStream of a child's pipe was seen to stop delivering mid-run (rpcapd-logging: the
 * child sent three more lines and exited 0, and the test's reader got neither the lines nor
 * the end, about 1 run in 6); a file has no reader to stall.
 */
export function spawnProbeLoggingToFile(args: string[], stderrPath: string, options: { env?: Record<string, string> } = {}) {
  writeFileSync(stderrPath, "");
  const proc = Bun.spawn([...probeCommand(), ...args], {
    stdout: "ignore",
    stderr: Bun.file(stderrPath),
    stdin: "ignore",
    env: { ...process.env, ...options.env },
  });
  return { proc, stderr: () => readFileSync(stderrPath, "utf8") };
}

/** Runs a third-party tool (tshark, capinfos, tcpdump) and returns its stdout; throws on failure. */
export async function runTool(argv: string[]): Promise<string> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${stderr}`);
  return stdout;
}

/** Waits until `predicate` holds, polling; throws after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}
