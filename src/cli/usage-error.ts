// Errors that are the operator's to fix on the command line: printed with a pointer to
// --help and exit status 2, like other Unix tools' usage errors.

export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * A runtime failure with a message an operator can act on (a file that cannot be read or used):
 * main.ts prints the message alone, no stack, and exits with ExitCode.FAILURE.
 */
export class CommandFailure extends Error {
  override readonly name: string = "CommandFailure";
}

/** Exit statuses, documented in `probe --help`. */
export const ExitCode = {
  OK: 0,
  /** Runtime failure: capture could not start, file unreadable, peer refused... */
  FAILURE: 1,
  /** Bad command line or configuration. */
  USAGE: 2,
} as const;
