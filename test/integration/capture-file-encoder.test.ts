// CaptureFileEncoder, the one pcap/pcapng encoder of both file outputs: what it writes read by
// tshark (interfaces, interface ids from meta.inputs, comments, flags, timestamps), and
// recordBytes() exactly what encode() lays out (the rotating output's -C decisions rest on it).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "bun:test";
import { CaptureFileEncoder } from "../../src/protocols/pcap/index.ts";
import type { PacketBatch } from "../../src/packet/packet-batch.ts";
import { makeBatch } from "../support/pcap-codec-helpers.ts";

const interfaces = [
  { linktype: 1, snaplen: 65535, name: "eth0", description: "uplink" },
  { linktype: 1, snaplen: 262144, name: "" },
  { linktype: 101, snaplen: 1500 },
];

const dir = mkdtempSync(join(tmpdir(), "probe-encoder-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** tshark's fields, one row per packet (tab-separated), for the file header + records. */
function tshark(bytes: Uint8Array[], ...fields: string[]): string[] {
  const path = join(dir, `f${files++}`);
  writeFileSync(path, Buffer.concat(bytes));
  const r = Bun.spawnSync(["tshark", "-r", path, "-T", "fields", ...fields.flatMap((f) => ["-e", f])], { stderr: "ignore" });
  return r.stdout.toString().trimEnd().split("\n");
}

function batch(): PacketBatch {
  const b = makeBatch(Array.from({ length: 6 }, (_, i) => ({ tsSec: 1_700_000_000 + i, tsFrac: 1000 * i + 7, data: new Uint8Array(13 + i).fill(i) })));
  return {
    ...b,
    meta: {
      inputs: Uint16Array.from([0, 0, 2, 1, 1, 0]),
      flags: Uint32Array.from([1, 0, 2, 0, 1, 0]),
      comments: [["dns"], undefined, ["a", "ünïcode"], [], undefined, ["x"]],
    },
  };
}

describe("pcapng", () => {
  const encoder = (writeZeroFlags: boolean) => new CaptureFileEncoder({ format: "pcapng", precision: "nano", interfaces, writeZeroFlags });

  test("reads back: one IDB per input, each record on its input's interface with its comments and flags", () => {
    const e = encoder(false);
    const b = batch();
    expect(tshark([e.header, e.encode(b)], "frame.interface_id", "frame.interface_name", "frame.interface_description", "frame.comment", "frame.packet_flags", "frame.time_epoch")).toEqual([
      "0\teth0\tuplink\tdns\t0x00000001\t1700000000.000007000",
      "0\teth0\tuplink\t\t\t1700000001.001007000",
      "2\tunknown\t\ta,ünïcode\t0x00000002\t1700000002.002007000",
      "1\t\t\t\t\t1700000003.003007000",
      "1\t\t\t\t0x00000001\t1700000004.004007000",
      "0\teth0\tuplink\tx\t\t1700000005.005007000",
    ]);
  });

  test("writeZeroFlags writes a flags word of 0 as an option", () => {
    const e = encoder(true);
    expect(tshark([e.header, e.encode(batch())], "frame.packet_flags")).toEqual(["0x00000001", "0x00000000", "0x00000002", "0x00000000", "0x00000001", "0x00000000"]);
  });

  test("recordBytes is what encode lays out, record by record, with and without caller comments", () => {
    for (const zero of [false, true]) {
      const e = encoder(zero);
      const b = batch();
      const caplens = [13, 14, 15, 16, 17, 18];
      const own = (i: number) => b.meta!.comments![i];
      const extra = (i: number) => (i === 0 ? ["probe: new file after loss", ...(own(0) ?? [])] : own(i));
      for (const comments of [own, extra]) {
        const total = caplens.reduce((n, c, i) => n + e.recordBytes(b, i, c, comments(i)), 0);
        expect(e.encode(b, comments === own ? undefined : comments).byteLength).toBe(total);
      }
    }
  });
});

describe("pcap", () => {
  test("header: the first link type, the largest snaplen, the precision's magic; records converted to it", () => {
    const e = new CaptureFileEncoder({ format: "pcap", precision: "nano", interfaces: interfaces.slice(0, 2), writeZeroFlags: false });
    // magic a1b23c4d (nano), 2.4, thiszone 0, sigfigs 0, snaplen 262144, linktype 1, little-endian.
    expect(Buffer.from(e.header).toString("hex")).toBe("4d3cb2a10200040000000000000000000000040001000000");
    const b = batch();
    expect(e.recordBytes(b, 0, 13, undefined)).toBe(16 + 13);
    expect(tshark([e.header, e.encode(b)], "frame.time_epoch", "frame.cap_len")[5]).toBe("1700000005.005007000\t18");
  });
  test("no interfaces is refused", () => {
    expect(() => new CaptureFileEncoder({ format: "pcap", precision: "micro", interfaces: [], writeZeroFlags: false })).toThrow(RangeError);
  });
});
