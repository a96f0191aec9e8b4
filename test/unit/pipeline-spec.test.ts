// The pipeline's declared parts (issue 10): the spec schema and its files (YAML/JSON, errors
// naming key and line, print → read gives the same spec), the registry covering every kind,
// runs of one input in merged batches, and a CaptureHub whose shared stages run once per
// captured batch however many consumers share it.
import { describe, expect, test } from "bun:test";
import { formatPipeline, parsePipelineText } from "../../src/pipeline/pipeline-file.ts";
import type { CaptureHandlers, CaptureInfo, CaptureSource } from "../../src/capture/capture-source.ts";
import { PacketBatchBuilder, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { ProbeError } from "../../src/packet/probe-error.ts";
import { CaptureHub } from "../../src/pipeline/capture-hub.ts";
import { concatBatches, inputRuns } from "../../src/pipeline/input-runs.ts";
import { OUTPUTS } from "../../src/outputs/registry.ts";
import { INPUTS, STAGES } from "../../src/pipeline/registry.ts";
import { checkPipelineSpec, inputSpecSchema, outputSpecSchema, stageSpecSchema } from "../../src/pipeline/spec.ts";
import type { PacketStage } from "../../src/pipeline/stage.ts";

const minimal = { inputs: [{ kind: "file", path: "a.pcap" }], outputs: [{ kind: "file", path: "b.pcap" }] };

describe("PipelineSpec", () => {
  test("defaults fill in and the result is frozen all the way down", () => {
    const checked = checkPipelineSpec(minimal);
    if (!("spec" in checked)) throw new Error("refused");
    expect(checked.spec.inputs[0]).toMatchObject({ kind: "file", snaplen: 262144, realtime: false, reader: "probe" });
    expect(checked.spec.outputs[0]).toMatchObject({ kind: "file", format: "pcap" });
    expect(Object.isFrozen(checked.spec)).toBe(true);
    expect(Object.isFrozen(checked.spec.inputs[0])).toBe(true);
  });

  test("no inputs is allowed only with an rpcapd output (its sessions open their own)", () => {
    expect("issues" in checkPipelineSpec({ outputs: [{ kind: "file", path: "b.pcap" }] })).toBe(true);
    expect("spec" in checkPipelineSpec({ outputs: [{ kind: "rpcapd", listen: { port: 0 } }] })).toBe(true);
  });

  test("every kind of the three unions has a builder in the registry", () => {
    const kinds = (schema: { options: readonly { shape: { kind: { value: string } } }[] }) => schema.options.map((o) => o.shape.kind.value).sort();
    expect(Object.keys(INPUTS).sort()).toEqual(kinds(inputSpecSchema as never));
    expect(Object.keys(STAGES).sort()).toEqual(kinds(stageSpecSchema as never));
    expect(Object.keys(OUTPUTS).sort()).toEqual(kinds(outputSpecSchema as never));
  });
});

describe("pipeline files", () => {
  const full = {
    inputs: [
      { kind: "interface", device: "eth0", filter: "tcp port 443", direction: "in" },
      { kind: "pcap-over-ip", url: "tcp://10.0.0.5:57012", reconnect: true },
    ],
    stages: [
      { kind: "snaplen", bytes: 96 },
      { kind: "sampling", method: "one-every-n", value: 10 },
      { kind: "hooks", files: ["a.js", "b.js"], hookFail: "drop" },
      { kind: "direction", inbound: "dst net 10.0.0.0/8" },
      { kind: "anonymize", keyFile: "cp.key", only: "src" },
      { kind: "truncate-headers", payloadBytes: 16 },
      { kind: "checksums", action: "check" },
    ],
    outputs: [
      { kind: "file", path: "-", format: "pcapng" },
      { kind: "pcap-over-ip", listen: [{ host: "::1", port: 0 }], allow: ["10.0.0.0/8"], onlyDirection: "in" },
      { kind: "udpstr", target: { host: "127.0.0.1", port: 5000 } },
      { kind: "rotating-file", path: "cap-%Y%m%d-%N.pcapng", format: "pcapng", triggers: { period: { unit: "day", perPeriod: 4 }, maxBytes: 1_000_000 }, retention: { files: 10 } },
    ],
    precision: "nano",
    stopAfterPackets: 1000,
  };

  for (const format of ["yaml", "json"] as const) {
    test(`${format}: printed, read back, printed again gives the same text and the same spec`, () => {
      const checked = checkPipelineSpec(full);
      if (!("spec" in checked)) throw new Error(JSON.stringify(checked.issues));
      const text = formatPipeline(checked.spec, format);
      const back = parsePipelineText(`p.${format}`, text);
      expect(back).toEqual(checked.spec);
      expect(formatPipeline(back, format)).toBe(text);
    });
  }

  const bad: [string, string, string][] = [
    ["p.yaml", "inputs:\n  - kind: file\n    path: a.pcap\noutputs:\n  - kind: file\n    path: b.pcap\n    format: pcapx\n", "outputs[0].format (line 7)"],
    ["p.yaml", "inputs:\n  - kind: file\n    path: a.pcap\n  - kind: interface\n    snaplen: 0\n    device: eth0\noutputs:\n  - kind: file\n    path: b.pcap\n", "inputs[1].snaplen (line 5)"],
    ["p.json", '{\n  "inputs": [{"kind": "file", "path": "a.pcap"}],\n  "outputs": [\n    {"kind": "udpstr", "target": {"host": "h", "port": 70000}}\n  ]\n}\n', "outputs[0].target.port (line 4)"],
    ["p.yaml", "inputs:\n  - kind: file\n    path: a.pcap\nstages:\n  - kind: anonymize\n    keyFile: k\n    passphrase: p\noutputs:\n  - kind: file\n    path: b.pcap\n", "stages[0] (line 5): anonymize wants exactly one of keyFile, passphrase or prefixes"],
    ["p.yaml", "inputs:\n  - kind: file\n    path: a.pcap\noutputs:\n  - kind: rotating-file\n    path: b-%N.pcap\n    triggers:\n      maxMegabytes: 3\n", "outputs[0].triggers.maxMegabytes (line 8): unknown key"],
    ["p.yaml", "inputs: [\n", "not valid YAML"],
    ["p.json", '{"inputs": ', "not valid JSON"],
  ];
  for (const [name, text, where] of bad) {
    test(`a bad file names the key and line: ${where}`, () => {
      let error: unknown;
      try {
        parsePipelineText(name, text);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ProbeError);
      expect((error as ProbeError).category).toBe("usage");
      expect((error as ProbeError).code).toBe("bad-spec");
      expect((error as Error).message).toContain(`${name}: `);
      expect((error as Error).message).toContain(where);
    });
  }
});

function batchOf(stamps: number[], inputs?: number[]): PacketBatch {
  const builder = new PacketBatchBuilder(1, "micro");
  for (const s of stamps) builder.push(s, 0, 60, new Uint8Array(60).fill(s & 0xff));
  const batch = builder.take()!;
  return inputs ? { ...batch, meta: { inputs: Uint16Array.from(inputs) } } : batch;
}

describe("input runs", () => {
  test("a merged batch is cut where the input changes, as views; concatBatches joins them back", () => {
    const batch = batchOf([1, 2, 3, 4, 5], [0, 0, 1, 0, 2]);
    const runs = inputRuns(batch);
    expect(runs.map((r) => [r.input, r.batch.count])).toEqual([[0, 2], [1, 1], [0, 1], [2, 1]]);
    expect(runs[1]!.batch.bytes.buffer).toBe(batch.bytes.buffer);
    const joined = concatBatches(runs.map((r) => r.batch));
    expect(joined.bytes).toEqual(batch.bytes);
    expect([...joined.meta!.inputs!]).toEqual([0, 0, 1, 0, 2]);
  });

  test("a batch of one input is one run, itself", () => {
    const batch = batchOf([1, 2]);
    expect(inputRuns(batch)).toEqual([{ input: 0, batch }]);
  });
});

/** A live-like source whose batches the test pushes. */
class PushSource implements CaptureSource {
  readonly description = "push";
  handlers: CaptureHandlers | undefined;
  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    this.handlers = handlers;
    return { linktype: 1, snaplen: 262144, precision: "micro", description: "push" };
  }
  async setFilter(): Promise<void> {}
  async stats() {
    return { delivered: 0 };
  }
  async stop() {
    return { delivered: 0 };
  }
}

describe("CaptureHub with shared stages", () => {
  test("two consumers with different snaplens share one capture; the stage runs once per captured batch", async () => {
    const sources: PushSource[] = [];
    let applied = 0;
    const everySecond: PacketStage = {
      name: "every-second",
      apply: (batch) => {
        applied += batch.count;
        return batch.count > 1 ? { ...batch, ...trimToFirst(batch) } : batch;
      },
      counters: () => ({ applied }),
    };
    const hub = new CaptureHub(
      () => {
        const s = new PushSource();
        sources.push(s);
        return s;
      },
      async () => [everySecond],
    );
    const got: number[][] = [[], []];
    await hub.subscribe({ interface: "lo", snaplen: 100 }, { write: (b) => void got[0]!.push(b.count) });
    await hub.subscribe({ interface: "lo", snaplen: 30 }, { write: (b) => void got[1]!.push(b.count) });
    expect(hub.captureCount).toBe(1);
    for (let i = 0; i < 5; i++) sources[0]!.handlers!.onBatch(batchOf([i * 2, i * 2 + 1]));
    await Bun.sleep(50);
    expect(applied).toBe(10);
    expect(got[0]).toEqual([1, 1, 1, 1, 1]);
    expect(got[1]).toEqual([1, 1, 1, 1, 1]);
    await hub.close();
  });
});

/** The first record of a batch (a stand-in for a stage that drops). */
function trimToFirst(batch: PacketBatch): PacketBatch {
  const caplen = new DataView(batch.bytes.buffer, batch.bytes.byteOffset).getUint32(8, true);
  return { ...batch, bytes: batch.bytes.subarray(0, 16 + caplen), count: 1 };
}
