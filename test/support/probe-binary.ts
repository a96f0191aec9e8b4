// Runs the compiled dist/probe (what operators run) — or the sources with PROBE_TEST_SOURCE=1 —
// and collects its exit status and output.
import { existsSync, readFileSync, writeFileSync } from "node:fs";

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
