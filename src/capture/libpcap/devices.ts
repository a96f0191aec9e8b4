// Interface enumeration (pcap_findalldevs): names, descriptions, flags and IPv4/IPv6
// addresses, turned into plain objects so nothing outside this folder sees a pointer.
import { read, ptr, type Pointer } from "bun:ffi";
import { CaptureError } from "../errors.ts";
import { formatIPv6 } from "../../net/ip-address.ts";
import { LinuxAddressFamily, PcapIfFlag } from "./constants.ts";
import { errorBuffer, libpcap, PcapAddrLayout, PcapIfLayout, readCString } from "./ffi.ts";

export interface InterfaceAddress {
  family: "inet" | "inet6";
  addr: string;
  /** IPv6 sin6_scope_id (interface index of a link-local address), when not 0. */
  scopeId?: number;
  netmask?: string;
  broadaddr?: string;
  dstaddr?: string;
}

export interface CaptureInterface {
  name: string;
  description: string;
  /** Raw pcap_if_t flags (PCAP_IF_*), kept for RPCAP's FINDALLIF which forwards them. */
  flags: number;
  loopback: boolean;
  up: boolean;
  running: boolean;
  addresses: InterfaceAddress[];
}

/** Lists capture devices as libpcap sees them. Non-blocking; safe on any thread. */
export function listInterfaces(): CaptureInterface[] {
  const lib = libpcap();
  const out = new BigUint64Array(1);
  const err = errorBuffer();
  if (lib.pcap_findalldevs(ptr(out), ptr(err.buffer)) !== 0) {
    throw new CaptureError("capture-failed", `pcap_findalldevs: ${err.text()}`);
  }
  const head = Number(out[0]) as Pointer;
  const interfaces: CaptureInterface[] = [];
  try {
    for (let dev = head; dev; dev = read.ptr(dev, PcapIfLayout.next) as Pointer) {
      const flags = read.u32(dev, PcapIfLayout.flags);
      interfaces.push({
        name: readCString(read.ptr(dev, PcapIfLayout.name)),
        description: readCString(read.ptr(dev, PcapIfLayout.description)),
        flags,
        loopback: (flags & PcapIfFlag.LOOPBACK) !== 0,
        up: (flags & PcapIfFlag.UP) !== 0,
        running: (flags & PcapIfFlag.RUNNING) !== 0,
        addresses: readAddresses(read.ptr(dev, PcapIfLayout.addresses) as Pointer),
      });
    }
  } finally {
    if (head) lib.pcap_freealldevs(head);
  }
  return interfaces;
}

function readAddresses(first: Pointer): InterfaceAddress[] {
  const addresses: InterfaceAddress[] = [];
  for (let node = first; node; node = read.ptr(node, PcapAddrLayout.next) as Pointer) {
    const addr = readSockaddr(read.ptr(node, PcapAddrLayout.addr) as Pointer);
    if (!addr) continue; // AF_PACKET and friends: not an IP address
    const entry: InterfaceAddress = { family: addr.family, addr: addr.text };
    if (addr.scopeId) entry.scopeId = addr.scopeId;
    const netmask = readSockaddr(read.ptr(node, PcapAddrLayout.netmask) as Pointer);
    const broadaddr = readSockaddr(read.ptr(node, PcapAddrLayout.broadaddr) as Pointer);
    const dstaddr = readSockaddr(read.ptr(node, PcapAddrLayout.dstaddr) as Pointer);
    if (netmask) entry.netmask = netmask.text;
    if (broadaddr) entry.broadaddr = broadaddr.text;
    if (dstaddr) entry.dstaddr = dstaddr.text;
    addresses.push(entry);
  }
  return addresses;
}

function readSockaddr(sa: Pointer): { family: "inet" | "inet6"; text: string; scopeId?: number } | undefined {
  if (!sa) return undefined;
  const family = read.u16(sa, 0);
  if (family === LinuxAddressFamily.INET) {
    const octets = [4, 5, 6, 7].map((i) => read.u8(sa, i));
    return { family: "inet", text: octets.join(".") };
  }
  if (family === LinuxAddressFamily.INET6) {
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i++) bytes[i] = read.u8(sa, 8 + i);
    return { family: "inet6", text: formatIPv6(bytes), scopeId: read.u32(sa, 24) };
  }
  return undefined;
}
