// Builds TPACKET_V3 ring blocks in memory, as the kernel lays them out (include/uapi/linux/
// if_packet.h: tpacket_block_desc with tpacket_hdr_v1, then frames of tpacket3_hdr +
// sockaddr_ll + the packet at tp_mac), so the ring's block walkers can be tested without a
// socket. Offsets are written here from the header file, independently of src/.

export interface RingFrameSpec {
  /** The packet bytes the kernel captured (tp_snaplen of them). */
  data: Uint8Array;
  /** tp_len: the packet's length on the wire (default data.length). */
  len?: number;
  sec?: number;
  nsec?: number;
  /** sll_pkttype: 0 host, 4 outgoing. */
  packetType?: number;
  /** tp_status bits besides TP_STATUS_USER (VLAN_VALID 16, VLAN_TPID_VALID 64). */
  status?: number;
  vlanTci?: number;
  vlanTpid?: number;
  /** Lie in tp_snaplen (to test the overrun check). */
  snaplenOverride?: number;
}

const TP_STATUS_USER = 1;
const BLOCK_DESC_BYTES = 48;
/** tp_mac: after tpacket3_hdr (48) + sockaddr_ll (20), aligned as the kernel does, plus some slack. */
const MAC_OFFSET = 82;

const align16 = (n: number) => (n + 15) & ~15;

/** Writes one block of `blockBytes` at `base` of `memory` holding `frames`; returns the bytes used. */
export function writeRingBlock(memory: Uint8Array, base: number, blockBytes: number, frames: readonly RingFrameSpec[]): number {
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  memory.fill(0, base, base + blockBytes);
  view.setUint32(base, 3, true); // version
  view.setUint32(base + 8, TP_STATUS_USER, true); // block_status
  view.setUint32(base + 12, frames.length, true); // num_pkts
  view.setUint32(base + 16, BLOCK_DESC_BYTES, true); // offset_to_first_pkt
  let frame = base + BLOCK_DESC_BYTES;
  frames.forEach((spec, i) => {
    const next = align16(MAC_OFFSET + spec.data.length);
    if (frame + next > base + blockBytes) throw new RangeError("frames do not fit the block");
    view.setUint32(frame, i === frames.length - 1 ? 0 : next, true); // tp_next_offset
    view.setUint32(frame + 4, spec.sec ?? 1_700_000_000 + i, true);
    view.setUint32(frame + 8, spec.nsec ?? 123_456_789 + i, true);
    view.setUint32(frame + 12, spec.snaplenOverride ?? spec.data.length, true); // tp_snaplen
    view.setUint32(frame + 16, spec.len ?? spec.data.length, true); // tp_len
    view.setUint32(frame + 20, TP_STATUS_USER | (spec.status ?? 0), true);
    view.setUint16(frame + 24, MAC_OFFSET, true); // tp_mac
    view.setUint16(frame + 26, MAC_OFFSET + 14, true); // tp_net
    view.setUint32(frame + 32, spec.vlanTci ?? 0, true);
    view.setUint16(frame + 36, spec.vlanTpid ?? 0, true);
    view.setUint16(frame + 48, 17, true); // sll_family AF_PACKET
    memory[frame + 48 + 10] = spec.packetType ?? 0;
    memory.set(spec.data, frame + MAC_OFFSET);
    frame += next;
  });
  return frame - base;
}

/** An Ethernet-looking frame of `length` bytes whose every byte tells its position (and `seed`). */
export function patternFrame(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed * 31) & 0xff);
}
