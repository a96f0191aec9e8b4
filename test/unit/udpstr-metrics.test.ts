// udpstr receiver metrics (issue 21): per-sender figures from the real sender table, the evicted
// senders summed, refusals by reason; a flood of senders folds into "other" (bounded series).
import { describe, expect, test } from "bun:test";
import { encodePrometheusText, udpstrCollector, type UdpstrCounterView } from "../../src/metrics/index.ts";
import { UdpstrSenderTable } from "../../src/protocols/udpstr/index.ts";
import { parsePrometheusText } from "../support/prometheus-parser.ts";

/** A well-formed one-record datagram (seqno, a 40-byte record). */
function datagram(seqno: number): Uint8Array {
  const d = new Uint8Array(8 + 20 + 40);
  const dv = new DataView(d.buffer);
  dv.setUint8(1, 110);
  dv.setUint16(2, 8);
  dv.setUint32(4, seqno);
  dv.setUint32(16, 40);
  dv.setUint32(20, 40);
  dv.setUint32(24, seqno + 1);
  return d;
}

function viewOf(table: UdpstrSenderTable): UdpstrCounterView {
  return {
    senders: () => table.active.map((s) => ({ sender: `${s.address}:${s.port}`, counters: s.reassembler.counters })),
    evicted: () => table.retired,
    table: () => ({ active: table.size, ...table.counters }),
  };
}

async function scrape(table: UdpstrSenderTable) {
  const text = encodePrometheusText(await udpstrCollector(viewOf(table))());
  const samples = await parsePrometheusText(text);
  return (name: string, labels: Record<string, string> = {}) => samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

describe("udpstr metrics", () => {
  test("per sender, evicted summed, refusals by reason", async () => {
    const table = new UdpstrSenderTable({ linktype: 1, allowed: (a) => a === "127.0.0.1", idleMs: 1000 });
    for (let i = 0; i < 10; i++) table.push("127.0.0.1", 5000, datagram(i), 0);
    table.push("127.0.0.1", 5000, datagram(13), 0); // 3 lost, held until the next
    table.push("127.0.0.1", 5000, datagram(14), 0);
    for (let i = 0; i < 4; i++) table.push("127.0.0.1", 6000, datagram(i), 0);
    table.push("127.0.0.2", 5000, datagram(0), 0);
    table.push("127.0.0.1", 7000, Uint8Array.of(1, 2, 3), 0);
    for (let i = 0; i < 3; i++) table.push("127.0.0.1", 5000, datagram(15 + i), 900);
    table.tick(1000); // port 6000 idle 1 s: evicted
    const get = await scrape(table);
    expect(get("probe_udpstr_records_delivered_total", { sender: "127.0.0.1:5000" })[0]?.value).toBe(15);
    expect(get("probe_udpstr_datagrams_lost_total", { sender: "127.0.0.1:5000" })[0]?.value).toBe(3);
    expect(get("probe_udpstr_records_delivered_total", { sender: "evicted" })[0]?.value).toBe(4);
    expect(get("probe_udpstr_senders")[0]?.value).toBe(1);
    expect(get("probe_udpstr_senders_admitted_total")[0]?.value).toBe(2);
    expect(get("probe_udpstr_senders_evicted_total", { reason: "idle" })[0]?.value).toBe(1);
    expect(get("probe_udpstr_datagrams_refused_total", { reason: "stranger" })[0]?.value).toBe(1);
    expect(get("probe_udpstr_datagrams_refused_total", { reason: "malformed_unknown_sender" })[0]?.value).toBe(1);
    expect(get("probe_udpstr_datagrams_refused_total", { reason: "over_cap" })[0]?.value).toBe(0);
  });

  test("40 senders: 31 series and one 'other' per family, the sum kept", async () => {
    const table = new UdpstrSenderTable({ linktype: 1, maxSenders: 64, maxSendersPerAddress: 64 });
    for (let port = 1; port <= 40; port++) for (let i = 0; i < port; i++) table.push("127.0.0.1", port, datagram(i), 0);
    const get = await scrape(table);
    const received = get("probe_udpstr_datagrams_received_total");
    expect(received.length).toBe(32);
    expect(received.reduce((n, s) => n + s.value, 0)).toBe((40 * 41) / 2);
    // Folded: the 9 smallest (ports 1..9, 45 datagrams) and the empty "evicted" sample.
    expect(received.find((s) => s.labels.sender === "other")?.value).toBe(45);
  });
});
