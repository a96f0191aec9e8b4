// Typed capture errors: every libpcap failure becomes a CaptureError with a stable code,
// libpcap's own text, and advice an operator can act on.
import { ProbeError } from "../packet/probe-error.ts";

export type CaptureErrorCode =
  | "library-missing"
  | "no-such-device"
  | "permission"
  | "interface-down"
  | "bad-filter"
  | "bad-file"
  | "capture-failed";

export class CaptureError extends ProbeError {
  override readonly name = "CaptureError";
  declare readonly code: CaptureErrorCode;
  constructor(code: CaptureErrorCode, message: string) {
    super(code, "runtime", message);
  }
}

/** What to tell an operator who lacks capture privileges. */
export const PERMISSION_ADVICE =
  "run as root, or grant the binary capture rights: setcap cap_net_raw,cap_net_admin=eip <path-to-probe>";
