// A bounds-checked reader over a byte view: every read checks what remains first and throws
// ProtocolError("truncated") with the offset instead of reading past the end.
import { ProtocolError } from "./protocol-error.ts";

export class ByteReader {
  private readonly view: DataView;
  offset: number;

  constructor(readonly bytes: Uint8Array, offset = 0, private readonly end = bytes.byteLength) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  /** Throws unless `count` more bytes are available; `what` names the field for the message. */
  need(count: number, what: string): void {
    if (count < 0 || this.offset + count > this.end) {
      throw new ProtocolError("truncated", `truncated ${what}: need ${count} bytes, ${this.remaining} left`, this.offset);
    }
  }

  u8(what = "u8"): number {
    this.need(1, what);
    return this.view.getUint8(this.offset++);
  }

  u16(littleEndian: boolean, what = "u16"): number {
    this.need(2, what);
    const v = this.view.getUint16(this.offset, littleEndian);
    this.offset += 2;
    return v;
  }

  u32(littleEndian: boolean, what = "u32"): number {
    this.need(4, what);
    const v = this.view.getUint32(this.offset, littleEndian);
    this.offset += 4;
    return v;
  }

  i32(littleEndian: boolean, what = "i32"): number {
    this.need(4, what);
    const v = this.view.getInt32(this.offset, littleEndian);
    this.offset += 4;
    return v;
  }

  /** A borrowed view of the next `count` bytes (valid as long as the input is). */
  bytesView(count: number, what = "bytes"): Uint8Array {
    this.need(count, what);
    const v = this.bytes.subarray(this.offset, this.offset + count);
    this.offset += count;
    return v;
  }

  skip(count: number, what = "padding"): void {
    this.need(count, what);
    this.offset += count;
  }
}
