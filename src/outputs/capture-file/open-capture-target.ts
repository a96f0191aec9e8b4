// Opening the one file `-w FILE` names (no rotation), as root, in a directory others may write.
// The target is opened without following a symbolic link (O_NOFOLLOW) and without truncating,
// then looked at through the open descriptor (no window between a check and the open):
//   - a regular file with one link is truncated and written, as tcpdump -w does (the user named
//     it); one with more links is refused — it is another file too (a hard link planted to
//     /etc/shadow would otherwise be emptied);
//   - a character device or a FIFO the user named (`-w /dev/null`, `-w /tmp/pipe`, both common
//     with tcpdump) is written as it is, never truncated;
//   - a block device or a directory is refused;
//   - a symbolic link is followed only where no one but its owner (root or us) can plant one:
//     a link in a directory writable by no one else (`-w /dev/stdout`, /dev being root's). A
//     link in /tmp or a shared capture directory is refused with one line: name the file itself.
// Rotating outputs never come here: they create every file themselves, exclusively (part-file.ts).
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, openSync } from "node:fs";
import { dirname } from "node:path";

/** What was opened: the descriptor, and whether it is a regular file (the rest are streams). */
export interface CaptureTarget {
  readonly fd: number;
  readonly kind: "file" | "device" | "fifo";
}

/** A target refused: the message is the reason, one line, for `-w PATH: ...`. */
export class CaptureTargetError extends Error {
  override readonly name = "CaptureTargetError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Opens `path` for writing a capture (see the file comment for what is written and what is
 * refused). O_NONBLOCK makes a FIFO without a reader fail at once (ENXIO) instead of stopping
 * the whole program in open(); regular files and devices ignore it.
 */
export function openCaptureTarget(path: string): CaptureTarget {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NONBLOCK;
  let fd: number;
  try {
    fd = openSync(path, flags | constants.O_NOFOLLOW, 0o644);
  } catch (error) {
    const code = errnoOf(error);
    if (code !== "ELOOP") throw describeOpenError(code);
    const untrusted = untrustedLinkDirectory(path);
    if (untrusted) {
      throw new CaptureTargetError(
        "symlink",
        `is a symbolic link in ${untrusted}, a directory others can write: not followed (name the file itself)`,
      );
    }
    try {
      fd = openSync(path, flags, 0o644);
    } catch (followed) {
      throw describeOpenError(errnoOf(followed));
    }
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isFile()) {
      if (stat.nlink !== 1) throw new CaptureTargetError("hard-link", `has ${stat.nlink} hard links (it is another file too): not truncated`);
      ftruncateSync(fd, 0);
      return { fd, kind: "file" };
    }
    if (stat.isCharacterDevice()) return { fd, kind: "device" };
    if (stat.isFIFO()) return { fd, kind: "fifo" };
    throw new CaptureTargetError("not-a-file", stat.isBlockDevice() ? "is a block device: not written" : "is not a file, a character device or a FIFO");
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** The directory holding the link at `path` when others could have planted it there, else undefined. */
function untrustedLinkDirectory(path: string): string | undefined {
  const directory = dirname(path);
  try {
    const stat = lstatSync(directory);
    const euid = process.geteuid?.() ?? -1;
    const ownerTrusted = stat.uid === 0 || stat.uid === euid;
    const othersMayWrite = (stat.mode & 0o022) !== 0;
    return ownerTrusted && !othersMayWrite ? undefined : directory;
  } catch {
    return directory;
  }
}

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException)?.code ?? "EIO";
}

function describeOpenError(code: string): CaptureTargetError {
  switch (code) {
    case "ENOENT":
      return new CaptureTargetError(code, "no such directory (ENOENT)");
    case "EACCES":
    case "EPERM":
      return new CaptureTargetError(code, `permission denied (${code})`);
    case "EISDIR":
      return new CaptureTargetError(code, "is a directory (EISDIR)");
    case "ENXIO":
      return new CaptureTargetError(code, "a FIFO with no reader (ENXIO): start the reader first");
    case "EROFS":
      return new CaptureTargetError(code, "read-only filesystem (EROFS)");
    case "ENOTDIR":
      return new CaptureTargetError(code, "a part of the path is not a directory (ENOTDIR)");
    default:
      return new CaptureTargetError(code, `cannot open (${code})`);
  }
}
