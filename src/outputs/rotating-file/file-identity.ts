// Who a file is on disk, checked without following links: probe deletes, truncates or renames
// a file only while it is still the one it wrote (same device and inode, owner and size, a
// regular file with one link), so a name swapped for a symbolic link or a hard link to another
// file is never mistaken for ours.
import { lstatSync, type BigIntStats } from "node:fs";

/** Longest file name on Linux filesystems (NAME_MAX); a longer "name" is not one of ours. */
const MAX_NAME_BYTES = 255;

/** Who a file is on disk: device and inode (which a rename keeps), and its owner. */
export interface FileIdentity {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly uid: number;
}

/** Why a file on disk is not (any more) the one recorded; undefined when it is. */
export function identityMismatch(stat: BigIntStats | undefined, entry: { readonly identity: FileIdentity; readonly size: number | undefined }): string | undefined {
  if (!stat) return "gone";
  if (stat.isSymbolicLink()) return "a symbolic link";
  if (!stat.isFile()) return "not a regular file";
  if (stat.nlink !== 1n) return `${stat.nlink} hard links`;
  if (stat.dev !== entry.identity.dev || stat.ino !== entry.identity.ino) return "another file (device or inode changed)";
  if (Number(stat.uid) !== entry.identity.uid) return "another owner";
  if (entry.size !== undefined && Number(stat.size) !== entry.size) return `size changed (${entry.size} -> ${stat.size} bytes)`;
  return undefined;
}

/** lstat that never follows a link; undefined when nothing is there. */
export function lstatQuiet(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false }) ?? undefined;
  } catch {
    return undefined;
  }
}

/** What a directory entry is, for a "left alone" line. */
export function describeEntry(stat: BigIntStats | undefined): string {
  if (!stat) return "gone";
  if (stat.isSymbolicLink()) return "symbolic link";
  if (stat.isDirectory()) return "directory";
  if (stat.isFIFO()) return "FIFO";
  if (stat.isSocket()) return "socket";
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return "device";
  return stat.nlink !== 1n ? `file with ${stat.nlink} links` : "file";
}

/** A plain name in the directory: no '/', no '.' or '..', no NUL, at most NAME_MAX bytes. */
export function isPlainName(name: string): boolean {
  return (
    name.length > 0 && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\0") && Buffer.byteLength(name) <= MAX_NAME_BYTES
  );
}

export function identityOf(stat: BigIntStats): FileIdentity {
  return { dev: stat.dev, ino: stat.ino, uid: Number(stat.uid) };
}

