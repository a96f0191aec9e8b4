// libpcap's numeric vocabulary (pcap/pcap.h, libpcap 1.10), as named tables.
// Kept apart from the FFI symbols so error mapping and tests need no native library.

export const PCAP_ERRBUF_SIZE = 256;

/** Status codes returned by pcap_activate() and friends (pcap/pcap.h). */
export const PcapStatus = {
  ERROR: -1,
  BREAK: -2,
  NOT_ACTIVATED: -3,
  ACTIVATED: -4,
  NO_SUCH_DEVICE: -5,
  RFMON_NOTSUP: -6,
  NOT_RFMON: -7,
  PERM_DENIED: -8,
  IFACE_NOT_UP: -9,
  CANTSET_TSTAMP_TYPE: -10,
  PROMISC_PERM_DENIED: -11,
  TSTAMP_PRECISION_NOTSUP: -12,
  WARNING: 1,
  WARNING_PROMISC_NOTSUP: 2,
  WARNING_TSTAMP_TYPE_NOTSUP: 3,
} as const;

/** pcap_if_t.flags bits. */
export const PcapIfFlag = {
  LOOPBACK: 0x1,
  UP: 0x2,
  RUNNING: 0x4,
  WIRELESS: 0x8,
  CONNECTION_STATUS_MASK: 0x30,
} as const;

export const PcapDirection = { INOUT: 0, IN: 1, OUT: 2 } as const;
export const PcapTstampPrecision = { MICRO: 0, NANO: 1 } as const;
/** pcap_compile()'s netmask when it is not known (only broadcast tests need it). */
export const PCAP_NETMASK_UNKNOWN = 0xffffffff;

/** Linux address families as found in sockaddr.sa_family of pcap_addr entries. */
export const LinuxAddressFamily = { INET: 2, INET6: 10 } as const;

/** Default DLT for synthetic traffic and most captures. */
export const LINKTYPE_ETHERNET = 1;

const statusNames = new Map<number, string>(Object.entries(PcapStatus).map(([k, v]) => [v, k]));
export function pcapStatusName(status: number): string {
  return statusNames.get(status) ?? `status ${status}`;
}
