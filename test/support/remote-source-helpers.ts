// Test peers for the remote source and merge tests: pcap streams built byte by byte, a tiny
// PCAP-over-IP server on 127.0.0.1 port 0 (Bun.listen, optional TLS) that honours back-pressure,
// socat serving a file, and a collector for what a CaptureSource delivers.
import type { Socket, TCPSocketListener } from "bun";
import type { Subprocess } from "bun";
import type { CaptureEndReason, CaptureHandlers } from "../../src/capture/capture-source.ts";
import { forEachRecord, type PacketBatch, type TimestampPrecision } from "../../src/packet/packet-batch.ts";
import { encodePcapGlobalHeader, encodePcapRecordHeader } from "../../src/protocols/pcap/index.ts";
import { VECTORS_DIR } from "./fixtures.ts";
import { freeTcpPort } from "./free-port.ts";

export const vectorsDir = `${VECTORS_DIR}/`;
export const ETHERNET = 1;
export const RAW = 101;

export interface StreamRecord {
  tsSec: number;
  tsFrac: number;
  data: Uint8Array;
  /** Original length; default data length. */
  len?: number;
  /** Written caplen; default data length (set it to lie). */
  caplen?: number;
}

export interface StreamHeader {
  linktype?: number;
  snaplen?: number;
  precision?: TimestampPrecision;
  littleEndian?: boolean;
}

export function pcapHeaderBytes(h: StreamHeader = {}): Uint8Array {
  return encodePcapGlobalHeader({
    linktype: h.linktype ?? ETHERNET,
    snaplen: h.snaplen ?? 65535,
    precision: h.precision ?? "micro",
    littleEndian: h.littleEndian ?? true,
  });
}

export function pcapRecordBytes(r: StreamRecord, littleEndian = true): Uint8Array {
  const header = encodePcapRecordHeader(
    { tsSec: r.tsSec, tsFrac: r.tsFrac, caplen: r.caplen ?? r.data.byteLength, len: r.len ?? r.data.byteLength },
    littleEndian,
  );
  return concat([header, r.data]);
}

/** A whole classic pcap stream. */
export function pcapStream(h: StreamHeader, records: readonly StreamRecord[]): Uint8Array {
  return concat([pcapHeaderBytes(h), ...records.map((r) => pcapRecordBytes(r, h.littleEndian ?? true))]);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** `count` records one `stepUs` apart from (startSec, 0), payload tagged with `tag` and the index. */
export function taggedRecords(tag: string, count: number, startSec: number, stepUs: number, offsetUs = 0): StreamRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const us = offsetUs + i * stepUs;
    const data = new TextEncoder().encode(`${tag}-${i}`.padEnd(20, "."));
    return { tsSec: startSec + Math.floor(us / 1e6), tsFrac: us % 1e6, data };
  });
}

/** One accepted connection of a TestStreamServer, with a writer that waits for drain. */
export class ServedConnection {
  private readonly queue: Uint8Array[] = [];
  private ending = false;
  written = 0;
  /** A write was cut short at least once: the peer stopped reading (TCP back-pressure). */
  sawBackPressure = false;
  closed = false;
  readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  constructor(
    readonly index: number,
    readonly socket: Socket<{ connection?: ServedConnection }>,
  ) {
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
  }

  write(bytes: Uint8Array): void {
    if (bytes.byteLength > 0) this.queue.push(bytes);
    this.flush();
  }

  /** Ends the connection once everything queued is written. */
  end(): void {
    this.ending = true;
    this.flush();
  }

  flush(): void {
    while (this.queue.length > 0 && !this.closed) {
      const head = this.queue[0]!;
      const n = this.socket.write(head);
      if (n < 0) return;
      this.written += n;
      if (n < head.byteLength) {
        this.sawBackPressure = true;
        this.queue[0] = head.subarray(n);
        return; // drain() calls flush again
      }
      this.queue.shift();
    }
    if (this.ending && this.queue.length === 0 && !this.closed) this.socket.end();
  }

  get pendingBytes(): number {
    return this.queue.reduce((n, b) => n + b.byteLength, 0);
  }

  markClosed(): void {
    this.closed = true;
    this.resolveClosed();
  }
}

export interface TestStreamServer {
  port: number;
  connections: ServedConnection[];
  stop(): void;
}

/** Listens on 127.0.0.1:0 and calls `onConnection` for each client (after the handshake under TLS). */
export function startStreamServer(
  onConnection: (connection: ServedConnection) => void,
  tls?: { cert: string; key: string; ca?: string },
): TestStreamServer {
  const connections: ServedConnection[] = [];
  const accept = (socket: Socket<{ connection?: ServedConnection }>) => {
    const connection = new ServedConnection(connections.length, socket);
    socket.data.connection = connection;
    connections.push(connection);
    onConnection(connection);
  };
  const listener: TCPSocketListener<{ connection?: ServedConnection }> = Bun.listen<{ connection?: ServedConnection }>({
    hostname: "127.0.0.1",
    port: 0,
    data: {},
    ...(tls
      ? {
          tls: {
            cert: Bun.file(tls.cert),
            key: Bun.file(tls.key),
            ...(tls.ca ? { ca: Bun.file(tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
          },
        }
      : {}),
    socket: {
      open(socket) {
        socket.data = {};
        if (!tls) accept(socket);
      },
      handshake(socket, success) {
        if (success) accept(socket);
        else socket.end();
      },
      data() {},
      drain(socket) {
        socket.data.connection?.flush();
      },
      close(socket) {
        socket.data.connection?.markClosed();
      },
      error(socket) {
        socket.data.connection?.markClosed();
      },
    },
  });
  return { port: listener.port, connections, stop: () => listener.stop(true) };
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
/** socat serving `path` once, as `socat -u FILE:path TCP-LISTEN:port` (or OPENSSL-LISTEN with `tlsCertAndKey`). */
export async function socatServeFile(path: string, tlsCertAndKey?: string): Promise<{ port: number; proc: Subprocess }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = freeTcpPort();
    const listen = tlsCertAndKey
      ? `OPENSSL-LISTEN:${port},reuseaddr,bind=127.0.0.1,cert=${tlsCertAndKey},verify=0`
      : `TCP-LISTEN:${port},reuseaddr,bind=127.0.0.1`;
    const proc = Bun.spawn(["socat", "-u", `FILE:${path}`, listen], { stdout: "ignore", stderr: "pipe" });
    // Ready once the port accepts; give up after 5 s or if socat exited (port taken: try another).
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline && proc.exitCode === null) {
      if (await portListening(port)) return { port, proc };
      await Bun.sleep(20);
    }
    proc.kill();
    await proc.exited;
  }
  throw new Error("socat did not start listening");
}

/** True when something is listening on 127.0.0.1:port: checked with `ss`, not by connecting (socat serves one client). */
async function portListening(port: number): Promise<boolean> {
  const ss = Bun.spawn(["ss", "-Htln", `sport = :${port}`], { stdout: "pipe", stderr: "ignore" });
  const out = await new Response(ss.stdout).text();
  await ss.exited;
  return out.trim().length > 0;
}

export interface CollectedRecord {
  tsSec: number;
  tsFrac: number;
  caplen: number;
  len: number;
  data: Uint8Array;
  linktype: number;
  precision: TimestampPrecision;
  source?: number;
}

/** Handlers that keep every record (copied) and the end. */
export function collect(onBatch?: (batch: PacketBatch) => void | Promise<void>) {
  const records: CollectedRecord[] = [];
  const batches: PacketBatch[] = [];
  let end: { reason: CaptureEndReason; error: Error | undefined } | undefined;
  let resolveEnded!: () => void;
  const ended = new Promise<void>((r) => (resolveEnded = r));
  const handlers: CaptureHandlers = {
    onBatch(batch) {
      batches.push(batch);
      const sources = (batch as { sourceIndexes?: Uint16Array }).sourceIndexes;
      let i = 0;
      forEachRecord(batch, (v, bytes) => {
        records.push({
          tsSec: v.tsSec,
          tsFrac: v.tsFrac,
          caplen: v.caplen,
          len: v.len,
          data: bytes.slice(v.dataOffset, v.dataOffset + v.caplen),
          linktype: batch.linktype,
          precision: batch.precision,
          ...(sources ? { source: sources[i] } : {}),
        });
        i++;
      });
      return onBatch?.(batch);
    },
    onEnd(reason, error) {
      end = { reason, error };
      resolveEnded();
    },
  };
  return { handlers, records, batches, ended, end: () => end, text: (r: CollectedRecord) => new TextDecoder().decode(r.data) };
}

/** Waits (bounded) until `predicate` holds. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** Awaits `promise` or throws after `timeoutMs` (so a hung end fails the test instead of hanging it). */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a tool and returns its standard output (throws on a non-zero exit). */
export async function tool(argv: string[]): Promise<string> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${err}`);
  return out;
}
