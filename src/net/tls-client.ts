// TLS as a client: the one place that builds Bun's client TLS options and judges the server's
// certificate, for every client probe has (rpcaps:// capture, tls:// PCAP-over-IP input,
// pcap-over-ip --connect-tls). The server certificate is verified by default (libpcap's
// rpcaps:// client never did: libpcap#1080); --tls-ca FILE names the CA to trust instead of the
// well-known public CAs built into Bun (Mozilla's list; NODE_EXTRA_CA_CERTS adds to it),
// --tls-insecure turns verification off (encryption without authentication),
// which is logged once per client.
//
// What Bun 1.4.4 reports (checked against servers with certificates made by openssl): with
// rejectUnauthorized on, a bad certificate fails the handshake and Bun closes the socket; the
// handshake callback's authorizationError carries Node's code (CERT_HAS_EXPIRED,
// ERR_TLS_CERT_ALTNAME_INVALID, DEPTH_ZERO_SELF_SIGNED_CERT, UNABLE_TO_VERIFY_LEAF_SIGNATURE...).
// With it off, `success` can still be false for a host mismatch while the connection goes on.
import { readFileSync } from "node:fs";
import { ProbeError } from "../packet/probe-error.ts";
import type { TLSOptions } from "bun";

/** How a client authenticates the server it dials (and itself, for mutual TLS). */
export interface TlsClientSettings {
  /** PEM file with the CA certificate(s) that signed the server certificate (--tls-ca); default Bun's built-in public CAs (Mozilla's list). */
  ca?: string | undefined;
  /** Client certificate and key PEM files, for servers that require mutual TLS. */
  cert?: string | undefined;
  key?: string | undefined;
  /** Accept any server certificate (--tls-insecure): encrypted, not authenticated. */
  insecure?: boolean | undefined;
  /** Name the certificate must carry (and SNI); default the host dialled. */
  serverName?: string | undefined;
}

/** A TLS setting that cannot be used (a file that cannot be read); the message names the flag. */
export class TlsSettingsError extends ProbeError {
  override readonly name = "TlsSettingsError";
  constructor(message: string) {
    // A --tls-* file the operator named cannot be read: a runtime failure (exit 1), like any unreadable file.
    super("tls-settings", "runtime", message);
  }
}

/**
 * Bun's client TLS options for dialling `host`. The PEM files are read now, so a missing file
 * is one line naming its flag before anything is dialled. Throws TlsSettingsError.
 */
export function tlsClientOptions(host: string, settings: TlsClientSettings): TLSOptions {
  return {
    rejectUnauthorized: !settings.insecure,
    serverName: settings.serverName ?? host,
    ...(settings.ca ? { ca: readPem("--tls-ca", settings.ca) } : {}),
    ...(settings.cert ? { cert: readPem("--tls-cert", settings.cert) } : {}),
    ...(settings.key ? { key: readPem("--tls-key", settings.key) } : {}),
  };
}

function readPem(flag: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new TlsSettingsError(`${flag} ${path}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!text.includes("-----BEGIN ")) throw new TlsSettingsError(`${flag} ${path}: not a PEM file`);
  return text;
}

/**
 * Judges a client handshake: undefined when the connection may carry data, else the reason
 * in words an operator can act on ("certificate has expired", "certificate is not for HOST").
 * With insecure set every certificate is accepted (Bun still reports what it found).
 */
export function tlsHandshakeRefusal(
  host: string,
  settings: TlsClientSettings,
  success: boolean,
  authorizationError: Error | null,
): string | undefined {
  if (authorizationError && isNotTls(authorizationError)) return notTlsMessage(host);
  if (settings.insecure) return undefined;
  if (success && !authorizationError) return undefined;
  return authorizationError ? describeCertificateError(authorizationError, settings.serverName ?? host, settings) : "TLS handshake failed";
}

/**
 * OpenSSL/BoringSSL reasons that mean the first bytes back were not a TLS record at all (a plain
 * server answered: its banner, a pcap header, an RPCAP message): no certificate was exchanged,
 * so "certificate refused" would send the operator the wrong way. Bun reports them through the
 * handshake's authorizationError as "error:100000f7:SSL routines:OPENSSL_internal:
 * WRONG_VERSION_NUMBER" (code EPROTO), checked against socat and `probe rpcapd` without TLS.
 */
const NOT_TLS_REASONS = ["WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL"];

/** True when a TLS client error says the server did not speak TLS. */
export function isNotTls(error: Error): boolean {
  return NOT_TLS_REASONS.some((reason) => error.message.includes(reason));
}

/** The one line for a server that answered a TLS client with something else. */
export function notTlsMessage(host: string): string {
  return `no TLS from ${host.includes(":") ? `[${host}]` : host} (is it a plain server? drop the TLS scheme or option, or dial its TLS port)`;
}

/** Node/OpenSSL verification codes, grouped by what the operator has to do about them. */
const UNKNOWN_CA_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);

/** One line saying why a server certificate was refused, naming the reason and the way out. */
export function describeCertificateError(error: Error, expectedName: string, settings: TlsClientSettings): string {
  const code = (error as Error & { code?: string }).code ?? "";
  const ca = settings.ca ? `the CA in --tls-ca ${settings.ca}` : "the built-in public CAs (give --tls-ca FILE)";
  if (code === "CERT_HAS_EXPIRED") return "server certificate has expired";
  if (code === "CERT_NOT_YET_VALID") return "server certificate is not yet valid (check both clocks)";
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || code === "HOSTNAME_MISMATCH") {
    return `server certificate is not for '${expectedName}' (wrong host)`;
  }
  if (code === "DEPTH_ZERO_SELF_SIGNED_CERT") {
    return `server certificate is self-signed and not trusted (give it as --tls-ca FILE, or --tls-insecure)`;
  }
  if (UNKNOWN_CA_CODES.has(code)) return `server certificate is signed by an unknown CA: not by ${ca}`;
  if (isNotTls(error)) return notTlsMessage(expectedName);
  return `server certificate refused: ${error.message}${code ? ` (${code})` : ""}`;
}

/** The line logged once per target when --tls-insecure turns verification off. */
export function insecureWarning(target: string): string {
  return `${target}: --tls-insecure: the server certificate is not verified (encrypted, not authenticated)`;
}
