// Linux packet-socket vocabulary for the TPACKET_V3 ring: option numbers, status bits and the
// struct layouts (x86_64/aarch64, LP64) that ring-socket.ts reads and writes.
// Source: include/uapi/linux/if_packet.h, linux/if_ether.h, asm-generic/socket.h, and
// Documentation/networking/packet_mmap.rst; libpcap's pcap-linux.c for how they are used.

export const AF_PACKET = 17;
export const SOCK_RAW = 3;
/** ETH_P_ALL, already in network byte order (htons(0x0003)) as bind() wants it. */
export const ETH_P_ALL_NETWORK_ORDER = 0x0300;
/** TPID the kernel means when it strips an 802.1Q tag and gives no tp_vlan_tpid. */
export const ETH_P_8021Q = 0x8100;

export const SOL_SOCKET = 1;
export const SO_ERROR = 4;
export const SO_ATTACH_FILTER = 26;
export const SOL_PACKET = 263;

export const PacketOption = {
  PACKET_ADD_MEMBERSHIP: 1,
  PACKET_RX_RING: 5,
  PACKET_STATISTICS: 6,
  PACKET_VERSION: 10,
  PACKET_FANOUT: 18,
} as const;

export const TPACKET_V3 = 2;
export const PACKET_MR_PROMISC = 1;

/** sll_pkttype values (linux/if_packet.h). */
export const PacketType = { HOST: 0, BROADCAST: 1, MULTICAST: 2, OTHERHOST: 3, OUTGOING: 4 } as const;

/** Block and frame status bits (tp_status / block_status). */
export const TpStatus = {
  KERNEL: 0,
  USER: 1,
  COPY: 1 << 1,
  LOSING: 1 << 2,
  CSUMNOTREADY: 1 << 3,
  VLAN_VALID: 1 << 4,
  BLK_TMO: 1 << 5,
  VLAN_TPID_VALID: 1 << 6,
} as const;

/** ARPHRD_* hardware types (/sys/class/net/IF/type) that the ring engine maps to Ethernet. */
export const ArpHardware = { ETHER: 1, LOOPBACK: 772 } as const;

/** struct tpacket_req3: seven u32 fields. */
export const TpacketReq3Layout = {
  blockSize: 0,
  blockCount: 4,
  frameSize: 8,
  frameCount: 12,
  retireBlockTimeoutMs: 16,
  sizeofPriv: 20,
  featureReqWord: 24,
  bytes: 28,
} as const;

/**
 * struct tpacket_block_desc { u32 version; u32 offset_to_priv; struct tpacket_hdr_v1 hdr } with
 * tpacket_hdr_v1 { u32 block_status; u32 num_pkts; u32 offset_to_first_pkt; u32 blk_len; u64 seq_num; ... }.
 */
export const BlockDescLayout = { blockStatus: 8, packetCount: 12, firstPacketOffset: 16, blockLength: 20 } as const;

/**
 * struct tpacket3_hdr { u32 tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, tp_status;
 * u16 tp_mac, tp_net; { u32 tp_rxhash, tp_vlan_tci; u16 tp_vlan_tpid, pad } ; u8 pad[8] } (48
 * bytes), then struct sockaddr_ll at TPACKET_ALIGN(48) = 48: sll_family u16, sll_protocol u16,
 * sll_ifindex i32, sll_hatype u16, sll_pkttype u8, sll_halen u8, sll_addr[8].
 */
export const Tpacket3HeaderLayout = {
  nextOffset: 0,
  sec: 4,
  nsec: 8,
  snaplen: 12,
  len: 16,
  status: 20,
  mac: 24,
  net: 26,
  vlanTci: 32,
  vlanTpid: 36,
  sllPacketType: 48 + 10,
} as const;

/** struct tpacket_stats_v3 { u32 tp_packets, tp_drops, tp_freeze_q_cnt }. */
export const TPACKET_STATS_V3_BYTES = 12;
/** struct packet_mreq { int mr_ifindex; u16 mr_type; u16 mr_alen; u8 mr_address[8] }. */
export const PACKET_MREQ_BYTES = 16;
/** struct sockaddr_ll (20 bytes: see the layout above). */
export const SOCKADDR_LL_BYTES = 20;
/** struct sock_fprog { u16 len; struct sock_filter *filter } padded to 16 bytes. */
export const SOCK_FPROG_BYTES = 16;
/** struct sock_filter is struct bpf_insn: u16 code, u8 jt, u8 jf, u32 k. */
export const SOCK_FILTER_BYTES = 8;

/** mmap(2) flags. */
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
/** MAP_LOCKED keeps the ring from being swapped, as libpcap asks. */
export const MAP_LOCKED = 0x2000;

/** poll(2) bits (struct pollfd { int fd; short events; short revents; }). */
export const POLLIN = 0x1;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

/** errno values the ring engine tells apart. */
export const Errno = { EPERM: 1, ENOENT: 2, EINTR: 4, ENXIO: 6, EACCES: 13, ENODEV: 19, EINVAL: 22, ENETDOWN: 100 } as const;
