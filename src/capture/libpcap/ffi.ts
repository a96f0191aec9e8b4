// The one place probe touches libpcap's C ABI: symbol table, dlopen at run time, and the
// struct layouts (x86_64/aarch64 LP64) that the rest of the libpcap folder reads through.
// libpcap is loaded lazily so that commands which never capture run without it.
import { dlopen, FFIType, CString, ptr, type Pointer } from "bun:ffi";
import { CaptureError } from "../errors.ts";
import { PCAP_ERRBUF_SIZE } from "./constants.ts";

/** Environment variable that overrides which libpcap shared object is loaded. */
export const LIBPCAP_PATH_ENV = "PROBE_LIBPCAP";
export const DEFAULT_LIBPCAP_SONAME = "libpcap.so.0.8";
/** Debian's package that ships libpcap.so.0.8. */
export const LIBPCAP_DEBIAN_PACKAGE = "libpcap0.8";

const { ptr: P, i32, u32, cstring, void: V } = FFIType;

const pcapSymbols = {
  pcap_lib_version: { args: [], returns: cstring },
  pcap_datalink_val_to_name: { args: [i32], returns: cstring },
  pcap_datalink_val_to_description: { args: [i32], returns: cstring },
  pcap_findalldevs: { args: [P, P], returns: i32 },
  pcap_freealldevs: { args: [P], returns: V },
  pcap_create: { args: [P, P], returns: P },
  pcap_open_offline_with_tstamp_precision: { args: [P, u32, P], returns: P },
  pcap_open_dead_with_tstamp_precision: { args: [i32, i32, u32], returns: P },
  pcap_set_snaplen: { args: [P, i32], returns: i32 },
  pcap_set_promisc: { args: [P, i32], returns: i32 },
  pcap_set_timeout: { args: [P, i32], returns: i32 },
  pcap_set_buffer_size: { args: [P, i32], returns: i32 },
  pcap_set_immediate_mode: { args: [P, i32], returns: i32 },
  pcap_set_tstamp_precision: { args: [P, i32], returns: i32 },
  pcap_activate: { args: [P], returns: i32 },
  pcap_compile: { args: [P, P, P, i32, u32], returns: i32 },
  pcap_setfilter: { args: [P, P], returns: i32 },
  pcap_freecode: { args: [P], returns: V },
  pcap_setdirection: { args: [P, i32], returns: i32 },
  pcap_setnonblock: { args: [P, i32, P], returns: i32 },
  pcap_get_selectable_fd: { args: [P], returns: i32 },
  pcap_next_ex: { args: [P, P, P], returns: i32 },
  pcap_stats: { args: [P, P], returns: i32 },
  pcap_datalink: { args: [P], returns: i32 },
  pcap_snapshot: { args: [P], returns: i32 },
  pcap_geterr: { args: [P], returns: cstring },
  pcap_statustostr: { args: [i32], returns: cstring },
  pcap_breakloop: { args: [P], returns: V },
  pcap_close: { args: [P], returns: V },
} as const;

const libcSymbols = {
  poll: { args: [P, u32, i32], returns: i32 },
  memcpy: { args: [P, P, u32], returns: P },
  setsockopt: { args: [i32, i32, i32, P, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, P, P], returns: i32 },
} as const;

type PcapLibrary = ReturnType<typeof dlopen<typeof pcapSymbols>>["symbols"];
type LibcLibrary = ReturnType<typeof dlopen<typeof libcSymbols>>["symbols"];

let pcap: PcapLibrary | undefined;
let libc: LibcLibrary | undefined;

/** Which file is loaded: the override variable, or Debian's soname. */
export function libpcapPath(): string {
  return process.env[LIBPCAP_PATH_ENV] || DEFAULT_LIBPCAP_SONAME;
}

/** libpcap's symbols, loaded on first use; throws CaptureError("library-missing") with the fix. */
export function libpcap(): PcapLibrary {
  if (pcap) return pcap;
  const path = libpcapPath();
  try {
    pcap = dlopen(path, pcapSymbols).symbols;
  } catch (error) {
    throw new CaptureError(
      "library-missing",
      `cannot load libpcap (${path}): ${(error as Error).message.split("\n")[0]}. ` +
        `Install Debian's package ${LIBPCAP_DEBIAN_PACKAGE} (apt-get install ${LIBPCAP_DEBIAN_PACKAGE}) ` +
        `or point ${LIBPCAP_PATH_ENV} at a libpcap shared object.`,
    );
  }
  return pcap;
}

export function libcSymbolsLoaded(): LibcLibrary {
  libc ??= dlopen("libc.so.6", libcSymbols).symbols;
  return libc;
}

/** A NUL-terminated copy of a JS string for passing as `const char *`. */
export function cString(text: string): Uint8Array {
  return new TextEncoder().encode(`${text}\0`);
}

/** Reads a C string at a pointer, or "" for NULL. */
export function readCString(pointer: Pointer | number | null): string {
  if (!pointer) return "";
  return new CString(pointer as Pointer).toString();
}

/** An errbuf of PCAP_ERRBUF_SIZE bytes and a reader for it. */
export function errorBuffer(): { buffer: Uint8Array; text(): string } {
  const buffer = new Uint8Array(PCAP_ERRBUF_SIZE);
  return {
    buffer,
    text() {
      const end = buffer.indexOf(0);
      return new TextDecoder().decode(buffer.subarray(0, end < 0 ? buffer.length : end));
    },
  };
}

// Struct layouts (LP64). pcap_if: next, name, description, addresses, flags.
export const PcapIfLayout = { next: 0, name: 8, description: 16, addresses: 24, flags: 32 } as const;
// pcap_addr: next, addr, netmask, broadaddr, dstaddr.
export const PcapAddrLayout = { next: 0, addr: 8, netmask: 16, broadaddr: 24, dstaddr: 32 } as const;
// struct pcap_pkthdr { struct timeval ts (2 x long); bpf_u_int32 caplen; bpf_u_int32 len; }
export const PcapPkthdrLayout = { tvSec: 0, tvFrac: 8, caplen: 16, len: 20 } as const;
// struct bpf_program { u_int bf_len; struct bpf_insn *bf_insns; } -> 16 bytes with padding.
export const BPF_PROGRAM_STRUCT_BYTES = 16;
export const BPF_INSN_BYTES = 8;
// struct pcap_stat { u_int ps_recv, ps_drop, ps_ifdrop; } (+ Windows-only field we leave unread)
export const PCAP_STAT_STRUCT_BYTES = 16;
// struct pollfd { int fd; short events; short revents; }
export const POLLIN = 0x1;

/** SOL_SOCKET / SO_SNDBUF / SO_RCVBUF (and their FORCE variants, which root may use past rmem_max). */
const SocketOption = { SOL_SOCKET: 1, SO_SNDBUF: 7, SO_RCVBUF: 8, SO_SNDBUFFORCE: 32, SO_RCVBUFFORCE: 33 } as const;

/**
 * Sets a socket's kernel send or receive buffer (Bun's UDP sockets expose their fd but no
 * option for it). Tries the FORCE variant first (root may exceed net.core.*mem_max), then the
 * plain one. Returns the size the kernel reports afterwards (Linux doubles the request).
 */
export function setSocketBuffer(fd: number, which: "send" | "receive", bytes: number): number {
  const c = libcSymbolsLoaded();
  const value = new Int32Array([bytes]);
  const force = which === "send" ? SocketOption.SO_SNDBUFFORCE : SocketOption.SO_RCVBUFFORCE;
  const plain = which === "send" ? SocketOption.SO_SNDBUF : SocketOption.SO_RCVBUF;
  if (c.setsockopt(fd, SocketOption.SOL_SOCKET, force, ptr(value), 4) !== 0) {
    c.setsockopt(fd, SocketOption.SOL_SOCKET, plain, ptr(value), 4);
  }
  const out = new Int32Array(1);
  const length = new Uint32Array([4]);
  c.getsockopt(fd, SocketOption.SOL_SOCKET, plain, ptr(out), ptr(length));
  return out[0] ?? 0;
}
