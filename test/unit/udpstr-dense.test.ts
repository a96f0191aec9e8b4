// The dense udpstr layout (probe forward): no iovec slot limit, so tiny records fill datagrams
// to the MTU, and the stream still reassembles exactly.
import { expect, test } from "bun:test";
import { PacketBatchBuilder, forEachRecord } from "../../src/packet/packet-batch.ts";
import { IovLayout, UdpstrPacker, UdpstrReassembler } from "../../src/protocols/udpstr/index.ts";

test("1000 tiny packets: dense layout is within 1% of the ideal datagram count and round-trips", () => {
  const builder = new PacketBatchBuilder(1, "micro");
  for (let i = 0; i < 1000; i++) builder.push(100, i, 60, Uint8Array.from({ length: 60 }, (_, k) => (i + k) & 0xff));
  const batch = builder.take()!;
  const exact = new UdpstrPacker({ mtuBytes: 1472 });
  const dense = new UdpstrPacker({ mtuBytes: 1472, iovLayout: IovLayout.DENSE });
  const exactDatagrams = [...exact.push(batch, 1), ...exact.flush()];
  const denseDatagrams = [...dense.push(batch, 1), ...dense.flush()];
  const ideal = Math.ceil((1000 * 80) / (1472 - 8));
  expect(exactDatagrams.length).toBe(Math.ceil(1000 / 15)); // ExtraHop: 15 records a datagram
  expect(denseDatagrams.length).toBeLessThanOrEqual(Math.ceil(ideal * 1.01) + 1);
  expect(denseDatagrams.every((d) => d.byteLength <= 1472)).toBe(true);
  const reassembler = new UdpstrReassembler({ linktype: 1 });
  for (const d of denseDatagrams) reassembler.push(d);
  const got = reassembler.take()!;
  expect(got.batch.count).toBe(1000);
  let i = 0;
  forEachRecord(got.batch, (r, bytes) => {
    expect(bytes[r.dataOffset]).toBe(i & 0xff);
    i++;
  });
  expect(reassembler.counters.recordsLost).toBe(0);
});
