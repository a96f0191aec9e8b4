// RpcapFramer: turns a TCP byte stream into whole RPCAP messages. Keeps a chunk list and a
// byte total; decodes the 8-byte header as soon as it is there and checks plen against the
// per-type cap BEFORE waiting for the body (a 4 GiB plen is refused at once). After the first
// error it emits nothing more.
import { ProtocolError } from "../errors.ts";
import type { RpcapHeader, RpcapMessage } from "./codec.ts";
import { RPCAP_HEADER_BYTES } from "./wire.ts";

export class RpcapFramer {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private header: RpcapHeader | null = null;
  private failed: ProtocolError | null = null;
  /** Bytes consumed so far, for error offsets. */
  private consumed = 0;

  /** `maxPlen(type)` is the largest payload that type may declare. */
  constructor(private readonly maxPlen: (type: number) => number) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Feeds bytes (copied as needed; the caller may reuse `chunk`); returns complete messages. */
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
        const h = this.take(RPCAP_HEADER_BYTES);
        const view = new DataView(h.buffer, h.byteOffset, 8);
        const header = { ver: h[0]!, type: h[1]!, value: view.getUint16(2), plen: view.getUint32(4) };
        const cap = this.maxPlen(header.type);
        if (header.plen > cap) {
          this.failed = new ProtocolError(
            "plen-too-large",
            `message type 0x${header.type.toString(16)} declares ${header.plen} payload bytes; at most ${cap} accepted`,
            this.consumed - RPCAP_HEADER_BYTES + 4,
          );
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

  /** The header of a message whose payload is still awaited (for timeouts and logs). */
  get pendingHeader(): RpcapHeader | null {
    return this.header;
  }

  private take(count: number): Uint8Array {
    this.consumed += count;
    this.buffered -= count;
    const first = this.chunks[0];
    if (count === 0) return new Uint8Array(0);
    if (first && first.byteLength >= count) {
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
