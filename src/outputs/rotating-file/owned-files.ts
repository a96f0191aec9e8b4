// The files a rotating output owns — the only ones it may truncate, rename or delete. probe runs
// as root in directories others may write, so a name is not proof: a pre-existing `out.pcap`, or
// a symbolic link planted as `out-0002.pcap`, matches the template as well as our own files do.
// Ownership is recorded instead. Each file the output creates (its NAME.part, the NAME it
// becomes, and what a -z command made of it, NAME.gz...) goes into a manifest beside the files,
// with its device and inode, owner and (once closed) size. A later run with the same -w template
// reads the manifest and can retire the earlier run's files; nothing else is ever touched.
//
// Before anything is deleted, truncated or renamed, the file on disk must still be that file:
// lstat (never following a link) finds a regular file with one link, the recorded owner, device,
// inode and size. A manifest edited to name /etc/passwd or ../x is refused by its names (plain
// names in the output directory that the template makes, nothing with a '/'), and anything it
// names that is not the file probe wrote fails the identity check and is left alone. The
// manifest itself is opened without following links and trusted only when it is a regular file
// with one link, owned by the user probe runs as, writable by no one else.
//
// The manifest is `.probe-files-HASH` (HASH: of the template), one JSON record a line, appended
// with one write per record, rewritten (to a temporary created exclusively, then renamed) once
// the records of deleted files outnumber the live ones.
import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
  type BigIntStats,
} from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../logging/index.ts";
import { peerText } from "../../logging/index.ts";
import { identityMismatch, identityOf, isPlainName, lstatQuiet, type FileIdentity } from "./file-identity.ts";
import { PART_SUFFIX } from "./part-file.ts";
import { createExclusive } from "../../sys/exclusive-file.ts";

/** Names of manifests start so; tests and directory listings leave them out by it. */
export const MANIFEST_PREFIX = ".probe-files-";
/** Suffix of the manifest being rewritten (created exclusively, renamed over the manifest). */
const MANIFEST_TEMP_SUFFIX = ".tmp";
/**
 * Largest manifest read: a record is ~150 bytes and the manifest is rewritten when stale
 * records outnumber live ones, so this holds several hundred thousand files of ours; a larger
 * one is not ours (or is damaged) and is refused rather than read into memory.
 */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Stale records tolerated beyond the live ones before the manifest is rewritten. */
export const MANIFEST_COMPACT_SLACK_RECORDS = 1024;
/** Names quoted in one "left alone" line; the rest are counted. */
export const MAX_REPORTED_NAMES = 5;
/** Format version in the manifest's first record. */
const MANIFEST_VERSION = 1;

/** What one record says a file is: a capture file being written, a closed one, or a -z result. */
export type OwnedKind = "part" | "file" | "derived";

export interface OwnedEntry {
  readonly kind: OwnedKind;
  /** The name on disk (NAME.part for a part). */
  readonly name: string;
  /** The capture file it belongs to (NAME): a retired group goes whole. */
  readonly base: string;
  readonly identity: FileIdentity;
  /** Bytes when it was recorded; undefined for a part (it grows, and a crash tears it). */
  readonly size: number | undefined;
  /** Creation order across runs: retention retires the oldest first. */
  readonly order: number;
}

/** A capture file and what a -z command made of it: counted as one file by -W, retired together. */
export interface OwnedGroup {
  readonly base: string;
  readonly order: number;
  readonly entries: readonly OwnedEntry[];
  readonly bytes: number;
}

/** The manifest's file name for a template (the file name part of -w). */
export function manifestName(template: string): string {
  return MANIFEST_PREFIX + createHash("sha256").update(template).digest("hex").slice(0, 16);
}

/** True for names of manifests (and their temporaries): not capture files. */
export function isManifestName(name: string): boolean {
  return name.startsWith(MANIFEST_PREFIX);
}

/** One manifest record as written. */
type Record =
  | { readonly probe: "owned-files"; readonly version: number; readonly template: string }
  | { readonly op: "add"; readonly kind: OwnedKind; readonly name: string; readonly base: string; readonly dev: string; readonly ino: string; readonly uid: number; readonly size?: number }
  | { readonly op: "remove"; readonly name: string };

const euid = (): number => process.geteuid?.() ?? -1;

export class OwnedFiles {
  private readonly entries = new Map<string, OwnedEntry>();
  private nextOrder = 0;
  private fd: number | undefined;
  private readonly manifestPath: string;
  /** Records in the manifest file (live and stale): decides when to rewrite it. */
  private recordsOnDisk = 0;
  /** The manifest could not be written once: said once, then this run keeps its records in memory. */
  private persistFailed = false;
  /** A failed write may have left half a record: the next record starts on a new line. */
  private needsNewline = false;

  /**
   * @param directory the output directory
   * @param template the -w file name template (names the manifest)
   * @param isOurName true for capture file names the template makes (NAME, without .part)
   */
  constructor(
    readonly directory: string,
    private readonly template: string,
    private readonly isOurName: (name: string) => boolean,
    private readonly logger: Logger,
  ) {
    this.manifestPath = join(directory, manifestName(template));
  }

  /** The manifest's path. */
  get path(): string {
    return this.manifestPath;
  }

  /** Opens (or creates) the manifest and reads the earlier runs' records. Logs what it refuses. */
  load(): void {
    let fd: number;
    try {
      fd = openSync(this.manifestPath, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "EIO";
      const why = code === "ELOOP" ? "is a symbolic link" : `cannot be opened (${code})`;
      this.logger.warn(`${this.manifestPath} ${why}: left alone; this run's files are recorded in memory only`);
      this.persistFailed = true;
      return;
    }
    const stat = fstatSync(fd, { bigint: true });
    const refusal = !stat.isFile()
      ? "is not a regular file"
      : stat.nlink !== 1n
        ? `has ${stat.nlink} hard links`
        : Number(stat.uid) !== euid()
          ? `is owned by uid ${stat.uid}, not by probe's uid ${euid()}`
          : (Number(stat.mode) & 0o022) !== 0
            ? "is writable by others"
            : stat.size > BigInt(MAX_MANIFEST_BYTES)
              ? `is larger than ${MAX_MANIFEST_BYTES} bytes`
              : undefined;
    if (refusal) {
      closeSync(fd);
      this.logger.warn(`${this.manifestPath} ${refusal}: not trusted, left alone; this run's files are recorded in memory only`);
      this.persistFailed = true;
      return;
    }
    this.fd = fd;
    const text = readAll(fd, Number(stat.size));
    if (text.length === 0) this.append([{ probe: "owned-files", version: MANIFEST_VERSION, template: this.template }]);
    else this.replay(text);
    this.compactIfStale();
  }

  /** Closes the manifest. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** The record for a name on disk, if it is ours. */
  entry(name: string): OwnedEntry | undefined {
    return this.entries.get(name);
  }

  /** Every record, oldest first. */
  all(): OwnedEntry[] {
    return [...this.entries.values()].sort((a, b) => a.order - b.order);
  }

  /** Records NAME.part, just created exclusively (its identity from the open descriptor). */
  recordPart(base: string, identity: FileIdentity): void {
    this.add({ kind: "part", name: base + PART_SUFFIX, base, identity, size: undefined });
  }

  /** NAME.part became NAME (same inode) with `size` bytes. */
  recordClosed(base: string, identity: FileIdentity, size: number): void {
    const part = this.entries.get(base + PART_SUFFIX);
    this.add({ kind: "file", name: base, base, identity, size }, part);
  }

  /** A file a -z command made of `base` (`stat` from lstat: a regular file with one link). */
  recordDerived(base: string, name: string, stat: BigIntStats): void {
    this.add({ kind: "derived", name, base, identity: identityOf(stat), size: Number(stat.size) });
  }

  /** A recorded file changed size while it stayed the same file (a -z command rewrote it in place). */
  recordResized(name: string, size: number): void {
    const entry = this.entries.get(name);
    if (!entry || entry.size === size) return;
    this.add({ ...entry, size }, entry);
  }

  /** Forgets a record (the file was deleted, or is no longer the one written). */
  forget(name: string): void {
    if (!this.entries.delete(name)) return;
    this.append([{ op: "remove", name }]);
    this.compactIfStale();
  }

  /** Why `name` on disk is not the file recorded (or not recorded at all); undefined when it is ours. */
  mismatch(name: string): string | undefined {
    const entry = this.entries.get(name);
    if (!entry) return "not recorded as probe's";
    return identityMismatch(lstatQuiet(join(this.directory, name)), entry);
  }

  /**
   * Our capture files with what -z made of them, oldest first, each entry checked on disk: a
   * file that is gone is forgotten quietly (a compressor removes the original; an operator
   * deletes files); one that is no longer the file probe wrote is forgotten with one line and
   * never touched again.
   */
  groups(): OwnedGroup[] {
    const byBase = new Map<string, { order: number; entries: OwnedEntry[]; bytes: number }>();
    for (const entry of this.all()) {
      const stat = lstatQuiet(join(this.directory, entry.name));
      const why = identityMismatch(stat, entry);
      if (why === "gone") {
        this.forget(entry.name);
        continue;
      }
      if (why) {
        this.logger.warn(`left alone ${join(this.directory, peerName(entry.name))}: ${why} since probe wrote it; no longer counted as probe's`);
        this.forget(entry.name);
        continue;
      }
      let group = byBase.get(entry.base);
      if (!group) byBase.set(entry.base, (group = { order: entry.order, entries: [], bytes: 0 }));
      group.entries.push(entry);
      group.bytes += Number(stat!.size);
    }
    return [...byBase.entries()].map(([base, g]) => ({ base, ...g })).sort((a, b) => a.order - b.order);
  }

  /**
   * Deletes one file of ours after checking, at the last moment, that it is still the file
   * recorded. Returns the bytes deleted, null when it was gone already (forgotten), or
   * undefined when it was left alone (logged).
   */
  delete(entry: OwnedEntry): number | null | undefined {
    const path = join(this.directory, entry.name);
    const stat = lstatQuiet(path);
    const why = identityMismatch(stat, entry);
    if (why === "gone") {
      this.forget(entry.name);
      return null;
    }
    if (why) {
      this.logger.warn(`left alone ${join(this.directory, peerName(entry.name))}: ${why} since probe wrote it`);
      this.forget(entry.name);
      return undefined;
    }
    // unlink never follows a link: even if the name were swapped after the check, only that
    // directory entry goes, never what a link points to.
    unlinkSync(path);
    this.forget(entry.name);
    return Number(stat!.size);
  }

  // ---------------------------------------------------------------------------------------------

  private add(fields: Omit<OwnedEntry, "order">, replacing?: OwnedEntry): void {
    const order = replacing?.order ?? this.nextOrder++;
    const entry: OwnedEntry = { ...fields, order };
    const records: Record[] = [];
    if (replacing && replacing.name !== entry.name) {
      this.entries.delete(replacing.name);
      records.push({ op: "remove", name: replacing.name });
    }
    this.entries.set(entry.name, entry);
    records.push({
      op: "add",
      kind: entry.kind,
      name: entry.name,
      base: entry.base,
      dev: String(entry.identity.dev),
      ino: String(entry.identity.ino),
      uid: entry.identity.uid,
      ...(entry.size !== undefined ? { size: entry.size } : {}),
    });
    this.append(records);
  }

  /** Reads earlier records; refuses (counts, one line) any that could name what is not ours. */
  private replay(text: string): void {
    const lines = text.split("\n");
    let refused = 0;
    let first = true;
    for (const line of lines) {
      if (line.length === 0) continue;
      this.recordsOnDisk++;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        refused++;
        continue;
      }
      if (first && isHeader(record)) {
        first = false;
        continue;
      }
      first = false;
      const entry = this.validRecord(record);
      if (entry === undefined) {
        refused++;
        continue;
      }
      if (entry === "remove") {
        this.entries.delete((record as { name: string }).name);
        continue;
      }
      const previous = this.entries.get(entry.name);
      // A part turned file keeps the part's place in the age order.
      const part = entry.kind === "file" ? this.entries.get(entry.base + PART_SUFFIX) : undefined;
      const order = previous?.order ?? part?.order ?? this.nextOrder++;
      this.entries.set(entry.name, { ...entry, order });
    }
    if (refused > 0) this.logger.warn(`${this.manifestPath}: ${refused} records refused (not names this -w template makes, or damaged)`);
  }

  private validRecord(record: unknown): Omit<OwnedEntry, "order"> | "remove" | undefined {
    if (typeof record !== "object" || record === null) return undefined;
    const r = record as { [key: string]: unknown };
    if (r.op === "remove") return typeof r.name === "string" ? "remove" : undefined;
    if (r.op !== "add") return undefined;
    const { kind, name, base, dev, ino, uid, size } = r;
    if (kind !== "part" && kind !== "file" && kind !== "derived") return undefined;
    if (typeof name !== "string" || typeof base !== "string" || !isPlainName(name) || !isPlainName(base)) return undefined;
    if (typeof dev !== "string" || typeof ino !== "string" || !/^\d{1,20}$/.test(dev) || !/^\d{1,20}$/.test(ino)) return undefined;
    if (typeof uid !== "number" || !Number.isSafeInteger(uid) || uid < 0) return undefined;
    if (size !== undefined && (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0)) return undefined;
    if (!this.isOurName(base)) return undefined;
    if (kind === "part" && name !== base + PART_SUFFIX) return undefined;
    if (kind === "file" && (name !== base || size === undefined)) return undefined;
    if (kind === "derived" && (!isDerivedName(base, name) || size === undefined)) return undefined;
    return { kind, name, base, identity: { dev: BigInt(dev), ino: BigInt(ino), uid }, size: size as number | undefined };
  }

  private append(records: readonly Record[]): void {
    this.recordsOnDisk += records.length;
    if (this.fd === undefined) return;
    const text = (this.needsNewline ? "\n" : "") + records.map((r) => JSON.stringify(r) + "\n").join("");
    const bytes = Buffer.from(text);
    try {
      // One write (O_APPEND): a record is never interleaved with another writer's.
      const written = writeSync(this.fd, bytes);
      this.needsNewline = written !== bytes.byteLength;
      if (this.needsNewline) throw Object.assign(new Error("short write"), { code: "EIO" });
    } catch (error) {
      this.needsNewline = true;
      if (!this.persistFailed) {
        this.persistFailed = true;
        const code = (error as NodeJS.ErrnoException).code ?? "EIO";
        this.logger.warn(`cannot write ${this.manifestPath} (${code}): files written from now on are recorded in memory until it can be rewritten`);
      }
    }
  }

  /** Rewrites the manifest with the live records when stale ones outnumber them (or a write failed). */
  private compactIfStale(): void {
    if (this.fd === undefined) return;
    const live = this.entries.size + 1;
    if (!this.persistFailed && this.recordsOnDisk <= 2 * live + MANIFEST_COMPACT_SLACK_RECORDS) return;
    const temp = this.manifestPath + MANIFEST_TEMP_SUFFIX;
    let fd: number | undefined;
    try {
      fd = openTemp(temp);
      if (fd === undefined) return;
      const records: Record[] = [{ probe: "owned-files", version: MANIFEST_VERSION, template: this.template }];
      for (const e of this.all()) {
        records.push({ op: "add", kind: e.kind, name: e.name, base: e.base, dev: String(e.identity.dev), ino: String(e.identity.ino), uid: e.identity.uid, ...(e.size !== undefined ? { size: e.size } : {}) });
      }
      const bytes = Buffer.from(records.map((r) => JSON.stringify(r) + "\n").join(""));
      let at = 0;
      while (at < bytes.byteLength) at += writeSync(fd, bytes, at, bytes.byteLength - at);
      closeSync(fd);
      fd = undefined;
      renameSync(temp, this.manifestPath);
      closeSync(this.fd);
      this.fd = openSync(this.manifestPath, constants.O_RDWR | constants.O_APPEND | constants.O_NOFOLLOW);
      this.recordsOnDisk = records.length;
      this.needsNewline = false;
      if (this.persistFailed) this.logger.info(`${this.manifestPath} rewritten: every file of this run is recorded again`);
      this.persistFailed = false;
    } catch {
      // Full disk or similar: the appended records stand; the next forget() tries again.
      if (fd !== undefined) {
        closeSync(fd);
        try {
          unlinkSync(temp);
        } catch {
          // gone already
        }
      }
    }
  }
}

/** A name a -z command made of `base`: base + '.' + a short suffix (gz, bz2, xz, zst...). */
export function isDerivedName(base: string, name: string): boolean {
  return name.startsWith(base + ".") && name !== base + PART_SUFFIX && /^\.[A-Za-z0-9_-]{1,16}$/.test(name.slice(base.length));
}

/** A name from the directory (anyone who can write there chose it) for a log line. */
export function peerName(name: string): string {
  return isPlainName(name) && /^[A-Za-z0-9._+%:=@,-]+$/.test(name) ? name : peerText(name);
}

function isHeader(record: unknown): boolean {
  return typeof record === "object" && record !== null && (record as { probe?: unknown }).probe === "owned-files";
}

function readAll(fd: number, size: number): string {
  const buffer = Buffer.alloc(size);
  let at = 0;
  while (at < size) {
    const got = readSync(fd, buffer, at, size - at, at);
    if (got === 0) break;
    at += got;
  }
  return buffer.subarray(0, at).toString("utf8");
}

/**
 * Creates the manifest's temporary exclusively. A leftover of ours (a regular file, one link,
 * our owner: a rewrite cut short) is removed first; anything else there is left alone and the
 * rewrite skipped.
 */
function openTemp(path: string): number | undefined {
  return createExclusive(path, 0o644, (stat) => stat.isFile() && stat.nlink === 1 && stat.uid === euid()).fd;
}
