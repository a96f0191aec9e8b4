// TLS with the roles of the TCP connection reversed, as libpcap's active mode has them. In
// libpcap the rpcapd that dials a collector (`rpcapd -a HOST,PORT -S`) is still the TLS server:
// daemon_serviceloop() calls ssl_promotion(1, ...) (SSL_accept) whatever the mode ("even in
// active mode, the other end has to initiate the TLS handshake as we still are the server as far
// as TLS is concerned"), and pcap_remoteact_accept_ex() promotes the connection it accepted with
// ssl_promotion(0, ...) (SSL_connect): the collector is the TLS client. The data connection the
// daemon opens back to the collector is the same (daemon_msg_startcap_req: ssl_promotion(1, ...)).
//
// Bun's socket.upgradeTLS() takes its role from who dialled (checked on Bun 1.4.4: an accepted
// socket upgraded asks for a certificate of its own), so these use node:tls over node:net
// sockets, which Bun implements with `isServer` and `tls.connect({ socket })`.
import type { Socket as NetSocket } from "node:net";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { tlsClientOptions, tlsHandshakeRefusal, TlsSettingsError, type TlsClientSettings } from "./tls-client.ts";

/**
 * A TLS handshake not finished within this many milliseconds is abandoned: a peer that opens the
 * TCP connection and then says nothing would otherwise hold a socket (and a probe slot) forever.
 * A handshake takes milliseconds on any link an RPCAP capture can use.
 */
export const REVERSED_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Bytes node may buffer on one reversed-TLS socket before the adapter reports "nothing taken"
 * (write returns 0) until it drains: the callers' own writers then hold, bound and count the
 * rest, as they do over Bun sockets.
 */
export const REVERSED_TLS_WRITE_BUFFER_BYTES = 256 * 1024;

/** Why a reversed handshake failed, in words for the log ("server certificate has expired"). */
export class ReversedTlsError extends Error {
  override readonly name = "ReversedTlsError";
}

/**
 * The collector's side: TLS client on a connection it accepted, the certificate judged by the
 * shared client rules against `peer` (the dialling probe's address, or a configured name).
 */
export function tlsClientOnAccepted(socket: NetSocket, peer: string, settings: TlsClientSettings): Promise<tls.TLSSocket> {
  let options: ReturnType<typeof tlsClientOptions>;
  try {
    options = tlsClientOptions(peer, settings);
  } catch (error) {
    // The CA file went away since it was checked at start: this connection is refused.
    socket.destroy();
    return Promise.reject(new ReversedTlsError((error as Error).message));
  }
  const secure = tls.connect({
    socket,
    // Judged below with the same words as every other client (tls-client.ts).
    rejectUnauthorized: false,
    ...(options.ca ? { ca: options.ca as string } : {}),
    ...(options.cert ? { cert: options.cert as string } : {}),
    ...(options.key ? { key: options.key as string } : {}),
    // SNI carries names only; the identity check below covers addresses too.
    ...(/^[\d.]+$|:/.test(peer) ? {} : { servername: peer }),
  });
  return handshake(secure, "secureConnect", () => {
    const identityError = tls.checkServerIdentity(peer, secure.getPeerCertificate());
    const reported = secure.authorizationError as unknown;
    const authorizationError = reported ? (reported instanceof Error ? reported : codeError(String(reported))) : (identityError ?? null);
    return tlsHandshakeRefusal(peer, settings, secure.authorized && !identityError, authorizationError);
  });
}

/** The daemon's side: TLS server on a connection it dialled (-S -K KEY -X CERT). */
export function tlsServerOnDialed(socket: NetSocket, files: { cert: string; key: string }): Promise<tls.TLSSocket> {
  const secure = new tls.TLSSocket(socket, { isServer: true, cert: readPem("-X", files.cert), key: readPem("-K", files.key) });
  return handshake(secure, "secure", () => undefined);
}

function handshake(secure: tls.TLSSocket, doneEvent: "secure" | "secureConnect", judge: () => string | undefined): Promise<tls.TLSSocket> {
  const done = Promise.withResolvers<tls.TLSSocket>();
  const fail = (reason: string) => {
    clearTimeout(timer);
    secure.destroy();
    done.reject(new ReversedTlsError(reason));
  };
  const timer = setTimeout(() => fail(`no TLS handshake within ${REVERSED_TLS_HANDSHAKE_TIMEOUT_MS} ms`), REVERSED_TLS_HANDSHAKE_TIMEOUT_MS);
  secure.once("error", (error: Error) => {
    const code = (error as { code?: string }).code ?? error.message;
    // A plain-TCP peer's first bytes read as a TLS record of no known version.
    fail(code === "ERR_SSL_WRONG_VERSION_NUMBER" ? "TLS handshake failed: the peer does not speak TLS (is it run with -S?)" : `TLS handshake failed: ${code}`);
  });
  secure.once("close", () => fail("connection closed during the TLS handshake"));
  secure.once(doneEvent, () => {
    const refusal = judge();
    if (refusal !== undefined) return fail(refusal);
    clearTimeout(timer);
    secure.removeAllListeners("error");
    secure.removeAllListeners("close");
    done.resolve(secure);
  });
  done.promise.catch(() => {});
  return done.promise;
}

function codeError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

function readPem(flag: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new TlsSettingsError(`${flag} ${path}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** The subset of a Bun socket the RPCAP code uses, over a node TLS socket. */
export interface SocketLike<Data> {
  data: Data;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  /** Bytes taken (all of them, or 0 while node's buffer is past REVERSED_TLS_WRITE_BUFFER_BYTES). */
  write(bytes: Uint8Array): number;
  end(): void;
  setKeepAlive(enable?: boolean, initialDelay?: number): boolean;
}

export interface SocketLikeHandlers<Data> {
  data?(socket: SocketLike<Data>, chunk: Buffer): void;
  drain?(socket: SocketLike<Data>): void;
  close?(socket: SocketLike<Data>): void;
  error?(socket: SocketLike<Data>, error: Error): void;
}

/** Presents a node TLS socket as a Bun-style socket: write returns bytes taken, events to handlers. */
export function socketLike<Data>(secure: tls.TLSSocket, raw: NetSocket, data: Data, handlers: SocketLikeHandlers<Data>): SocketLike<Data> {
  let closed = false;
  const like: SocketLike<Data> = {
    data,
    remoteAddress: raw.remoteAddress ?? "",
    remotePort: raw.remotePort ?? 0,
    localPort: raw.localPort ?? 0,
    write(bytes) {
      if (closed || secure.writableLength >= REVERSED_TLS_WRITE_BUFFER_BYTES) return 0;
      secure.write(bytes);
      return bytes.byteLength;
    },
    end() {
      if (!closed) secure.end();
    },
    setKeepAlive(enable, initialDelay) {
      raw.setKeepAlive(enable, initialDelay);
      return true;
    },
  };
  secure.on("data", (chunk: Buffer) => handlers.data?.(like, chunk));
  secure.on("drain", () => handlers.drain?.(like));
  secure.on("error", (error: Error) => handlers.error?.(like, error));
  secure.on("close", () => {
    closed = true;
    handlers.close?.(like);
  });
  return like;
}
