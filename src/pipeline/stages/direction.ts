// DirectionStage (`--direction-in FILTER`, `--direction-out FILTER`), WDCap's direction tagging:
// each packet is matched against the operator's filters (userland BPF, libpcap's semantics) and
// its pcapng EPB flags get the direction bits (1 inbound, 2 outbound; tshark shows
// frame.packet_flags_direction). The inbound filter is tried first; a packet neither filter
// matches keeps the direction it had (usually none, 0). Hooks see it as pkt.direction.
//
// onlyDirection() is the output side (`--only-direction in|out`): it keeps the records tagged
// with one direction, so an RPCAP or PCAP-over-IP output can forward a single direction.
import type { BpfRecordMatcher } from "../../packet/bpf/index.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import {
  BATCH_RECORD_HEADER_BYTES,
  EPB_FLAG_DIRECTION_MASK,
  EPB_FLAG_INBOUND,
  EPB_FLAG_OUTBOUND,
  selectRecords,
} from "../../packet/packet-batch.ts";
import { ProbeError } from "../../packet/probe-error.ts";
import type { PacketStage } from "../stage.ts";

export type Direction = "in" | "out";

/** Compiles a filter for one link type into a matcher (production: libpcap's compiler, then our BPF). */
export type DirectionFilterCompiler = (expression: string, linktype: number) => BpfRecordMatcher;

export interface DirectionStageOptions {
  /** tcpdump expression for inbound packets. */
  inbound?: string | undefined;
  /** tcpdump expression for outbound packets. */
  outbound?: string | undefined;
  compile: DirectionFilterCompiler;
}

/** Link types one stage compiles filters for; batches of more (a merge of many inputs) are tagged for the first ones only. */
const MAX_LINKTYPES = 16;

interface CompiledFilters {
  inbound: BpfRecordMatcher | undefined;
  outbound: BpfRecordMatcher | undefined;
}

export class DirectionStage implements PacketStage {
  readonly name = "direction";
  private readonly byLinktype = new Map<number, CompiledFilters | null>();
  private readonly stats = { packets_in: 0, inbound: 0, outbound: 0, untagged: 0, both_matched: 0, filter_unusable: 0 };

  constructor(private readonly options: DirectionStageOptions) {
    if (options.inbound === undefined && options.outbound === undefined) {
      throw new RangeError("direction tagging needs an inbound or an outbound filter");
    }
  }

  /**
   * Compiles the filters for `linktype` now, so a bad expression is reported at start instead of
   * leaving every packet untagged: throws a usage ProbeError ("bad-filter") naming the filter.
   */
  prepare(linktype: number): void {
    const o = this.options;
    for (const [flag, expression] of [["--direction-in", o.inbound], ["--direction-out", o.outbound]] as const) {
      if (expression === undefined) continue;
      try {
        o.compile(expression, linktype);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new ProbeError("bad-filter", "usage", `${flag} '${expression}' (direction stage, link type ${linktype}): ${reason}`);
      }
    }
    this.byLinktype.set(linktype, this.compileFor(linktype));
  }

  apply(batch: PacketBatch): PacketBatch {
    if (batch.count === 0) return batch;
    this.stats.packets_in += batch.count;
    const filters = this.filtersFor(batch.linktype);
    if (filters === null) {
      this.stats.filter_unusable += batch.count;
      return batch;
    }
    const bytes = batch.bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const flags = batch.meta?.flags ? batch.meta.flags.slice() : new Uint32Array(batch.count);
    let offset = 0;
    for (let i = 0; i < batch.count; i++) {
      const caplen = view.getUint32(offset + 8, true);
      const len = view.getUint32(offset + 12, true);
      const at = offset + BATCH_RECORD_HEADER_BYTES;
      if (at + caplen > bytes.byteLength) break;
      const inbound = filters.inbound !== undefined && filters.inbound(bytes, at, caplen, len) > 0;
      const outbound = filters.outbound !== undefined && filters.outbound(bytes, at, caplen, len) > 0;
      if (inbound && outbound) this.stats.both_matched++;
      if (inbound) {
        flags[i] = (flags[i]! & ~EPB_FLAG_DIRECTION_MASK) | EPB_FLAG_INBOUND;
        this.stats.inbound++;
      } else if (outbound) {
        flags[i] = (flags[i]! & ~EPB_FLAG_DIRECTION_MASK) | EPB_FLAG_OUTBOUND;
        this.stats.outbound++;
      } else {
        this.stats.untagged++;
      }
      offset = at + caplen;
    }
    return { ...batch, meta: { ...(batch.meta ?? {}), flags } };
  }

  counters(): Readonly<Record<string, number>> {
    return { ...this.stats };
  }

  summaryLines(): string[] {
    const s = this.stats;
    let line = `direction: ${s.packets_in} packets, ${s.inbound} in, ${s.outbound} out, ${s.untagged} untagged`;
    if (s.both_matched > 0) line += `, ${s.both_matched} matched both filters (tagged in)`;
    if (s.filter_unusable > 0) line += `, ${s.filter_unusable} untagged because the filters do not compile for their link type`;
    return [line];
  }

  private filtersFor(linktype: number): CompiledFilters | null {
    const known = this.byLinktype.get(linktype);
    if (known !== undefined) return known;
    let compiled: CompiledFilters | null = null;
    if (this.byLinktype.size < MAX_LINKTYPES) {
      try {
        compiled = this.compileFor(linktype);
      } catch {
        compiled = null; // counted per packet as filter_unusable; prepare() reports the error at start
      }
      this.byLinktype.set(linktype, compiled);
    }
    return compiled;
  }

  private compileFor(linktype: number): CompiledFilters {
    const o = this.options;
    return {
      inbound: o.inbound === undefined ? undefined : o.compile(o.inbound, linktype),
      outbound: o.outbound === undefined ? undefined : o.compile(o.outbound, linktype),
    };
  }
}

/** Keeps the records whose EPB flags carry `direction` (records without flags have none and are dropped). */
export function onlyDirection(batch: PacketBatch, direction: Direction): PacketBatch {
  const flags = batch.meta?.flags;
  const wanted = direction === "in" ? EPB_FLAG_INBOUND : EPB_FLAG_OUTBOUND;
  let index = 0;
  return selectRecords(batch, (_view, _offset, caplen) => {
    const f = flags?.[index++] ?? 0;
    return (f & EPB_FLAG_DIRECTION_MASK) === wanted ? caplen : -1;
  });
}

/** onlyDirection() as the last stage of a capture an output opens itself (rpcapd's own captures). */
export function onlyDirectionStage(direction: Direction): PacketStage {
  const stats = { packets_in: 0, packets_out: 0 };
  return {
    name: "only-direction",
    apply(batch) {
      stats.packets_in += batch.count;
      const kept = onlyDirection(batch, direction);
      stats.packets_out += kept.count;
      return kept;
    },
    counters: () => ({ ...stats }),
  };
}
