// Creating a file probe will write in a directory others may write to as well (a spool, a
// capture directory, a state file's): exclusively and never through a symbolic link (probe runs
// as root), replacing only a leftover the caller recognises as its own, such as the temporary
// file a crash left between its creation and its rename.
import { constants, lstatSync, openSync, unlinkSync, type Stats } from "node:fs";

const EXCLUSIVE_CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** The new file's descriptor, or what holds the name when it is not a leftover of the caller's. */
export type ExclusiveCreate = { fd: number; refused?: undefined } | { fd?: undefined; refused: Stats };

/**
 * Creates `path` with O_CREAT|O_EXCL|O_NOFOLLOW. When the name is taken, `isOwnLeftover` judges
 * what holds it (lstat: a link is judged as a link): a leftover is removed and the create tried
 * once more; anything else is left alone and returned as `refused`.
 */
export function createExclusive(path: string, mode: number, isOwnLeftover: (stats: Stats) => boolean): ExclusiveCreate {
  try {
    return { fd: openSync(path, EXCLUSIVE_CREATE, mode) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  let stats: Stats | undefined;
  try {
    stats = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  if (stats) {
    if (!isOwnLeftover(stats)) return { refused: stats };
    unlinkSync(path);
  }
  return { fd: openSync(path, EXCLUSIVE_CREATE, mode) };
}
