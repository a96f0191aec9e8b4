// Retention of a rotating output: keep at most N files (-W), at most SIZE bytes of them
// (--retain-bytes), and at least SIZE free on the filesystem (--retain-min-free), deleting our
// own oldest closed files first. "Ours" is what the file name template matches in the output
// directory (this run's files and earlier runs'); the file being written is never deleted, and
// nothing else in the directory is touched. Every deletion is logged.
import { readdirSync, statSync, statfsSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../logging/index.ts";

export interface RetentionLimits {
  /** -W: files kept, counting the one being written. */
  readonly files?: number;
  /** --retain-bytes: bytes of our files kept, counting the one being written. */
  readonly bytes?: number;
  /** --retain-min-free: bytes that must stay free on the filesystem. */
  readonly minFreeBytes?: number;
}

export interface OwnFile {
  readonly name: string;
  readonly path: string;
  readonly bytes: number;
  readonly mtimeMs: number;
  /** Sequence number in the name, when it has one: breaks mtime ties. */
  readonly sequence: number | undefined;
}

/** Our closed files in `directory`, oldest first (modification time, then sequence, then name). */
export function listOwnFiles(directory: string, sequenceOf: (name: string) => number | null | undefined): OwnFile[] {
  const files: OwnFile[] = [];
  for (const name of readdirSync(directory)) {
    const sequence = sequenceOf(name);
    if (sequence === null) continue;
    let stat;
    try {
      stat = statSync(join(directory, name));
    } catch {
      continue; // deleted meanwhile
    }
    if (!stat.isFile()) continue;
    files.push({ name, path: join(directory, name), bytes: stat.size, mtimeMs: stat.mtimeMs, sequence });
  }
  return files.sort(
    (a, b) => a.mtimeMs - b.mtimeMs || (a.sequence ?? 0) - (b.sequence ?? 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

/** Free bytes for an unprivileged writer on the filesystem holding `directory`. */
export function freeBytes(directory: string): number {
  const s = statfsSync(directory);
  return Number(s.bavail) * Number(s.bsize);
}

/**
 * Which of `files` (oldest first) to delete so the limits hold, given the file being written
 * (`openBytes`, 0 and `openFiles` 0 when none) and the free space now. Pure.
 */
export function filesToDelete(
  files: readonly OwnFile[],
  limits: RetentionLimits,
  open: { files: number; bytes: number },
  freeNow: number,
): OwnFile[] {
  let count = files.length + open.files;
  let total = files.reduce((n, f) => n + f.bytes, 0) + open.bytes;
  let free = freeNow;
  const doomed: OwnFile[] = [];
  for (const file of files) {
    const overCount = limits.files !== undefined && count > limits.files;
    const overBytes = limits.bytes !== undefined && total > limits.bytes;
    const underFree = limits.minFreeBytes !== undefined && free < limits.minFreeBytes;
    if (!overCount && !overBytes && !underFree) break;
    doomed.push(file);
    count--;
    total -= file.bytes;
    free += file.bytes;
  }
  return doomed;
}

export interface RetentionResult {
  readonly deleted: number;
  readonly deletedBytes: number;
  /** True when min-free still does not hold after deleting every closed file of ours. */
  readonly stillShort: boolean;
}

/** Applies the limits in `directory`; logs each deletion. */
export function applyRetention(
  directory: string,
  limits: RetentionLimits,
  sequenceOf: (name: string) => number | null | undefined,
  open: { files: number; bytes: number },
  logger: Logger,
): RetentionResult {
  const files = listOwnFiles(directory, sequenceOf);
  const freeNow = limits.minFreeBytes !== undefined ? freeBytes(directory) : Number.POSITIVE_INFINITY;
  let deleted = 0;
  let deletedBytes = 0;
  for (const file of filesToDelete(files, limits, open, freeNow)) {
    try {
      unlinkSync(file.path);
    } catch (error) {
      logger.warn(`retention: cannot delete ${file.path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
      continue;
    }
    deleted++;
    deletedBytes += file.bytes;
    logger.info(`retention: deleted ${file.path} (${file.bytes} bytes, ${describeLimits(limits)})`);
  }
  const stillShort = limits.minFreeBytes !== undefined && deleted === files.length && freeBytes(directory) < limits.minFreeBytes;
  return { deleted, deletedBytes, stillShort };
}

function describeLimits(limits: RetentionLimits): string {
  const parts: string[] = [];
  if (limits.files !== undefined) parts.push(`keep ${limits.files} files`);
  if (limits.bytes !== undefined) parts.push(`keep ${limits.bytes} bytes`);
  if (limits.minFreeBytes !== undefined) parts.push(`keep ${limits.minFreeBytes} bytes free`);
  return parts.join(", ");
}
