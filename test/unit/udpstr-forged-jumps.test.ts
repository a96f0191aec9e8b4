// Issue 9: a few forged udpstr datagrams drove the receiver's report to "lost 57,505,270,103
// datagrams". A seqno jump beyond UDPSTR_MAX_SEQNO_GAP_DATAGRAMS, and an npkt gap larger than
// the lost datagrams could hold, are resynchronisations counted apart, never losses.
import { describe, expect, test } from "bun:test";
import { UDPSTR_MAX_SEQNO_GAP_DATAGRAMS, UdpstrReassembler } from "../../src/protocols/udpstr/index.ts";
import { LINKTYPE_ETHERNET, cutStream, streamOf, withHeader } from "./udpstr-helpers.ts";

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
  let delivered = 0;
  for (let taken = reassembler.take(); taken; taken = reassembler.take()) delivered += taken.batch.count;
  reassembler.finish();
  return { counters: reassembler.counters, delivered };
}

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
    expect(counters.recordsLost).toBeLessThanOrEqual(2 * 27);
    expect(delivered).toBeGreaterThan(0);
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
    const genuine = datagramsOf(4, (i) => i + 1);
    const atBound = run([genuine[0]!, withHeader(genuine[1]!, { seqno: 1 + UDPSTR_MAX_SEQNO_GAP_DATAGRAMS })]).counters;
    expect(atBound.datagramsLost).toBe(UDPSTR_MAX_SEQNO_GAP_DATAGRAMS);
    expect(atBound.seqnoJumps).toBe(0);
    const beyond = run([genuine[0]!, withHeader(genuine[1]!, { seqno: 2 + UDPSTR_MAX_SEQNO_GAP_DATAGRAMS })]).counters;
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
