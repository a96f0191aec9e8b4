// udpstr packer: byte-identical to ExtraHop's rpcapd on the recorded vectors, exact datagram
// tables for hand-computed cases, the iovec-slot limit, and properties over seeded random input.
import { describe, expect, test } from "bun:test";
import { PacketBatchBuilder, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { IovLayout, UDPSTR_FIRSTHDR_NONE, UdpstrPacker } from "../../src/protocols/udpstr/index.ts";
import { loadUdpstrVector, type UdpstrVector } from "../support/udpstr-vectors.ts";
import {
  LINKTYPE_ETHERNET,
  batchOf,
  firsthdrOf,
  parseDatagrams,
  seededRandom,
  seqnoOf,
  syntheticPackets,
  type SyntheticPacket,
} from "../support/udpstr-helpers.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

/** The vector's records in npkt order plus the pusher, whose header only the stream tells. */
function vectorBatch(vector: UdpstrVector): { batch: PacketBatch; pusherCaplen: number } {
  const builder = new PacketBatchBuilder(LINKTYPE_ETHERNET, "micro");
  for (const r of vector.records) builder.push(r.tsSec, r.tsUsec, r.len, r.frame);
  let pusherCaplen = 0;
  if (vector.incomplete) {
    // The pusher's rpcap timestamp is rpcapd's own; read it from the reference parse of the stream.
    const tail = parseDatagrams(vector.datagrams).incomplete;
    const pusher = vector.unforwardedFrames[0];
    if (!tail || !pusher) throw new Error("vector has no pusher");
    expect(tail.npkt).toBe(vector.incomplete.npkt);
    builder.push(tail.tsSec, tail.tsUsec, tail.len, pusher.data);
    pusherCaplen = pusher.data.byteLength;
  }
  return { batch: builder.take()!, pusherCaplen };
}

function expectSameDatagrams(actual: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    // Compare as hex so a failure names the datagram and shows the bytes.
    expect({ i, bytes: Buffer.from(actual[i]!).toString("hex") }).toEqual({ i, bytes: Buffer.from(expected[i]!).toString("hex") });
  }
}

/** Splits a batch's records into consecutive batches of the given record counts. */
function splitBatch(batch: PacketBatch, counts: readonly number[]): PacketBatch[] {
  const out: PacketBatch[] = [];
  const dv = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
  let offset = 0;
  for (const count of counts) {
    const start = offset;
    for (let i = 0; i < count; i++) offset += 16 + dv.getUint32(offset + 8, true);
    out.push({ ...batch, bytes: batch.bytes.subarray(start, offset), count });
  }
  return out;
}

describe("byte-identical to ExtraHop rpcapd (single-threaded, no flush mid-run)", () => {
  for (const name of ["udpstr-extrahop", "udpstr-extrahop-mtu600"]) {
    test(`${name}: every datagram, and the pusher's unsent tail stays buffered`, () => {
      const vector = loadUdpstrVector(name);
      const { batch, pusherCaplen } = vectorBatch(vector);
      expect(batch.count).toBe(61);
      const packer = new UdpstrPacker({ mtuBytes: vector.mtuBytes });
      const datagrams = packer.push(batch, 1);
      expectSameDatagrams(datagrams, vector.datagrams);
      // ExtraHop never sent the rest of the pusher record: it is exactly what we still hold.
      expect(packer.pendingBytes).toBe(pusherCaplen - vector.incomplete!.data_bytes_sent);
      expect(packer.nextSeqno).toBe(vector.datagrams.length);
    });

    test(`${name}: the same datagrams whatever the batch boundaries`, () => {
      const vector = loadUdpstrVector(name);
      const { batch } = vectorBatch(vector);
      const random = seededRandom(name.length);
      const counts: number[] = [];
      for (let left = batch.count; left > 0; ) {
        const n = Math.min(left, 1 + Math.floor(random() * 6));
        counts.push(n);
        left -= n;
      }
      const packer = new UdpstrPacker({ mtuBytes: vector.mtuBytes });
      const datagrams: Uint8Array[] = [];
      let npkt = 1;
      for (const part of splitBatch(batch, counts)) {
        datagrams.push(...packer.push(part, npkt));
        npkt += part.count;
      }
      expectSameDatagrams(datagrams, vector.datagrams);
    });
  }

  test("udpstr-extrahop-mt: send-thread layout with the flushes the vector shows", () => {
    // The send thread flushes whenever its ring is empty. A datagram shorter than mtu - 28 can
    // only come from a flush, so flush after the last record that ends in each such datagram.
    // (The README counts 7 short datagrams; the 1462-byte one is the "sent whole between
    // mtu - 28 and mtu" case of the write loop, not a flush.)
    const vector = loadUdpstrVector("udpstr-extrahop-mt");
    const shortFrames = new Set(vector.datagramInfo.filter((d) => d.udp_payload_len < vector.mtuBytes - 28).map((d) => d.frame));
    expect(shortFrames.size).toBe(6);
    const packer = new UdpstrPacker({ mtuBytes: vector.mtuBytes, iovLayout: IovLayout.SEND_THREAD });
    const datagrams: Uint8Array[] = [];
    const records = vector.records;
    records.forEach((r, i) => {
      const builder = new PacketBatchBuilder(LINKTYPE_ETHERNET, "micro");
      builder.push(r.tsSec, r.tsUsec, r.len, r.frame);
      datagrams.push(...packer.push(builder.take()!, r.npkt));
      const lastFrame = r.carriedInFrames[r.carriedInFrames.length - 1]!;
      const nextEndsThere = records[i + 1]?.carriedInFrames.at(-1) === lastFrame;
      if (shortFrames.has(lastFrame) && !nextEndsThere) datagrams.push(...packer.flush());
    });
    expect(packer.pendingBytes).toBe(0);
    expectSameDatagrams(datagrams, vector.datagrams);
  });
});

describe("exact datagrams for hand-computed cases (mtu 100: flush threshold 72)", () => {
  const packet = (size: number, seq: number): SyntheticPacket => ({ tsSec: 0x01020304, tsFrac: 0x0a0b0c, len: size, data: new Uint8Array(size).fill(seq) });

  test("a small record waits for flush(), then goes out alone with firsthdridx 8", () => {
    const packer = new UdpstrPacker({ mtuBytes: 100 });
    expect(packer.push(batchOf([packet(10, 0xaa)]), 7)).toEqual([]);
    expect(packer.pendingBytes).toBe(30);
    const [datagram, ...rest] = packer.flush();
    expect(rest).toEqual([]);
    expect(datagram).toEqual(hex(`006e0008 00000000 01020304 000a0b0c 0000000a 0000000a 00000007 ${"aa".repeat(10)}`));
    expect(packer.flush()).toEqual([]);
    expect(packer.nextSeqno).toBe(1);
  });

  const rows: { name: string; sizes: number[]; sent: [number, number][]; afterFlush: [number, number][] }[] = [
    // [datagram length, firsthdridx]
    { name: "record reaching the threshold is sent at once, short of the MTU", sizes: [44], sent: [[72, 8]], afterFlush: [] },
    { name: "record ending exactly at the MTU", sizes: [72], sent: [[100, 8]], afterFlush: [] },
    { name: "one byte below the threshold stays buffered", sizes: [43], sent: [], afterFlush: [[71, 8]] },
    { name: "record cut at the MTU, tail continues with 0xFFFF", sizes: [100], sent: [[100, 8]], afterFlush: [[36, UDPSTR_FIRSTHDR_NONE]] },
    { name: "second record's header begins after the first's tail", sizes: [100, 5], sent: [[100, 8]], afterFlush: [[61, 36]] },
    { name: "header never split: 71 bytes buffered + 20 + data crosses, cut inside data", sizes: [43, 30], sent: [[100, 8]], afterFlush: [[29, UDPSTR_FIRSTHDR_NONE]] },
    { name: "tail in the threshold band is sent short", sizes: [140], sent: [[100, 8], [76, UDPSTR_FIRSTHDR_NONE]], afterFlush: [] },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const packer = new UdpstrPacker({ mtuBytes: 100 });
      const sent = packer.push(batchOf(row.sizes.map((s, i) => packet(s, i + 1))), 1);
      expect(sent.map((d) => [d.byteLength, firsthdrOf(d)])).toEqual(row.sent);
      const flushed = packer.flush();
      expect(flushed.map((d) => [d.byteLength, firsthdrOf(d)])).toEqual(row.afterFlush);
      const parsed = parseDatagrams([...sent, ...flushed]);
      expect(parsed.records.map((r) => r.caplen)).toEqual(row.sizes);
      expect(parsed.records.map((r) => r.npkt)).toEqual(row.sizes.map((_, i) => i + 1));
    });
  }
});

describe("ExtraHop's 32-slot iovec limit", () => {
  test("single-threaded: at most 15 records per datagram (flush before the 16th)", () => {
    const packer = new UdpstrPacker();
    const sent = packer.push(batchOf(syntheticPackets(new Array(40).fill(1))), 1);
    expect(sent.map((d) => [d.byteLength, firsthdrOf(d)])).toEqual([
      [8 + 15 * 21, 8],
      [8 + 15 * 21, 8],
    ]);
    expect(packer.pendingBytes).toBe(10 * 21);
  });

  test("single-threaded: a carried-over tail uses a slot, so 14 more records fit", () => {
    const packer = new UdpstrPacker();
    const sent = packer.push(batchOf(syntheticPackets([1500, ...new Array(20).fill(1)])), 1);
    // 1500 + 20 + 8 > 1472: cut; the 56-byte tail is iov[1], then 14 one-byte records.
    expect(sent.map((d) => [d.byteLength, firsthdrOf(d)])).toEqual([
      [1472, 8],
      [8 + 56 + 14 * 21, 8 + 56],
    ]);
    expect(parseDatagrams([...sent, ...packer.flush()]).records.length).toBe(21);
  });

  test("send-thread layout: 31 records per datagram (flush when all 32 slots are used)", () => {
    const packer = new UdpstrPacker({ iovLayout: IovLayout.SEND_THREAD });
    const sent = packer.push(batchOf(syntheticPackets(new Array(70).fill(1))), 1);
    expect(sent.map((d) => d.byteLength)).toEqual([8 + 31 * 21, 8 + 31 * 21]);
    expect(packer.pendingBytes).toBe(8 * 21);
  });
});

describe("packing properties", () => {
  test("one record spanning many datagrams (9000 bytes at mtu 600)", () => {
    const packer = new UdpstrPacker({ mtuBytes: 600 });
    const sent = [...packer.push(batchOf(syntheticPackets([9000])), 42), ...packer.flush()];
    expect(sent.map((d) => d.byteLength)).toEqual([...new Array(15).fill(600), 8 + 140]);
    expect(sent.map(firsthdrOf)).toEqual([8, ...new Array(15).fill(UDPSTR_FIRSTHDR_NONE)]);
    const parsed = parseDatagrams(sent);
    expect(parsed.records.length).toBe(1);
    expect(parsed.records[0]!.npkt).toBe(42);
    expect(parsed.records[0]!.data).toEqual(syntheticPackets([9000])[0]!.data);
  });

  test("nanosecond batches are sent as microseconds (truncated)", () => {
    const packer = new UdpstrPacker();
    const packets: SyntheticPacket[] = [
      { tsSec: 5, tsFrac: 123_456_789, len: 4, data: hex("01020304") },
      { tsSec: 6, tsFrac: 999_999_999, len: 4, data: hex("05060708") },
    ];
    packer.push(batchOf(packets, "nano"), 1);
    const records = parseDatagrams(packer.flush()).records;
    expect(records.map((r) => [r.tsSec, r.tsUsec])).toEqual([
      [5, 123_456],
      [6, 999_999],
    ]);
  });

  test("npkt and seqno wrap at 2^32", () => {
    const packer = new UdpstrPacker({ mtuBytes: 100, firstSeqno: 0xffffffff });
    const sent = [...packer.push(batchOf(syntheticPackets([72, 72, 1])), 0xfffffffe), ...packer.flush()];
    expect(sent.map(seqnoOf)).toEqual([0xffffffff, 0, 1]);
    expect(parseDatagrams(sent, 0xffffffff).records.map((r) => r.npkt)).toEqual([0xfffffffe, 0xffffffff, 0]);
  });

  test("returned datagrams are owned: later pushes never change them", () => {
    const packer = new UdpstrPacker({ mtuBytes: 200 });
    const first = packer.push(batchOf(syntheticPackets([500, 7], 1)), 1);
    const copies = first.map((d) => d.slice());
    packer.push(batchOf(syntheticPackets([900, 3, 3], 9)), 3);
    packer.flush();
    expect(first).toEqual(copies);
  });

  test("empty batch and empty flush produce nothing", () => {
    const packer = new UdpstrPacker();
    expect(packer.push({ bytes: new Uint8Array(0), count: 0, linktype: 1, precision: "micro" }, 1)).toEqual([]);
    expect(packer.flush()).toEqual([]);
    expect(packer.nextSeqno).toBe(0);
  });

  const optionRows = [
    { options: { mtuBytes: 36 }, ok: false },
    { options: { mtuBytes: 37 }, ok: true },
    { options: { mtuBytes: 65000 }, ok: true },
    { options: { mtuBytes: 65001 }, ok: false },
    { options: { mtuBytes: 1472.5 }, ok: false },
    { options: { firstSeqno: -1 }, ok: false },
    { options: { firstSeqno: 0x1_0000_0000 }, ok: false },
  ];
  for (const row of optionRows) {
    test(`options ${JSON.stringify(row.options)} ${row.ok ? "accepted" : "rejected"}`, () => {
      if (row.ok) expect(new UdpstrPacker(row.options).mtuBytes).toBe(row.options.mtuBytes ?? 1472);
      else expect(() => new UdpstrPacker(row.options)).toThrow(RangeError);
    });
  }

  test("npktStart must be a u32", () => {
    const packer = new UdpstrPacker();
    expect(() => packer.push(batchOf(syntheticPackets([1])), -1)).toThrow(RangeError);
    expect(() => packer.push(batchOf(syntheticPackets([1])), 0x1_0000_0000)).toThrow(RangeError);
  });

  test("seeded random runs: never over the MTU, firsthdridx exact, headers never split, records intact", () => {
    const random = seededRandom(2024);
    for (let run = 0; run < 60; run++) {
      const mtu = run < 5 ? 37 + run : 37 + Math.floor(random() * 9000);
      const layout = random() < 0.5 ? IovLayout.SINGLE_THREADED : IovLayout.SEND_THREAD;
      const packer = new UdpstrPacker({ mtuBytes: mtu, iovLayout: layout, firstSeqno: run });
      const maxSize = random() < 0.3 ? 40 : 3000;
      const sizes = Array.from({ length: 1 + Math.floor(random() * 80) }, () => Math.floor(random() * maxSize));
      const packets = syntheticPackets(sizes, run * 1000);
      const datagrams: Uint8Array[] = [];
      const flushedAfter = new Set<number>(); // indexes of datagrams produced by flush()
      for (let i = 0; i < packets.length; ) {
        const n = 1 + Math.floor(random() * 5);
        datagrams.push(...packer.push(batchOf(packets.slice(i, i + n)), 100 + i));
        i += n;
        if (random() < 0.2) {
          for (const d of packer.flush()) flushedAfter.add(datagrams.push(d) - 1);
        }
      }
      for (const d of packer.flush()) flushedAfter.add(datagrams.push(d) - 1);

      const parsed = parseDatagrams(datagrams, run);
      expect(parsed.incomplete).toBeNull();
      expect(parsed.splitHeaders).toBe(0);
      datagrams.forEach((d, i) => {
        expect(d.byteLength).toBeLessThanOrEqual(mtu);
        expect(d.byteLength).toBeGreaterThan(8);
        expect(firsthdrOf(d)).toBe(parsed.realFirsthdr[i]!);
        // Unless flushed (or cut by the iovec limit), a datagram carries at least mtu - 28 bytes.
        const recordsBegun = parsed.realFirsthdr[i] === UDPSTR_FIRSTHDR_NONE ? 0 : 1;
        if (!flushedAfter.has(i) && recordsBegun === 0) expect(d.byteLength).toBeGreaterThanOrEqual(mtu - 28);
      });
      expect(parsed.records.length).toBe(packets.length);
      parsed.records.forEach((r, i) => {
        const p = packets[i]!;
        expect([r.tsSec, r.tsUsec, r.caplen, r.len, r.npkt]).toEqual([p.tsSec, p.tsFrac, p.data.byteLength, p.len, (100 + i) >>> 0]);
        expect(r.data).toEqual(p.data);
      });
    }
  });
});
