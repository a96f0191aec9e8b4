// Retention of a rotating output: keep at most N files (-W), at most SIZE bytes of them
// (--retain-bytes), and at least SIZE free on the filesystem (--retain-min-free), deleting our
// own oldest closed files first. "Ours" is what the manifest records (owned-files.ts): files this
// run or an earlier run with the same -w template wrote, each still the very file written, and
// with them what a -z command made of each (NAME.gz...), counted and retired together with it.
// A name the template makes but probe did not write — a pre-existing file, a symbolic link —
// is never counted and never touched. The file being written is never deleted, nor one a -z
// command is working on. Every deletion is logged.
import { statfsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../logging/index.ts";
import type { OwnedFiles } from "./owned-files.ts";

export interface RetentionLimits {
  /** -W: files kept, counting the one being written. */
  readonly files?: number;
  /** --retain-bytes: bytes of our files kept, counting the one being written. */
  readonly bytes?: number;
  /** --retain-min-free: bytes that must stay free on the filesystem. */
  readonly minFreeBytes?: number;
}

/** What retention weighs of one file of ours (a capture file with its -z results). */
export interface RetainedFile {
  readonly bytes: number;
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
export function filesToDelete<T extends RetainedFile>(
  files: readonly T[],
  limits: RetentionLimits,
  open: { files: number; bytes: number },
  freeNow: number,
): T[] {
  let count = files.length + open.files;
  let total = files.reduce((n, f) => n + f.bytes, 0) + open.bytes;
  let free = freeNow;
  const doomed: T[] = [];
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

/**
 * Applies the limits to our files in `owned`'s directory; logs each deletion. `open` is the
 * file being written (or about to be: counted before it exists), `current` its name; the files
 * in `busy` (a -z command on them) count but are not deleted.
 */
export function applyRetention(
  owned: OwnedFiles,
  limits: RetentionLimits,
  open: { files: number; bytes: number },
  current: string | undefined,
  busy: ReadonlySet<string>,
  logger: Logger,
): RetentionResult {
  const groups = owned.groups().filter((g) => g.base !== current);
  const candidates = groups.filter((g) => !busy.has(g.base));
  const held = groups.filter((g) => busy.has(g.base));
  const counted = { files: open.files + held.length, bytes: open.bytes + held.reduce((n, g) => n + g.bytes, 0) };
  const freeNow = limits.minFreeBytes !== undefined ? freeBytes(owned.directory) : Number.POSITIVE_INFINITY;
  let deleted = 0;
  let deletedBytes = 0;
  let retired = 0;
  for (const group of filesToDelete(candidates, limits, counted, freeNow)) {
    let whole = true;
    for (const entry of group.entries) {
      const path = join(owned.directory, entry.name);
      let bytes: number | null | undefined;
      try {
        bytes = owned.delete(entry);
      } catch (error) {
        logger.warn(`retention: cannot delete ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
        whole = false;
        continue;
      }
      if (bytes === null) continue;
      if (bytes === undefined) {
        whole = false;
        continue;
      }
      deleted++;
      deletedBytes += bytes;
      logger.info(`retention: deleted ${path} (${bytes} bytes, ${describeLimits(limits)})`);
    }
    if (whole) retired++;
  }
  const stillShort =
    limits.minFreeBytes !== undefined && retired === candidates.length && freeBytes(owned.directory) < limits.minFreeBytes;
  return { deleted, deletedBytes, stillShort };
}

function describeLimits(limits: RetentionLimits): string {
  const parts: string[] = [];
  if (limits.files !== undefined) parts.push(`keep ${limits.files} files`);
  if (limits.bytes !== undefined) parts.push(`keep ${limits.bytes} bytes`);
  if (limits.minFreeBytes !== undefined) parts.push(`keep ${limits.minFreeBytes} bytes free`);
  return parts.join(", ");
}
