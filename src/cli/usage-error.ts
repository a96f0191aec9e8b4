// The two errors commands raise themselves, both ProbeErrors (src/packet/probe-error.ts): a
// UsageError is the operator's to fix on the command line or in the spec file (exit 2, with a
// pointer to --help); a CommandFailure is a runtime failure with a message an operator can act
// on (exit 1). main.ts prints either as one line, never with a stack.
import { ExitStatus, ProbeError } from "../packet/probe-error.ts";

export class UsageError extends ProbeError {
  override readonly name: string = "UsageError";
  constructor(message: string, code = "usage") {
    super(code, "usage", message);
  }
}

export class CommandFailure extends ProbeError {
  override readonly name: string = "CommandFailure";
  constructor(message: string, code = "failed", options?: { cause?: unknown }) {
    super(code, "runtime", message, options);
  }
}

/** Exit statuses, documented in `probe --help` (the same table as ExitStatus). */
export const ExitCode = ExitStatus;
