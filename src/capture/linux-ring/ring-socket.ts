// RingSocket: the single owner of one AF_PACKET socket with a TPACKET_V3 receive ring mapped
// into this process (Documentation/networking/packet_mmap.rst). It opens, binds and configures
// the socket, attaches classic BPF filters, walks ready ring blocks into a BatchBuilder (with the
// native or the JavaScript block walker: block-walker.ts; never a native call per packet), hands
// blocks back to the kernel by writing their status, reports the kernel's counters, and closes
// exactly once.
// poll() blocks, so a RingSocket is read by the native capture thread (ring-thread.ts) or in the
// capture worker; only the main-thread reader (main-thread-ring.ts) polls it with timeout 0.
//
// What libpcap's pcap-linux.c does on this path, and this file does too:
//   * the outgoing copy of a packet on a loopback device is skipped (it comes back as incoming);
//   * direction in/out keeps or drops PACKET_OUTGOING frames;
//   * an 802.1Q tag the kernel stripped (TP_STATUS_VLAN_VALID) is put back after the MAC
//     addresses with tp_vlan_tpid (or 0x8100) and tp_vlan_tci, and caplen/len grow by 4;
//   * caplen is cut to the snapshot length; promiscuous mode is a PACKET_MR_PROMISC membership;
//   * PACKET_STATISTICS (which the kernel resets on every read) is summed into running totals;
//   * ENETDOWN on the socket means the interface went down or vanished.
import { ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { existsSync, readFileSync } from "node:fs";
import { CaptureError, PERMISSION_ADVICE } from "../errors.ts";
import { BatchBuilder, type BatchPoster } from "../batch-builder.ts";
import { BpfOpcode, SKF_AD_PKTTYPE, encodeHostBpfInstructions, kernelFilterLengthProblem, type BpfInstruction } from "../../packet/bpf/index.ts";
import type { TimestampPrecision } from "../../packet/packet-batch.ts";
import type { CaptureDirection, HandleInfo, KernelStats } from "../libpcap/pcap-handle.ts";
import { compileFilter } from "../libpcap/compile-filter.ts";
import { errnoText, lastErrno, ringLibc } from "./ffi.ts";
import { createBlockWalker, requestedRingWalker, type BlockWalker, type RingWalkerKind, type WalkOptions } from "./block-walker.ts";
import {
  AF_PACKET,
  ArpHardware,
  BlockDescLayout,
  Errno,
  ETH_P_ALL_NETWORK_ORDER,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  PACKET_MR_PROMISC,
  PACKET_MREQ_BYTES,
  PacketOption,
  PacketType,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  PROT_READ,
  PROT_WRITE,
  SO_ATTACH_FILTER,
  SO_ERROR,
  SOCK_FPROG_BYTES,
  SOCK_RAW,
  SOCKADDR_LL_BYTES,
  SOL_PACKET,
  SOL_SOCKET,
  TPACKET_STATS_V3_BYTES,
  TPACKET_V3,
  TpacketReq3Layout,
  TpStatus,
} from "./tpacket.ts";

/** LINKTYPE_ETHERNET: what libpcap reports for Ethernet and loopback devices on Linux. */
const LINKTYPE_ETHERNET = 1;
/**
 * Ring block size: the smallest power of two that holds the largest frame, and at least a page
 * (libpcap's rule for TPACKET_V3). The kernel retires a block on its timer however little it
 * holds, so at low rates a stalled reader (a stopped process, a loaded VM) is covered for
 * blocks × retire timeout: more, smaller blocks in the same memory cover longer. With 512 KiB
 * blocks a 2 MiB ring covered 4 retire timeouts (20 ms at the 5 ms of a live stream) and
 * dropped a 300 ms SIGSTOP at 400 packets/s that tcpdump kept (scripts/bench/stall.ts). The
 * largest frame assumes offloads (GRO/TSO hand packet sockets frames of up to 64 KiB whatever
 * the MTU, and a frame longer than its block is cut by the kernel): 128 KiB blocks with the
 * default snaplen, 16 in 2 MiB; `-s 1500` gives 4 KiB blocks, 512 of them. The capture thread
 * walks every ready block per wake-up, so smaller blocks cost it little at high rates.
 */
export function ringBlockBytes(snaplen: number, mtu: number): number {
  const largestFrame = Math.min(snaplen, Math.max(mtu, MAXIMUM_OFFLOADED_FRAME_BYTES) + LINK_HEADER_SLACK_BYTES) + TPACKET_HEADER_SLACK_BYTES;
  let blockBytes = PAGE_BYTES;
  while (blockBytes < largestFrame) blockBytes *= 2;
  return blockBytes;
}
/** A GRO/TSO frame handed to packet sockets: up to 64 KiB of IP packet. */
const MAXIMUM_OFFLOADED_FRAME_BYTES = 65_535;
/** Link header and VLAN tags above the MTU. */
const LINK_HEADER_SLACK_BYTES = 64;
/** tpacket3_hdr, sockaddr_ll and alignment in front of each frame, rounded up. */
const TPACKET_HEADER_SLACK_BYTES = 256;
/**
 * Ring size when the caller gives none (-B): libpcap's default, 2 MiB. The ring engine took
 * 4 MiB while its reader was a JavaScript Worker that a garbage collection could pause for tens
 * of milliseconds; the native capture thread (ring-thread.c) has no such pauses, and at 2 MiB
 * it captured 2M small packets at ~480,000 packets/s on lo without a drop (docs/capture.md,
 * "The capture thread"). On lo, outgoing copies are dropped by the kernel filter
 * (kernelProgram) instead of taking ring space, so 2 MiB holds ~9,000 small packets. The whole
 * ring counts in RSS from the start (the kernel maps every page at mmap).
 */
export const DEFAULT_RING_BYTES = 2 * 1024 * 1024;
/** Fewer blocks than this and the kernel has nowhere to write while we read one. */
const MINIMUM_RING_BLOCKS = 2;
/** How long an interface that reported ENETDOWN is watched for removal before calling it down. */
const INTERFACE_GONE_CHECK_MS = 200;
const INTERFACE_GONE_POLL_MS = 10;
/** PACKET_FANOUT_HASH: the kernel spreads flows over the group's sockets by flow hash. */
const PACKET_FANOUT_HASH = 0;

export interface RingOpenOptions {
  interface: string;
  snaplen: number;
  promiscuous: boolean;
  /** Ring bytes (tcpdump -B); 0 = DEFAULT_RING_BYTES. Rounded to whole blocks. */
  bufferBytes: number;
  precision: TimestampPrecision;
  direction: CaptureDirection;
  /** The kernel hands over a block that is not full after this long (tp_retire_blk_tov). */
  retireBlockMs: number;
  /** Join a PACKET_FANOUT group (flow hash) so several workers share one interface. */
  fanoutGroup?: number;
  /** Flush threshold of the batches this ring fills; sizes the staging area mapped beside it. */
  batchBytes: number;
  /**
   * Which block walker to use (block-walker.ts); native falls back to JavaScript if it does not
   * compile. Default: what PROBE_RING_WALKER asks for (native unless "js").
   */
  walker?: RingWalkerKind;
}

/** RingSocket.threadParameters(). */
export interface RingThreadParameters extends WalkOptions {
  fd: number;
  ringAddress: number;
  blockCount: number;
  /** The block the kernel fills next (0 unless the ring was read before). */
  nextBlock: number;
}

/** Errors a packet socket reports when its interface went down or was removed. */
export function isInterfaceGoneErrno(errno: number): boolean {
  return errno === Errno.ENETDOWN || errno === Errno.ENODEV || errno === Errno.ENXIO;
}

/** Thrown when the ring cannot serve this interface but libpcap can (the worker falls back). */
export class RingUnsupported extends Error {
  override readonly name = "RingUnsupported";
}

/** True for tcpdump expressions that only libpcap's own Linux handle compiles correctly. */
export function needsLibpcapVlanHandling(expression: string): boolean {
  return /\bvlan\b/i.test(expression);
}

/** Reads /sys/class/net/NAME/FIELD, or undefined when the interface does not exist. */
function sysfsField(name: string, field: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${name}/${field}`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/**
 * The kernel reports ENETDOWN while a deleted interface still has its sysfs entry (NETDEV_DOWN
 * comes before unregistering), so look a few times before calling it "down" rather than "gone".
 * Blocks the worker for at most INTERFACE_GONE_CHECK_MS, once, as the capture ends.
 */
function interfaceVanishes(name: string): boolean {
  const deadline = performance.now() + INTERFACE_GONE_CHECK_MS;
  for (;;) {
    if (!existsSync(`/sys/class/net/${name}`)) return true;
    if (performance.now() >= deadline) return false;
    Bun.sleepSync(INTERFACE_GONE_POLL_MS);
  }
}

/** interfaceVanishes for the main thread: the same looks, with timers between them instead of sleeps. */
export async function interfaceVanishesAsync(name: string): Promise<boolean> {
  const deadline = performance.now() + INTERFACE_GONE_CHECK_MS;
  for (;;) {
    if (!existsSync(`/sys/class/net/${name}`)) return true;
    if (performance.now() >= deadline) return false;
    await Bun.sleep(INTERFACE_GONE_POLL_MS);
  }
}

/** sock_fprog + sock_filter array for SO_ATTACH_FILTER; the arrays must outlive the call only. */
function encodeSocketFilter(instructions: readonly BpfInstruction[]): { program: Uint8Array; insns: Uint8Array } {
  const insns = encodeHostBpfInstructions(instructions);
  const program = new Uint8Array(SOCK_FPROG_BYTES);
  const programView = new DataView(program.buffer);
  programView.setUint16(0, instructions.length, true);
  programView.setBigUint64(8, BigInt(ptr(insns)), true);
  return { program, insns };
}

/**
 * The program attached in the kernel: a four-instruction prefix that drops the frames libpcap
 * would skip in userland by direction (outgoing copies on loopback, and -Q in/out), so they never
 * take ring space or worker time, then the caller's program. The prefix leaves A = 0 and X = 0 as
 * a program expects at entry; the caller's jumps are relative, so prepending keeps them valid.
 * Returns the caller's program unchanged when every direction is kept.
 */
export function kernelProgram(program: readonly BpfInstruction[], keepIncoming: boolean, keepOutgoing: boolean): BpfInstruction[] {
  if (keepIncoming && keepOutgoing) return [...program];
  // jeq #OUTGOING: jt goes to the outgoing verdict, jf to the incoming one.
  const outgoing = keepOutgoing ? 1 : 0;
  const incoming = keepIncoming ? 1 : 0;
  return [
    { code: BpfOpcode.LD_W_ABS, jt: 0, jf: 0, k: SKF_AD_PKTTYPE },
    { code: BpfOpcode.JMP_JEQ_K, jt: outgoing ? 1 : 0, jf: incoming ? 1 : 0, k: PacketType.OUTGOING },
    { code: BpfOpcode.RET_K, jt: 0, jf: 0, k: 0 },
    { code: BpfOpcode.LD_IMM, jt: 0, jf: 0, k: 0 },
    ...program,
  ];
}

/**
 * One mapping holds the ring and, right after it, the staging area where batches are gathered
 * when they are not written into channel slots in place: an anonymous reservation of both sizes
 * with the ring mapped over its start (MAP_FIXED). As one ArrayBuffer, the JavaScript walker moves
 * frames from ring to batch with Uint8Array.copyWithin, a memmove that makes no view object per
 * packet (measured: ~15 ns against ~55 ns for set(subarray()) per 142-byte frame). Pages of the
 * staging area that are never written cost no memory.
 */
interface RingRegion {
  address: Pointer;
  /** Ring plus staging, page-rounded. */
  bytes: number;
  ringBytes: number;
  blockBytes: number;
  blockCount: number;
}

const PAGE_BYTES = 4096;

export class RingSocket {
  private fd: number;
  private regionAddress: Pointer | null;
  private readonly regionBytes: number;
  private readonly ringBytes: number;
  private readonly blockBytes: number;
  private readonly blockCount: number;
  private regionBuffer: ArrayBuffer | null;
  /** The same memory as Int32 for Atomics on block_status (the kernel writes it concurrently). */
  private ringAtomic: Int32Array | null;
  private readonly walker: BlockWalker;
  /** What a walker needs to know of this ring (the capture thread gets the same). */
  private readonly walkOptions: WalkOptions;
  private blockIndex = 0;
  private filterAttached = false;
  private readonly pollfd = new Int32Array(2);
  private readonly totals = { received: 0, dropped: 0 };
  private readonly ifDroppedAtOpen: number;
  private readonly keepIncoming: boolean;
  private readonly keepOutgoing: boolean;
  readonly info: HandleInfo;
  /** Set when the native block walker was asked for but could not be compiled (say so once). */
  readonly walkerNote: string | undefined;

  private constructor(
    private readonly options: RingOpenOptions,
    fd: number,
    ring: RingRegion,
    loopback: boolean,
  ) {
    this.fd = fd;
    this.regionAddress = ring.address;
    this.regionBytes = ring.bytes;
    this.ringBytes = ring.ringBytes;
    this.blockBytes = ring.blockBytes;
    this.blockCount = ring.blockCount;
    const buffer = toArrayBuffer(ring.address, 0, ring.bytes);
    this.regionBuffer = buffer;
    this.ringAtomic = new Int32Array(buffer);
    // libpcap's linux_check_direction(): outgoing frames on a loopback device are never kept.
    this.keepOutgoing = !loopback && options.direction !== "in";
    this.keepIncoming = options.direction !== "out";
    const walk: WalkOptions = {
      snaplen: options.snaplen,
      keepIncoming: this.keepIncoming,
      keepOutgoing: this.keepOutgoing,
      nano: options.precision === "nano",
      blockBytes: ring.blockBytes,
      interfaceName: options.interface,
    };
    this.walkOptions = walk;
    const { walker, note } = createBlockWalker({ buffer, address: Number(ring.address) }, walk, options.walker ?? requestedRingWalker());
    this.walker = walker;
    this.walkerNote = note;
    this.ifDroppedAtOpen = Number(sysfsField(options.interface, "statistics/rx_dropped") ?? 0);
    this.info = { linktype: LINKTYPE_ETHERNET, snaplen: options.snaplen, precision: options.precision };
  }

  /**
   * Opens the ring on `options.interface`. Throws RingUnsupported for what only libpcap handles
   * (the `any` device, link types other than Ethernet/loopback), CaptureError otherwise; on any
   * failure everything opened so far is released first.
   */
  static open(options: RingOpenOptions): RingSocket {
    const name = options.interface;
    if (name === "any") throw new RingUnsupported("the 'any' device needs libpcap's cooked (SLL) link type");
    if (name.includes("/") || name === "." || name === "..") throw new CaptureError("no-such-device", `${name}: no such interface; 'probe list' shows the interfaces`);
    const ifindex = Number(sysfsField(name, "ifindex"));
    const hatype = Number(sysfsField(name, "type"));
    if (!ifindex) throw new CaptureError("no-such-device", `${name}: no such interface; 'probe list' shows the interfaces`);
    if (hatype !== ArpHardware.ETHER && hatype !== ArpHardware.LOOPBACK) throw new RingUnsupported(`${name}: hardware type ${hatype} is not Ethernet`);
    const mtu = Number(sysfsField(name, "mtu") ?? 1500);

    const c = ringLibc();
    // Protocol 0: the socket receives nothing until bind() names the protocol and the
    // interface, so no other interface's traffic lands in the ring before the filter is on.
    const fd = c.socket(AF_PACKET, SOCK_RAW, 0);
    if (fd < 0) throw RingSocket.errnoError(name, "socket(AF_PACKET)", lastErrno());
    let region: RingRegion | null = null;
    try {
      RingSocket.setIntOption(fd, SOL_PACKET, PacketOption.PACKET_VERSION, TPACKET_V3, name, "PACKET_VERSION");
      const blockBytes = ringBlockBytes(options.snaplen, mtu);
      const wanted = options.bufferBytes > 0 ? options.bufferBytes : DEFAULT_RING_BYTES;
      const blockCount = Math.max(MINIMUM_RING_BLOCKS, Math.ceil(wanted / blockBytes));
      const request = new Uint32Array(TpacketReq3Layout.bytes / 4);
      request[TpacketReq3Layout.blockSize / 4] = blockBytes;
      request[TpacketReq3Layout.blockCount / 4] = blockCount;
      // V3 packs frames of any size into blocks; one "frame" per block satisfies the kernel's
      // frames_per_block * block_nr == frame_nr check.
      request[TpacketReq3Layout.frameSize / 4] = blockBytes;
      request[TpacketReq3Layout.frameCount / 4] = blockCount;
      request[TpacketReq3Layout.retireBlockTimeoutMs / 4] = Math.max(1, Math.round(options.retireBlockMs));
      if (c.setsockopt(fd, SOL_PACKET, PacketOption.PACKET_RX_RING, ptr(request), TpacketReq3Layout.bytes) !== 0) {
        throw RingSocket.errnoError(name, `PACKET_RX_RING (${blockCount} blocks of ${blockBytes} bytes)`, lastErrno());
      }
      const ringBytes = blockBytes * blockCount;
      const stagingBytes = Math.ceil(BatchBuilder.stagingBytesFor(options.batchBytes) / PAGE_BYTES) * PAGE_BYTES;
      const bytes = ringBytes + stagingBytes;
      region = { address: RingSocket.map(fd, ringBytes, bytes, name), bytes, ringBytes, blockBytes, blockCount };
      return new RingSocket(options, fd, region, hatype === ArpHardware.LOOPBACK);
    } catch (error) {
      if (region) c.munmap(region.address, region.bytes);
      c.close(fd);
      throw error;
    }
  }

  /**
   * Binds to the interface (traffic starts flowing into the ring) and turns on promiscuous
   * mode and fanout. Separate from open() so a filter can be attached before the first packet.
   */
  start(): void {
    const c = ringLibc();
    const name = this.options.interface;
    // Without a filter from the caller, still drop in the kernel what direction skips.
    if (!this.filterAttached && !(this.keepIncoming && this.keepOutgoing)) this.setFilterProgram([]);
    const ifindex = Number(sysfsField(name, "ifindex"));
    if (!ifindex) throw new CaptureError("no-such-device", `${name}: no such interface; 'probe list' shows the interfaces`);
    const address = new Uint8Array(SOCKADDR_LL_BYTES);
    const view = new DataView(address.buffer);
    view.setUint16(0, AF_PACKET, true);
    view.setUint16(2, ETH_P_ALL_NETWORK_ORDER, true);
    view.setInt32(4, ifindex, true);
    if (c.bind(this.fd, ptr(address), SOCKADDR_LL_BYTES) !== 0) throw RingSocket.errnoError(name, "bind", lastErrno());
    // The kernel flags a bind to an interface that is down with ENETDOWN (libpcap checks too).
    const pending = this.socketError();
    if (pending === Errno.ENETDOWN) throw new CaptureError("interface-down", `${name}: interface is down`);
    if (this.options.promiscuous) {
      const membership = new Uint8Array(PACKET_MREQ_BYTES);
      const mview = new DataView(membership.buffer);
      mview.setInt32(0, ifindex, true);
      mview.setUint16(4, PACKET_MR_PROMISC, true);
      if (c.setsockopt(this.fd, SOL_PACKET, PacketOption.PACKET_ADD_MEMBERSHIP, ptr(membership), PACKET_MREQ_BYTES) !== 0) {
        throw RingSocket.errnoError(name, "PACKET_ADD_MEMBERSHIP (promiscuous)", lastErrno());
      }
    }
    if (this.options.fanoutGroup !== undefined) {
      const value = (this.options.fanoutGroup & 0xffff) | (PACKET_FANOUT_HASH << 16);
      RingSocket.setIntOption(this.fd, SOL_PACKET, PacketOption.PACKET_FANOUT, value, name, "PACKET_FANOUT");
    }
  }

  /** The interface this ring captures. */
  get interfaceName(): string {
    return this.options.interface;
  }

  /** Which block walker reads this ring. */
  get walkerKind(): RingWalkerKind {
    return this.walker.kind;
  }

  /**
   * A BatchBuilder whose staging area is the memory mapped right after the ring, so the
   * JavaScript walker copies frames with copyWithin. It must not be used after close() (its
   * bytes are unmapped then). A worker with the native walker writes into channel slots instead.
   */
  newBatchBuilder(post: BatchPoster): BatchBuilder {
    const bytes = new Uint8Array(this.regionBuffer!, this.ringBytes, this.regionBytes - this.ringBytes);
    return new BatchBuilder(this.options.batchBytes, post, { bytes, address: Number(this.regionAddress) + this.ringBytes });
  }

  /**
   * Compiles a tcpdump expression with libpcap (for Ethernet and this snaplen) and attaches it.
   * An expression with `vlan` is refused: libpcap compiles it into in-kernel VLAN tag tests
   * (SKF_AD_VLAN_TAG) only for its own activated Linux handles, and the in-packet tests that
   * pcap_open_dead gives would never match, since the kernel strips tags before the filter.
   */
  setFilterExpression(expression: string): void {
    if (needsLibpcapVlanHandling(expression)) {
      throw new CaptureError("bad-filter", `filter '${expression}': 'vlan' filters need --capture-engine libpcap`);
    }
    this.setFilterProgram(compileFilter(expression, LINKTYPE_ETHERNET, this.options.snaplen), `filter '${expression}'`);
  }

  /**
   * Attaches a classic BPF program in the kernel (SO_ATTACH_FILTER replaces the previous one).
   * Frames already in the ring passed the previous filter and are still delivered.
   */
  setFilterProgram(instructions: readonly BpfInstruction[], what = "BPF program"): void {
    this.live();
    // An empty program would be refused; it means "everything", as in libpcap.
    const user = instructions.length > 0 ? instructions : [{ code: BpfOpcode.RET_K, jt: 0, jf: 0, k: this.options.snaplen }];
    const program = kernelProgram(user, this.keepIncoming, this.keepOutgoing);
    const problem = kernelFilterLengthProblem(instructions.length, what, program.length - user.length);
    if (problem) throw new CaptureError("bad-filter", problem);
    const encoded = encodeSocketFilter(program);
    if (ringLibc().setsockopt(this.fd, SOL_SOCKET, SO_ATTACH_FILTER, ptr(encoded.program), SOCK_FPROG_BYTES) !== 0) {
      const errno = lastErrno();
      throw new CaptureError("bad-filter", `cannot install BPF program (${user.length} instructions): ${errnoText(errno)}`);
    }
    this.filterAttached = true;
  }

  /**
   * At stop: when the block the kernel is filling already holds frames, waits (up to
   * `timeoutMs`) for the kernel to retire it, so frames captured before the stop are not lost
   * with the ring. True when the next block is ready to read. The frame count is only a hint
   * (the kernel counts a frame before copying it); the block is read once its status is ours.
   */
  awaitFilledBlock(timeoutMs: number): boolean {
    if (this.blockReady()) return true;
    const base = this.blockIndex * this.blockBytes;
    if (Atomics.load(this.ringAtomic!, (base + BlockDescLayout.packetCount) >>> 2) === 0) return false;
    const deadline = performance.now() + timeoutMs;
    for (let left = timeoutMs; left > 0; left = deadline - performance.now()) {
      if (this.waitReadable(Math.ceil(left))) return true;
    }
    return false;
  }

  /**
   * Waits up to `timeoutMs` for a block to be ready; true when one is. Throws CaptureError when
   * the socket reports an error: the interface went down or vanished (ENETDOWN), or it hung up.
   */
  waitReadable(timeoutMs: number): boolean {
    this.live();
    if (this.blockReady()) return true;
    this.pollfd[0] = this.fd;
    this.pollfd[1] = POLLIN | POLLERR; // events (low short), revents (high short) = 0
    const ready = ringLibc().poll(ptr(this.pollfd), 1, timeoutMs);
    if (ready <= 0) return false; // timeout, or EINTR: the caller loops
    const revents = this.pollfd[1]! >>> 16;
    if (revents & POLLERR) {
      const errno = this.socketError();
      if (errno !== 0) throw this.socketFailure(errno, isInterfaceGoneErrno(errno) && interfaceVanishes(this.options.interface));
    }
    if (revents & (POLLHUP | POLLNVAL)) throw this.hangUp();
    return this.blockReady();
  }

  /**
   * What a pending socket error (SO_ERROR, nonzero) means for this capture. `vanished`: the
   * caller looked (interfaceVanishes, or its asynchronous twin on the main thread) whether an
   * interface that went down was removed.
   */
  socketFailure(errno: number, vanished: boolean): CaptureError {
    const name = this.options.interface;
    if (isInterfaceGoneErrno(errno)) {
      if (vanished) return new CaptureError("no-such-device", `${name}: the interface vanished (it was removed)`);
      return new CaptureError("interface-down", `${name}: the interface went down`);
    }
    return new CaptureError("capture-failed", `${name}: packet socket error: ${errnoText(errno)}`);
  }

  /** POLLHUP or POLLNVAL on the socket. */
  hangUp(): CaptureError {
    return new CaptureError("capture-failed", `${this.options.interface}: packet socket hung up`);
  }

  /**
   * What a native capture thread (ring-thread.ts) needs to read this ring on its own: the socket,
   * the ring's address and geometry, and the walk's settings. The ring must not be read with
   * readInto while such a thread runs, nor closed before it has ended.
   */
  threadParameters(): RingThreadParameters {
    this.live();
    return {
      ...this.walkOptions,
      fd: this.fd,
      ringAddress: Number(this.regionAddress),
      blockCount: this.blockCount,
      nextBlock: this.blockIndex,
    };
  }

  /**
   * Copies the frames of up to `maxBlocks` ready blocks into `batch`, returning each block to the
   * kernel as soon as it is copied. Flushes `batch` whenever it fills, and after a block the
   * kernel retired on its timer (light traffic: nothing more is coming soon, so do not wait).
   * When a full batch cannot be handed over (its poster refuses), stops in the middle of the
   * block and resumes there on the next call. Returns how many blocks were finished.
   */
  readInto(batch: BatchBuilder, maxBlocks: number): number {
    this.live(); // the native walker must never run over an unmapped ring
    const atomic = this.ringAtomic!;
    let blocks = 0;
    while (blocks < maxBlocks) {
      const base = this.blockIndex * this.blockBytes;
      const statusIndex = (base + BlockDescLayout.blockStatus) >>> 2;
      const blockStatus = Atomics.load(atomic, statusIndex);
      if ((blockStatus & TpStatus.USER) === 0) break;
      if (!this.walker.walk(base, batch)) return blocks;
      if (batch.full) batch.flush(); // a refusal is retried before the next append
      // Give the block back: the kernel fills it again once it sees TP_STATUS_KERNEL.
      Atomics.store(atomic, statusIndex, TpStatus.KERNEL);
      this.blockIndex = (this.blockIndex + 1) % this.blockCount;
      blocks++;
      if (blockStatus & TpStatus.BLK_TMO) batch.flush();
    }
    return blocks;
  }

  /** Kernel counters since open, summed (each PACKET_STATISTICS read resets the kernel's). */
  stats(): KernelStats {
    this.live();
    const buffer = new Uint32Array(TPACKET_STATS_V3_BYTES / 4);
    const length = new Uint32Array([TPACKET_STATS_V3_BYTES]);
    if (ringLibc().getsockopt(this.fd, SOL_PACKET, PacketOption.PACKET_STATISTICS, ptr(buffer), ptr(length)) !== 0) {
      throw new CaptureError("capture-failed", `${this.options.interface}: PACKET_STATISTICS: ${errnoText(lastErrno())}`);
    }
    // The kernel's tp_packets already includes tp_drops for TPACKET_V3 (as libpcap's ps_recv).
    this.totals.received += buffer[0]!;
    this.totals.dropped += buffer[1]!;
    const ifDropped = Number(sysfsField(this.options.interface, "statistics/rx_dropped") ?? this.ifDroppedAtOpen);
    return { received: this.totals.received, dropped: this.totals.dropped, interfaceDropped: Math.max(0, ifDropped - this.ifDroppedAtOpen) };
  }

  /** Idempotent: drops the views, unmaps the ring, closes the socket. */
  close(): void {
    if (this.fd < 0) return;
    const c = ringLibc();
    this.ringAtomic = null;
    this.regionBuffer = null;
    if (this.regionAddress) c.munmap(this.regionAddress, this.regionBytes);
    this.regionAddress = null;
    c.close(this.fd);
    this.fd = -1;
  }

  private blockReady(): boolean {
    const base = this.blockIndex * this.blockBytes;
    return (Atomics.load(this.ringAtomic!, (base + BlockDescLayout.blockStatus) >>> 2) & TpStatus.USER) !== 0;
  }

  private socketError(): number {
    const value = new Int32Array(1);
    const length = new Uint32Array([4]);
    ringLibc().getsockopt(this.fd, SOL_SOCKET, SO_ERROR, ptr(value), ptr(length));
    return value[0]!;
  }

  private live(): void {
    if (this.fd < 0) throw new CaptureError("capture-failed", "capture ring already closed");
  }

  /**
   * Reserves `regionBytes` of anonymous memory and maps the ring over its start (MAP_FIXED), so
   * ring and staging area are one span (see RingRegion). Returns the span's address.
   */
  private static map(fd: number, ringBytes: number, regionBytes: number, name: string): Pointer {
    const c = ringLibc();
    const failed = (address: Pointer | bigint | null) => !address || Number(address) >= 2 ** 63; // MAP_FAILED is (void *)-1
    const reserved = c.mmap(null, regionBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (failed(reserved)) throw RingSocket.errnoError(name, `mmap of ${regionBytes} bytes`, lastErrno());
    const base = Number(reserved) as Pointer;
    // MAP_LOCKED as libpcap asks; without CAP_IPC_LOCK or over RLIMIT_MEMLOCK, map unlocked.
    for (const flags of [MAP_SHARED | MAP_FIXED | MAP_LOCKED, MAP_SHARED | MAP_FIXED]) {
      const ring = c.mmap(base, ringBytes, PROT_READ | PROT_WRITE, flags, fd, 0);
      if (!failed(ring) && Number(ring) === base) return base;
    }
    const errno = lastErrno();
    c.munmap(base, regionBytes);
    throw RingSocket.errnoError(name, `mmap of a ${ringBytes}-byte ring`, errno);
  }

  private static setIntOption(fd: number, level: number, option: number, value: number, name: string, what: string): void {
    const cell = new Int32Array([value]);
    if (ringLibc().setsockopt(fd, level, option, ptr(cell), 4) !== 0) throw RingSocket.errnoError(name, what, lastErrno());
  }

  private static errnoError(name: string, what: string, errno: number): CaptureError {
    if (errno === Errno.EPERM || errno === Errno.EACCES) {
      return new CaptureError("permission", `${name}: permission denied (${what}); ${PERMISSION_ADVICE}`);
    }
    if (errno === Errno.ENODEV || errno === Errno.ENXIO) return new CaptureError("no-such-device", `${name}: no such interface (${what})`);
    if (errno === Errno.ENETDOWN) return new CaptureError("interface-down", `${name}: interface is down (${what})`);
    return new CaptureError("capture-failed", `${name}: ${what}: ${errnoText(errno)}`);
  }
}
