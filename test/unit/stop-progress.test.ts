// StopProgress: the names of the parts of a stop still pending, in the order they began, and
// every change reported (the stop watchdog mirrors them to its Worker).
import { describe, expect, test } from "bun:test";
import { StopProgress } from "../../src/pipeline/index.ts";
import { outputLabel } from "../../src/pipeline/runner.ts";
import type { PipelineOutput } from "../../src/pipeline/output.ts";
import type { OutputSpec } from "../../src/pipeline/spec.ts";

describe("StopProgress", () => {
  test("steps are pending while they run, in start order; a failing step is no longer pending", async () => {
    const seen: string[][] = [];
    const progress = new StopProgress((pending) => seen.push([...pending]));
    const hang = Promise.withResolvers<void>();
    const first = progress.step("input lo", () => hang.promise);
    const second = progress.step("output file x", async () => {
      throw new Error("disk full");
    });
    expect(progress.pending()).toEqual(["input lo", "output file x"]);
    await expect(second).rejects.toThrow("disk full");
    expect(progress.pending()).toEqual(["input lo"]);
    hang.resolve();
    await first;
    expect(progress.pending()).toEqual([]);
    expect(seen).toEqual([["input lo"], ["input lo", "output file x"], ["input lo"], []]);
  });

  test("outputs are named by kind and address", () => {
    const output = { name: "x" } as PipelineOutput;
    const label = (spec: Partial<OutputSpec> & { kind: string }) => outputLabel(output, spec as OutputSpec);
    expect(label({ kind: "file", path: "-" })).toBe("file - (standard output)");
    expect(label({ kind: "file", path: "/tmp/a.pcap" })).toBe("file /tmp/a.pcap");
    expect(label({ kind: "pcap-over-ip", listen: [{ host: "127.0.0.1", port: 57012 }], connect: [{ host: "10.0.0.1", port: 9 }] })).toBe("pcap-over-ip 127.0.0.1:57012 to 10.0.0.1:9");
    expect(label({ kind: "rpcapd", listen: { port: 2002, ipv4Only: false } })).toBe("rpcapd *:2002");
    expect(label({ kind: "udpstr", target: { host: "127.0.0.1", port: 9999 } })).toBe("udpstr to 127.0.0.1:9999");
    expect(outputLabel(output, undefined)).toBe("x");
  });
});
