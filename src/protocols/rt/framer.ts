// RtFramer: cuts a TCP byte stream into RT messages. The body length is checked against the
// caller's cap as soon as the header is complete, before waiting for the body, so a peer that
// announces a long body it never sends costs nothing; after the first error nothing more is
// emitted: after the first decode error the stream emits nothing more.
import { ProtocolError } from "../../packet/protocol-error.ts";
import { decodeHeader, type RtHeader } from "./codec.ts";
import { RT_HEADER_BYTES } from "./wire.ts";

export interface RtMessage extends RtHeader {
  /** The body: a borrowed view, valid until the next push(). */
  body: Uint8Array;
  /** Offset of the message in the stream (for error reports). */
  streamOffset: number;
}

export class RtFramer {
  private pending: Uint8Array = new Uint8Array(0);
  private consumed = 0;
  private failed: ProtocolError | undefined;

  /** @param maxBodyBytes largest body accepted from this peer, by message type if a function. */
  constructor(private readonly maxBodyBytes: (type: number) => number) {}

  /** Bytes held waiting for the rest of a message. */
  get bufferedBytes(): number {
    return this.pending.byteLength;
  }

  /** Feeds bytes; returns the complete messages (bodies borrowed). Throws ProtocolError once, then stays failed. */
  push(chunk: Uint8Array): RtMessage[] {
    if (this.failed) throw this.failed;
    let bytes: Uint8Array;
    if (this.pending.byteLength === 0) bytes = chunk;
    else {
      bytes = new Uint8Array(this.pending.byteLength + chunk.byteLength);
      bytes.set(this.pending);
      bytes.set(chunk, this.pending.byteLength);
    }
    const messages: RtMessage[] = [];
    let at = 0;
    try {
      while (bytes.byteLength - at >= RT_HEADER_BYTES) {
        const header = decodeHeader(bytes, at);
        const cap = this.maxBodyBytes(header.type);
        if (header.length > cap) {
          throw new ProtocolError("length-too-large", `RT type ${header.type} announces ${header.length} body bytes, at most ${cap} accepted`, this.consumed + at + 4);
        }
        if (bytes.byteLength - at - RT_HEADER_BYTES < header.length) break;
        const bodyAt = at + RT_HEADER_BYTES;
        messages.push({ ...header, body: bytes.subarray(bodyAt, bodyAt + header.length), streamOffset: this.consumed + at });
        at = bodyAt + header.length;
      }
    } catch (error) {
      this.failed = error as ProtocolError;
      this.pending = new Uint8Array(0);
      throw error;
    }
    this.consumed += at;
    // Copy the partial tail: `chunk` belongs to the socket layer.
    this.pending = bytes.slice(at);
    return messages;
  }
}
