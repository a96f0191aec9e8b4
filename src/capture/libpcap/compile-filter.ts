// Compiling tcpdump-syntax filters without a live handle (pcap_open_dead), for userland
// matching of files and per-consumer filters. Compilation does no I/O, so any thread may call it.
import { ptr, read, type Pointer } from "bun:ffi";
import { CaptureError } from "../errors.ts";
import { LINKTYPE_ETHERNET, PCAP_NETMASK_UNKNOWN } from "./constants.ts";
import { BPF_PROGRAM_STRUCT_BYTES, cString, libpcap } from "./ffi.ts";
import type { BpfInstruction } from "../../packet/bpf/index.ts";

/**
 * LINKTYPE_ values (what files and streams carry) whose DLT_ value (what pcap_open_dead and
 * pcap_compile take) differs on Linux: libpcap's own linktype_to_dlt() table (pcap-common.c),
 * with Linux's DLT_ numbers (pcap/dlt.h). Without it a filter on a raw-IP stream (LINKTYPE_RAW,
 * 101) fails with "unknown data link type 101". Every other value is the same in both.
 */
const DLT_FOR_LINKTYPE: ReadonlyMap<number, number> = new Map([
  [100, 11], // LINKTYPE_ATM_RFC1483 -> DLT_ATM_RFC1483
  [101, 12], // LINKTYPE_RAW -> DLT_RAW
  [102, 15], // LINKTYPE_SLIP_BSDOS -> DLT_SLIP_BSDOS
  [103, 16], // LINKTYPE_PPP_BSDOS -> DLT_PPP_BSDOS
  [106, 19], // LINKTYPE_ATM_CLIP -> DLT_ATM_CLIP
]);

/** The DLT_ value libpcap's compiler knows a LINKTYPE_ value by. */
export function dltOfLinktype(linktype: number): number {
  return DLT_FOR_LINKTYPE.get(linktype) ?? linktype;
}

/** Compiles `expression` for `linktype`; throws CaptureError("bad-filter") with libpcap's text. */
export function compileFilter(expression: string, linktype: number, snaplen: number): BpfInstruction[] {
  const lib = libpcap();
  const dead = lib.pcap_open_dead_with_tstamp_precision(dltOfLinktype(linktype), snaplen, 0);
  if (!dead) throw new CaptureError("capture-failed", "pcap_open_dead failed");
  const program = new Uint8Array(BPF_PROGRAM_STRUCT_BYTES);
  try {
    if (lib.pcap_compile(dead, ptr(program), ptr(cString(expression)), 1, PCAP_NETMASK_UNKNOWN) !== 0) {
      throw new CaptureError("bad-filter", `bad filter expression '${expression}': ${String(lib.pcap_geterr(dead))}`);
    }
    const view = new DataView(program.buffer);
    const count = view.getUint32(0, true);
    const insns = Number(view.getBigUint64(8, true)) as Pointer;
    const instructions: BpfInstruction[] = [];
    for (let i = 0; i < count; i++) {
      instructions.push({
        code: read.u16(insns, i * 8),
        jt: read.u8(insns, i * 8 + 2),
        jf: read.u8(insns, i * 8 + 3),
        k: read.u32(insns, i * 8 + 4),
      });
    }
    lib.pcap_freecode(ptr(program));
    return instructions;
  } finally {
    lib.pcap_close(dead);
  }
}

/** libpcap's own version string, for `probe --version`. */
export function libpcapVersion(): string {
  return String(libpcap().pcap_lib_version());
}

/**
 * Ethernet's text, as every libpcap gives it. The ring engine (the default) captures only
 * Ethernet and loopback, so a capture's "listening on" line needs no libpcap: without this the
 * main thread loaded libpcap (and dbus, systemd, gcrypt...) only to print it, ~1.1 MB of RSS
 * (docs/capture-history.md, "Memory: where it goes").
 */
const ETHERNET_TEXT = "EN10MB (Ethernet)";

/** A link type as tcpdump names it ("EN10MB (Ethernet)"); the number when libpcap does not know it or cannot load. */
export function linktypeText(linktype: number): string {
  if (linktype === LINKTYPE_ETHERNET) return ETHERNET_TEXT;
  try {
    const lib = libpcap();
    const name = lib.pcap_datalink_val_to_name(dltOfLinktype(linktype));
    if (name === null || String(name) === "") return String(linktype);
    const description = lib.pcap_datalink_val_to_description(dltOfLinktype(linktype));
    return description === null || String(description) === "" ? String(name) : `${name} (${description})`;
  } catch {
    return String(linktype);
  }
}
