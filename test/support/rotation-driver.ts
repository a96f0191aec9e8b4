// Drives the rotating file output from a capture file, as the runner will: flags through
// src/cli/rotation-options.ts, batches from the project's streaming file reader. Used by the
// rotation tests (real files, kill -9, tmpfs) and by scripts/bench/rotation.ts.
//
//   bun test/support/rotation-driver.ts -r IN -w OUT [-F pcapng] [rotation flags...]
//       [--batch-packets N] [--pace-ms MS]        re-cut batches, sleep between them (real-time runs)
//       [--reconnect-after N] [--queue-drop-after N]  send a PipelineEvent after N packets
//       [--plain]                                 one CaptureFileWriter file, no rotation (bench anchor)
//       [--loop N]                                read the input N times (timestamps as they are)
// Prints the output's counters as JSON on stdout at the end; exit 1 when the output failed.
import { parseArgs } from "node:util";
import { ROTATION_CLI_OPTIONS, buildRotatingFileOutput, rotatingFileSpecFromFlags } from "../../src/cli/rotation-options.ts";
import { stderrLogger } from "../../src/logging/index.ts";
import { CaptureFileWriter } from "../../src/outputs/capture-file/index.ts";
import type { PipelineOutput } from "../../src/outputs/output.ts";
import { BATCH_RECORD_HEADER_BYTES, pickMeta, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { streamCaptureFile } from "../../src/protocols/pcap/index.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    ...ROTATION_CLI_OPTIONS,
    read: { type: "string", short: "r" },
    write: { type: "string", short: "w" },
    format: { type: "string", short: "F" },
    "batch-packets": { type: "string" },
    "pace-ms": { type: "string" },
    "reconnect-after": { type: "string" },
    "queue-drop-after": { type: "string" },
    plain: { type: "boolean" },
    loop: { type: "string" },
  },
  strict: true,
});

const format = (values.format ?? "pcap") as "pcap" | "pcapng";
const batchPackets = values["batch-packets"] ? Number(values["batch-packets"]) : undefined;
const paceMs = Number(values["pace-ms"] ?? 0);
const reconnectAfter = values["reconnect-after"] ? Number(values["reconnect-after"]) : undefined;
const queueDropAfter = values["queue-drop-after"] ? Number(values["queue-drop-after"]) : undefined;
const loops = Number(values.loop ?? 1);

let failed = false;
let stopping = false;
const logger = stderrLogger("probe");

async function firstInterface(path: string) {
  const { reader, batches } = streamCaptureFile(path);
  for await (const _ of batches) break;
  return { interfaces: reader.interfaces, precision: reader.timestampPrecision ?? "micro" };
}

const { interfaces, precision } = await firstInterface(values.read!);
let output: PipelineOutput;
let plain: CaptureFileWriter | undefined;
if (values.plain) {
  plain = await CaptureFileWriter.open({ target: values.write!, format, linktype: interfaces[0]!.linktype, snaplen: interfaces[0]!.snaplen, precision });
  output = {
    name: "file",
    start: async () => {},
    write: (b) => plain!.write(b),
    stop: () => plain!.close(),
    counters: () => ({ packets_written: plain!.packetsWritten }),
  };
} else {
  const spec = rotatingFileSpecFromFlags("driver", values, { path: values.write!, format });
  if (!spec) throw new Error("no rotation flag given (use --plain for one file)");
  output = buildRotatingFileOutput(spec, {
    logger,
    onFatal: () => {
      failed = true;
      stopping = true;
    },
  });
}
await output.start({
  inputs: interfaces.map((i, k) => ({ name: i.name ?? `input${k}`, linktype: i.linktype, snaplen: i.snaplen, description: i.name ?? values.read! })),
  precision,
});

process.on("SIGTERM", () => (stopping = true));
process.on("SIGINT", () => (stopping = true));

let sent = 0;
for (let loop = 0; loop < loops && !stopping; loop++) {
  const { batches } = streamCaptureFile(values.read!);
  for await (const batch of batches) {
    // Pieces end at every batchPackets records and exactly where an event is due.
    const boundaries = [reconnectAfter, queueDropAfter].filter((n): n is number => n !== undefined).map((n) => n - sent);
    for (const piece of cut(batch, batchPackets ?? batch.count, boundaries)) {
      if (stopping) break;
      await output.write(piece);
      const before = sent;
      sent += piece.count;
      if (reconnectAfter !== undefined && before < reconnectAfter && sent >= reconnectAfter) output.event?.({ kind: "input-reconnect", input: 0 });
      if (queueDropAfter !== undefined && before < queueDropAfter && sent >= queueDropAfter) {
        output.event?.({ kind: "queue-drop", output: "file", packets: 7 });
      }
      if (paceMs > 0) await Bun.sleep(paceMs);
    }
    if (stopping) break;
  }
}
await output.stop();
process.stdout.write(`${JSON.stringify({ sent, ...output.counters() })}\n`);
process.exit(failed ? 1 : 0);

/** The batch as pieces of at most `n` records, also cut before each index in `at` (views into its bytes). */
function cut(batch: PacketBatch, n: number, at: readonly number[]): PacketBatch[] {
  const pieces: PacketBatch[] = [];
  const view = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
  let start = 0;
  let startOffset = 0;
  let offset = 0;
  for (let i = 0; i <= batch.count; i++) {
    if (i - start === n || (i > start && (i === batch.count || at.includes(i)))) {
      const meta = batch.meta && pickMeta(batch.meta, Array.from({ length: i - start }, (_, k) => start + k));
      pieces.push({ ...batch, bytes: batch.bytes.subarray(startOffset, offset), count: i - start, ...(meta ? { meta } : {}) });
      start = i;
      startOffset = offset;
    }
    if (i < batch.count) offset += BATCH_RECORD_HEADER_BYTES + view.getUint32(offset + 8, true);
  }
  return pieces;
}
