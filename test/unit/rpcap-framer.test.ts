// RpcapFramer: every split point of a mixed stream gives the same messages, per-type plen caps
// are enforced as soon as the header is in (a 4 GiB plen never waits for its body), nothing is
// emitted after the first error, and random bytes only ever produce ProtocolError.
import { describe, expect, test } from "bun:test";
import {
  encodeAuthRequest,
  encodeEmptyMessage,
  encodeError,
  encodeHeader,
  encodeMessage,
  encodePacketStream,
  encodeStartCapRequestPayload,
  maxRequestPlen,
  RpcapFramer,
  RpcapMessageType as T,
  type RpcapMessage,
} from "../../src/protocols/rpcap/index.ts";
import { batchOf, bytes, expectProtocolError, hex, onlyProtocolErrors, seededBytes } from "../support/rpcap-helpers.ts";

const summary = (ms: RpcapMessage[]) => ms.map((m) => [m.header.ver, m.header.type, m.header.value, m.header.plen, hex(m.payload)]);

const stream = new Uint8Array([
  ...encodeMessage(0, T.AUTH_REQ, 0, encodeAuthRequest({ authType: 1, username: "u", password: "pw" })),
  ...encodeEmptyMessage(T.FINDALLIF_REQ),
  ...encodeMessage(0, T.OPEN_REQ, 0, new TextEncoder().encode("lo")),
  ...encodeMessage(0, T.STARTCAP_REQ, 0, encodeStartCapRequestPayload({ snaplen: 65535, readTimeoutMs: 250, flags: 0, portdata: 0, program: [{ code: 6, jt: 0, jf: 0, k: 65535 }] })),
  ...encodeError(0, 16, "no"),
  ...encodeEmptyMessage(T.CLOSE),
]);
const EXPECTED = [
  [0, T.AUTH_REQ, 0, 11, "000100000001000275" + "7077"],
  [0, T.FINDALLIF_REQ, 0, 0, ""],
  [0, T.OPEN_REQ, 0, 2, "6c6f"],
  [0, T.STARTCAP_REQ, 0, 28, "0000ffff000000fa00000000000100000000000100060000" + "0000ffff"],
  [0, T.ERROR, 16, 2, "6e6f"],
  [0, T.CLOSE, 0, 0, ""],
];

describe("splits", () => {
  test("the whole stream at once", () => {
    expect(summary(RpcapFramer.forDaemonControl(128 * 1024).push(stream))).toEqual(EXPECTED);
  });

  test("every single split point", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const f = RpcapFramer.forDaemonControl(128 * 1024);
      const got = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))];
      expect(summary(got)).toEqual(EXPECTED);
      expect(f.bufferedBytes).toBe(0);
      f.end();
    }
  });

  test("every pair of split points", () => {
    for (let a = 0; a <= stream.length; a += 3) {
      for (let b = a; b <= stream.length; b += 5) {
        const f = RpcapFramer.forDaemonControl(128 * 1024);
        const got = [...f.push(stream.subarray(0, a)), ...f.push(stream.subarray(a, b)), ...f.push(stream.subarray(b))];
        expect(summary(got)).toEqual(EXPECTED);
      }
    }
  });

  test("one byte at a time; pendingHeader shows a message awaiting its body", () => {
    const f = RpcapFramer.forDaemonControl(128 * 1024);
    const got: RpcapMessage[] = [];
    for (let i = 0; i < stream.length; i++) {
      got.push(...f.push(stream.subarray(i, i + 1)));
      if (i === 7) expect(f.pendingHeader).toEqual({ ver: 0, type: T.AUTH_REQ, value: 0, plen: 11 });
    }
    expect(summary(got)).toEqual(EXPECTED);
  });

  test("payloads are owned: reusing the pushed buffer does not change them", () => {
    const f = RpcapFramer.forDaemonControl(1024);
    const chunk = encodeMessage(0, T.OPEN_REQ, 0, new TextEncoder().encode("lo"));
    const [m] = f.push(chunk);
    chunk.fill(0);
    expect(hex(m!.payload)).toBe("6c6f");
  });

  test("data channel: PACKET messages split anywhere", () => {
    const data = encodePacketStream(batchOf([[1, 2, 3, [1, 2, 3]], [4, 5, 6, []], [7, 8, 1500, Array(1500).fill(7)]]), 1);
    const whole = summary(RpcapFramer.forDataChannel(1500).push(data));
    expect(whole.map((m) => m[3])).toEqual([23, 20, 1520]);
    for (let cut = 0; cut <= data.length; cut += 7) {
      const f = RpcapFramer.forDataChannel(1500);
      expect(summary([...f.push(data.subarray(0, cut)), ...f.push(data.subarray(cut))])).toEqual(whole);
    }
  });
});

describe("caps and errors", () => {
  test("a 4 GiB plen is refused as soon as the header is in; nothing more is emitted", () => {
    const f = RpcapFramer.forDaemonControl(128 * 1024);
    expect(f.push(encodeEmptyMessage(T.CLOSE)).length).toBe(1);
    expect(f.push(bytes("0004 0000 ffff"))).toEqual([]);
    expectProtocolError(() => f.push(bytes("ffff")), "plen-too-large", 8 + 4);
    expectProtocolError(() => f.push(encodeEmptyMessage(T.CLOSE)), "plen-too-large", 12);
    expect(f.error?.code).toBe("plen-too-large");
    expect(f.bufferedBytes).toBe(0);
  });

  const capRows: [string, number, number, number][] = [
    // [what, type, largest accepted plen, global cap]
    ["AUTH: 8 + 2 x 256", T.AUTH_REQ, 520, 1 << 20],
    ["OPEN: PCAP_BUF_SIZE", T.OPEN_REQ, 1024, 1 << 20],
    ["STARTCAP: 12 + 8 + 8192 x 8", T.STARTCAP_REQ, 65556, 1 << 20],
    ["UPDATEFILTER: 8 + 8192 x 8", T.UPDATEFILTER_REQ, 65544, 1 << 20],
    ["UPDATEFILTER under a smaller global cap", T.UPDATEFILTER_REQ, 4096, 4096],
    ["SETSAMPLING: exactly its struct", T.SETSAMPLING_REQ, 8, 1 << 20],
    ["unknown type: a small allowance, to be answered", 0x55, 65536, 1 << 20],
  ];
  for (const [what, type, largest, globalCap] of capRows) {
    test(`cap ${what}`, () => {
      expect(maxRequestPlen(type, globalCap)).toBe(largest);
      const ok = RpcapFramer.forDaemonControl(globalCap);
      expect(ok.push(encodeMessage(0, type, 0, new Uint8Array(largest))).length).toBe(1);
      const bad = RpcapFramer.forDaemonControl(globalCap);
      expectProtocolError(() => bad.push(encodeHeader({ ver: 0, type, value: 0, plen: largest + 1 })), "plen-too-large", 4);
    });
  }

  test("data channel: non-PACKET messages must be empty; PACKET capped at 20 + max caplen", () => {
    expectProtocolError(() => RpcapFramer.forDataChannel(100).push(bytes("0007 0000 00000079")), "plen-too-large", 4);
    expect(RpcapFramer.forDataChannel(100).push(bytes("0007 0000 00000078")).length).toBe(0);
    expectProtocolError(() => RpcapFramer.forDataChannel(100).push(bytes("0001 0010 00000001")), "plen-too-large", 4);
  });

  test("end(): a stream that stops inside a message is truncated", () => {
    const f = RpcapFramer.forDaemonControl(1024);
    f.push(encodeEmptyMessage(T.CLOSE));
    f.push(bytes("0003 0000 00000002 6c"));
    expectProtocolError(() => f.end(), "truncated", 8);
    const g = RpcapFramer.forDaemonControl(1024);
    g.push(bytes("0003"));
    expectProtocolError(() => g.end(), "truncated", 0);
    const clean = RpcapFramer.forDaemonControl(1024);
    clean.push(encodeEmptyMessage(T.CLOSE));
    clean.end();
  });

  test("bounded random bytes in random chunks: only ProtocolError, and none after the first", () => {
    const random = seededBytes(1234);
    for (let i = 0; i < 2000; i++) {
      const data = random(1 + (random(1)[0]! % 128));
      const f = RpcapFramer.forDaemonControl(4096);
      let failed = false;
      for (let at = 0; at < data.length; ) {
        const n = 1 + (random(1)[0]! % 16);
        try {
          f.push(data.subarray(at, at + n));
        } catch (error) {
          onlyProtocolErrors(() => {
            throw error;
          });
          failed = true;
        }
        if (failed) {
          expect(() => f.push(encodeEmptyMessage(T.CLOSE))).toThrow();
          break;
        }
        at += n;
      }
    }
  });
});
