// One file being written: created as NAME.part (exclusively and without following a link: never
// over an existing file or through a planted symbolic link), records staged in memory and
// written in large chunks, given its final NAME when it closes — by a hard link, which fails
// rather than replace a NAME that appeared meanwhile (a rename would silently replace it).
// A failed write (disk full, I/O error) truncates the file back to the end of the last chunk
// that was written whole, so what is on disk always ends on a record boundary.
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { identityMismatch, identityOf, lstatQuiet, type FileIdentity } from "./file-identity.ts";

/** Suffix of a file still being written. */
export const PART_SUFFIX = ".part";

/**
 * Bytes staged before a write: large enough that a write costs little per packet, small enough
 * that kill -9 loses little (the flush timer also writes at least every FLUSH_INTERVAL_MS).
 */
export const STAGING_BYTES = 1024 * 1024;

/**
 * Runs this large skip the staging copy: a capture batch (up to 1 MiB) is written as it is, one
 * system call without a memcpy; smaller runs are gathered so a trickle of packets is not one
 * write each.
 */
export const DIRECT_WRITE_BYTES = 64 * 1024;

/** A write that failed; `code` is the errno name (ENOSPC, EACCES, EIO...). */
export class FileWriteError extends Error {
  override readonly name = "FileWriteError";
  constructor(
    readonly code: string,
    readonly path: string,
    message: string,
    /** Packets staged in the chunk that was lost. */
    readonly lostPackets = 0,
  ) {
    super(message);
  }
}

/**
 * link() failures that mean "this filesystem has no hard links" (vfat, some FUSE and network
 * filesystems): there the final name is given by rename after checking that it is free.
 */
const NO_HARD_LINK_CODES: readonly string[] = ["EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK", "ENOSYS"];

/** How a closed file ended up: its final path, or why it stayed NAME.part (or was deleted). */
export interface PartCloseResult {
  /** The final path, or undefined when the file was deleted (header only) or kept as .part. */
  readonly path: string | undefined;
  /** Set when the file could not take its final name; it stays NAME.part, complete. */
  readonly conflict?: string;
}

export function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException)?.code ?? "EIO";
}

export class PartFile {
  /** Bytes on disk, always a record boundary. */
  private durableBytes = 0;
  private staged: Uint8Array[] = [];
  private stagedBytes = 0;
  private stagedPackets = 0;
  private fd: number | undefined;
  /** Packets handed to append() so far (staged, written or lost with a failed write). */
  acceptedPackets = 0;

  private constructor(
    readonly path: string,
    fd: number,
    /** Device, inode and owner of the .part, from its open descriptor: what the manifest records. */
    readonly identity: FileIdentity,
    private readonly onWritten: (packets: number, bytes: number) => void,
  ) {
    this.fd = fd;
  }

  /** The .part path being written. */
  get partPath(): string {
    return this.path + PART_SUFFIX;
  }

  /** Bytes written or staged. */
  get size(): number {
    return this.durableBytes + this.stagedBytes;
  }

  /**
   * Creates `path`.part (failing with EEXIST rather than touching an existing file) and writes
   * the header at once, so a file on disk always starts with a complete header. `onWritten` hears
   * of every successful write (packets and bytes now on disk). Throws FileWriteError.
   */
  static create(path: string, header: Uint8Array, onWritten: (packets: number, bytes: number) => void): PartFile {
    let fd: number;
    try {
      // lstat: a dangling symbolic link is a name taken too.
      if (lstatQuiet(path)) throw Object.assign(new Error("exists"), { code: "EEXIST" });
      fd = openSync(path + PART_SUFFIX, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    } catch (error) {
      const code = errnoCode(error);
      throw new FileWriteError(code, path, `cannot create ${path + PART_SUFFIX}: ${code}`);
    }
    const file = new PartFile(path, fd, identityOf(fstatSync(fd, { bigint: true })), onWritten);
    file.stage(header, 0);
    try {
      file.flush();
    } catch (error) {
      file.discard();
      throw error;
    }
    return file;
  }

  /**
   * Takes records: small runs are copied into the staging (written with the next flush, or when
   * it is full); a run of DIRECT_WRITE_BYTES or more is written at once from the caller's bytes
   * (borrowed only for this call), after what is staged.
   */
  append(bytes: Uint8Array, packets: number): void {
    if (bytes.byteLength >= DIRECT_WRITE_BYTES) {
      this.flush();
      this.stage(bytes, packets);
      this.flush();
      return;
    }
    if (this.stagedBytes + bytes.byteLength > STAGING_BYTES) this.flush();
    this.stage(bytes.slice(), packets);
  }

  /** Writes what is staged. On failure truncates to the last whole chunk and throws FileWriteError. */
  flush(): void {
    if (this.stagedBytes === 0 || this.fd === undefined) return;
    const chunks = this.staged;
    const packets = this.stagedPackets;
    this.staged = [];
    this.stagedBytes = 0;
    this.stagedPackets = 0;
    let written = 0;
    try {
      for (const chunk of chunks) {
        let at = 0;
        while (at < chunk.byteLength) at += writeSync(this.fd, chunk, at, chunk.byteLength - at, this.durableBytes + written + at);
        written += chunk.byteLength;
      }
      this.durableBytes += written;
      this.onWritten(packets, written);
    } catch (error) {
      const code = errnoCode(error);
      try {
        ftruncateSync(this.fd, this.durableBytes);
      } catch {
        // The file may keep a torn tail; .part recovery cuts it at the last whole record.
      }
      throw new FileWriteError(code, this.path, `cannot write ${this.partPath}: ${code}`, packets);
    }
  }

  /** Writes what is staged and syncs the file to disk (fsync). */
  sync(): void {
    this.flush();
    if (this.fd !== undefined) fsyncSync(this.fd);
  }

  /**
   * Flushes, closes and gives NAME.part its final NAME (with `fsync`, the file and its directory
   * are synced first). A file that holds only its header is deleted instead. The .part name
   * must still be this file (a name swapped for another file is left alone), and NAME must be
   * free (a NAME that appeared meanwhile is not replaced): either way the file stays NAME.part,
   * complete, and the result says why. Throws FileWriteError when the last flush fails (the
   * file is still closed and named, ending at its last whole chunk).
   */
  close(options: { fsync: boolean; keepEmpty?: boolean; headerBytes: number }): PartCloseResult {
    if (this.fd === undefined) return { path: undefined };
    let failure: unknown;
    try {
      if (options.fsync) this.sync();
      else this.flush();
    } catch (error) {
      failure = error;
    }
    closeSync(this.fd);
    this.fd = undefined;
    const result = this.settle(options);
    this.closeResult = result;
    if (options.fsync && result.path) syncDirectory(dirname(this.path));
    if (failure) throw failure;
    return result;
  }

  /** What close() made of the file (also when its last flush failed and it threw). */
  closeResult: PartCloseResult | undefined;

  /** Bytes on disk once closed (the part's final size). */
  get closedBytes(): number {
    return this.durableBytes;
  }

  /** Closes and deletes the .part file (it holds nothing worth keeping). */
  discard(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (!this.stillOurs()) return;
    try {
      unlinkSync(this.partPath);
    } catch {
      // already gone
    }
  }

  private settle(options: { keepEmpty?: boolean; headerBytes: number }): PartCloseResult {
    const why = identityMismatch(lstatQuiet(this.partPath), { identity: this.identity, size: undefined });
    if (why) return { path: undefined, conflict: `${this.partPath}: ${why} since probe created it; left alone` };
    if (this.durableBytes <= options.headerBytes && !options.keepEmpty) {
      unlinkSync(this.partPath);
      return { path: undefined };
    }
    return giveFinalName(this.partPath, this.path);
  }

  /** True while the .part name is still the file this object created. */
  private stillOurs(): boolean {
    return identityMismatch(lstatQuiet(this.partPath), { identity: this.identity, size: undefined }) === undefined;
  }

  private stage(bytes: Uint8Array, packets: number): void {
    this.staged.push(bytes);
    this.stagedBytes += bytes.byteLength;
    this.stagedPackets += packets;
    this.acceptedPackets += packets;
  }
}

/** fsync of a directory, so a rename survives a power cut. */
export function syncDirectory(path: string): void {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Gives `partPath` its final name `path` without ever replacing a file there: a hard link (which
 * fails with EEXIST when the name is taken) and then the .part name removed; on a filesystem
 * without hard links, a rename after checking that the name is free.
 */
export function giveFinalName(partPath: string, path: string): PartCloseResult {
  try {
    linkSync(partPath, path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === "EEXIST") return { path: undefined, conflict: `${path} appeared while it was written; kept as ${partPath}` };
    if (!NO_HARD_LINK_CODES.includes(code)) throw error;
    if (lstatQuiet(path)) return { path: undefined, conflict: `${path} appeared while it was written; kept as ${partPath}` };
    renameSync(partPath, path);
    return { path };
  }
  unlinkSync(partPath);
  return { path };
}
