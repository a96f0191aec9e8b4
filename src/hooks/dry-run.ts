// `probe hook test FILE.js -r IN.pcap [-w OUT.pcap] [-v]`: runs one hook over batches read from
// a file and reports, per packet, what the hook decided; the CLI wires the reader and writer.
import { basename } from "node:path";
import type { PacketBatch } from "../packet/packet-batch.ts";
import { BATCH_RECORD_HEADER_BYTES, forEachRecord } from "../packet/packet-batch.ts";
import type { Logger } from "../logging/index.ts";
import { FAILURE_KIND, failureName, PACKET_OUTCOME, type FailureKind, type HookCountersSnapshot } from "./hook-counters.ts";
import { HookRunner } from "./hook-runtime.ts";
import { tagText } from "./hook-text.ts";
import { decodeOffsets, ipProtocolName } from "../packet/packet-offsets.ts";
import type { HookSettings } from "./settings.ts";

export interface HookDryRunOptions {
  hookPath: string;
  /** Batches in file order (a pcap reader's output). */
  batches: Iterable<PacketBatch> | AsyncIterable<PacketBatch>;
  /** Add decoded layers and sizes to every line. */
  verbose?: boolean;
  /** Where the hook's ctx.log lines and failure reports go. */
  log: Logger;
  settings?: Partial<HookSettings>;
  interfaceName?: string;
}

export interface HookDryRunCounts {
  packets: number;
  passed: number;
  dropped: number;
  modified: number;
  /** Packets whose hook call failed (the policy decided them). */
  failed: number;
}

export interface HookDryRunResult {
  counts: HookDryRunCounts;
  /** One line per input packet, e.g. `#3 modified caplen 60->42 tags=dns`. */
  lines: string[];
  /** The hook's output batches (for -w). */
  output: PacketBatch[];
  /** Tags per output record, batch by batch. */
  tags: (readonly string[] | undefined)[][];
  stats: HookCountersSnapshot;
}

const outcomeWords = ["pass", "drop", "modified"] as const;

/** Compiles the hook (throws HookCompileError) and runs it over every batch. */
export async function runHookDryRun(options: HookDryRunOptions): Promise<HookDryRunResult> {
  const source = await Bun.file(options.hookPath).text();
  const runner = await HookRunner.create({
    name: basename(options.hookPath),
    filename: options.hookPath,
    source,
    settings: options.settings,
    logger: options.log,
  });
  const counts: HookDryRunCounts = { packets: 0, passed: 0, dropped: 0, modified: 0, failed: 0 };
  const lines: string[] = [];
  const output: PacketBatch[] = [];
  const tags: (readonly string[] | undefined)[][] = [];
  try {
    for await (const batch of options.batches) {
      const before: { caplen: number; text: string }[] = [];
      forEachRecord(batch, (view, bytes) => {
        const data = bytes.subarray(view.dataOffset, view.dataOffset + view.caplen);
        before.push({ caplen: view.caplen, text: options.verbose ? describePacket(data, batch.linktype, view.len) : "" });
      });
      const result = runner.run(batch, options.interfaceName ?? "");
      const afterCaplens = outputCaplens(result.batch);
      let j = 0;
      for (let i = 0; i < batch.count; i++) {
        const n = ++counts.packets;
        const outcome = result.outcomes[i]!;
        const failure = result.failures[i]! as FailureKind;
        let line = `#${n} ${outcomeWords[outcome]}`;
        if (outcome === PACKET_OUTCOME.PASSED) counts.passed++;
        else if (outcome === PACKET_OUTCOME.DROPPED) counts.dropped++;
        else counts.modified++;
        if (failure !== FAILURE_KIND.NONE) {
          counts.failed++;
          line += ` (${failureName(failure)}; hookFail=${runner.policy})`;
        }
        if (outcome !== PACKET_OUTCOME.DROPPED) {
          const caplen = afterCaplens[j]!;
          if (caplen !== before[i]!.caplen) line += ` caplen ${before[i]!.caplen}->${caplen}`;
          const packetTags = result.tags[j];
          if (packetTags !== undefined) line += ` tags=${packetTags.map(tagText).join(",")}`;
          j++;
        }
        if (options.verbose) line += ` | ${before[i]!.text}`;
        lines.push(line);
      }
      output.push(result.batch);
      tags.push(result.tags);
    }
    return { counts, lines, output, tags, stats: runner.stats };
  } finally {
    runner.dispose();
  }
}

function outputCaplens(batch: PacketBatch): number[] {
  const caplens: number[] = [];
  const view = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
  let offset = 0;
  for (let i = 0; i < batch.count; i++) {
    const caplen = view.getUint32(offset + 8, true);
    caplens.push(caplen);
    offset += BATCH_RECORD_HEADER_BYTES + caplen;
  }
  return caplens;
}

/** One-line summary of a packet's layers, e.g. `len=60 caplen=60 IPv4 UDP 127.0.0.1:9998 > 127.0.0.1:9999 l3=14 l4=34 payload=42`. */
export function describePacket(data: Uint8Array, linktype: number, len: number): string {
  const o = decodeOffsets(data, linktype);
  let text = `len=${len} caplen=${data.byteLength}`;
  if (o.vlanCount > 0) text += ` vlan=${o.vlanId}${o.vlanCount > 1 ? `(+${o.vlanCount - 1})` : ""}`;
  if (o.ipVersion === 0) return `${text} non-IP`;
  text += ` IPv${o.ipVersion} ${o.protocol >= 0 ? ipProtocolName(o.protocol) : "?"}`;
  const address = (at: number) =>
    o.ipVersion === 4
      ? Array.from(data.subarray(at, at + 4)).join(".")
      : Array.from({ length: 8 }, (_, k) => ((data[at + 2 * k]! << 8) | data[at + 2 * k + 1]!).toString(16)).join(":");
  const src = address(o.l3Offset + (o.ipVersion === 4 ? 12 : 8));
  const dst = address(o.l3Offset + (o.ipVersion === 4 ? 16 : 24));
  const port = (p: number) => (p >= 0 ? `:${p}` : "");
  text += ` ${src}${port(o.srcPort)} > ${dst}${port(o.dstPort)} l3=${o.l3Offset}`;
  if (o.l4Offset >= 0) text += ` l4=${o.l4Offset}`;
  if (o.payloadOffset >= 0) text += ` payload=${o.payloadOffset}`;
  return text;
}
