// The processing flags every command that captures or forwards shares (WDCap's packet-processing
// and direction modules): --anonymize-*, --truncate-headers [+N], --checksums, --direction-in/out,
// and the output-side --only-direction. Flags become processing stage specs
// (src/pipeline/stages/processing-spec.ts) in the order they appear on the command line.
import {
  buildProcessingStage,
  onlyDirectionSchema,
  ProcessingStageError,
  processingStageSpecSchema,
  type ProcessingStageContext,
  type ProcessingStageSpec,
} from "../pipeline/stages/processing-spec.ts";
import type { PacketStage } from "../pipeline/stage.ts";
import { MAX_TRUNCATE_PAYLOAD_BYTES } from "../pipeline/stages/truncate-headers.ts";
import { UsageError } from "./usage-error.ts";

/** parseArgs definitions; spread them into a command's own options (after normalizeProcessingArgv). */
export const PROCESSING_CLI_OPTIONS = {
  "anonymize-key-file": { type: "string" },
  "anonymize-passphrase": { type: "string" },
  "anonymize-prefix": { type: "string", multiple: true },
  "anonymize-only": { type: "string" },
  "truncate-headers": { type: "string" },
  checksums: { type: "string" },
  "direction-in": { type: "string" },
  "direction-out": { type: "string" },
} as const;

/** For commands whose outputs can forward one direction (RPCAP, PCAP-over-IP). */
export const ONLY_DIRECTION_CLI_OPTION = {
  "only-direction": { type: "string" },
} as const;

/** The flags' lines for a command's --help (same column layout as capture's). */
export const PROCESSING_OPTIONS_HELP = `      --anonymize-key-file FILE
                          rewrite IP addresses with prefix-preserving CryptoPAn; FILE
                          holds exactly 32 raw bytes (the key 'traceanon -f' reads)
      --anonymize-passphrase TEXT
                          the same with a key derived from TEXT (docs/stages.md)
      --anonymize-prefix CIDR
                          replace the top bits instead, like traceanon -p (one IPv4
                          and/or one IPv6 prefix, e.g. 10.0.0.0/8)
      --anonymize-only src|dst
                          rewrite only source or only destination addresses
      --truncate-headers [+N]
                          keep link, network and transport headers (plus N payload
                          bytes) of each packet; the original length is kept
      --checksums MODE    check (count and mark bad ones), update (recompute), blank
                          (zero) or none (default): IPv4, TCP, UDP, ICMP, ICMPv6
      --direction-in FILTER, --direction-out FILTER
                          tag packets matching the tcpdump FILTER inbound/outbound
                          (pcapng EPB flags, pkt.direction in hooks)
  These run in the order given, before hooks.
`;

/** Help line for --only-direction. */
export const ONLY_DIRECTION_HELP = `      --only-direction in|out
                          forward only packets tagged with that direction
`;

export interface ProcessingFlagValues {
  "anonymize-key-file"?: string | undefined;
  "anonymize-passphrase"?: string | undefined;
  "anonymize-prefix"?: string[] | undefined;
  "anonymize-only"?: string | undefined;
  "truncate-headers"?: string | undefined;
  checksums?: string | undefined;
  "direction-in"?: string | undefined;
  "direction-out"?: string | undefined;
}

/** The flag names of each stage kind, for ordering by first appearance. */
const FLAGS_OF_KIND: Record<ProcessingStageSpec["kind"], readonly string[]> = {
  anonymize: ["--anonymize-key-file", "--anonymize-passphrase", "--anonymize-prefix", "--anonymize-only"],
  "truncate-headers": ["--truncate-headers"],
  checksums: ["--checksums"],
  direction: ["--direction-in", "--direction-out"],
};

/**
 * `--truncate-headers` takes an optional `+N`, which parseArgs cannot express: rewrites
 * `--truncate-headers +N` into `--truncate-headers=+N` and a bare `--truncate-headers` into
 * `--truncate-headers=+0`. Call it on argv before parseCommandLine. Stops at `--`.
 */
export function normalizeProcessingArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (arg === "--truncate-headers") {
      const next = argv[i + 1];
      // "+N" (documented) or a bare number: a filter expression never is one.
      if (next !== undefined && /^\+?\d+$/.test(next)) {
        out.push(`--truncate-headers=+${next.replace("+", "")}`);
        i++;
      } else out.push("--truncate-headers=+0");
    } else out.push(arg);
  }
  return out;
}

/**
 * Stage specs for the processing flags present, ordered by where each stage's first flag
 * appears in `argv` (the normalized or the raw one). Throws UsageError naming the flag.
 */
export function processingStagesFromFlags(values: ProcessingFlagValues, argv: readonly string[]): ProcessingStageSpec[] {
  const entries: { spec: unknown; kind: ProcessingStageSpec["kind"] }[] = [];

  const key = values["anonymize-key-file"];
  const passphrase = values["anonymize-passphrase"];
  const prefixes = values["anonymize-prefix"];
  const only = values["anonymize-only"];
  const methods = [key, passphrase, prefixes].filter((v) => v !== undefined).length;
  if (methods > 1) throw new UsageError("--anonymize-key-file, --anonymize-passphrase and --anonymize-prefix exclude each other");
  if (methods === 0 && only !== undefined) throw new UsageError("--anonymize-only needs --anonymize-key-file, --anonymize-passphrase or --anonymize-prefix");
  if (only !== undefined && only !== "src" && only !== "dst") throw new UsageError(`--anonymize-only wants src or dst, not '${only}'`);
  if (methods === 1) {
    entries.push({
      kind: "anonymize",
      spec: {
        kind: "anonymize",
        ...(key !== undefined ? { keyFile: key } : {}),
        ...(passphrase !== undefined ? { passphrase } : {}),
        ...(prefixes !== undefined ? { prefixes } : {}),
        ...(only !== undefined ? { only } : {}),
      },
    });
  }

  const truncate = values["truncate-headers"];
  if (truncate !== undefined) {
    const match = /^\+?(\d+)$/.exec(truncate);
    const payloadBytes = match ? Number(match[1]) : NaN;
    if (!match || payloadBytes > MAX_TRUNCATE_PAYLOAD_BYTES) {
      throw new UsageError(`--truncate-headers takes +N payload bytes (0 to ${MAX_TRUNCATE_PAYLOAD_BYTES}), not '${truncate}'`);
    }
    entries.push({ kind: "truncate-headers", spec: { kind: "truncate-headers", payloadBytes } });
  }

  const checksums = values.checksums;
  if (checksums !== undefined && checksums !== "none") {
    if (checksums !== "check" && checksums !== "update" && checksums !== "blank") {
      throw new UsageError(`--checksums wants check, update, blank or none, not '${checksums}'`);
    }
    entries.push({ kind: "checksums", spec: { kind: "checksums", action: checksums } });
  }

  const inbound = values["direction-in"];
  const outbound = values["direction-out"];
  if (inbound !== undefined || outbound !== undefined) {
    entries.push({
      kind: "direction",
      spec: { kind: "direction", ...(inbound !== undefined ? { inbound } : {}), ...(outbound !== undefined ? { outbound } : {}) },
    });
  }

  const position = (kind: ProcessingStageSpec["kind"]) => {
    const at = argv.findIndex((arg) => FLAGS_OF_KIND[kind].some((flag) => arg === flag || arg.startsWith(`${flag}=`)));
    return at < 0 ? Number.MAX_SAFE_INTEGER : at;
  };
  entries.sort((a, b) => position(a.kind) - position(b.kind));
  return entries.map(({ spec }) => {
    const parsed = processingStageSpecSchema.safeParse(spec);
    if (!parsed.success) throw new UsageError(parsed.error.issues.map((issue) => issue.message).join("; "));
    return parsed.data;
  });
}

/** `--only-direction in|out`, or undefined. */
export function onlyDirectionFromFlags(values: { "only-direction"?: string | undefined }): "in" | "out" | undefined {
  const text = values["only-direction"];
  if (text === undefined) return undefined;
  const parsed = onlyDirectionSchema.safeParse(text);
  if (!parsed.success) throw new UsageError(`--only-direction wants in or out, not '${text}'`);
  return parsed.data;
}

/**
 * `--only-direction in|out` for a command whose inputs never carry a direction of their own
 * (live interfaces, classic pcap streams, udpstr): without --direction-in/--direction-out every
 * packet would be untagged and nothing forwarded, so that is refused.
 */
export function onlyDirectionOfTaggedStream(values: { "only-direction"?: string | undefined } & ProcessingFlagValues): "in" | "out" | undefined {
  const only = onlyDirectionFromFlags(values);
  if (only !== undefined && values["direction-in"] === undefined && values["direction-out"] === undefined) {
    throw new UsageError("--only-direction needs --direction-in or --direction-out: untagged packets are never forwarded");
  }
  return only;
}

/**
 * Builds the stages of `specs` in order. A ProcessingStageError (a key file of the wrong size,
 * a bad prefix or filter) becomes a UsageError: one line, exit status 2.
 */
export async function buildProcessingStages(specs: readonly ProcessingStageSpec[], context: ProcessingStageContext = {}): Promise<PacketStage[]> {
  const stages: PacketStage[] = [];
  try {
    for (const spec of specs) stages.push(await buildProcessingStage(spec, context));
  } catch (error) {
    for (const stage of stages) stage.close?.();
    if (error instanceof ProcessingStageError) throw new UsageError(error.message);
    throw error;
  }
  return stages;
}
