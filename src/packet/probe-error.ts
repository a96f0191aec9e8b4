// ProbeError: the one base type of the errors probe reports to a user or a peer. Each carries a
// stable code (tests and logs assert it) and a category; the category alone decides the exit
// status, in one place (src/cli/main.ts via exitStatusOf). Anything that is a ProbeError is
// printed as one line, never with a stack: a user or a peer caused it, not a bug.

/** Who has to act: the command line or spec file ("usage", exit 2) or the world ("runtime", exit 1). */
export type ProbeErrorCategory = "usage" | "runtime";

export class ProbeError extends Error {
  override readonly name: string = "ProbeError";
  constructor(
    /** Stable, kebab-case ("address-in-use", "missing-flag", "bad-spec", "linktype-mismatch"). */
    readonly code: string,
    readonly category: ProbeErrorCategory,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Exit statuses, documented in `probe --help`. */
export const ExitStatus = {
  OK: 0,
  /** Runtime failure: capture could not start, file unreadable, peer refused... */
  FAILURE: 1,
  /** Bad command line or configuration. */
  USAGE: 2,
} as const;

/** The exit status for an error that ended a command. */
export function exitStatusOf(error: ProbeError): number {
  return error.category === "usage" ? ExitStatus.USAGE : ExitStatus.FAILURE;
}

/**
 * `error` as a ProbeError when it is one a user or peer caused (a port in use, an unreachable
 * address, a file that cannot be opened): Bun and the OS report those as plain Errors with an
 * errno code. Anything else (a bug) is returned as undefined, so the caller prints its stack.
 */
export function asUserFacing(error: unknown, where?: string): ProbeError | undefined {
  if (error instanceof ProbeError) return error;
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  const prefix = where ? `${where}: ` : "";
  switch (code) {
    case "EADDRINUSE":
      return new ProbeError("address-in-use", "runtime", `${prefix}address already in use`, { cause: error });
    case "EACCES":
    case "EPERM":
      return new ProbeError("permission", "runtime", `${prefix}permission denied`, { cause: error });
    case "EADDRNOTAVAIL":
      return new ProbeError("address-not-available", "runtime", `${prefix}address not available on this host`, { cause: error });
    case "ENOENT":
      return new ProbeError("no-such-file", "runtime", `${prefix}no such file or directory`, { cause: error });
    case "ECONNREFUSED":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ETIMEDOUT":
      return new ProbeError("unreachable", "runtime", `${prefix}${error.message}`, { cause: error });
    default:
      return undefined;
  }
}
