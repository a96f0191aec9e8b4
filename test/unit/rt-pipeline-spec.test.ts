// RT on the pipeline (issue 13 on issue 10's runner): the rt input and output kinds of the spec,
// rt:// from the command-line flags, the runner treating an rt input like a file (it awaits the
// outputs' writes, so the acknowledgement follows the write), refusing it in a merge, keeping an
// rt output serving after the inputs end, and handing kernel drops to the RT server.
import { afterEach, describe, expect, test } from "bun:test";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "../../src/capture/capture-source.ts";
import { inputsFromFlags } from "../../src/cli/inputs-from-flags.ts";
import { parseRtCommand } from "../../src/cli/commands/rt.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import type { PipelineOutput } from "../../src/pipeline/output.ts";
import { RtServer } from "../../src/outputs/rt/index.ts";
import { PacketBatchBuilder, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { ProbeError } from "../../src/packet/probe-error.ts";
import { buildOutput, OUTPUTS } from "../../src/outputs/registry.ts";
import { INPUTS, type BuiltInput } from "../../src/pipeline/registry.ts";
import { PipelineRunner } from "../../src/pipeline/runner.ts";
import { checkPipelineSpec, inputName, type PipelineSpec } from "../../src/pipeline/spec.ts";

function spec(raw: unknown): PipelineSpec {
  const checked = checkPipelineSpec(raw);
  if (!("spec" in checked)) throw new Error(JSON.stringify(checked.issues));
  return checked.spec;
}

function batchOf(count: number): PacketBatch {
  const builder = new PacketBatchBuilder(1, "micro");
  for (let i = 0; i < count; i++) builder.push(1_700_000_000 + i, 0, 60, new Uint8Array(60).fill(i));
  return builder.take()!;
}

/** A source the test drives: batches on demand, kernel drops as the test sets them. */
class DrivenSource implements CaptureSource {
  readonly description = "driven";
  handlers: CaptureHandlers | undefined;
  kernelDropped = 0;
  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    this.handlers = handlers;
    return { linktype: 1, snaplen: 65535, precision: "micro", description: this.description };
  }
  async setFilter(): Promise<void> {}
  async stats(): Promise<CaptureStats> {
    return { delivered: 0, kernel: { received: 100, dropped: this.kernelDropped, interfaceDropped: 0 } };
  }
  async stop(): Promise<CaptureStats> {
    return this.stats();
  }
}

const originalFile = INPUTS.file;
const originalRt = OUTPUTS.rt;
let runner: PipelineRunner | undefined;
afterEach(async () => {
  INPUTS.file = originalFile;
  OUTPUTS.rt = originalRt;
  await runner?.stop();
  runner = undefined;
});

/** Replaces the file input's builder with `source`, live or not. */
function useSource(source: CaptureSource, live: boolean): void {
  INPUTS.file = (): BuiltInput => ({ source, live });
}

describe("spec", () => {
  test("rt input and output: defaults, names, and a spool needs reliable", () => {
    const s = spec({ inputs: [{ kind: "rt", url: "rt://10.0.0.1:3435?state=/var/lib/x" }], outputs: [{ kind: "rt" }] });
    expect(s.inputs[0]).toMatchObject({ kind: "rt", reconnect: true });
    expect(inputName(s.inputs[0]!)).toBe("10.0.0.1:3435");
    expect(s.outputs[0]).toMatchObject({ kind: "rt", reliable: false, spoolFull: "block", statusIntervalMs: 1000, keepServing: true });
    const refused = checkPipelineSpec({ inputs: [{ kind: "file", path: "a" }], outputs: [{ kind: "rt", spool: "/tmp/s" }] });
    expect("issues" in refused && refused.issues[0]!.path).toEqual(["outputs", 0, "spool"]);
  });

  test("-i rt://... becomes an rt input; tcp:// stays pcap-over-ip", () => {
    const inputs = inputsFromFlags([{ name: "interface", value: "rt://127.0.0.1:9?state=s.json" }, { name: "interface", value: "tcp://127.0.0.1:9" }], { filter: "udp" });
    expect(inputs.map((i) => i.kind)).toEqual(["rt", "pcap-over-ip"]);
    expect(inputs[0]).toEqual({ kind: "rt", url: "rt://127.0.0.1:9?state=s.json", filter: "udp" });
  });

  test("a pcap-over-ip input given an rt:// URL is refused naming the kind to use", () => {
    const built = () => INPUTS["pcap-over-ip"](spec({ inputs: [{ kind: "pcap-over-ip", url: "rt://127.0.0.1:9" }], outputs: [{ kind: "file", path: "x" }] }).inputs[0] as never, { precision: "micro", ownTraffic: "", log: memoryLogger() });
    expect(built).toThrow(/an RT server: use an input of kind rt/);
  });

  test("probe rt flags make one input and one rt output with every setting", () => {
    const command = parseRtCommand(["-r", "a.pcap", "--reliable", "--spool", "/tmp/s", "--spool-max-bytes", "2M", "--spool-segment-bytes", "64KiB", "--queue-bytes", "1MiB", "--spool-full", "drop-new", "--status-interval-ms", "0", "--listen", "127.0.0.1:0", "-c", "5"]);
    if (command === "help") throw new Error("help");
    expect(command.spec.inputs).toMatchObject([{ kind: "file", path: "a.pcap" }]);
    expect(command.spec.outputs).toMatchObject([{ kind: "rt", reliable: true, spool: "/tmp/s", spoolMaxBytes: 2_000_000, spoolSegmentBytes: 65_536, queueBytes: 1_048_576, spoolFull: "drop-new", statusIntervalMs: 0, listen: [{ host: "127.0.0.1", port: 0 }] }]);
    expect(command.spec.stopAfterPackets).toBe(5);
    expect(() => parseRtCommand(["-r", "a.pcap", "--spool", "/tmp/s"])).toThrow("--spool needs --reliable");
    expect(() => parseRtCommand(["-r", "a.pcap", "--spool-full", "sometimes"])).toThrow("--spool-full is block, drop-oldest, drop-new, not 'sometimes'");
  });
});

describe("runner", () => {
  test("an rt input is read like a file: the source's onBatch settles only after a file output's write", async () => {
    // The rt:// source acknowledges a batch when onBatch settles; here a slow output stands for
    // the file, and onBatch must not settle before it has written.
    const source = new DrivenSource();
    useSource(source, false);
    let release: (() => void) | undefined;
    const written: number[] = [];
    const slowOutput: PipelineOutput = {
      name: "file",
      async start() {},
      write(batch) {
        return new Promise<void>((resolve) => {
          release = () => {
            written.push(batch.count);
            resolve();
          };
        });
      },
      async stop() {},
      counters: () => ({}),
    };
    OUTPUTS.rt = async () => ({ output: slowOutput });
    runner = await PipelineRunner.start(spec({ inputs: [{ kind: "file", path: "x" }], outputs: [{ kind: "rt" }] }), { log: memoryLogger(), buildOutput });
    let settled = false;
    const pending = source.handlers!.onBatch(batchOf(3));
    expect(pending).toBeInstanceOf(Promise);
    void Promise.resolve(pending).then(() => (settled = true));
    await Bun.sleep(20);
    expect(settled).toBe(false);
    release!();
    await pending;
    expect(settled).toBe(true);
    expect(written).toEqual([3]);
  });

  test("the rt input's builder says live: false", () => {
    const built = INPUTS.rt(spec({ inputs: [{ kind: "rt", url: "rt://127.0.0.1:9" }], outputs: [{ kind: "file", path: "x" }] }).inputs[0] as never, { precision: "micro", ownTraffic: "", log: memoryLogger() });
    expect(built.live).toBe(false);
    expect(built.source.description).toBe("rt://127.0.0.1:9");
  });

  test("an rt input in a merge is refused before anything connects", async () => {
    const log = memoryLogger();
    const run = PipelineRunner.start(spec({ inputs: [{ kind: "rt", url: "rt://127.0.0.1:9" }, { kind: "file", path: "/nonexistent.pcap" }], outputs: [{ kind: "file", path: "/nonexistent/out.pcap" }] }), { log, buildOutput });
    const error = await run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProbeError);
    expect((error as ProbeError).code).toBe("rt-input-merged");
    expect((error as ProbeError).category).toBe("usage");
  });

  test("kernel drops reach the RT server as the runner polls them; an rt output keeps the run going after the input ends", async () => {
    const source = new DrivenSource();
    useSource(source, true);
    const log = memoryLogger();
    runner = await PipelineRunner.start(spec({ inputs: [{ kind: "file", path: "x" }], outputs: [{ kind: "rt", listen: [{ host: "127.0.0.1", port: 0 }] }] }), { log, buildOutput });
    const server = runner.outputs[0] as RtServer;
    expect(server).toBeInstanceOf(RtServer);
    expect(log.lines.some((l) => /rt: serving driven on 127\.0\.0\.1:\d+ \(unreliable\)/.test(l))).toBe(true);
    source.kernelDropped = 7;
    const deadline = Date.now() + 5_000;
    while (server.counters().kernel_drops === 0 && Date.now() < deadline) await Bun.sleep(50);
    expect(server.counters().kernel_drops).toBe(7);
    expect(log.lines.filter((l) => l.includes("capture lost 7 packets in the kernel")).length).toBe(1);

    let ended = false;
    void runner.ended.then(() => (ended = true));
    source.handlers!.onEnd("end-of-file");
    await Bun.sleep(50);
    expect(ended).toBe(false);
    expect(log.lines.some((l) => l.includes("rt serving on until SIGINT or SIGTERM"))).toBe(true);
  });

  test("kernel drops of each live input of a merge reach the RT server with the input's name", async () => {
    const sources = [new DrivenSource(), new DrivenSource()];
    const queue = [...sources];
    INPUTS.file = (): BuiltInput => ({ source: queue.shift()!, live: true });
    const log = memoryLogger();
    runner = await PipelineRunner.start(
      spec({ inputs: [{ kind: "file", path: "a", name: "first" }, { kind: "file", path: "b", name: "second" }], outputs: [{ kind: "rt", listen: [{ host: "127.0.0.1", port: 0 }] }] }),
      { log, buildOutput },
    );
    const server = runner.outputs[0] as RtServer;
    sources[1]!.kernelDropped = 3;
    const deadline = Date.now() + 5_000;
    while (server.counters().kernel_drops === 0 && Date.now() < deadline) await Bun.sleep(50);
    expect(server.counters().kernel_drops).toBe(3);
    expect(log.lines.filter((l) => l.includes("capture lost 3 packets in the kernel (input second)")).length).toBe(1);
  });

  test("with keepServing false the run ends with its input", async () => {
    const source = new DrivenSource();
    useSource(source, false);
    runner = await PipelineRunner.start(spec({ inputs: [{ kind: "file", path: "x" }], outputs: [{ kind: "rt", listen: [{ host: "127.0.0.1", port: 0 }], keepServing: false }] }), { log: memoryLogger(), buildOutput });
    source.handlers!.onEnd("end-of-file");
    expect(await runner.ended).toEqual({ reason: "end-of-input" });
  });
});
