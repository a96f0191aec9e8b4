// Issue 9: a few forged udpstr datagrams drove the receiver's report to "lost 57,505,270,103
// datagrams". A seqno jump beyond UDPSTR_MAX_SEQNO_GAP_DATAGRAMS, and an npkt gap larger than
// the lost datagrams could hold, are resynchronisations counted apart, never losses.
import { describe, expect, test } from "bun:test";
import { UDPSTR_MAX_SEQNO_GAP_DATAGRAMS, UdpstrReassembler } from "../../src/protocols/udpstr/index.ts";
import { LINKTYPE_ETHERNET, cutStream, streamOf, withHeader } from "../support/udpstr-helpers.ts";

/** `count` records of 100 bytes, npkt from `firstNpkt`, two records per datagram. */
function datagramsOf(count: number, npktOf: (i: number) => number): Uint8Array[] {
  const records = Array.from({ length: count }, (_, i) => ({ tsSec: 1, tsUsec: i, len: 100, npkt: npktOf(i), data: new Uint8Array(100).fill(i) }));
  const { stream, headerOffsets } = streamOf(records);
  const cuts = headerOffsets.filter((_, i) => i > 0 && i % 2 === 0);
  return cutStream(stream, headerOffsets, cuts);
}

function run(datagrams: readonly Uint8Array[]) {
  const reassembler = new UdpstrReassembler({ linktype: LINKTYPE_ETHERNET });
  for (const d of datagrams) reassembler.push(d);
  reassembler.finish();
  const npkts: number[] = [];
  for (let taken = reassembler.take(); taken; taken = reassembler.take()) npkts.push(...taken.npkts);
  return { counters: reassembler.counters, delivered: npkts.length, npkts };
}

/** Random bytes that pass the udpstr header checks (ver 0, type 110, firsthdridx 8) with a chosen seqno. */
function forged(seqno: number, random: () => number, length = 200): Uint8Array {
  const d = Uint8Array.from({ length }, () => Math.floor(random() * 256));
  const dv = new DataView(d.buffer);
  dv.setUint8(0, 0);
  dv.setUint8(1, 110);
  dv.setUint16(2, 8);
  dv.setUint32(4, seqno);
  return d;
}

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 2 ** 32;
  };
}

describe("a wild seqno from the sender's own address cannot spoil its stream (plausibility)", () => {
  const genuine = datagramsOf(400, (i) => i + 1);

  test("a forged datagram 1,000 ahead does not make the genuine datagrams after it late (190 here) or lost", () => {
    const random = seeded(5);
    const stream = [...genuine.slice(0, 10), forged(1010, random), ...genuine.slice(10)];
    const { counters, npkts } = run(stream);
    expect(npkts).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    expect(counters.datagramsLate).toBe(0);
    expect(counters.datagramsLost).toBe(0);
    expect(counters.recordsLost).toBe(0);
    expect(counters.strayDatagrams).toBe(1);
  });

  test("forged datagrams far behind (a would-be restart) and at every distance: every genuine record, no loss", () => {
    const random = seeded(9);
    // Distances from the genuine datagram before it (so 1 would be the next one, which no
    // receiver can tell from the real thing, and 2, arriving just before the next, is what
    // reordering by one looks like: both are the protocol's limits, left out).
    const distances = [3, 4, 50, 1023, 1024, 1025, 65535, 65536, 65537, 0x7fff_ffff, 0x8000_0000, 0xffff_f000, 0xffff_fbff, 0xffff_ffff];
    const stream: Uint8Array[] = [];
    genuine.forEach((d, i) => {
      stream.push(d);
      const distance = distances[i % distances.length]!;
      if (i % 3 === 0) stream.push(forged((i + distance) >>> 0, random, 20 + Math.floor(random() * 1400)));
    });
    const { counters, npkts } = run(stream);
    expect(npkts).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    // 67 forged: the 5 one behind (0xffffffff) are late, the other 62 held and dropped as strays.
    expect(counters).toEqual({ ...counters, datagramsLost: 0, recordsLost: 0, datagramsLate: 5, sequenceRestarts: 0, seqnoJumps: 0, strayDatagrams: 62, firsthdrMismatches: 0 });
  });

  test("a stray and a real loss together: the loss is still counted exactly", () => {
    const random = seeded(3);
    // dg 20 (records 41, 42) lost; a stray 5,000 ahead right before the gap.
    const stream = [...genuine.slice(0, 20), forged(5020, random), ...genuine.slice(21)];
    const { counters, npkts } = run(stream);
    expect(npkts.length).toBe(398);
    expect(npkts).not.toContain(41);
    expect(counters.datagramsLost).toBe(1);
    expect(counters.recordsLost).toBe(2);
    expect(counters.strayDatagrams).toBe(1);
  });

  test("a held datagram nothing follows: read at finish() when plausible (a small loss), dropped when wild", () => {
    const plausible = run([...genuine.slice(0, 5), genuine[6]!]);
    expect(plausible.npkts).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14]);
    expect(plausible.counters.datagramsLost).toBe(1);
    const wild = run([...genuine.slice(0, 5), withHeader(genuine[6]!, { seqno: 90_000 })]);
    expect(wild.npkts).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(wild.counters.strayDatagrams).toBe(1);
    expect(wild.counters.datagramsLost).toBe(0);
  });

  test("a receiver that joins mid-stream claims nothing before its first datagram", () => {
    const late = datagramsOf(10, (i) => 70_001 + 2 * i).map((d, i) => withHeader(d, { seqno: 50_000 + i }));
    const { counters, npkts } = run(late);
    expect(npkts.length).toBe(10);
    expect(counters.datagramsLost + counters.recordsLost + counters.seqnoJumps + counters.sequenceRestarts + counters.strayDatagrams).toBe(0);
  });
});

describe("forged seqno jumps", () => {
  test("27 forged datagrams far ahead, each followed by the genuine sequence: strays, no loss claimed", () => {
    const genuine = datagramsOf(60, (i) => i + 1);
    const stream: Uint8Array[] = [];
    genuine.forEach((d, i) => {
      stream.push(d);
      // Jumps of 2^31 - 10 (beyond the bound) and of 60,000 (within it), both far past the late window.
      if (i >= 2 && i < 29) stream.push(withHeader(d, { seqno: (i + (i % 2 ? 0x8000_0000 - 10 : 60_000)) >>> 0 }));
    });
    const { counters, delivered } = run(stream);
    expect(counters.strayDatagrams).toBe(27);
    expect(counters.datagramsLost).toBe(0);
    expect(counters.seqnoJumps).toBe(0);
    expect(counters.sequenceRestarts).toBe(0);
    // Held and dropped whole: the genuine stream never saw them.
    expect(counters.recordsLost).toBe(0);
    expect(counters.firsthdrMismatches).toBe(0);
    expect(delivered).toBe(60);
  });

  test("a far jump confirmed by the next datagram: beyond the bound a seqno jump, within it a loss", () => {
    const genuine = datagramsOf(6, (i) => i + 1);
    const far = 0x8000_0000 - 10;
    const beyond = run([genuine[0]!, withHeader(genuine[1]!, { seqno: far }), withHeader(genuine[2]!, { seqno: far + 1 })]).counters;
    expect(beyond.seqnoJumps).toBe(1);
    expect(beyond.datagramsLost).toBe(0);
    const within = run([genuine[0]!, withHeader(genuine[1]!, { seqno: 5000 }), withHeader(genuine[2]!, { seqno: 5001 })]).counters;
    expect(within.datagramsLost).toBe(4999);
    expect(within.strayDatagrams).toBe(0);
  });

  test("a jump of exactly the bound is still a loss; one more is a jump", () => {
    const genuine = datagramsOf(6, (i) => i + 1);
    // Each jump confirmed by the datagram after it.
    const atBound = run([genuine[0]!, withHeader(genuine[1]!, { seqno: 1 + UDPSTR_MAX_SEQNO_GAP_DATAGRAMS }), withHeader(genuine[2]!, { seqno: 2 + UDPSTR_MAX_SEQNO_GAP_DATAGRAMS })]).counters;
    expect(atBound.datagramsLost).toBe(UDPSTR_MAX_SEQNO_GAP_DATAGRAMS);
    expect(atBound.seqnoJumps).toBe(0);
    const beyond = run([genuine[0]!, withHeader(genuine[1]!, { seqno: 2 + UDPSTR_MAX_SEQNO_GAP_DATAGRAMS }), withHeader(genuine[2]!, { seqno: 3 + UDPSTR_MAX_SEQNO_GAP_DATAGRAMS })]).counters;
    expect(beyond.datagramsLost).toBe(0);
    expect(beyond.seqnoJumps).toBe(1);
  });
});

describe("forged npkt gaps", () => {
  test("after one lost datagram, an npkt 10^9 ahead is an npkt jump, not 10^9 lost records", () => {
    const stream = datagramsOf(20, (i) => (i < 10 ? i + 1 : 1_000_000_000 + i));
    const { counters } = run(stream.filter((_, i) => i !== 5)); // datagram 5 (records 10, 11) lost
    expect(counters.datagramsLost).toBe(1);
    expect(counters.npktJumps).toBe(1);
    expect(counters.recordsLost).toBeLessThanOrEqual(2);
  });

  test("a genuine gap (npkt consistent with the lost datagram) is still counted exactly", () => {
    const stream = datagramsOf(20, (i) => i + 1);
    const { counters } = run(stream.filter((_, i) => i !== 5));
    expect(counters.datagramsLost).toBe(1);
    expect(counters.recordsLost).toBe(2);
    expect(counters.npktJumps).toBe(0);
  });
});
