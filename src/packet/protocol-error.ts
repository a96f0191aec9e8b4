// ProtocolError: the one error type every decoder throws for bad bytes from outside.
// It carries a stable code that tests assert and the byte offset where decoding stopped.

export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    /** Stable machine-readable code, e.g. "truncated", "caplen-exceeds-snaplen". */
    readonly code: string,
    message: string,
    /** Byte offset in the input where the problem was found. */
    readonly offset = 0,
  ) {
    super(message);
  }
}
