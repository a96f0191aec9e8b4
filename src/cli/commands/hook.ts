// `probe hook test FILE.js -r IN.pcap [-w OUT] [-v]`: try a hook on a capture file before
// putting it on live traffic. Prints the verdict counts (and with -v one line per packet),
// and writes what the hook let through, with its tags as pcapng comments.
import { extname } from "node:path";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { hookConfigSchema } from "../../config/hook-config.ts";
import { stderrLogger } from "../../logging/index.ts";
import { CaptureFileWriter, type CaptureFileFormat } from "../../outputs/capture-file/capture-file-writer.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import { streamCaptureFile } from "../../protocols/pcap/index.ts";
import { hookConfigFromFlags } from "../hook-options.ts";
import { HookSetupError } from "../../pipeline/stages/hooks.ts";
import { parseCommandLine } from "../parse-options.ts";
import { CommandFailure, ExitCode, UsageError } from "../usage-error.ts";
import { validated } from "../validated.ts";
import { lazySchema, z } from "../../config/zod.ts";

export const HOOK_HELP = `Usage: probe hook test FILE.js -r IN.pcap [-w OUT.pcap|OUT.pcapng] [-v]

Run a hook (see docs/hooks.md) over the packets of a capture file, as 'probe capture --hook'
would run it, and report what it did.

Options:
  -r, --read FILE         the capture file (pcap or pcapng) to run the hook over (required)
  -w, --write FILE|-      write the packets the hook let through (with its edits); tags become
                          packet comments when FILE is pcapng (tshark -e frame.comment);
                          '-' writes to standard output and moves the report to standard error
  -F, --format FMT        format of -w: pcap or pcapng (default: pcapng if FILE ends in
                          .pcapng or .ntar, else pcap)
  -v, --verbose           one line per packet: '#3 modified caplen 60->42 tags=dns',
                          '#4 drop', '#5 pass (threw; hookFail=pass)'; -vv adds the
                          decoded layers of each packet
      --hook-fail POLICY  pass (default) or drop: what a packet gets when the hook fails
      --hook-memory-mb N  the hook's memory limit in MiB (default 64)
      --hook-budget-ms N  the hook's CPU time per batch in ms (default 50)
  -h, --help              this text

Standard output: the per-packet lines (-v), then the totals, e.g.
  24 packets: 20 passed, 0 dropped, 4 modified, 0 failed (hookFail=pass)
  tags: dns=3 icmp=1
The hook's ctx.log lines and failure reports go to standard error.
Exit status: 0 when the hook ran (even if it failed on packets: see the counts), 1 when the
hook does not compile or a file cannot be read or written, 2 bad command line.
`;

/** What `probe hook` with no subcommand or an unknown one points to. */
const SUBCOMMAND_HINT = "the subcommand is 'probe hook test FILE.js -r IN.pcap' (see 'probe hook test --help')";

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const HOOK_TEST_OPTIONS = {
  read: { type: "string", short: "r" },
  write: { type: "string", short: "w" },
  format: { type: "string", short: "F" },
  verbose: { type: "boolean", short: "v", multiple: true },
  "hook-fail": { type: "string" },
  "hook-memory-mb": { type: "string" },
  "hook-budget-ms": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const hookTestConfigSchema = lazySchema(() =>
  hookConfigSchema.unwrap().extend({
    hooks: z.array(z.string().min(1)).length(1, "give exactly one hook FILE.js"),
    readFile: z.string().min(1, "-r IN.pcap is required"),
    writeTarget: z.string().min(1).optional(),
    format: z.enum(["pcap", "pcapng"]).optional(),
    /** 0: totals only; 1: a line per packet; 2: lines with decoded layers. */
    verbosity: z.number().int().min(0).max(2),
  }),
);

type HookTestConfig = Readonly<z.infer<typeof hookTestConfigSchema>>;

export function parseHookTestConfig(argv: string[]): HookTestConfig | "help" {
  const { values: v, positionals } = parseCommandLine("hook test", argv, HOOK_TEST_OPTIONS);
  if (v.help) return "help";
  if (positionals.length > 1) throw new UsageError(`hook test: one hook file at a time, not ${positionals.join(" ")}`);
  return validated("hook test", hookTestConfigSchema, {
    ...hookConfigFromFlags({ ...v, hook: positionals }),
    readFile: v.read ?? "",
    writeTarget: v.write,
    format: v.format,
    verbosity: Math.min(v.verbose?.length ?? 0, 2),
  });
}

/** pcapng for names that say so, else classic pcap (what tcpdump -w writes). */
function formatOfTarget(target: string): CaptureFileFormat {
  const extension = extname(target).toLowerCase();
  return extension === ".pcapng" || extension === ".ntar" ? "pcapng" : "pcap";
}

export async function runHook(argv: string[]): Promise<number> {
  const [subcommand, ...rest] = argv;
  if (subcommand === "-h" || subcommand === "--help" || subcommand === "help") {
    process.stdout.write(HOOK_HELP);
    return ExitCode.OK;
  }
  if (subcommand !== "test") {
    throw new UsageError(`hook: ${subcommand === undefined ? "missing subcommand" : `unknown subcommand '${subcommand}'`}; ${SUBCOMMAND_HINT}`);
  }
  const config = parseHookTestConfig(rest);
  if (config === "help") {
    process.stdout.write(HOOK_HELP);
    return ExitCode.OK;
  }
  return await runHookTest(config);
}

async function runHookTest(config: HookTestConfig): Promise<number> {
  const hookPath = config.hooks[0]!;
  try {
    await Bun.file(hookPath).text();
  } catch (error) {
    throw new HookSetupError(`hook ${hookPath}: cannot read it: ${error instanceof Error ? error.message : String(error)}`);
  }
  const hooks = await import("../../hooks/index.ts");
  const { reader, batches } = streamCaptureFile(config.readFile);
  let result: Awaited<ReturnType<typeof hooks.runHookDryRun>>;
  try {
    result = await hooks.runHookDryRun({
      hookPath,
      batches,
      verbose: config.verbosity >= 2,
      log: stderrLogger("probe"),
      settings: {
        hookFail: config.hookFail,
        hookMemoryLimitBytes: config.hookMemoryLimitBytes,
        hookBatchBudgetMs: config.hookBatchBudgetMs,
        hookCompileBudgetMs: config.hookCompileBudgetMs,
        hookMaxStackBytes: config.hookMaxStackBytes,
      },
    });
  } catch (error) {
    if (error instanceof hooks.HookCompileError) throw new HookSetupError(`hook ${hookPath} does not compile (${error.code}): ${error.message}`);
    if (error instanceof ProtocolError) throw new CommandFailure(`${config.readFile}: not a usable capture file (${error.code} at byte ${error.offset}): ${error.message}`);
    if (error instanceof Error && "code" in error && typeof error.code === "string" && error.code.startsWith("E")) {
      // ENOENT, EACCES, EISDIR from reading the capture file (the hook was read above).
      throw new CommandFailure(`-r ${config.readFile}: cannot read it: ${error.message}`);
    }
    throw error;
  }

  if (config.writeTarget !== undefined) await writeOutput(config, result.output, result.tags, reader.interfaces[0]);

  const out: string[] = config.verbosity >= 1 ? [...result.lines] : [];
  const c = result.counts;
  out.push(`${c.packets} packets: ${c.passed} passed, ${c.dropped} dropped, ${c.modified} modified, ${c.failed} failed (hookFail=${config.hookFail})`);
  const tags = hooks.tagCountsText(result.stats);
  if (tags !== "") out.push(`tags: ${tags}`);
  const failures = Object.entries(result.stats.failures).filter(([, count]) => count > 0);
  if (failures.length > 0 || result.stats.skipped > 0) {
    const words = failures.map(([kind, count]) => `${kind}=${count}`);
    if (result.stats.skipped > 0) words.push(`skipped=${result.stats.skipped}`);
    out.push(`failures: ${words.join(" ")}`);
  }
  if (result.stats.disabled) out.push(`hook disabled after repeated failures`);
  // With -w - the packets own standard output; the report moves to standard error.
  (config.writeTarget === "-" ? process.stderr : process.stdout).write(`${out.join("\n")}\n`);
  return ExitCode.OK;
}

async function writeOutput(
  config: HookTestConfig,
  output: readonly PacketBatch[],
  tags: readonly (readonly (readonly string[] | undefined)[])[],
  firstInterface: { linktype: number; snaplen: number; precision: "micro" | "nano"; name?: string } | undefined,
): Promise<void> {
  const target = config.writeTarget!;
  if (firstInterface === undefined) throw new CommandFailure(`${config.readFile}: the capture file describes no interface`);
  // One output interface: a pcapng input whose interfaces have different link types cannot be
  // written to a classic pcap, and CaptureFileWriter writes one IDB.
  const other = output.find((batch) => batch.count > 0 && batch.linktype !== firstInterface.linktype);
  if (other !== undefined) {
    throw new CommandFailure(`-w: ${config.readFile} mixes link types ${firstInterface.linktype} and ${other.linktype}; write supports one`);
  }
  let writer: CaptureFileWriter;
  try {
    writer = await CaptureFileWriter.open({
      target,
      format: config.format ?? formatOfTarget(target),
      linktype: firstInterface.linktype,
      snaplen: firstInterface.snaplen,
      precision: firstInterface.precision,
      ...(firstInterface.name ? { interfaceName: firstInterface.name } : {}),
    });
    // A record's tags become its pcapng comments (meta.comments), as the pipeline's hook stage writes them.
    const { tagComments } = await import("../../hooks/index.ts");
    for (const [i, batch] of output.entries()) {
      const batchTags = tags[i];
      const comments = batchTags?.map((t) => t && tagComments(t));
      if (batch.count > 0) await writer.write(comments?.some((t) => t !== undefined) ? { ...batch, meta: { ...batch.meta, comments } } : batch);
    }
    await writer.close();
  } catch (error) {
    throw new CommandFailure(`-w ${target}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
