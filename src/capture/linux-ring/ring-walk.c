/*
 * The ring engine's native block walker, built with the program by cc -O2 or, without a C
 * compiler at build time, at run time by Bun's built-in TinyCC (ring-natives.ts). It does for one TPACKET_V3 block exactly what the
 * JavaScript walker in block-walker.ts does, in one native call per block instead of ~65 ns of
 * JavaScript per packet: skip frames by direction, cut to the snapshot length, put back an
 * 802.1Q tag the kernel stripped, and append classic pcap records (ts_sec, ts_frac, caplen, len,
 * little-endian; src/packet/packet-batch.ts) to an output buffer.
 *
 * No #include: TinyCC inside Bun (the fallback) has no libc headers it can count on, so the few types and
 * memcpy are declared here. TinyCC does not inline memcpy (each is a call into libc: measured
 * ~70 ns per packet with one per header field), so header fields are read with plain loads,
 * which are aligned (frames start on 16-byte boundaries, checked), and the record header, which
 * is not aligned in the output, is built in a local array and copied with one memcpy.
 *
 * Layouts: include/uapi/linux/if_packet.h (tpacket_block_desc, tpacket_hdr_v1, tpacket3_hdr,
 * sockaddr_ll at TPACKET_ALIGN(sizeof(tpacket3_hdr)) = 48). tpacket.ts names the same offsets.
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long usize;

void *memcpy(void *destination, const void *source, usize bytes);

/* state[]: the caller's Uint32Array. In: FLAGS..BLOCK_BYTES. In/out: USED..RESUME_INDEX. */
#define STATE_FLAGS 0
#define STATE_SNAPLEN 1
#define STATE_FLUSH_BYTES 2
#define STATE_CAPACITY 3
#define STATE_BLOCK_BYTES 4
#define STATE_USED 5
#define STATE_COUNT 6
/* Where the next frame starts, as an offset from the block's start; 0 = the block's first frame. */
#define STATE_RESUME_OFFSET 7
#define STATE_RESUME_INDEX 8
#define STATE_CELLS 9

#define FLAG_KEEP_INCOMING 1
#define FLAG_KEEP_OUTGOING 2
#define FLAG_NANO 4

#define WALK_DONE 0
#define WALK_FULL 1
#define WALK_OVERRUN -1
#define WALK_NO_ROOM -2

/* tpacket_hdr_v1 inside tpacket_block_desc. */
#define BLOCK_PACKET_COUNT 12
#define BLOCK_FIRST_PACKET 16
/* tpacket3_hdr and the sockaddr_ll after it. */
#define FRAME_NEXT 0
#define FRAME_SEC 4
#define FRAME_NSEC 8
#define FRAME_SNAPLEN 12
#define FRAME_LEN 16
#define FRAME_STATUS 20
#define FRAME_MAC 24
#define FRAME_VLAN_TCI 32
#define FRAME_VLAN_TPID 36
#define FRAME_PACKET_TYPE 58
/* Bytes of a frame's headers this walker reads: through sll_pkttype. */
#define FRAME_HEADER_BYTES 59

#define TP_STATUS_VLAN_VALID 16
#define TP_STATUS_VLAN_TPID_VALID 64
#define PACKET_OUTGOING 4
#define ETH_P_8021Q 0x8100
#define VLAN_TAG_OFFSET 12
#define VLAN_TAG_BYTES 4
#define RECORD_HEADER_BYTES 16

/*
 * Frame headers are naturally aligned (the kernel starts each frame at a TPACKET_ALIGNMENT = 16
 * boundary; misaligned frames are refused below), so header fields are plain loads.
 */
#define FIELD32(header, offset) (*(const u32 *)((header) + (offset)))
#define FIELD16(header, offset) (*(const u16 *)((header) + (offset)))
#define FRAME_ALIGN_MASK 3

/*
 * Appends the kept frames of one block (from the resume point in state) to out. Returns
 * WALK_DONE after the block's last frame (resume point reset), WALK_FULL when out reached its
 * flush threshold before a frame (resume point saved: call again once out is handed over),
 * WALK_OVERRUN when a frame lies outside its block, WALK_NO_ROOM when a record would not fit
 * in out (a caller bug: capacity must be at least flush threshold + one maximum record).
 * Little-endian hosts only (x86_64, aarch64), like the record layout it writes.
 */
int probe_ring_walk(const u8 *block, u8 *out, u32 *state) {
  u32 flags = state[STATE_FLAGS];
  u32 snaplen = state[STATE_SNAPLEN];
  u32 flushBytes = state[STATE_FLUSH_BYTES];
  usize capacity = state[STATE_CAPACITY];
  usize blockBytes = state[STATE_BLOCK_BYTES];
  usize used = state[STATE_USED];
  u32 count = state[STATE_COUNT];
  u32 packets = FIELD32(block, BLOCK_PACKET_COUNT);
  u32 record[4];
  usize frame = state[STATE_RESUME_OFFSET];
  u32 i = state[STATE_RESUME_INDEX];
  int result = WALK_DONE;
  if (frame == 0) {
    frame = FIELD32(block, BLOCK_FIRST_PACKET);
    i = 0;
  }
  for (; i < packets; i++) {
    if (used >= flushBytes) {
      result = WALK_FULL;
      break;
    }
    if (frame + FRAME_HEADER_BYTES > blockBytes || (frame & FRAME_ALIGN_MASK) != 0) {
      result = WALK_OVERRUN;
      break;
    }
    const u8 *header = block + frame;
    u32 next = FIELD32(header, FRAME_NEXT);
    int keep = header[FRAME_PACKET_TYPE] == PACKET_OUTGOING ? (flags & FLAG_KEEP_OUTGOING) : (flags & FLAG_KEEP_INCOMING);
    if (keep) {
      u32 status = FIELD32(header, FRAME_STATUS);
      u32 tpSnaplen = FIELD32(header, FRAME_SNAPLEN);
      u32 len = FIELD32(header, FRAME_LEN);
      usize data = frame + FIELD16(header, FRAME_MAC);
      if (data + tpSnaplen > blockBytes) {
        result = WALK_OVERRUN;
        break;
      }
      int vlan = (status & TP_STATUS_VLAN_VALID) != 0 && tpSnaplen >= VLAN_TAG_OFFSET;
      u32 wire = tpSnaplen;
      if (vlan) {
        wire += VLAN_TAG_BYTES;
        len += VLAN_TAG_BYTES;
      }
      u32 caplen = wire < snaplen ? wire : snaplen;
      if (used + RECORD_HEADER_BYTES + caplen > capacity) {
        result = WALK_NO_ROOM;
        break;
      }
      u32 nsec = FIELD32(header, FRAME_NSEC);
      u8 *at = out + used;
      /* Records are not aligned: the header is built in place, then copied as 16 bytes. */
      record[0] = FIELD32(header, FRAME_SEC);
      record[1] = (flags & FLAG_NANO) ? nsec : nsec / 1000;
      record[2] = caplen;
      record[3] = len;
      memcpy(at, record, RECORD_HEADER_BYTES);
      u8 *to = at + RECORD_HEADER_BYTES;
      const u8 *from = block + data;
      if (!vlan) {
        memcpy(to, from, caplen);
      } else {
        /* pcap-linux.c: the MAC addresses, then TPID and TCI big-endian, then the rest. */
        u32 tpid = (status & TP_STATUS_VLAN_TPID_VALID) ? FIELD16(header, FRAME_VLAN_TPID) : ETH_P_8021Q;
        u32 tci = FIELD32(header, FRAME_VLAN_TCI) & 0xffff;
        u32 tag = (tpid << 16) | tci;
        u32 head = caplen < VLAN_TAG_OFFSET ? caplen : VLAN_TAG_OFFSET;
        int b;
        memcpy(to, from, head);
        for (b = 0; b < VLAN_TAG_BYTES && VLAN_TAG_OFFSET + b < caplen; b++) {
          to[VLAN_TAG_OFFSET + b] = (u8)(tag >> (24 - 8 * b));
        }
        if (caplen > VLAN_TAG_OFFSET + VLAN_TAG_BYTES) {
          memcpy(to + VLAN_TAG_OFFSET + VLAN_TAG_BYTES, from + VLAN_TAG_OFFSET, caplen - VLAN_TAG_OFFSET - VLAN_TAG_BYTES);
        }
      }
      used += RECORD_HEADER_BYTES + caplen;
      count++;
    }
    frame += next;
  }
  state[STATE_USED] = (u32)used;
  state[STATE_COUNT] = count;
  if (result == WALK_DONE) {
    state[STATE_RESUME_OFFSET] = 0;
    state[STATE_RESUME_INDEX] = 0;
  } else {
    state[STATE_RESUME_OFFSET] = (u32)frame;
    state[STATE_RESUME_INDEX] = i;
  }
  return result;
}
