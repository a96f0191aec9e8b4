// ChecksumsStage (`--checksums check|update|blank`), libwdcap's three checksum choices:
//   check  verifies the IPv4 header, TCP, UDP, ICMP and ICMPv6 checksums (pseudo-headers for v4
//          and v6), counts bad ones per protocol, and marks each bad packet with a pcapng
//          comment "checksum bad: tcp" (PacketBatch.meta.comments, which hooks also receive).
//          What cannot be judged is counted apart, never as bad: checksums not captured whole
//          (snaplen), later fragments, IPv6 routing headers, UDP/IPv4 sent without a checksum
//          (0), and a stored 0 in TCP/ICMP/ICMPv6 (transmit offload captured on the sender).
//   update recomputes every one of them;
//   blank  zeroes them (UDP/IPv4 0 means "no checksum"; the others read as bad afterwards).
// The arithmetic lives in src/packet/checksums.ts (shared with hooks' ctx.fixChecksums).
import type { PacketBatch, RecordMeta } from "../../packet/packet-batch.ts";
import { BATCH_RECORD_HEADER_BYTES } from "../../packet/packet-batch.ts";
import {
  CHECKSUM_BAD_COMMENT_PREFIX,
  CHECKSUM_MODE,
  CHECKSUM_TRANSPORT,
  CHECKSUM_TRANSPORT_NAMES,
  CHECKSUM_VERDICT,
  networkVerdict,
  processChecksums,
  transportKind,
  transportVerdict,
  type ChecksumMode,
} from "../../packet/checksums.ts";
import { decodeOffsetsInto, OFFSET_FIELD_COUNT } from "../../packet/packet-offsets.ts";
import type { PacketStage } from "../stage.ts";

export type ChecksumAction = "check" | "update" | "blank";


const MODES: Record<ChecksumAction, ChecksumMode> = { check: CHECKSUM_MODE.CHECK, update: CHECKSUM_MODE.UPDATE, blank: CHECKSUM_MODE.BLANK };

/** Per protocol: checked (or written), bad, not judged (and why, summed). */
interface ProtocolCounts {
  ok: number;
  bad: number;
  truncated: number;
  fragment: number;
  routing_header: number;
  zero: number;
  disabled: number;
}

const PROTOCOLS = ["ipv4", "tcp", "udp", "icmp", "icmpv6"] as const;
type ProtocolName = (typeof PROTOCOLS)[number];

function emptyCounts(): ProtocolCounts {
  return { ok: 0, bad: 0, truncated: 0, fragment: 0, routing_header: 0, zero: 0, disabled: 0 };
}

export class ChecksumsStage implements PacketStage {
  readonly name = "checksums";
  private readonly mode: ChecksumMode;
  private readonly offsets = new Int32Array(OFFSET_FIELD_COUNT);
  private readonly perProtocol: Record<ProtocolName, ProtocolCounts> = {
    ipv4: emptyCounts(),
    tcp: emptyCounts(),
    udp: emptyCounts(),
    icmp: emptyCounts(),
    icmpv6: emptyCounts(),
  };
  private packetsIn = 0;
  private packetsBad = 0;

  constructor(readonly action: ChecksumAction) {
    this.mode = MODES[action];
  }

  apply(batch: PacketBatch): PacketBatch {
    if (batch.count === 0) return batch;
    this.packetsIn += batch.count;
    const writes = this.mode !== CHECKSUM_MODE.CHECK;
    const bytes = writes ? batch.bytes.slice() : batch.bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const o = this.offsets;
    let marks: (string | undefined)[] | undefined;
    let offset = 0;
    for (let i = 0; i < batch.count; i++) {
      const caplen = view.getUint32(offset + 8, true);
      const at = offset + BATCH_RECORD_HEADER_BYTES;
      if (at + caplen > bytes.byteLength) break;
      decodeOffsetsInto(bytes, at, caplen, batch.linktype, o, 0);
      const packed = processChecksums(bytes, at, caplen, o, 0, this.mode);
      const network = networkVerdict(packed);
      const transport = transportVerdict(packed);
      const kind = transportKind(packed);
      if (network !== CHECKSUM_VERDICT.NONE) this.count(this.perProtocol.ipv4, network);
      if (kind !== CHECKSUM_TRANSPORT.NONE) this.count(this.perProtocol[CHECKSUM_TRANSPORT_NAMES[kind] as ProtocolName], transport);
      if (network === CHECKSUM_VERDICT.BAD || transport === CHECKSUM_VERDICT.BAD) {
        this.packetsBad++;
        marks ??= new Array<string | undefined>(batch.count);
        const which = [network === CHECKSUM_VERDICT.BAD ? "ipv4" : "", transport === CHECKSUM_VERDICT.BAD ? CHECKSUM_TRANSPORT_NAMES[kind] : ""];
        marks[i] = `${CHECKSUM_BAD_COMMENT_PREFIX} ${which.filter((w) => w !== "").join(" ")}`;
      }
      offset = at + caplen;
    }
    if (!writes && marks === undefined) return batch;
    const meta = marks === undefined ? batch.meta : withComments(batch.meta, marks, batch.count);
    return { ...batch, bytes, ...(meta ? { meta } : {}) };
  }

  counters(): Readonly<Record<string, number>> {
    const out: Record<string, number> = { packets_in: this.packetsIn, packets_bad: this.packetsBad };
    for (const name of PROTOCOLS) {
      for (const [field, value] of Object.entries(this.perProtocol[name])) out[`${name}_${field}`] = value;
    }
    return out;
  }

  summaryLines(): string[] {
    const verb = this.action === "check" ? "good" : this.action === "update" ? "recomputed" : "blanked";
    const parts: string[] = [];
    for (const name of PROTOCOLS) {
      const c = this.perProtocol[name];
      const skipped = c.truncated + c.fragment + c.routing_header + c.zero + c.disabled;
      if (c.ok + c.bad + skipped === 0) continue;
      let text = `${name} ${c.ok} ${verb}`;
      if (this.action === "check") text += `, ${c.bad} bad`;
      if (skipped > 0) {
        const why = (["truncated", "fragment", "routing_header", "zero", "disabled"] as const)
          .filter((k) => c[k] > 0)
          .map((k) => `${k.replace("_", " ")} ${c[k]}`);
        text += ` (not judged: ${why.join(", ")})`;
      }
      parts.push(text);
    }
    const head = `checksums ${this.action}: ${this.packetsIn} packets` + (this.action === "check" ? `, ${this.packetsBad} with a bad checksum` : "");
    return [parts.length > 0 ? `${head}; ${parts.join("; ")}` : head];
  }

  private count(counts: ProtocolCounts, verdict: number): void {
    switch (verdict) {
      case CHECKSUM_VERDICT.OK:
        counts.ok++;
        break;
      case CHECKSUM_VERDICT.BAD:
        counts.bad++;
        break;
      case CHECKSUM_VERDICT.TRUNCATED:
        counts.truncated++;
        break;
      case CHECKSUM_VERDICT.FRAGMENT:
        counts.fragment++;
        break;
      case CHECKSUM_VERDICT.ROUTING_HEADER:
        counts.routing_header++;
        break;
      case CHECKSUM_VERDICT.ZERO:
        counts.zero++;
        break;
      case CHECKSUM_VERDICT.DISABLED:
        counts.disabled++;
        break;
    }
  }
}

/** `meta` with `marks[i]` appended to record i's comments (the other arrays kept as they are). */
export function withComments(meta: RecordMeta | undefined, marks: readonly (string | undefined)[], count: number): RecordMeta {
  const before = meta?.comments;
  const comments: (readonly string[] | undefined)[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const existing = before?.[i];
    const mark = marks[i];
    comments[i] = mark === undefined ? existing : existing ? [...existing, mark] : [mark];
  }
  return { ...(meta ?? {}), comments };
}
