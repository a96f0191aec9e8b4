// src/cli/byte-size.ts: the one size parser every byte-size flag uses. K M G T are powers of
// 1000, KiB MiB GiB TiB powers of 1024, letters case-insensitive, a plain number is bytes; each
// mistake is one exact line naming the flag.
import { describe, expect, test } from "bun:test";
import { byteSizeFlag, parseByteSize, QUEUE_BYTES_BOUNDS } from "../../src/cli/byte-size.ts";
import { parseCaptureCommand } from "../../src/cli/commands/capture.ts";
import { parseForwardCommand } from "../../src/cli/commands/forward.ts";
import { parsePcapOverIpCommand } from "../../src/cli/commands/pcap-over-ip.ts";
import { parseRtCommand } from "../../src/cli/commands/rt.ts";
import { UsageError } from "../../src/cli/usage-error.ts";

describe("parseByteSize", () => {
  test.each([
    ["0", 0],
    ["65536", 65_536],
    ["512B", 512],
    ["1K", 1_000],
    ["1k", 1_000],
    ["1KB", 1_000],
    ["1M", 1_000_000],
    ["256M", 256_000_000],
    ["1G", 1_000_000_000],
    ["2g", 2_000_000_000],
    ["1T", 1_000_000_000_000],
    ["1KiB", 1_024],
    ["1kib", 1_024],
    ["1Ki", 1_024],
    ["1MiB", 1_048_576],
    ["256MiB", 268_435_456],
    ["1GiB", 1_073_741_824],
    ["1Gi", 1_073_741_824],
    ["1TiB", 1_099_511_627_776],
    ["1.5K", 1_500],
    ["1.5G", 1_500_000_000],
    ["0.5KiB", 512],
    ["1.0", 1],
    ["8191T", 8_191_000_000_000_000],
    ["8TiB", 8 * 2 ** 40],
  ])("%s is %d bytes", (text, bytes) => {
    expect(parseByteSize("--x", text)).toBe(bytes);
  });

  test.each([
    ["lots", "--x wants a size such as 65536, 500K, 256M, 2G or 1GiB, not 'lots'"],
    ["", "--x wants a size such as 65536, 500K, 256M, 2G or 1GiB, not ''"],
    ["-1", "--x wants a size such as 65536, 500K, 256M, 2G or 1GiB, not '-1'"],
    ["1 G", "--x wants a size such as 65536, 500K, 256M, 2G or 1GiB, not '1 G'"],
    ["1P", "--x wants a size such as 65536, 500K, 256M, 2G or 1GiB, not '1P'"],
    ["1iB", "--x wants a size such as 65536, 500K, 256M, 2G or 1GiB, not '1iB'"],
    ["1e6", "--x wants a size such as 65536, 500K, 256M, 2G or 1GiB, not '1e6'"],
    [".5K", "--x wants a size such as 65536, 500K, 256M, 2G or 1GiB, not '.5K'"],
    ["0x10", "--x wants a size such as 65536, 500K, 256M, 2G or 1GiB, not '0x10'"],
    ["0.1KiB", "--x 0.1KiB is not a whole number of bytes"],
    ["1.5", "--x 1.5 is not a whole number of bytes"],
    ["9007199254740992", "--x 9007199254740992 is too large (at most 9007199254740991 bytes)"],
    ["9008T", "--x 9008T is too large (at most 9007199254740991 bytes)"],
    ["8192TiB", "--x 8192TiB is too large (at most 9007199254740991 bytes)"],
    ["99999999999999999999999G", "--x 99999999999999999999999G is too large (at most 9007199254740991 bytes)"],
  ])("'%s' is refused: %s", (text, message) => {
    let thrown: unknown;
    try {
      parseByteSize("--x", text);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as Error).message).toBe(message);
    expect(message).not.toContain("\n");
  });

  test("9007199254740991 (Number.MAX_SAFE_INTEGER) itself is accepted exactly", () => {
    expect(parseByteSize("--x", "9007199254740991")).toBe(Number.MAX_SAFE_INTEGER);
  });

  test("bounds: one line naming the flag and both ends", () => {
    expect(parseByteSize("--queue-bytes", "64KiB", QUEUE_BYTES_BOUNDS)).toBe(65_536);
    expect(parseByteSize("--queue-bytes", "1TiB", QUEUE_BYTES_BOUNDS)).toBe(2 ** 40);
    expect(() => parseByteSize("--queue-bytes", "64K", QUEUE_BYTES_BOUNDS)).toThrow("--queue-bytes must be between 65536 and 1099511627776 bytes, not 64000");
    expect(() => parseByteSize("--queue-bytes", "2T", QUEUE_BYTES_BOUNDS)).toThrow("--queue-bytes must be between 65536 and 1099511627776 bytes, not 2000000000000");
  });

  test("byteSizeFlag: an absent flag stays undefined", () => {
    expect(byteSizeFlag("--x", undefined)).toBeUndefined();
    expect(byteSizeFlag("--x", "2K")).toBe(2_000);
  });
});

describe("every byte-size flag means the same", () => {
  // The same text through each command's flag lands as the same number of bytes in the spec.
  test.each([["1G", 1_000_000_000], ["1GiB", 1_073_741_824], ["2M", 2_000_000], ["16MiB", 16_777_216]])("%s is %d bytes on every command", (text, bytes) => {
    const rt = parseRtCommand(["-r", "a.pcap", "--reliable", "--spool-max-bytes", text, "--spool-segment-bytes", text, "--queue-bytes", text]);
    if (rt === "help") throw new Error("help");
    expect(rt.spec.outputs[0]).toMatchObject({ kind: "rt", spoolMaxBytes: bytes, spoolSegmentBytes: bytes, queueBytes: bytes });

    const poip = parsePcapOverIpCommand(["-r", "a.pcap", "--queue-bytes", text]);
    if (poip === "help") throw new Error("help");
    expect(poip.spec.outputs[0]).toMatchObject({ kind: "pcap-over-ip", queueBytes: bytes });

    const capture = parseCaptureCommand(["-r", "a.pcap", "-w", "x-%N.pcap", "--retain-bytes", text, "--retain-min-free", text]);
    if (capture === "help") throw new Error("help");
    expect(capture.spec.outputs[0]).toMatchObject({ kind: "rotating-file", retention: { bytes, minFreeBytes: bytes } });

    if (bytes <= 2 ** 30) {
      const forward = parseForwardCommand(["--udpstr", "127.0.0.1:2000", "-r", "a.pcap", "--sndbuf", text]);
      if (forward === "help") throw new Error("help");
      expect(forward.spec.outputs[0]).toMatchObject({ kind: "udpstr", sendBufferBytes: bytes });
    }
  });

  test("-C keeps tcpdump's meaning (millions of bytes, a plain number) and -B its KiB", () => {
    const capture = parseCaptureCommand(["-i", "lo", "-B", "4096", "-w", "x.pcap", "-C", "0.5"]);
    if (capture === "help") throw new Error("help");
    expect(capture.spec.outputs[0]).toMatchObject({ kind: "rotating-file", triggers: { maxBytes: 500_000 } });
    expect(capture.spec.inputs[0]).toMatchObject({ kind: "interface", bufferKiB: 4096 });
    expect(() => parseCaptureCommand(["-i", "lo", "-w", "x.pcap", "-C", "1G"])).toThrow("-C wants a number above 0, not '1G'");
  });
});
