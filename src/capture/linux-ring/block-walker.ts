// Walking one TPACKET_V3 ring block into a BatchBuilder, two ways that write the same bytes:
//   * native (the default): ring-walk.c, built with the program by cc (or at run time by Bun's
//     TinyCC: ring-natives.ts), one native call per block (or per batch boundary inside a block);
//   * JavaScript: the same walk over typed-array views of the ring (~65 ns per packet measured:
//     header writes through a DataView, a copyWithin per frame, the loop), used when the native
//     code cannot be loaded (no library and no TinyCC on this platform, no /proc) or when
//     PROBE_RING_WALKER=js asks for it.
// Both skip frames by direction, cut to the snapshot length, put back a stripped 802.1Q tag
// (what libpcap's pcap-linux.c does: see ring-socket.ts), stop before a frame once the batch
// is full and cannot be handed over, and resume there on the next call.
import { ptr, type Pointer } from "bun:ffi";
import { CaptureError } from "../errors.ts";
import type { BatchBuilder } from "../batch-builder.ts";
import { ringNatives, type NativeWalk, type RingNatives } from "./ring-natives.ts";
import { BlockDescLayout, ETH_P_8021Q, PacketType, Tpacket3HeaderLayout as H, TpStatus } from "./tpacket.ts";

/** Environment variable choosing the ring's block walker: "js" forces the JavaScript one. */
export const RING_WALKER_ENV = "PROBE_RING_WALKER";

export type RingWalkerKind = "native" | "js";

/** Bytes before the 802.1Q tag in an Ethernet frame (destination and source MAC). */
const VLAN_TAG_OFFSET = 12;
const VLAN_TAG_BYTES = 4;
/** Bytes of a frame's headers the walkers read: through sll_pkttype (ring-walk.c FRAME_HEADER_BYTES). */
const FRAME_HEADER_BYTES = H.sllPacketType + 1;

/** The memory that holds the ring's blocks: one ArrayBuffer and its native address. */
export interface RingMemory {
  buffer: ArrayBuffer;
  address: number;
}

export interface WalkOptions {
  snaplen: number;
  keepIncoming: boolean;
  keepOutgoing: boolean;
  nano: boolean;
  blockBytes: number;
  /** For error messages. */
  interfaceName: string;
}

export interface BlockWalker {
  readonly kind: RingWalkerKind;
  /**
   * Appends the kept frames of the block at byte `base` of the ring memory to `batch`, from
   * where the last call stopped in it. Flushes `batch` whenever it is full before a frame.
   * Returns true once the block is finished, false when a full batch could not be handed over
   * (call again with the same block later). Throws CaptureError when a frame lies outside its block.
   */
  walk(base: number, batch: BatchBuilder): boolean;
}

/** A frame outside its block: what every walker (and the capture thread, ring-thread.c) reports. */
export function ringOverrunError(interfaceName: string): CaptureError {
  return new CaptureError("capture-failed", `${interfaceName}: ring frame overruns its block (kernel/ABI mismatch)`);
}

function overrun(options: WalkOptions): CaptureError {
  return ringOverrunError(options.interfaceName);
}

/**
 * The JavaScript walker. When the batch's bytes share the ring's ArrayBuffer (the staging area
 * mapped right after the ring: RingSocket.newBatchBuilder), frames move with copyWithin, a
 * memmove that makes no view object per packet (~15 ns against ~55 ns for set(subarray()) per
 * 142-byte frame).
 */
export class JsBlockWalker implements BlockWalker {
  readonly kind = "js";
  private readonly ring8: Uint8Array;
  private readonly ring16: Uint16Array;
  private readonly ring32: Uint32Array;
  /** Where the walk stopped in the current block: the next frame's offset (0 = block start) and index. */
  private resumeFrame = 0;
  private resumeIndex = 0;

  constructor(
    private readonly memory: RingMemory,
    private readonly options: WalkOptions,
  ) {
    this.ring8 = new Uint8Array(memory.buffer);
    this.ring16 = new Uint16Array(memory.buffer, 0, memory.buffer.byteLength >>> 1);
    this.ring32 = new Uint32Array(memory.buffer, 0, memory.buffer.byteLength >>> 2);
  }

  walk(base: number, batch: BatchBuilder): boolean {
    const { ring8, ring16, ring32 } = this;
    const { snaplen, keepIncoming, keepOutgoing, nano } = this.options;
    const blockEnd = base + this.options.blockBytes;
    let out8 = batch.bytes;
    let shared = out8.buffer === this.memory.buffer;
    const packets = ring32[(base + BlockDescLayout.packetCount) >>> 2]!;
    let frame = this.resumeFrame !== 0 ? this.resumeFrame : base + ring32[(base + BlockDescLayout.firstPacketOffset) >>> 2]!;
    for (let i = this.resumeFrame !== 0 ? this.resumeIndex : 0; i < packets; i++) {
      if (batch.full) {
        if (!batch.flush()) {
          this.resumeFrame = frame;
          this.resumeIndex = i;
          return false;
        }
        out8 = batch.bytes; // a slot builder writes into another slot now
        shared = out8.buffer === this.memory.buffer;
      }
      // The kernel starts frames on 16-byte boundaries; a misaligned one is as wrong as one outside.
      if (frame + FRAME_HEADER_BYTES > blockEnd || (frame & 3) !== 0) throw overrun(this.options);
      const h = frame >>> 2;
      const next = ring32[h]!;
      const pkttype = ring8[frame + H.sllPacketType]!;
      const keep = pkttype === PacketType.OUTGOING ? keepOutgoing : keepIncoming;
      if (keep) {
        const status = ring32[h + 5]!;
        const tpSnaplen = ring32[h + 3]!;
        let len = ring32[h + 4]!;
        const data = frame + ring16[(frame + H.mac) >>> 1]!;
        if (data + tpSnaplen > blockEnd) throw overrun(this.options);
        const vlan = (status & TpStatus.VLAN_VALID) !== 0 && tpSnaplen >= VLAN_TAG_OFFSET;
        let wire = tpSnaplen;
        if (vlan) {
          wire += VLAN_TAG_BYTES;
          len += VLAN_TAG_BYTES;
        }
        const caplen = wire < snaplen ? wire : snaplen;
        const sec = ring32[h + 1]!;
        const nsec = ring32[h + 2]!;
        const at = batch.beginRecord(sec, nano ? nsec : Math.floor(nsec / 1000), caplen, len);
        if (!vlan) {
          if (shared) ring8.copyWithin(out8.byteOffset + at, data, data + caplen);
          else out8.set(ring8.subarray(data, data + caplen), at);
        } else {
          // pcap-linux.c: the MAC addresses, then TPID and TCI (big-endian on the wire), then the rest.
          const tpid = status & TpStatus.VLAN_TPID_VALID ? ring16[(frame + H.vlanTpid) >>> 1]! : ETH_P_8021Q;
          const tci = ring32[(frame + H.vlanTci) >>> 2]! & 0xffff;
          const tag = (tpid << 16) | tci;
          const head = Math.min(caplen, VLAN_TAG_OFFSET);
          out8.set(ring8.subarray(data, data + head), at);
          for (let b = 0; b < VLAN_TAG_BYTES && VLAN_TAG_OFFSET + b < caplen; b++) {
            out8[at + VLAN_TAG_OFFSET + b] = (tag >>> (24 - 8 * b)) & 0xff;
          }
          const rest = caplen - VLAN_TAG_OFFSET - VLAN_TAG_BYTES;
          if (rest > 0) out8.set(ring8.subarray(data + VLAN_TAG_OFFSET, data + VLAN_TAG_OFFSET + rest), at + VLAN_TAG_OFFSET + VLAN_TAG_BYTES);
        }
      }
      frame += next;
    }
    this.resumeFrame = 0;
    return true;
  }
}


/** ring-walk.c's state[] indexes and return codes. */
const State = {
  flags: 0,
  snaplen: 1,
  flushBytes: 2,
  capacity: 3,
  blockBytes: 4,
  used: 5,
  count: 6,
  resumeOffset: 7,
  resumeIndex: 8,
  length: 9,
} as const;
const WalkFlag = { keepIncoming: 1, keepOutgoing: 2, nano: 4 } as const;

/** ring-walk.c's state[STATE_FLAGS] for these settings (the capture thread passes the same word). */
export function nativeWalkFlags(options: Pick<WalkOptions, "keepIncoming" | "keepOutgoing" | "nano">): number {
  return (options.keepIncoming ? WalkFlag.keepIncoming : 0) | (options.keepOutgoing ? WalkFlag.keepOutgoing : 0) | (options.nano ? WalkFlag.nano : 0);
}

const WalkResult = { done: 0, full: 1, overrun: -1, noRoom: -2 } as const;

/**
 * The native walker: one call to ring-walk.c per block, plus one per batch boundary inside it.
 * The batch's memory must have a native address (BatchBuilder.address): a channel slot or the
 * ring's staging area.
 */
export class NativeBlockWalker implements BlockWalker {
  readonly kind = "native";
  private readonly state = new Uint32Array(State.length);
  private readonly stateAddress: Pointer;

  constructor(
    private readonly walkFunction: NativeWalk,
    private readonly memory: RingMemory,
    private readonly options: WalkOptions,
  ) {
    const state = this.state;
    state[State.flags] = nativeWalkFlags(options);
    state[State.snaplen] = options.snaplen;
    state[State.blockBytes] = options.blockBytes;
    this.stateAddress = ptr(state);
  }

  walk(base: number, batch: BatchBuilder): boolean {
    const state = this.state;
    if (base < 0 || base + this.options.blockBytes > this.memory.buffer.byteLength) throw new RangeError(`block at ${base} outside the ring`);
    for (;;) {
      if (batch.full && !batch.flush()) return false; // the resume point stays in state
      if (batch.address === 0) throw new Error("native ring walker needs a batch with a native address");
      state[State.flushBytes] = batch.flushBytes;
      state[State.capacity] = batch.bytes.byteLength;
      state[State.used] = batch.used;
      state[State.count] = batch.count;
      const result = this.walkFunction((this.memory.address + base) as Pointer, batch.address as Pointer, this.stateAddress);
      batch.written(state[State.used]!, state[State.count]!);
      if (result === WalkResult.done) return true;
      if (result === WalkResult.overrun) throw overrun(this.options);
      if (result !== WalkResult.full) throw new Error(`native ring walker failed (${result}): batch memory smaller than a record`);
    }
  }
}

/** The walker kind asked for by PROBE_RING_WALKER (native unless it says "js"). */
export function requestedRingWalker(): RingWalkerKind {
  return process.env[RING_WALKER_ENV] === "js" ? "js" : "native";
}

/**
 * A walker over `memory`: the native one when asked for and it loads, else the JavaScript
 * one, with a note saying why (once per capture: the caller reports it). `loaded`: other native
 * code than ringNatives()'s (the tests walk with both the prebuilt library and TinyCC's).
 */
export function createBlockWalker(
  memory: RingMemory,
  options: WalkOptions,
  wanted: RingWalkerKind,
  loaded?: RingNatives | { error: string },
): { walker: BlockWalker; note?: string } {
  if (wanted === "js") return { walker: new JsBlockWalker(memory, options) };
  const natives = loaded ?? ringNatives();
  if ("error" in natives) {
    return { walker: new JsBlockWalker(memory, options), note: `native ring walker unavailable (${natives.error}); using the JavaScript walker` };
  }
  return { walker: new NativeBlockWalker(natives.walk, memory, options) };
}
