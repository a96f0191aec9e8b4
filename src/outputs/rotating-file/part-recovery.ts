// Recovery of NAME.part files left by a run that was killed (kill -9, power cut): each is cut
// after its last complete record and renamed to NAME, so kill -9 loses only the records that
// were still staged in memory. Only files our template makes are looked at.
//
// The scan reads record headers through a window and skips packet data, checking each header
// with the codec's rules (pcap: caplen within the block cap; pcapng: block length checks and
// the trailing length copy), so a torn tail of any length is found without reading gigabytes.
import { closeSync, ftruncateSync, openSync, readSync, readdirSync, renameSync, statSync, unlinkSync, existsSync } from "node:fs";
import { join } from "node:path";
import { ProtocolError } from "../../packet/protocol-error.ts";
import {
  DEFAULT_MAX_BLOCK_BYTES,
  PCAP_GLOBAL_HEADER_BYTES,
  PCAP_RECORD_HEADER_BYTES,
  PCAPNG_BLOCK_PEEK_BYTES,
  PcapngBlockType,
  classifyPcapMagic,
  pcapngBlockLength,
} from "../../protocols/pcap/index.ts";
import type { Logger } from "../../logging/index.ts";
import { PART_SUFFIX } from "./part-file.ts";

/** Bytes read per window while scanning: large reads, few system calls. */
const SCAN_WINDOW_BYTES = 4 * 1024 * 1024;

export interface PartScan {
  /** Bytes up to the end of the last complete record (0 when not even the header is whole). */
  readonly validBytes: number;
  readonly records: number;
  readonly fileBytes: number;
}

/** Reads ranges of a file through a reused window. */
class WindowReader {
  private window = new Uint8Array(SCAN_WINDOW_BYTES);
  private start = 0;
  private end = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  /** `length` bytes at `position` (a view valid until the next call), or undefined past the end. */
  bytes(position: number, length: number): Uint8Array | undefined {
    if (position + length > this.size) return undefined;
    if (position < this.start || position + length > this.end) {
      if (length > this.window.byteLength) this.window = new Uint8Array(length);
      const got = readSync(this.fd, this.window, 0, this.window.byteLength, position);
      this.start = position;
      this.end = position + got;
      if (position + length > this.end) return undefined;
    }
    return this.window.subarray(position - this.start, position - this.start + length);
  }
}

/** Finds where the last complete record of a pcap or pcapng file ends. */
export function scanPartFile(path: string): PartScan {
  const fd = openSync(path, "r");
  try {
    const reader = new WindowReader(fd, statSync(path).size);
    const head = reader.bytes(0, 4);
    if (!head) return { validBytes: 0, records: 0, fileBytes: reader.size };
    const magic = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
    return magic === PcapngBlockType.SECTION_HEADER ? scanPcapng(reader) : scanPcap(reader);
  } finally {
    closeSync(fd);
  }
}

function scanPcap(reader: WindowReader): PartScan {
  const header = reader.bytes(0, PCAP_GLOBAL_HEADER_BYTES);
  const kind = header && classifyPcapMagic(new DataView(header.buffer, header.byteOffset, 4).getUint32(0, true));
  if (!header || !kind) return { validBytes: 0, records: 0, fileBytes: reader.size };
  let at = PCAP_GLOBAL_HEADER_BYTES;
  let records = 0;
  for (;;) {
    const record = reader.bytes(at, PCAP_RECORD_HEADER_BYTES);
    if (!record) break;
    const caplen = new DataView(record.buffer, record.byteOffset, PCAP_RECORD_HEADER_BYTES).getUint32(8, kind.littleEndian);
    // A torn header can hold any caplen: one beyond the cap or the file ends the scan.
    if (caplen > DEFAULT_MAX_BLOCK_BYTES || at + PCAP_RECORD_HEADER_BYTES + caplen > reader.size) break;
    at += PCAP_RECORD_HEADER_BYTES + caplen;
    records++;
  }
  return { validBytes: at, records, fileBytes: reader.size };
}

function scanPcapng(reader: WindowReader): PartScan {
  let at = 0;
  let littleEndian = true;
  let records = 0;
  let validBytes = 0;
  for (;;) {
    const peek = reader.bytes(at, PCAPNG_BLOCK_PEEK_BYTES);
    if (!peek) break;
    let total: number;
    try {
      total = pcapngBlockLength(peek, 0, littleEndian);
    } catch (error) {
      if (error instanceof ProtocolError) break;
      throw error;
    }
    const block = reader.bytes(at, total);
    if (!block) break;
    const view = new DataView(block.buffer, block.byteOffset, total);
    const type = view.getUint32(0, true);
    if (type === PcapngBlockType.SECTION_HEADER) littleEndian = view.getUint32(8, true) === 0x1a2b3c4d;
    if (view.getUint32(total - 4, littleEndian) !== total) break;
    const blockType = view.getUint32(0, littleEndian);
    if (blockType === PcapngBlockType.ENHANCED_PACKET || blockType === PcapngBlockType.SIMPLE_PACKET || blockType === PcapngBlockType.OBSOLETE_PACKET) {
      records++;
    }
    at += total;
    // A file is usable once its SHB and IDBs are whole; before the first packet that is the end of the last block.
    validBytes = at;
  }
  return { validBytes, records, fileBytes: reader.size };
}

/** What recovery did with one .part file. */
export interface RecoveredFile {
  readonly partPath: string;
  /** The final name, or undefined when the file held nothing whole and was deleted. */
  readonly path: string | undefined;
  readonly records: number;
  readonly bytesCut: number;
}

/**
 * Recovers every `X.part` in `directory` whose X `isOurs`: truncated to its last complete
 * record and renamed to X; one with no complete header is deleted. Each action is logged.
 * A .part whose final name already exists is left alone (logged): we never overwrite.
 */
export function recoverPartFiles(directory: string, isOurs: (name: string) => boolean, logger: Logger): RecoveredFile[] {
  const recovered: RecoveredFile[] = [];
  for (const entry of readdirSync(directory)) {
    if (!entry.endsWith(PART_SUFFIX)) continue;
    const name = entry.slice(0, -PART_SUFFIX.length);
    if (!isOurs(name)) continue;
    const partPath = join(directory, entry);
    const path = join(directory, name);
    const scan = scanPartFile(partPath);
    if (scan.validBytes === 0) {
      unlinkSync(partPath);
      logger.warn(`recovery: deleted ${partPath}: ${scan.fileBytes} bytes without a complete file header`);
      recovered.push({ partPath, path: undefined, records: 0, bytesCut: scan.fileBytes });
      continue;
    }
    if (existsSync(path)) {
      logger.warn(`recovery: left ${partPath} as it is: ${path} already exists`);
      continue;
    }
    const bytesCut = scan.fileBytes - scan.validBytes;
    if (bytesCut > 0) {
      const fd = openSync(partPath, "r+");
      try {
        ftruncateSync(fd, scan.validBytes);
      } finally {
        closeSync(fd);
      }
    }
    renameSync(partPath, path);
    logger.info(
      `recovery: ${partPath} -> ${path}: ${scan.records} complete records kept` +
        (bytesCut > 0 ? `, ${bytesCut} bytes of a torn last record cut` : ""),
    );
    recovered.push({ partPath, path, records: scan.records, bytesCut });
  }
  return recovered;
}
