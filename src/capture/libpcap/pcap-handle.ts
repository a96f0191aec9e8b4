// PcapHandle: the single owner of one native pcap_t. Creates, configures, activates (or opens
// a file), installs filters, reads packets into batches, reports stats, closes exactly once.
// Its read calls block or poll, so it lives inside the capture worker, never on the main thread.
import { ptr, read, type Pointer } from "bun:ffi";
import { CaptureError, PERMISSION_ADVICE } from "../errors.ts";
import type { TimestampPrecision } from "../../packet/packet-batch.ts";
import { encodeHostBpfInstructions, kernelFilterLengthProblem, type BpfInstruction } from "../../packet/bpf/index.ts";
import {
  PCAP_NETMASK_UNKNOWN,
  PcapDirection,
  PcapStatus,
  PcapTstampPrecision,
  pcapStatusName,
} from "./constants.ts";
import {
  BPF_PROGRAM_STRUCT_BYTES,
  cString,
  errorBuffer,
  libcSymbolsLoaded,
  libpcap,
  PCAP_STAT_STRUCT_BYTES,
  PcapPkthdrLayout,
  POLLIN,
} from "./ffi.ts";


export type CaptureDirection = "inout" | "in" | "out";

export interface LiveOpenOptions {
  interface: string;
  snaplen: number;
  promiscuous: boolean;
  /** libpcap read timeout; only matters when immediate mode is off. */
  timeoutMs: number;
  /** Kernel ring size; 0 keeps libpcap's default (2 MiB). */
  bufferBytes: number;
  immediate: boolean;
  precision: TimestampPrecision;
  direction: CaptureDirection;
}

/**
 * Who reads a live interface: "ring" maps Linux's TPACKET_V3 ring and walks it in a native
 * capture thread (src/capture/linux-ring); "libpcap" calls pcap_next_ex per packet.
 */
export type CaptureEngine = "ring" | "libpcap";

export interface HandleInfo {
  linktype: number;
  snaplen: number;
  precision: TimestampPrecision;
  /** Set when pcap_activate() returned a warning (e.g. promiscuous mode not supported). */
  warning?: string;
  /** The engine that reads a live interface, and why it is not the one asked for. */
  engine?: CaptureEngine;
  engineNote?: string;
}

export interface KernelStats {
  /** ps_recv: packets the filter saw. */
  received: number;
  /** ps_drop: dropped because the ring/buffer was full. */
  dropped: number;
  /** ps_ifdrop: dropped by the interface or driver. */
  interfaceDropped: number;
}

/** Outcome of one readInto() call. */
export type ReadOutcome = "more" | "idle" | "end";

const directionCodes: Record<CaptureDirection, number> = {
  inout: PcapDirection.INOUT,
  in: PcapDirection.IN,
  out: PcapDirection.OUT,
};

export class PcapHandle {
  private handle: Pointer | null;
  private readonly pollfd = new Int32Array(2);
  private readonly headerOut = new BigUint64Array(1);
  private readonly dataOut = new BigUint64Array(1);
  private readonly headerOutPtr: Pointer;
  private readonly dataOutPtr: Pointer;
  readonly info: HandleInfo;
  private readonly selectableFd: number;

  private constructor(handle: Pointer, info: HandleInfo, selectableFd: number, private readonly name = "") {
    this.handle = handle;
    this.info = info;
    this.selectableFd = selectableFd;
    this.headerOutPtr = ptr(this.headerOut);
    this.dataOutPtr = ptr(this.dataOut);
  }

  /** Creates and activates a live handle; on any failure the handle is closed before throwing. */
  static openLive(options: LiveOpenOptions): PcapHandle {
    const lib = libpcap();
    const err = errorBuffer();
    const handle = lib.pcap_create(ptr(cString(options.interface)), ptr(err.buffer));
    if (!handle) throw new CaptureError("capture-failed", `${options.interface}: ${err.text()}`);
    try {
      lib.pcap_set_snaplen(handle, options.snaplen);
      lib.pcap_set_promisc(handle, options.promiscuous ? 1 : 0);
      lib.pcap_set_timeout(handle, options.timeoutMs);
      if (options.bufferBytes > 0) lib.pcap_set_buffer_size(handle, options.bufferBytes);
      lib.pcap_set_immediate_mode(handle, options.immediate ? 1 : 0);
      if (options.precision === "nano") lib.pcap_set_tstamp_precision(handle, PcapTstampPrecision.NANO);
      const status = lib.pcap_activate(handle);
      let warning: string | undefined;
      if (status < 0) throw activationError(options.interface, status, String(lib.pcap_geterr(handle)));
      if (status > 0) warning = `${pcapStatusName(status)}: ${String(lib.pcap_geterr(handle))}`;
      if (options.direction !== "inout" && lib.pcap_setdirection(handle, directionCodes[options.direction]) !== 0) {
        throw new CaptureError("capture-failed", `${options.interface}: cannot set direction: ${lib.pcap_geterr(handle)}`);
      }
      if (lib.pcap_setnonblock(handle, 1, ptr(err.buffer)) !== 0) {
        throw new CaptureError("capture-failed", `${options.interface}: cannot set non-blocking mode: ${err.text()}`);
      }
      const fd = lib.pcap_get_selectable_fd(handle);
      const info: HandleInfo = {
        linktype: lib.pcap_datalink(handle),
        snaplen: lib.pcap_snapshot(handle),
        precision: options.precision,
      };
      if (warning) info.warning = warning;
      return new PcapHandle(handle as Pointer, info, fd, options.interface);
    } catch (error) {
      lib.pcap_close(handle);
      throw error;
    }
  }

  /** Opens a pcap or pcapng file through libpcap. */
  static openOffline(path: string, precision: TimestampPrecision): PcapHandle {
    const lib = libpcap();
    const err = errorBuffer();
    const handle = lib.pcap_open_offline_with_tstamp_precision(
      ptr(cString(path)),
      precision === "nano" ? PcapTstampPrecision.NANO : PcapTstampPrecision.MICRO,
      ptr(err.buffer),
    );
    if (!handle) throw new CaptureError("bad-file", `${path}: ${err.text()}`);
    return new PcapHandle(handle as Pointer, { linktype: lib.pcap_datalink(handle), snaplen: lib.pcap_snapshot(handle), precision }, -1);
  }

  /** Compiles and installs a tcpdump-syntax filter; libpcap's message plus the expression on error. */
  setFilterExpression(expression: string): void {
    const lib = libpcap();
    const handle = this.live();
    const program = new Uint8Array(BPF_PROGRAM_STRUCT_BYTES);
    if (lib.pcap_compile(handle, ptr(program), ptr(cString(expression)), 1, PCAP_NETMASK_UNKNOWN) !== 0) {
      throw new CaptureError("bad-filter", `bad filter expression '${expression}': ${lib.pcap_geterr(handle)}`);
    }
    try {
      this.checkKernelFilterLength(new DataView(program.buffer).getUint32(0, true), `filter '${expression}'`);
      if (lib.pcap_setfilter(handle, ptr(program)) !== 0) {
        throw new CaptureError("bad-filter", `cannot install filter '${expression}': ${lib.pcap_geterr(handle)}`);
      }
    } finally {
      lib.pcap_freecode(ptr(program));
    }
  }

  /**
   * Installs an already compiled program (RPCAP clients send these). The caller validates it
   * first (src/capture/bpf); libpcap's Linux code copies the program, so our buffers may go.
   */
  setFilterProgram(instructions: readonly BpfInstruction[]): void {
    const lib = libpcap();
    const handle = this.live();
    this.checkKernelFilterLength(instructions.length, "BPF program");
    const insns = encodeHostBpfInstructions(instructions);
    const program = new Uint8Array(BPF_PROGRAM_STRUCT_BYTES);
    const programView = new DataView(program.buffer);
    programView.setUint32(0, instructions.length, true);
    programView.setBigUint64(8, BigInt(ptr(insns)), true);
    if (lib.pcap_setfilter(handle, ptr(program)) !== 0) {
      throw new CaptureError("bad-filter", `cannot install BPF program: ${lib.pcap_geterr(handle)}`);
    }
  }

  /**
   * A live capture's filter runs in the kernel, which takes at most BPF_MAXINSNS (4096)
   * instructions. Given a longer one, libpcap's Linux code prints "Warning: Kernel filter
   * failed" on our stderr (once per pcap_setfilter) and quietly filters in userland, copying
   * every packet out of the kernel first. So such a program is refused here, before libpcap sees
   * it, with a message that says why. Capture files have no kernel filter and no such limit.
   */
  private checkKernelFilterLength(instructions: number, what: string): void {
    if (this.selectableFd < 0) return;
    const problem = kernelFilterLengthProblem(instructions, what);
    if (problem) throw new CaptureError("bad-filter", problem);
  }

  /** Waits up to `timeoutMs` for the capture fd to become readable (files are always ready). */
  waitReadable(timeoutMs: number): void {
    if (this.selectableFd < 0) return;
    this.pollfd[0] = this.selectableFd;
    this.pollfd[1] = POLLIN; // events = POLLIN, revents = 0 (little-endian shorts)
    libcSymbolsLoaded().poll(ptr(this.pollfd), 1, timeoutMs);
  }

  /**
   * Reads packets into `sink` until it reports full, nothing is waiting ("idle"), or the file
   * ends ("end"). One FFI call per packet plus one memcpy; no allocation per packet.
   */
  readInto(sink: RecordSink): ReadOutcome {
    const lib = libpcap();
    const handle = this.live();
    for (;;) {
      const status = lib.pcap_next_ex(handle, this.headerOutPtr, this.dataOutPtr);
      if (status === 1) {
        const header = Number(this.headerOut[0]) as Pointer;
        const data = Number(this.dataOut[0]) as Pointer;
        const full = sink.append(
          read.u32(header, PcapPkthdrLayout.tvSec),
          read.u32(header, PcapPkthdrLayout.tvFrac),
          read.u32(header, PcapPkthdrLayout.caplen),
          read.u32(header, PcapPkthdrLayout.len),
          data,
        );
        if (full) return "more";
        continue;
      }
      if (status === 0) return "idle";
      if (status === PcapStatus.BREAK) return "end"; // PCAP_ERROR_BREAK: end of file or breakloop
      const where = this.name ? `${this.name}: ` : "";
      throw new CaptureError("capture-failed", `${where}pcap_next_ex: ${lib.pcap_geterr(handle)}`);
    }
  }

  stats(): KernelStats {
    const lib = libpcap();
    const buffer = new Uint32Array(PCAP_STAT_STRUCT_BYTES / 4);
    if (lib.pcap_stats(this.live(), ptr(buffer)) !== 0) {
      throw new CaptureError("capture-failed", `pcap_stats: ${lib.pcap_geterr(this.live())}`);
    }
    return { received: buffer[0] ?? 0, dropped: buffer[1] ?? 0, interfaceDropped: buffer[2] ?? 0 };
  }

  /** Idempotent. */
  close(): void {
    if (!this.handle) return;
    libpcap().pcap_close(this.handle);
    this.handle = null;
  }

  private live(): Pointer {
    if (!this.handle) throw new CaptureError("capture-failed", "capture handle already closed");
    return this.handle;
  }
}

/** Where readInto() puts packets; returns true when it wants no more for now. */
export interface RecordSink {
  append(tsSec: number, tsFrac: number, caplen: number, len: number, data: Pointer): boolean;
}

function activationError(device: string, status: number, detail: string): CaptureError {
  switch (status) {
    case PcapStatus.NO_SUCH_DEVICE:
      return new CaptureError("no-such-device", `${device}: no such interface (${detail || "pcap_activate"}); 'probe list' shows the interfaces`);
    case PcapStatus.PERM_DENIED:
    case PcapStatus.PROMISC_PERM_DENIED:
      return new CaptureError("permission", `${device}: permission denied (${detail}); ${PERMISSION_ADVICE}`);
    case PcapStatus.IFACE_NOT_UP:
      return new CaptureError("interface-down", `${device}: interface is down (${detail})`);
    default:
      return new CaptureError("capture-failed", `${device}: ${pcapStatusName(status)}: ${detail}`);
  }
}
