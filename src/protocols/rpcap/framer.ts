// RpcapFramer: turns an RPCAP byte stream (TCP control or data channel) into whole messages.
// It keeps a chunk list and a byte total, decodes the 8-byte header as soon as it is there and
// checks plen against the per-type cap BEFORE waiting for the body, so a 4 GiB plen is refused
// at once instead of buffering forever. After the first error it emits nothing more (every
// later push rethrows that error). No timers here: the transport owns the idle timeout and can
// read `pendingHeader` / `bufferedBytes` to decide.
import { ProtocolError } from "../../packet/protocol-error.ts";
import { decodeHeader, type RpcapHeader, type RpcapMessage } from "./codec.ts";
import { maxDataPlen, maxReplyPlen, maxRequestPlen, RPCAP_HEADER_BYTES, rpcapMessageName, RPCAP_MAX_SNAPLEN_BYTES } from "./wire.ts";

export class RpcapFramer {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private header: RpcapHeader | null = null;
  private failed: ProtocolError | null = null;
  /** Stream bytes consumed so far, so error offsets are positions in the whole stream. */
  private consumed = 0;
  private lastVersion = 0;

  /** `maxPlen(type)` is the largest payload a message of that type may declare, in bytes. */
  constructor(private readonly maxPlen: (type: number) => number) {}

  /** A daemon's control channel: requests, capped per type and by `globalCapBytes`. */
  static forDaemonControl(globalCapBytes: number): RpcapFramer {
    return new RpcapFramer((type) => maxRequestPlen(type, globalCapBytes));
  }

  /** A client's control channel: replies and errors, capped per type and by `globalCapBytes`. */
  static forClientControl(globalCapBytes: number): RpcapFramer {
    return new RpcapFramer((type) => maxReplyPlen(type, globalCapBytes));
  }

  /** A client's TCP data channel: PACKET messages up to pkthdr + `maxCaplenBytes`; others empty. */
  static forDataChannel(maxCaplenBytes = RPCAP_MAX_SNAPLEN_BYTES): RpcapFramer {
    return new RpcapFramer((type) => maxDataPlen(type, maxCaplenBytes));
  }

  /** Bytes received but not yet emitted as part of a message. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** The header of a message whose payload is still awaited (for timeouts and logs). */
  get pendingHeader(): RpcapHeader | null {
    return this.header;
  }

  /**
   * The version byte of the last header decoded: an error reply about that message echoes
   * it (rpcap-protocol.h). Not the first byte of the last chunk, which is mid-header when the
   * header arrived in pieces.
   */
  get lastHeaderVersion(): number {
    return this.lastVersion;
  }

  /** The error that stopped this framer, if any. */
  get error(): ProtocolError | null {
    return this.failed;
  }

  /**
   * Feeds bytes and returns the messages they complete, in order. `chunk` may be a borrowed
   * view (it is copied); emitted payloads are owned. Throws the ProtocolError that stops the
   * stream, and rethrows it on every later call.
   */
  push(chunk: Uint8Array): RpcapMessage[] {
    if (this.failed) throw this.failed;
    if (chunk.byteLength > 0) {
      this.chunks.push(chunk.slice());
      this.buffered += chunk.byteLength;
    }
    const out: RpcapMessage[] = [];
    for (;;) {
      if (!this.header) {
        if (this.buffered < RPCAP_HEADER_BYTES) break;
        const headerAt = this.consumed;
        const header = decodeHeader(this.take(RPCAP_HEADER_BYTES));
        this.lastVersion = header.ver;
        const cap = this.maxPlen(header.type);
        if (header.plen > cap) {
          this.failed = new ProtocolError(
            "plen-too-large",
            `${rpcapMessageName(header.type)} declares ${header.plen} payload bytes; at most ${cap} accepted`,
            headerAt + 4,
          );
          this.chunks = [];
          this.buffered = 0;
          throw this.failed;
        }
        this.header = header;
      }
      if (this.buffered < this.header.plen) break;
      out.push({ header: this.header, payload: this.take(this.header.plen) });
      this.header = null;
    }
    return out;
  }

  /**
   * Call when the peer closed the stream: throws "truncated" (offset = where the unfinished
   * message starts) if it ended inside a message.
   */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.header || this.buffered > 0) {
      const start = this.header ? this.consumed - RPCAP_HEADER_BYTES : this.consumed;
      this.failed = new ProtocolError("truncated", `stream ended inside a message (${this.buffered} bytes pending)`, start);
      throw this.failed;
    }
  }

  /** Removes `count` buffered bytes: a view when one chunk holds them, else one copy. */
  private take(count: number): Uint8Array {
    this.consumed += count;
    this.buffered -= count;
    if (count === 0) return new Uint8Array(0);
    const first = this.chunks[0]!;
    if (first.byteLength >= count) {
      const out = first.subarray(0, count);
      if (first.byteLength === count) this.chunks.shift();
      else this.chunks[0] = first.subarray(count);
      return out;
    }
    const out = new Uint8Array(count);
    let at = 0;
    while (at < count) {
      const c = this.chunks[0]!;
      const n = Math.min(c.byteLength, count - at);
      out.set(c.subarray(0, n), at);
      at += n;
      if (n === c.byteLength) this.chunks.shift();
      else this.chunks[0] = c.subarray(n);
    }
    return out;
  }
}
