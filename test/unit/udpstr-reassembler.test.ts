// udpstr reassembler: the three ExtraHop vectors decoded to the original frames, packer round
// trips, every split point of a generic sender, exact loss and reordering tables, and hostile input.
import { describe, expect, test } from "bun:test";
import { forEachRecord } from "../../src/packet/packet-batch.ts";
import {
  IovLayout,
  UDPSTR_FIRSTHDR_NONE,
  UdpstrPacker,
  UdpstrReassembler,
  type UdpstrReassemblerCounters,
  type UdpstrReassemblerOptions,
} from "../../src/protocols/udpstr/index.ts";
import { loadUdpstrVector } from "../support/udpstr-vectors.ts";
import {
  LINKTYPE_ETHERNET,
  batchOf,
  cutStream,
  seededRandom,
  streamOf,
  syntheticPackets,
  withHeader,
  type SyntheticPacket,
} from "../support/udpstr-helpers.ts";

interface OutRecord {
  npkt: number;
  tsSec: number;
  tsUsec: number;
  caplen: number;
  len: number;
  data: Uint8Array;
}

/** Everything the reassembler delivered, as plain records (data copied out of the batch). */
function takeAll(reassembler: UdpstrReassembler): OutRecord[] {
  const taken = reassembler.take();
  if (!taken) return [];
  expect(taken.batch.precision).toBe("micro");
  expect(taken.batch.count).toBe(taken.npkts.length);
  const out: OutRecord[] = [];
  let i = 0;
  forEachRecord(taken.batch, (view, bytes) => {
    out.push({
      npkt: taken.npkts[i++]!,
      tsSec: view.tsSec,
      tsUsec: view.tsFrac,
      caplen: view.caplen,
      len: view.len,
      data: bytes.slice(view.dataOffset, view.dataOffset + view.caplen),
    });
  });
  return out;
}

function reassemble(datagrams: readonly Uint8Array[], options: Partial<UdpstrReassemblerOptions> = {}) {
  const reassembler = new UdpstrReassembler({ linktype: LINKTYPE_ETHERNET, ...options });
  for (const d of datagrams) reassembler.push(d);
  // finish() first: it judges a datagram still held (a break nothing came after to confirm).
  const incomplete = reassembler.finish();
  const records = takeAll(reassembler);
  return { reassembler, records, incomplete, counters: reassembler.counters };
}

function counters(partial: Partial<UdpstrReassemblerCounters>): UdpstrReassemblerCounters {
  return {
    datagramsReceived: 0,
    datagramsLost: 0,
    datagramsLate: 0,
    datagramsMalformed: 0,
    sequenceRestarts: 0,
    seqnoJumps: 0,
    npktJumps: 0,
    strayDatagrams: 0,
    firsthdrMismatches: 0,
    recordsDelivered: 0,
    recordsLost: 0,
    recordsMalformed: 0,
    bytesSkipped: 0,
    ...partial,
  };
}

function pack(packets: readonly SyntheticPacket[], mtuBytes: number, options: { npktStart?: number; firstSeqno?: number; iovLayout?: IovLayout } = {}): Uint8Array[] {
  const packer = new UdpstrPacker({ mtuBytes, firstSeqno: options.firstSeqno, iovLayout: options.iovLayout });
  return [...packer.push(batchOf(packets), options.npktStart ?? 1), ...packer.flush()];
}

function expectRecordsEqualPackets(records: readonly OutRecord[], packets: readonly SyntheticPacket[], npktStart = 1): void {
  expect(records.length).toBe(packets.length);
  records.forEach((r, i) => {
    const p = packets[i]!;
    expect([r.npkt, r.tsSec, r.tsUsec, r.caplen, r.len]).toEqual([(npktStart + i) >>> 0, p.tsSec, p.tsFrac, p.data.byteLength, p.len]);
    expect(r.data).toEqual(p.data);
  });
}

describe("ExtraHop vectors", () => {
  const rows = [
    { name: "udpstr-extrahop", complete: 60, incompleteBytes: 782 },
    { name: "udpstr-extrahop-mtu600", complete: 60, incompleteBytes: 1396 },
    { name: "udpstr-extrahop-mt", complete: 61, incompleteBytes: null },
  ];
  for (const row of rows) {
    test(`${row.name}: every complete record equals its original frame, fields as in the manifest`, () => {
      const vector = loadUdpstrVector(row.name);
      const { records, incomplete, counters: c } = reassemble(vector.datagrams);
      expect(records.length).toBe(row.complete);
      expect(vector.records.length).toBe(row.complete);
      records.forEach((r, i) => {
        const e = vector.records[i]!;
        expect([r.npkt, r.caplen, r.len, r.tsSec, r.tsUsec]).toEqual([e.npkt, e.caplen, e.len, e.tsSec, e.tsUsec]);
        expect(Buffer.from(r.data).equals(Buffer.from(e.frame))).toBe(true);
      });
      if (row.incompleteBytes === null) {
        expect(incomplete).toBeNull();
        expect(vector.incomplete).toBeNull();
      } else {
        expect(incomplete?.header?.npkt).toBe(vector.incomplete!.npkt);
        expect(incomplete?.header?.caplen).toBe(vector.incomplete!.caplen);
        expect(incomplete?.bytesReceived).toBe(row.incompleteBytes);
        expect(incomplete?.bytesReceived).toBe(vector.incomplete!.data_bytes_sent);
        // The pusher's bytes that did arrive are the start of the pusher frame.
        expect(incomplete?.bytes).toEqual(vector.unforwardedFrames[0]!.data.subarray(0, row.incompleteBytes));
      }
      expect(c).toEqual(
        counters({
          datagramsReceived: vector.datagrams.length,
          recordsDelivered: row.complete,
          recordsLost: row.incompleteBytes === null ? 0 : 1, // the pusher, cut by the end of the capture
        }),
      );
    });
  }

  test("udpstr-extrahop: decoding datagram by datagram delivers each record once its last datagram arrives", () => {
    const vector = loadUdpstrVector("udpstr-extrahop");
    const reassembler = new UdpstrReassembler({ linktype: LINKTYPE_ETHERNET });
    const completedIn = new Map<number, number>(); // npkt -> frame that completed it
    vector.datagrams.forEach((d, i) => {
      reassembler.push(d);
      for (const r of takeAll(reassembler)) completedIn.set(r.npkt, vector.datagramInfo[i]!.frame);
    });
    for (const e of vector.records) expect(completedIn.get(e.npkt)).toBe(e.carriedInFrames.at(-1)!);
  });
});

describe("round trips through the packer", () => {
  test("seeded random packets of 1..9000 bytes at several MTUs and both layouts", () => {
    const random = seededRandom(9000);
    for (const mtu of [37, 100, 576, 600, 1472, 9000, 65000]) {
      for (const layout of [IovLayout.SINGLE_THREADED, IovLayout.SEND_THREAD]) {
        const sizes = Array.from({ length: 120 }, () => 1 + Math.floor(random() * 9000));
        const packets = syntheticPackets(sizes, mtu);
        const datagrams = pack(packets, mtu, { iovLayout: layout, npktStart: 500 });
        const { records, incomplete, counters: c } = reassemble(datagrams, { firstNpkt: 500 });
        expectRecordsEqualPackets(records, packets, 500);
        expect(incomplete).toBeNull();
        expect(c).toEqual(counters({ datagramsReceived: datagrams.length, recordsDelivered: packets.length }));
      }
    }
  });

  test("tiny packets, many per datagram (0..3 bytes)", () => {
    const packets = syntheticPackets(Array.from({ length: 1000 }, (_, i) => i % 4));
    const datagrams = pack(packets, 1472);
    expect(datagrams.length).toBe(Math.ceil(1000 / 15)); // the 15-record iovec limit
    const { records, counters: c } = reassemble(datagrams);
    expectRecordsEqualPackets(records, packets);
    expect(c.recordsDelivered).toBe(1000);
  });

  test("one 60000-byte record spanning 110 datagrams at mtu 576", () => {
    const packets = syntheticPackets([60000]);
    const datagrams = pack(packets, 576);
    expect(datagrams.length).toBe(Math.ceil((60000 + 20) / (576 - 8)));
    const { records } = reassemble(datagrams);
    expectRecordsEqualPackets(records, packets);
  });

  test("npkt and seqno across the u32 wrap", () => {
    const packets = syntheticPackets([700, 700, 700, 10]);
    const datagrams = pack(packets, 600, { firstSeqno: 0xfffffffe, npktStart: 0xffffffff });
    const { records, counters: c } = reassemble(datagrams, { firstSeqno: 0xfffffffe, firstNpkt: 0xffffffff });
    expectRecordsEqualPackets(records, packets, 0xffffffff);
    expect(c.datagramsLost).toBe(0);
  });
});

describe("a generic sender that may split record headers", () => {
  // Records of 0, 5 and 30 data bytes: stream of 95 bytes.
  const records = [
    { tsSec: 1, tsUsec: 10, len: 0, npkt: 1, data: new Uint8Array(0) },
    { tsSec: 2, tsUsec: 20, len: 9, npkt: 2, data: Uint8Array.from([1, 2, 3, 4, 5]) },
    { tsSec: 3, tsUsec: 30, len: 30, npkt: 3, data: Uint8Array.from({ length: 30 }, (_, k) => 100 + k) },
  ];
  const { stream, headerOffsets } = streamOf(records);
  const check = (datagrams: Uint8Array[], label: string): void => {
    const { records: out, incomplete, counters: c } = reassemble(datagrams);
    expect({ label, out: out.map((r) => [r.npkt, r.tsSec, r.tsUsec, r.len, Array.from(r.data)]) }).toEqual({
      label,
      out: records.map((r) => [r.npkt, r.tsSec, r.tsUsec, r.len, Array.from(r.data)]),
    });
    expect(incomplete).toBeNull();
    expect(c.firsthdrMismatches + c.recordsLost + c.datagramsMalformed).toBe(0);
  };

  test("every single split point", () => {
    for (let cut = 1; cut < stream.byteLength; cut++) check(cutStream(stream, headerOffsets, [cut]), `cut ${cut}`);
  });

  test("every pair of split points", () => {
    for (let a = 1; a < stream.byteLength; a++) {
      for (let b = a + 1; b < stream.byteLength; b++) check(cutStream(stream, headerOffsets, [a, b]), `cuts ${a},${b}`);
    }
  });

  test("one byte per datagram", () => {
    check(cutStream(stream, headerOffsets, Array.from({ length: stream.byteLength - 1 }, (_, i) => i + 1)), "bytewise");
  });

  test("a stream ending inside a split header reports a headerless incomplete record", () => {
    const datagrams = cutStream(stream, headerOffsets, [30]).slice(0, 1); // 20 + 0 + 10 of the second header
    const { records: out, incomplete, counters: c } = reassemble(datagrams);
    expect(out.map((r) => r.npkt)).toEqual([1]);
    expect(incomplete).toEqual({ header: null, bytesReceived: 10, bytes: stream.slice(20, 30) });
    expect(c.recordsLost).toBe(1);
  });
});

describe("loss and reordering (mtu 100, records of 10,150,10,10,10,200,5,30 bytes)", () => {
  // Layout (checked below): dg0 = npkt1 + start of 2; dg1 = middle of 2 (0xFFFF);
  // dg2 = tail of 2, 3, 4 (firsthdridx 24); dg3 = 5 + start of 6; dg4, dg5 = rest of 6 (0xFFFF);
  // dg6 = 7, 8 (flushed).
  const packets = syntheticPackets([10, 150, 10, 10, 10, 200, 5, 30]);
  const datagrams = pack(packets, 100);

  test("the layout the table relies on", () => {
    expect(datagrams.map((d) => [d.byteLength, new DataView(d.buffer, d.byteOffset).getUint16(2)])).toEqual([
      [100, 8],
      [100, UDPSTR_FIRSTHDR_NONE],
      [84, 24],
      [100, 8],
      [100, UDPSTR_FIRSTHDR_NONE],
      [74, UDPSTR_FIRSTHDR_NONE],
      [83, 8],
    ]);
  });

  const rows: { name: string; order: number[]; delivered: number[]; lost: number; late: number; recordsLost: number; skipped: number; stray?: number }[] = [
    { name: "nothing lost", order: [0, 1, 2, 3, 4, 5, 6], delivered: [1, 2, 3, 4, 5, 6, 7, 8], lost: 0, late: 0, recordsLost: 0, skipped: 0 },
    // npkt 1 and 2 wholly/partly in the lost first datagram: counted from npkt 3 - (firstNpkt - 1) - 1.
    { name: "drop dg0 (the first)", order: [1, 2, 3, 4, 5, 6], delivered: [3, 4, 5, 6, 7, 8], lost: 1, late: 0, recordsLost: 2, skipped: 92 + 16 },
    { name: "drop dg1: npkt 2 cut", order: [0, 2, 3, 4, 5, 6], delivered: [1, 3, 4, 5, 6, 7, 8], lost: 1, late: 0, recordsLost: 1, skipped: 16 },
    // npkt 2 cut (+1), then 3 and 4 wholly inside dg2 (npkt gap 5 - 2 - 1 = 2).
    { name: "drop dg2: npkt 2 cut, 3 and 4 inside", order: [0, 1, 3, 4, 5, 6], delivered: [1, 5, 6, 7, 8], lost: 1, late: 0, recordsLost: 3, skipped: 0 },
    { name: "drop dg4: npkt 6 cut", order: [0, 1, 2, 3, 5, 6], delivered: [1, 2, 3, 4, 5, 7, 8], lost: 1, late: 0, recordsLost: 1, skipped: 66 },
    { name: "drop dg5: npkt 6 cut at its tail", order: [0, 1, 2, 3, 4, 6], delivered: [1, 2, 3, 4, 5, 7, 8], lost: 1, late: 0, recordsLost: 1, skipped: 0 },
    { name: "drop dg1 and dg4", order: [0, 2, 3, 5, 6], delivered: [1, 3, 4, 5, 7, 8], lost: 2, late: 0, recordsLost: 2, skipped: 16 + 66 },
    { name: "drop dg1 and dg2 (one gap of 2)", order: [0, 3, 4, 5, 6], delivered: [1, 5, 6, 7, 8], lost: 2, late: 0, recordsLost: 3, skipped: 0 },
    // The gap begins at a record boundary: nothing cut, npkt 5 and 6 counted from the gap 7 - 4 - 1.
    { name: "drop dg3..dg5", order: [0, 1, 2, 6], delivered: [1, 2, 3, 4, 7, 8], lost: 3, late: 0, recordsLost: 2, skipped: 0 },
    // A trailing loss is invisible: no later datagram shows the gap.
    { name: "drop dg6 (the last)", order: [0, 1, 2, 3, 4, 5], delivered: [1, 2, 3, 4, 5, 6], lost: 0, late: 0, recordsLost: 0, skipped: 0 },
    // A datagram one ahead is held until the next: when that is the missing one, both are read in order.
    { name: "reorder dg1/dg2", order: [0, 2, 1, 3, 4, 5, 6], delivered: [1, 2, 3, 4, 5, 6, 7, 8], lost: 0, late: 0, recordsLost: 0, skipped: 0 },
    { name: "reorder dg3/dg4", order: [0, 1, 2, 4, 3, 5, 6], delivered: [1, 2, 3, 4, 5, 6, 7, 8], lost: 0, late: 0, recordsLost: 0, skipped: 0 },
    // Reordered by two: dg3 is held, dg1 and dg2 go on the old sequence, so dg3 is judged a stray.
    { name: "reorder dg1 behind dg3", order: [0, 3, 1, 2, 4, 5, 6], delivered: [1, 2, 3, 4, 7, 8], lost: 1, late: 0, recordsLost: 2, skipped: 92 + 66, stray: 1 },
    { name: "duplicate dg2", order: [0, 1, 2, 2, 3, 4, 5, 6], delivered: [1, 2, 3, 4, 5, 6, 7, 8], lost: 0, late: 1, recordsLost: 0, skipped: 0 },
    { name: "dg0 arrives after everything", order: [1, 2, 3, 4, 5, 6, 0], delivered: [3, 4, 5, 6, 7, 8], lost: 1, late: 1, recordsLost: 2, skipped: 92 + 16 },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const { records, incomplete, counters: c } = reassemble(row.order.map((i) => datagrams[i]!));
      expect(records.map((r) => r.npkt)).toEqual(row.delivered);
      for (const r of records) expect(r.data).toEqual(packets[r.npkt - 1]!.data);
      expect(incomplete).toBeNull();
      expect(c).toEqual(
        counters({
          datagramsReceived: row.order.length,
          datagramsLost: row.lost,
          datagramsLate: row.late,
          recordsDelivered: row.delivered.length,
          recordsLost: row.recordsLost,
          bytesSkipped: row.skipped,
          strayDatagrams: row.stray ?? 0,
        }),
      );
    });
  }

  test("reordering across the seqno wrap", () => {
    const wrapped = pack(packets, 100, { firstSeqno: 0xfffffffe });
    const { records, counters: c } = reassemble([0, 2, 1, 3, 4, 5, 6].map((i) => wrapped[i]!), { firstSeqno: 0xfffffffe });
    expect(records.map((r) => r.npkt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect([c.datagramsLost, c.datagramsLate, c.recordsLost]).toEqual([0, 0, 0]);
  });
});

describe("random loss against an oracle", () => {
  test("a record is delivered iff every datagram it spans arrived; every other record is counted lost", () => {
    const random = seededRandom(77);
    for (let run = 0; run < 40; run++) {
      const mtu = 64 + Math.floor(random() * 1500);
      const sizes = Array.from({ length: 60 }, () => Math.floor(random() * (random() < 0.5 ? 50 : 4000)));
      // A final flushed 1-byte record makes sure the last datagram has a header to resync at.
      const packets = syntheticPackets([...sizes, 1], run * 100);
      const packer = new UdpstrPacker({ mtuBytes: mtu });
      const datagrams = [...packer.push(batchOf(packets.slice(0, -1)), 1), ...packer.flush(), ...packer.push(batchOf(packets.slice(-1)), packets.length), ...packer.flush()];
      // Which datagrams each record spans, from the stream layout.
      const starts: number[] = [];
      let total = 0;
      for (const d of datagrams) {
        starts.push(total);
        total += d.byteLength - 8;
      }
      const dgAt = (streamOffset: number): number => starts.findLastIndex((s) => s <= streamOffset);
      let offset = 0;
      const spans = packets.map((p) => {
        const first = dgAt(offset);
        offset += 20 + p.data.byteLength;
        return [first, dgAt(offset - 1)] as const;
      });
      const dropped = new Set<number>();
      for (let i = 0; i < datagrams.length - 1; i++) if (random() < 0.15) dropped.add(i);
      const expected = packets.map((_, i) => i + 1).filter((npkt) => {
        const [a, b] = spans[npkt - 1]!;
        for (let d = a; d <= b; d++) if (dropped.has(d)) return false;
        return true;
      });
      const { records, counters: c } = reassemble(datagrams.filter((_, i) => !dropped.has(i)));
      expect(records.map((r) => r.npkt)).toEqual(expected);
      for (const r of records) expect(r.data).toEqual(packets[r.npkt - 1]!.data);
      expect(c.datagramsLost).toBe(dropped.size);
      expect(c.recordsLost).toBe(packets.length - expected.length);
    }
  });
});

describe("hostile datagrams are counted and skipped, never thrown", () => {
  const packets = syntheticPackets([10, 150, 10, 10, 10, 200, 5, 30]);
  const datagrams = pack(packets, 100);
  const all = [1, 2, 3, 4, 5, 6, 7, 8];

  const rows: { name: string; make: () => Uint8Array[]; options?: Partial<UdpstrReassemblerOptions>; delivered: number[]; expect: Partial<UdpstrReassemblerCounters>; error: string }[] = [
    {
      name: "a 5-byte datagram injected",
      make: () => [datagrams[0]!, Uint8Array.from([0, 110, 0, 8, 0]), ...datagrams.slice(1)],
      delivered: all,
      expect: { datagramsMalformed: 1 },
      error: "truncated",
    },
    {
      name: "an empty datagram injected",
      make: () => [new Uint8Array(0), ...datagrams],
      delivered: all,
      expect: { datagramsMalformed: 1 },
      error: "truncated",
    },
    {
      name: "version 1 injected",
      make: () => [datagrams[0]!, withHeader(datagrams[1]!, { ver: 1 }), ...datagrams.slice(1)],
      delivered: all,
      expect: { datagramsMalformed: 1 },
      error: "unsupported-version",
    },
    {
      name: "a plain RPCAP PACKET (type 7) injected",
      make: () => [datagrams[0]!, withHeader(datagrams[1]!, { type: 7 }), ...datagrams.slice(1)],
      delivered: all,
      expect: { datagramsMalformed: 1 },
      error: "bad-message-type",
    },
    {
      name: "firsthdridx 4 (inside the udpstr header) on dg2: treated as lost",
      make: () => datagrams.map((d, i) => (i === 2 ? withHeader(d, { firsthdridx: 4 }) : d)),
      delivered: [1, 5, 6, 7, 8],
      expect: { datagramsMalformed: 1, datagramsLost: 1, recordsLost: 3 },
      error: "firsthdridx-out-of-range",
    },
    {
      name: "firsthdridx past the end on dg3",
      make: () => datagrams.map((d, i) => (i === 3 ? withHeader(d, { firsthdridx: 5000 }) : d)),
      delivered: [1, 2, 3, 4, 7, 8],
      expect: { datagramsMalformed: 1, datagramsLost: 1, recordsLost: 2, bytesSkipped: 92 + 66 },
      error: "firsthdridx-out-of-range",
    },
    {
      name: "firsthdridx in range but wrong (dg2 says 30, the boundary is 24)",
      make: () => datagrams.map((d, i) => (i === 2 ? withHeader(d, { firsthdridx: 30 }) : d)),
      // npkt 2 cut; the resync at the bogus offset reads 6 bytes into npkt 3's header, which the
      // length checks reject; dg3 resyncs at npkt 5 (npkt gap: 3 and 4 lost).
      delivered: [1, 5, 6, 7, 8],
      expect: { firsthdrMismatches: 1, recordsMalformed: 1, recordsLost: 3, bytesSkipped: 22 + 34 },
      error: "caplen-exceeds-len",
    },
    {
      name: "dg2 says 0xFFFF although npkt 3 begins at 24",
      make: () => datagrams.map((d, i) => (i === 2 ? withHeader(d, { firsthdridx: UDPSTR_FIRSTHDR_NONE }) : d)),
      // npkt 2 cut, dg2 skipped whole, dg3 resyncs at npkt 5 (npkt gap: 3 and 4 lost).
      delivered: [1, 5, 6, 7, 8],
      expect: { firsthdrMismatches: 1, recordsLost: 3, bytesSkipped: 76 },
      error: "firsthdridx-mismatch",
    },
    {
      name: "dg1 claims a header begins in it (0xFFFF expected)",
      make: () => datagrams.map((d, i) => (i === 1 ? withHeader(d, { firsthdridx: 50 }) : d)),
      // npkt 2 cut; the garbage "header" at 50 is rejected; dg2 resyncs at npkt 3.
      delivered: [1, 3, 4, 5, 6, 7, 8],
      expect: { firsthdrMismatches: 1, recordsMalformed: 1, recordsLost: 1, bytesSkipped: 42 + 30 + 16 },
      error: "caplen-exceeds-snaplen",
    },
    {
      name: "caplen > len in npkt 5's header",
      make: () => datagrams.map((d, i) => (i === 3 ? patchU32(d, 8 + 12, 9) : d)), // len 9 < caplen 10
      delivered: [1, 2, 3, 4, 7, 8],
      expect: { recordsMalformed: 1, recordsLost: 2, bytesSkipped: 72 + 92 + 66 },
      error: "caplen-exceeds-len",
    },
    {
      name: "absurd caplen (0xFFFFFFFF) in npkt 3's header",
      make: () => datagrams.map((d, i) => (i === 2 ? patchU32(patchU32(d, 24 + 8, 0xffffffff), 24 + 12, 0xffffffff) : d)),
      delivered: [1, 2, 5, 6, 7, 8],
      expect: { recordsMalformed: 1, recordsLost: 2, bytesSkipped: 84 - 44 },
      error: "caplen-exceeds-snaplen",
    },
    {
      name: "caplen over the configured snaplen (npkt 6 is 200 bytes, snaplen 150)",
      make: () => datagrams,
      options: { snaplen: 150 },
      delivered: [1, 2, 3, 4, 5, 7, 8],
      expect: { recordsMalformed: 1, recordsLost: 1, bytesSkipped: 42 + 92 + 66 },
      error: "caplen-exceeds-snaplen",
    },
    {
      name: "a seqno far behind is a restarted sequence, not a late datagram",
      // The first stream runs at seqno 5000..5002; a new one starts again at 0 (5003 behind).
      make: () => [...pack(packets, 100, { firstSeqno: 5000 }).slice(0, 3), ...pack(syntheticPackets([5, 6]), 100)],
      options: { firstSeqno: 5000 },
      delivered: [1, 2, 3, 4, 1, 2],
      expect: { sequenceRestarts: 1, datagramsLost: 0, datagramsLate: 0, recordsLost: 0 },
      error: "",
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const input = row.make();
      const { reassembler, records, counters: c } = reassemble(input, row.options);
      expect(records.map((r) => r.npkt)).toEqual(row.delivered);
      expect(c).toEqual(counters({ datagramsReceived: input.length, recordsDelivered: row.delivered.length, ...row.expect }));
      expect(reassembler.lastError?.code ?? "").toBe(row.error);
    });
  }

  test("random garbage datagrams and bit flips never throw; counters stay consistent", () => {
    const random = seededRandom(31337);
    const base = pack(syntheticPackets(Array.from({ length: 80 }, () => Math.floor(random() * 2000))), 300);
    for (let run = 0; run < 200; run++) {
      const input = base.map((d) => {
        const r = random();
        if (r < 0.05) return Uint8Array.from({ length: Math.floor(random() * 400) }, () => Math.floor(random() * 256));
        if (r < 0.2) {
          const copy = d.slice();
          copy[Math.floor(random() * copy.length)]! ^= 1 << Math.floor(random() * 8);
          return copy;
        }
        return d;
      });
      const reassembler = new UdpstrReassembler({ linktype: LINKTYPE_ETHERNET, snaplen: 4000 });
      for (const d of input) reassembler.push(d);
      reassembler.finish();
      const taken = reassembler.take();
      expect(reassembler.counters.datagramsReceived).toBe(input.length);
      expect(taken?.batch.count ?? 0).toBe(reassembler.counters.recordsDelivered);
      if (taken) forEachRecord(taken.batch, (view) => expect(view.caplen).toBeLessThanOrEqual(Math.min(4000, view.len)));
    }
  });
});

describe("API", () => {
  test("push() after finish() is a caller bug", () => {
    const reassembler = new UdpstrReassembler({ linktype: LINKTYPE_ETHERNET });
    reassembler.finish();
    expect(() => reassembler.push(pack(syntheticPackets([1]), 100)[0]!)).toThrow(Error);
    expect(reassembler.finish()).toBeNull();
  });

  test("the datagram is borrowed: overwriting it after push() changes nothing delivered", () => {
    const packets = syntheticPackets([500, 20]);
    const datagrams = pack(packets, 200);
    const reassembler = new UdpstrReassembler({ linktype: LINKTYPE_ETHERNET });
    for (const d of datagrams) {
      reassembler.push(d);
      d.fill(0xee);
    }
    expectRecordsEqualPackets(takeAll(reassembler), packets);
  });

  test("take() hands out batches in pieces with aligned npkts", () => {
    const packets = syntheticPackets([10, 20, 30]);
    const datagrams = pack(packets, 1472);
    const reassembler = new UdpstrReassembler({ linktype: 113 });
    expect(reassembler.take()).toBeNull();
    reassembler.push(datagrams[0]!);
    expect(reassembler.pendingRecords).toBe(3);
    const taken = reassembler.take()!;
    expect(taken.batch.linktype).toBe(113);
    expect(Array.from(taken.npkts)).toEqual([1, 2, 3]);
    expect(reassembler.take()).toBeNull();
  });

  test("a nano builder is refused", async () => {
    const { PacketBatchBuilder } = await import("../../src/packet/packet-batch.ts");
    expect(() => new UdpstrReassembler({ linktype: 1, builder: new PacketBatchBuilder(1, "nano") })).toThrow(RangeError);
  });
});

function patchU32(datagram: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = datagram.slice();
  new DataView(copy.buffer).setUint32(offset, value);
  return copy;
}
