// Binds CaptureFileReader to files and streams: an async generator of batches for any size of
// file, and readCaptureFile() which gathers a whole (small) file for tests and tools.
import { ProtocolError } from "../../packet/protocol-error.ts";
import type { PacketBatch, TimestampPrecision } from "../../packet/packet-batch.ts";
import { CaptureFileReader, type CaptureFileFormat, type CaptureFileReaderOptions, type CaptureInterfaceInfo } from "./file-reader.ts";

/** Everything read from a capture file. */
export interface CaptureFileContents {
  format: CaptureFileFormat;
  /** The first interface's linktype word (a classic file's header linktype, FCS bits as stored). */
  linktype: number;
  snaplen: number;
  precision: TimestampPrecision;
  interfaces: readonly CaptureInterfaceInfo[];
  batches: PacketBatch[];
}

/**
 * Yields the batches of a capture file read from `source` chunk by chunk (memory stays bounded
 * by one chunk, one unit and one batch). `reader` may be passed to inspect the format and
 * interfaces while iterating. A bad file ends the iteration with the reader's ProtocolError,
 * after the batches decoded before the bad unit.
 */
export async function* readCaptureBatches(
  source: AsyncIterable<Uint8Array>,
  reader: CaptureFileReader = new CaptureFileReader(),
): AsyncGenerator<PacketBatch, void, undefined> {
  const ready: PacketBatch[] = [];
  const collect = (batch: PacketBatch): void => {
    ready.push(batch);
  };
  for await (const chunk of source) {
    try {
      reader.push(chunk, collect);
    } catch (error) {
      yield* ready.splice(0);
      throw error;
    }
    yield* ready.splice(0);
  }
  reader.end();
}

/**
 * Streams the file at `path` (Bun.file, read in chunks; chunks are adopted since each is a
 * fresh buffer handed to us).
 */
export function streamCaptureFile(
  path: string,
  options: CaptureFileReaderOptions = {},
): { reader: CaptureFileReader; batches: AsyncGenerator<PacketBatch, void, undefined> } {
  const reader = new CaptureFileReader({ adoptChunks: true, ...options });
  const stream = Bun.file(path).stream() as unknown as AsyncIterable<Uint8Array>;
  return { reader, batches: readCaptureBatches(stream, reader) };
}

/**
 * Reads a whole capture file into memory. Rejects with ProtocolError on a malformed file
 * (codes: bad-magic, truncated, caplen-exceeds-snaplen, caplen-exceeds-len, block length errors...).
 * A file with no interface at all (pcapng with only an SHB) rejects with "no-interface".
 */
export async function readCaptureFile(path: string, options: CaptureFileReaderOptions = {}): Promise<CaptureFileContents> {
  const { reader, batches } = streamCaptureFile(path, options);
  const all: PacketBatch[] = [];
  for await (const batch of batches) all.push(batch);
  const first = reader.interfaces[0];
  if (!first) {
    throw new ProtocolError("no-interface", "capture file describes no interface", 0);
  }
  return {
    format: reader.format!,
    linktype: first.linktype,
    snaplen: first.snaplen,
    precision: first.precision,
    interfaces: reader.interfaces,
    batches: all,
  };
}
