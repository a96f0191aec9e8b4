// The processing stages' part of the pipeline spec (WDCap's packet-processing and direction
// modules): zod schemas for the four stage kinds, to add to the spec's stage union, and
// buildProcessingStage(), which turns one validated entry into a PacketStage (reading the key
// file, deriving a passphrase's key, compiling direction filters).
import { kindSchema, z } from "../../config/zod.ts";
import { compileBpfRecordMatcher } from "../../packet/bpf/index.ts";
import { ProbeError } from "../../packet/probe-error.ts";
import { parseAddressBlock } from "../../net/ip-address.ts";
import type { Logger } from "../../logging/index.ts";
import type { PacketStage } from "../stage.ts";
import { AnonymizeStage, type AddressPrefix, type AnonymizeMethod } from "./anonymize.ts";
import { ChecksumsStage } from "./checksums.ts";
import { CRYPTOPAN_KEY_BYTES, cryptoPanKeyFromPassphrase } from "./cryptopan.ts";
import { DirectionStage, type DirectionFilterCompiler } from "./direction.ts";
import { MAX_TRUNCATE_PAYLOAD_BYTES, TruncateHeadersStage } from "./truncate-headers.ts";

/** Longest passphrase accepted: bounds PBKDF2's input; a passphrase is not a document. */
export const MAX_PASSPHRASE_CHARS = 1024;

const cidrPattern = /^[0-9a-fA-F:.]+\/\d{1,3}$/;

// Each kind is built when a spec first holds it (kindSchema, src/config/zod.ts).
export const anonymizeStageSchema = kindSchema("anonymize", (kind) =>
  z
    .strictObject({
      kind,
      /** File of exactly 32 raw bytes: the key `traceanon -f` reads (AES key, then pad). */
      keyFile: z.string().min(1).optional(),
      /** Passphrase the key is derived from (PBKDF2-HMAC-SHA256, docs/stages.md). */
      passphrase: z.string().min(1).max(MAX_PASSPHRASE_CHARS).optional(),
      /** Prefix substitution instead of CryptoPAn (like traceanon -p): at most one IPv4 and one IPv6 CIDR. */
      prefixes: z.array(z.string().regex(cidrPattern, "an address prefix like 10.0.0.0/8")).min(1).max(2).optional(),
      /** Which addresses to rewrite. */
      only: z.enum(["both", "src", "dst"]).default("both"),
    })
    .refine((s) => [s.keyFile, s.passphrase, s.prefixes].filter((v) => v !== undefined).length === 1, {
      message: "anonymize wants exactly one of keyFile, passphrase or prefixes",
    }),
);

export const truncateHeadersStageSchema = kindSchema("truncate-headers", (kind) =>
  z.strictObject({
    kind,
    /** Payload bytes kept after the last header. */
    payloadBytes: z.number().int().min(0).max(MAX_TRUNCATE_PAYLOAD_BYTES).default(0),
  }),
);

export const checksumsStageSchema = kindSchema("checksums", (kind) =>
  z.strictObject({
    kind,
    action: z.enum(["check", "update", "blank"]),
  }),
);

export const directionStageSchema = kindSchema("direction", (kind) =>
  z
    .strictObject({
      kind,
      /** tcpdump expression matching inbound packets. */
      inbound: z.string().min(1).optional(),
      /** tcpdump expression matching outbound packets. */
      outbound: z.string().min(1).optional(),
    })
    .refine((s) => s.inbound !== undefined || s.outbound !== undefined, { message: "direction wants inbound, outbound or both" }),
);

/** An output's `onlyDirection` setting (`--only-direction in|out`): forward one direction only. */
export const onlyDirectionSchema = z.enum(["in", "out"]);

/** The four kinds, to spread into the spec's `z.discriminatedUnion("kind", [...])`. */
export const processingStageSchemas = [anonymizeStageSchema, truncateHeadersStageSchema, checksumsStageSchema, directionStageSchema] as const;

export const processingStageSpecSchema = z.discriminatedUnion("kind", [...processingStageSchemas]);
export type ProcessingStageSpec = z.infer<typeof processingStageSpecSchema>;
export type ProcessingStageKind = ProcessingStageSpec["kind"];
export const PROCESSING_STAGE_KINDS: readonly ProcessingStageKind[] = ["anonymize", "truncate-headers", "checksums", "direction"];

/**
 * A processing stage that cannot be built from its spec: a key file of the wrong size or
 * unreadable, a bad prefix, a filter libpcap refuses. The message names the setting or file;
 * `code` is stable for tests. Every one is the operator's to fix: exit status 2 (usage).
 */
export class ProcessingStageError extends ProbeError {
  override readonly name = "ProcessingStageError";
  constructor(
    override readonly code: "bad-key-file" | "bad-prefix" | "bad-filter",
    message: string,
  ) {
    super(code, "usage", message);
  }
}

export interface ProcessingStageContext {
  /**
   * Compiles a direction filter for a link type. Defaults to libpcap's compiler (pcap_open_dead)
   * feeding our userland BPF; tests may pass their own.
   */
  compileFilter?: DirectionFilterCompiler;
  /** Link type of the inputs when known: direction filters are compiled for it at build time, so a bad one fails at start. */
  linktype?: number;
  /** Where a warning about the settings goes (a key file traceanon would read differently). */
  log?: Pick<Logger, "warn">;
}

/** Builds the stage for one validated spec entry. Throws ProcessingStageError for what the operator must fix. */
export async function buildProcessingStage(spec: ProcessingStageSpec, context: ProcessingStageContext = {}): Promise<PacketStage> {
  switch (spec.kind) {
    case "anonymize":
      return new AnonymizeStage({ method: await anonymizeMethod(spec, context), which: spec.only });
    case "truncate-headers":
      return new TruncateHeadersStage({ payloadBytes: spec.payloadBytes });
    case "checksums":
      return new ChecksumsStage(spec.action);
    case "direction": {
      const compile = context.compileFilter ?? (await defaultFilterCompiler());
      const stage = new DirectionStage({ inbound: spec.inbound, outbound: spec.outbound, compile });
      if (context.linktype !== undefined) {
        try {
          stage.prepare(context.linktype);
        } catch (error) {
          throw new ProcessingStageError("bad-filter", error instanceof Error ? error.message : String(error));
        }
      }
      return stage;
    }
  }
}

type AnonymizeSpec = Extract<ProcessingStageSpec, { kind: "anonymize" }>;

async function anonymizeMethod(spec: AnonymizeSpec, context: ProcessingStageContext): Promise<AnonymizeMethod> {
  if (spec.keyFile !== undefined) {
    const key = await readKeyFile(spec.keyFile);
    const warning = keyFileNulWarning(spec.keyFile, key);
    if (warning) context.log?.warn(warning);
    return { kind: "cryptopan", key };
  }
  if (spec.passphrase !== undefined) return { kind: "cryptopan", key: cryptoPanKeyFromPassphrase(spec.passphrase) };
  const method: { kind: "prefix"; ipv4?: AddressPrefix; ipv6?: AddressPrefix } = { kind: "prefix" };
  for (const text of spec.prefixes ?? []) {
    const prefix = parsePrefix(text);
    const family = prefix.address.byteLength === 4 ? "ipv4" : "ipv6";
    if (method[family]) throw new ProcessingStageError("bad-prefix", `--anonymize-prefix: more than one ${family === "ipv4" ? "IPv4" : "IPv6"} prefix (${text})`);
    method[family] = prefix;
  }
  return method;
}

/** Reads a CryptoPAn key file: exactly 32 raw bytes, as `traceanon -f` wants. */
export async function readKeyFile(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await Bun.file(path).bytes();
  } catch (error) {
    const reason = error instanceof Error && "code" in error ? String((error as { code: unknown }).code) : "unreadable";
    throw new ProcessingStageError("bad-key-file", `--anonymize-key-file ${path}: cannot read it (${reason})`);
  }
  if (bytes.byteLength !== CRYPTOPAN_KEY_BYTES) {
    throw new ProcessingStageError(
      "bad-key-file",
      `--anonymize-key-file ${path}: a key file holds exactly ${CRYPTOPAN_KEY_BYTES} raw bytes (as traceanon -f reads), this one has ${bytes.byteLength}`,
    );
  }
  return bytes;
}

/**
 * The warning for a key that holds a NUL byte, undefined for one that holds none. probe uses all
 * 32 bytes; Debian's traceanon (libtrace 3.0.22) copies the key file with strlcpy and stops at
 * the first NUL, zero-filling the rest, so the two tools anonymize differently with this key
 * (test/integration/cryptopan-key-nul.test.ts shows the exact relation). Not an error: probe's
 * output is the key's true CryptoPAn; only comparing with traceanon needs a NUL-free key.
 */
export function keyFileNulWarning(path: string, key: Uint8Array): string | undefined {
  const at = key.indexOf(0);
  if (at < 0 || at === key.byteLength - 1) return undefined; // a NUL as the last byte cuts nothing
  return `anonymize: key file ${path} holds a NUL byte at offset ${at}: probe uses all ${key.byteLength} bytes, traceanon -f stops at the first NUL, so their outputs differ (docs/stages.md)`;
}

/** Parses "10.0.0.0/8" or "2001:db8::/32" into address bytes and a prefix length. */
export function parsePrefix(text: string): AddressPrefix {
  const block = parseAddressBlock(text, { prefixRequired: true });
  if (block.kind !== "block") {
    throw new ProcessingStageError("bad-prefix", `--anonymize-prefix: '${text}' is not an address prefix like 10.0.0.0/8 or 2001:db8::/32`);
  }
  return { address: block.bytes, bits: block.prefix };
}

/** libpcap's compiler (loaded only when a direction stage is built: it opens libpcap through FFI). */
async function defaultFilterCompiler(): Promise<DirectionFilterCompiler> {
  const { compileFilter } = await import("../../capture/libpcap/compile-filter.ts");
  const { MAXIMUM_SNAPLEN } = await import("../../packet/packet-batch.ts");
  return (expression, linktype) => compileBpfRecordMatcher(compileFilter(expression, linktype, MAXIMUM_SNAPLEN));
}
