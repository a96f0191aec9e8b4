// src/cli/rotation-options.ts: flags into the validated rotating-file spec, and one clear line
// naming the flag for each mistake.
import { describe, expect, test } from "bun:test";
import { rotatingFileSpecFromFlags } from "../../src/cli/rotation-options.ts";
import { UsageError } from "../../src/cli/usage-error.ts";

const file = { path: "/var/cap/x-%N.pcap", format: "pcap" as const };

describe("rotation flags", () => {
  test("no rotation flag: no spec (the command writes one plain file)", () => {
    expect(rotatingFileSpecFromFlags("capture", {}, file)).toBeUndefined();
  });

  test("every flag lands in the spec; -C counts millions of bytes; defaults", () => {
    const spec = rotatingFileSpecFromFlags(
      "capture",
      {
        "rotate-period": "day",
        "rotate-per-period": "4",
        "rotate-seconds": "30",
        "rotate-interval": "3600",
        "rotate-size": "10",
        "rotate-packets": "1000",
        "ring-files": "5",
        "retain-bytes": "2G",
        "retain-min-free": "1Gi",
        "fsync-on-rotate": true,
        "post-rotate-command": "gzip",
        "on-disk-full": "drop",
      },
      file,
    )!;
    expect(spec).toEqual({
      kind: "rotating-file",
      path: file.path,
      format: "pcap",
      triggers: { period: { unit: "day", perPeriod: 4 }, everySeconds: 30, intervalSeconds: 3600, maxBytes: 10_000_000, maxPackets: 1000 },
      rotateOnLoss: true,
      retention: { files: 5, bytes: 2_000_000_000, minFreeBytes: 1024 ** 3 },
      fsyncOnRotate: true,
      postRotateCommand: "gzip",
      onDiskFull: "drop",
    });
    expect(Object.isFrozen(spec)).toBe(true);
    expect(rotatingFileSpecFromFlags("capture", { "no-rotate-on-loss": true }, file)!.rotateOnLoss).toBe(false);
    expect(rotatingFileSpecFromFlags("capture", { "rotate-period": "hour" }, file)!.triggers.period).toEqual({ unit: "hour", perPeriod: 1 });
  });

  test.each([
    [{ "rotate-period": "week" }, file, /--rotate-period wants hour or day, not 'week'/],
    [{ "rotate-per-period": "4" }, file, /--rotate-per-period needs --rotate-period/],
    [{ "rotate-size": "ten" }, file, /-C wants a number above 0, not 'ten'/],
    [{ "rotate-packets": "0" }, file, /--rotate-packets wants a whole number above 0/],
    [{ "retain-bytes": "lots" }, file, /--retain-bytes wants a size such as 65536, 500K, 256M, 2G or 1GiB, not 'lots'/],
    [{ "on-disk-full": "panic" }, file, /--on-disk-full wants stop or drop/],
    [{ "rotate-size": "1" }, { path: "-", format: "pcap" as const }, /rotation flags need -w FILE, not standard output/],
    [{ "rotate-size": "1" }, { path: "x-%Q.pcap", format: "pcap" as const }, /unknown conversion %Q/],
    [{ "rotate-on-loss": true, "no-rotate-on-loss": true }, file, /not both/],
    [{ "rotate-size": "1" }, { path: "/cap/%Y/x.pcap", format: "pcap" as const }, /conversions go in the file name, not the directory/],
  ])("mistake %# is one usage error naming its flag", (flags, target, message) => {
    expect(() => rotatingFileSpecFromFlags("capture", flags as Record<string, string>, target)).toThrow(UsageError);
    expect(() => rotatingFileSpecFromFlags("capture", flags as Record<string, string>, target)).toThrow(message);
  });
});
