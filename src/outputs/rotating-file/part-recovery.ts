// Recovery of NAME.part files left by a run that was killed (kill -9, power cut): each is cut
// after its last complete record and renamed to NAME, so kill -9 loses only the records that
// were still staged in memory. Only .part files the manifest records as ours (owned-files.ts)
// are touched, each opened without following a link and checked to be the very file recorded:
// a .part planted as a symbolic link (to /etc/passwd, say) is never truncated.
//
// The scan reads record headers through a window and skips packet data, checking each header
// with the codec's rules (pcap: caplen within the block cap; pcapng: block length checks and
// the trailing length copy), so a torn tail of any length is found without reading gigabytes.
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync, unlinkSync } from "node:fs";
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
import { identityMismatch, lstatQuiet } from "./file-identity.ts";
import type { OwnedFiles } from "./owned-files.ts";
import { giveFinalName } from "./part-file.ts";

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

/** Finds where the last complete record of a pcap or pcapng file ends (opened without following a link). */
export function scanPartFile(path: string): PartScan {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return scanOpenFile(fd);
  } finally {
    closeSync(fd);
  }
}

/** scanPartFile on an open descriptor. */
function scanOpenFile(fd: number): PartScan {
  const reader = new WindowReader(fd, fstatSync(fd).size);
  const head = reader.bytes(0, 4);
  if (!head) return { validBytes: 0, records: 0, fileBytes: reader.size };
  const magic = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
  return magic === PcapngBlockType.SECTION_HEADER ? scanPcapng(reader) : scanPcap(reader);
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
 * Recovers every `X.part` the manifest records as ours: truncated to its last complete record
 * and renamed to X; one with no complete header is deleted. Each action is logged. A .part
 * whose final name already exists is left alone (logged): we never overwrite. A .part that is
 * no longer the file probe created (a link, another inode, another owner) is left alone and
 * forgotten (logged).
 */
export function recoverPartFiles(owned: OwnedFiles, logger: Logger): RecoveredFile[] {
  const recovered: RecoveredFile[] = [];
  for (const entry of owned.all()) {
    if (entry.kind !== "part") continue;
    const result = recoverOne(owned, entry.name, entry.base, logger);
    if (result) recovered.push(result);
  }
  return recovered;
}

function recoverOne(owned: OwnedFiles, partName: string, name: string, logger: Logger): RecoveredFile | undefined {
  const entry = owned.entry(partName)!;
  const partPath = join(owned.directory, partName);
  const path = join(owned.directory, name);
  let fd: number;
  try {
    fd = openSync(partPath, constants.O_RDWR | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") logger.warn(`recovery: left ${partPath} alone: ${code === "ELOOP" ? "a symbolic link" : code} where probe's file was`);
    owned.forget(partName);
    return undefined;
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    const final = lstatQuiet(path);
    if (stat.nlink === 2n && final && final.dev === stat.dev && final.ino === stat.ino) {
      // Killed between giving the file its name and removing the .part name: both are this file.
      const size = Number(stat.size);
      unlinkSync(partPath);
      owned.recordClosed(name, entry.identity, size);
      logger.info(`recovery: ${partPath} was already ${path}: the .part name removed`);
      return { partPath, path, records: 0, bytesCut: 0 };
    }
    const why = stat.isFile() ? identityMismatch(lstatQuiet(partPath), entry) : "not a regular file";
    if (why) {
      logger.warn(`recovery: left ${partPath} alone: ${why} since probe created it`);
      owned.forget(partName);
      return undefined;
    }
    const scan = scanOpenFile(fd);
    if (scan.validBytes === 0) {
      unlinkSync(partPath);
      owned.forget(partName);
      logger.warn(`recovery: deleted ${partPath}: ${scan.fileBytes} bytes without a complete file header`);
      return { partPath, path: undefined, records: 0, bytesCut: scan.fileBytes };
    }
    if (final) {
      logger.warn(`recovery: left ${partPath} as it is: ${path} already exists`);
      return undefined;
    }
    const bytesCut = scan.fileBytes - scan.validBytes;
    if (bytesCut > 0) ftruncateSync(fd, scan.validBytes);
    const named = giveFinalName(partPath, path);
    if (!named.path) {
      logger.warn(`recovery: ${named.conflict}`);
      return undefined;
    }
    owned.recordClosed(name, entry.identity, scan.validBytes);
    logger.info(
      `recovery: ${partPath} -> ${path}: ${scan.records} complete records kept` +
        (bytesCut > 0 ? `, ${bytesCut} bytes of a torn last record cut` : ""),
    );
    return { partPath, path, records: scan.records, bytesCut };
  } finally {
    closeSync(fd);
  }
}
