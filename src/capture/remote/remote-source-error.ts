// RemoteSourceError: why a remote stream could not be opened or stopped delivering, with a stable
// code tests assert and a flag saying whether trying again could help.
import { ProbeError } from "../../packet/probe-error.ts";

/**
 * Stable codes of RemoteSourceError, each with whether reconnecting may help. A peer that sent
 * bytes we refuse will send them again, and a stream whose link type changed would corrupt the
 * output, so those end the source even when reconnecting is on.
 */
export const RemoteSourceErrorCode = {
  /** TCP connection refused, unreachable, or name not resolved. */
  "connect-failed": { retriable: true },
  /** The server denied the connection because its slots are taken (RT DENY_CONN "max connections"); they free up. */
  "server-busy": { retriable: true },
  /** The TLS handshake failed or the server certificate was not trusted. */
  "tls-failed": { retriable: true },
  /** No complete pcap global header within the header timeout. */
  "header-timeout": { retriable: true },
  /** The peer closed the connection before the global header, or in the middle of a record. */
  closed: { retriable: true },
  /** The socket reported an error after it was open. */
  "socket-error": { retriable: true },
  /** Bytes that are not a classic pcap stream (bad magic, caplen > snaplen, ...); `cause` is the ProtocolError. */
  "bad-stream": { retriable: false },
  /** A pcapng stream: PCAP-over-IP carries classic pcap (convert with `editcap -F pcap`). */
  "unsupported-format": { retriable: false },
  /** The stream declares a link type no reader can decode (reserved bits, unknown LINKTYPE). */
  "bad-linktype": { retriable: false },
  /** A TLS setting cannot be used (a --tls-ca/--tls-cert/--tls-key file that cannot be read). */
  "tls-settings": { retriable: false },
  /** After a reconnect the new stream's link type differs from the first one's. */
  "linktype-changed": { retriable: false },
  /** The consumer's onBatch threw or rejected. */
  "consumer-failed": { retriable: false },
  /** stop() was called while the connection was being opened. */
  stopped: { retriable: false },
} as const;

export type RemoteSourceErrorCodeName = keyof typeof RemoteSourceErrorCode;

export class RemoteSourceError extends ProbeError {
  override readonly name = "RemoteSourceError";
  declare readonly code: RemoteSourceErrorCodeName;
  constructor(code: RemoteSourceErrorCodeName, message: string, options?: { cause?: unknown }) {
    // A remote peer or the network failed: a runtime failure (exit 1), one line.
    super(code, "runtime", message, options);
  }

  /** Whether connecting again may succeed (see RemoteSourceErrorCode). */
  get retriable(): boolean {
    return RemoteSourceErrorCode[this.code].retriable;
  }
}
