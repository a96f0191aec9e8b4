// MergeError: why a merge of several capture sources could not start or had to end, with a
// stable code tests assert.
import { ProbeError } from "../../packet/probe-error.ts";

export type MergeErrorCode =
  /** No source could be started. */
  | "no-sources"
  /** The sources capture different link types and mixing them was not allowed. */
  | "linktype-mismatch"
  /** Every source ended with an error. */
  | "all-sources-failed"
  /** The consumer's onBatch threw or rejected. */
  | "consumer-failed";

export class MergeError extends ProbeError {
  override readonly name = "MergeError";
  declare readonly code: MergeErrorCode;
  constructor(code: MergeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, "runtime", message, options);
  }
}
