// udpstr sender table (issue 21): each sender (address, port) is its own stream; strangers outside
// the allow list, random bytes from unknown senders and senders over the cap never reach another
// sender's records or figures; the table is bounded and frees idle slots.
import { describe, expect, test } from "bun:test";
import { forEachRecord } from "../../src/packet/packet-batch.ts";
import {
  UDPSTR_SENDER_REPLACE_AFTER_QUIET_MS,
  UDPSTR_SETTLE_AFTER_QUIET_MS,
  UdpstrPacker,
  UdpstrSenderTable,
  type UdpstrEviction,
  type UdpstrSender,
} from "../../src/protocols/udpstr/index.ts";
import { addressAllowed, parseCidr } from "../../src/net/addresses.ts";
import { LINKTYPE_ETHERNET, batchOf, seededRandom, syntheticPackets } from "../support/udpstr-helpers.ts";

/** `count` synthetic packets of mixed sizes packed at a 300-byte MTU (records straddle datagrams). */
function streamDatagrams(count: number, firstSeq: number): { datagrams: Uint8Array[]; data: string[] } {
  const packets = syntheticPackets(Array.from({ length: count }, (_, i) => 10 + ((i * 37) % 500)), firstSeq);
  const packer = new UdpstrPacker({ mtuBytes: 300 });
  return { datagrams: [...packer.push(batchOf(packets), 1), ...packer.flush()], data: packets.map((p) => Buffer.from(p.data).toString("hex")) };
}

function recordsOf(sender: UdpstrSender): string[] {
  const out: string[] = [];
  for (let taken = sender.reassembler.take(); taken; taken = sender.reassembler.take()) {
    forEachRecord(taken.batch, (view, bytes) => out.push(Buffer.from(bytes.subarray(view.dataOffset, view.dataOffset + view.caplen)).toString("hex")));
  }
  return out;
}

/** A well-formed one-record datagram with the given seqno (what a forger sends). */
function forgedDatagram(seqno: number, fill: number): Uint8Array {
  const d = new Uint8Array(8 + 20 + 40);
  const dv = new DataView(d.buffer);
  dv.setUint8(1, 110);
  dv.setUint16(2, 8);
  dv.setUint32(4, seqno);
  dv.setUint32(8 + 8, 40);
  dv.setUint32(8 + 12, 40);
  dv.setUint32(8 + 16, seqno + 1);
  d.fill(fill, 28);
  return d;
}

describe("one stream per sender", () => {
  test("two forwarders interleaved datagram by datagram, plus forged datagrams from a third port: each stream intact, figures apart", () => {
    const a = streamDatagrams(300, 0);
    const b = streamDatagrams(200, 5000);
    const table = new UdpstrSenderTable({ linktype: LINKTYPE_ETHERNET });
    const random = seededRandom(4);
    let forged = 0;
    for (let i = 0; i < Math.max(a.datagrams.length, b.datagrams.length); i++) {
      if (a.datagrams[i]) table.push("127.0.0.1", 4000, a.datagrams[i]!, i);
      // The forger guesses seqnos near the real ones and sends well-formed records.
      if (i % 2 === 0) {
        table.push("127.0.0.1", 4002, forgedDatagram(i + Math.floor(random() * 3), 0xee), i);
        forged++;
      }
      if (b.datagrams[i]) table.push("127.0.0.1", 4001, b.datagrams[i]!, i);
    }
    table.finish();
    const [senderA, senderB, forger] = [...table.active].sort((x, y) => x.port - y.port);
    expect([senderA!.port, senderB!.port, forger!.port]).toEqual([4000, 4001, 4002]);
    expect(recordsOf(senderA!)).toEqual(a.data);
    expect(recordsOf(senderB!)).toEqual(b.data);
    for (const sender of [senderA!, senderB!]) {
      const c = sender.reassembler.counters;
      expect([c.datagramsLost, c.datagramsLate, c.recordsLost, c.strayDatagrams, c.firsthdrMismatches]).toEqual([0, 0, 0, 0, 0]);
    }
    expect(senderA!.reassembler.counters.datagramsReceived).toBe(a.datagrams.length);
    expect(forger!.reassembler.counters.datagramsReceived).toBe(forged);
    expect(table.totals().datagramsReceived).toBe(a.datagrams.length + b.datagrams.length + forged);
  });

  test("with an allow list, strangers are counted and never reach a stream; random bytes from unknown senders take no slot", () => {
    const a = streamDatagrams(100, 0);
    const allow = [parseCidr("127.0.0.1/32"), parseCidr("::1")];
    const table = new UdpstrSenderTable({ linktype: LINKTYPE_ETHERNET, allowed: (address) => addressAllowed(address, allow) });
    const random = seededRandom(8);
    a.datagrams.forEach((d, i) => {
      table.push("127.0.0.1", 4000, d, i);
      expect(table.push("127.0.0.2", 4000, forgedDatagram(i + 1, 0xee), i)).toBe("stranger");
      expect(table.push("::ffff:127.0.0.3", 4000, forgedDatagram(i + 1, 0xee), i)).toBe("stranger");
      // Random bytes from allowed addresses but new ports: a slot only for a udpstr header that decodes.
      const junk = Uint8Array.from({ length: 1 + Math.floor(random() * 300) }, () => Math.floor(random() * 256));
      junk[0] = 1; // ver 1: never a valid header
      expect(table.push("127.0.0.1", 10_000 + i, junk, i)).toBe("malformed");
    });
    table.finish();
    expect(table.active.length).toBe(1);
    expect(recordsOf(table.active[0]!)).toEqual(a.data);
    expect(table.counters).toEqual({
      strangerDatagrams: 2 * a.datagrams.length,
      unknownMalformedDatagrams: a.datagrams.length,
      overCapDatagrams: 0,
      sendersAdmitted: 1,
      sendersEvictedIdle: 0,
      sendersReplaced: 0,
    });
  });
});

describe("a bounded table", () => {
  test("over the cap: senders that never delivered give way; active ones stay and the newcomer is refused; quiet ones are replaced", () => {
    const evicted: [number, UdpstrEviction][] = [];
    const table = new UdpstrSenderTable({ linktype: LINKTYPE_ETHERNET, maxSenders: 3, onEvicted: (s, why) => evicted.push([s.port, why]) });
    // Port 1 sends only a datagram that is held (seqno far ahead, never confirmed): no record yet.
    table.push("127.0.0.1", 1, forgedDatagram(90_000, 1), 0);
    table.push("127.0.0.1", 2, forgedDatagram(0, 2), 0);
    table.push("127.0.0.1", 3, forgedDatagram(0, 3), 0);
    // Full: port 4 takes port 1's slot (it delivered nothing).
    expect(typeof table.push("127.0.0.1", 4, forgedDatagram(0, 4), 10)).toBe("object");
    expect(evicted).toEqual([[1, "replaced"]]);
    // Full of senders that delivered and are not quiet long enough: refused, counted.
    expect(table.push("127.0.0.1", 5, forgedDatagram(0, 5), 20)).toBe("over-cap");
    expect(table.counters.overCapDatagrams).toBe(1);
    // Port 2 quiet long enough: it gives its slot to port 5.
    table.push("127.0.0.1", 3, forgedDatagram(1, 3), UDPSTR_SENDER_REPLACE_AFTER_QUIET_MS);
    table.push("127.0.0.1", 4, forgedDatagram(1, 4), UDPSTR_SENDER_REPLACE_AFTER_QUIET_MS);
    expect(typeof table.push("127.0.0.1", 5, forgedDatagram(0, 5), UDPSTR_SENDER_REPLACE_AFTER_QUIET_MS)).toBe("object");
    expect(evicted).toEqual([[1, "replaced"], [2, "replaced"]]);
    expect(table.active.map((s) => s.port)).toEqual([3, 4, 5]);
    expect(table.counters.sendersReplaced).toBe(2);
    // The evicted senders' figures are kept in the retired total. Port 1's held datagram was its
    // first (no stream of its own to spoil yet), so eviction read it: a join, 1 record each.
    expect([table.retired.datagramsReceived, table.retired.strayDatagrams, table.retired.recordsDelivered, table.retired.datagramsLost]).toEqual([2, 0, 2, 0]);
  });

  test("random source ports flooding well-formed datagrams never hold more than maxSenders", () => {
    const table = new UdpstrSenderTable({ linktype: LINKTYPE_ETHERNET, maxSenders: 16 });
    for (let i = 0; i < 5000; i++) table.push(`127.0.${i % 7}.2`, 1024 + i, forgedDatagram(0, 1), i);
    expect(table.size).toBe(16);
    expect(table.counters.sendersAdmitted + table.counters.overCapDatagrams).toBe(5000);
  });

  test("one address cycling source ports holds at most its share; another address still gets in", () => {
    const table = new UdpstrSenderTable({ linktype: LINKTYPE_ETHERNET, maxSenders: 8, maxSendersPerAddress: 3 });
    // 127.0.0.2 floods 500 ports, each datagram a delivered record (so no slot is given up at once).
    for (let i = 0; i < 500; i++) table.push("127.0.0.2", 1024 + i, forgedDatagram(0, 1), 0);
    expect(table.active.map((s) => s.port)).toEqual([1024, 1025, 1026]);
    expect(table.counters.overCapDatagrams).toBe(497);
    const forwarder = table.push("127.0.0.1", 9, forgedDatagram(0, 9), 1);
    expect(typeof forwarder).toBe("object");
    expect(table.size).toBe(4);
  });

  test("tick(): a quiet sender's held datagram is judged; an idle sender is evicted and its records handed out", () => {
    const got: string[] = [];
    const table = new UdpstrSenderTable({ linktype: LINKTYPE_ETHERNET, idleMs: 60_000, onEvicted: (sender, why) => got.push(`${why}:${recordsOf(sender).length}`) });
    const a = streamDatagrams(50, 0);
    // The last datagram comes after a loss: held until the next datagram or a quiet second.
    a.datagrams.forEach((d, i) => i !== a.datagrams.length - 2 && table.push("127.0.0.1", 7, d, 0));
    const sender = table.active[0]!;
    expect(sender.reassembler.holding).toBe(true);
    table.tick(UDPSTR_SETTLE_AFTER_QUIET_MS - 1);
    expect(sender.reassembler.holding).toBe(true);
    table.tick(UDPSTR_SETTLE_AFTER_QUIET_MS);
    expect(sender.reassembler.holding).toBe(false);
    expect(sender.reassembler.counters.datagramsLost).toBe(1);
    const delivered = recordsOf(sender).length;
    expect(delivered).toBeGreaterThan(40);
    table.tick(59_999);
    expect(table.size).toBe(1);
    table.tick(60_000);
    expect(table.size).toBe(0);
    expect(got).toEqual(["idle:0"]);
    expect(table.counters.sendersEvictedIdle).toBe(1);
    expect(table.retired.recordsDelivered).toBe(delivered);
  });
});
