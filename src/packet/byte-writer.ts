// A fixed-size writer: encoders compute the size first, allocate once, then write fields.
// Every write range-checks its value and throws on overflow instead of narrowing silently.

export class ByteWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  offset = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u8(value: number): this {
    checkRange(value, 0, 0xff, "u8");
    this.view.setUint8(this.offset, value);
    this.offset += 1;
    return this;
  }

  u16(value: number, littleEndian: boolean): this {
    checkRange(value, 0, 0xffff, "u16");
    this.view.setUint16(this.offset, value, littleEndian);
    this.offset += 2;
    return this;
  }

  u32(value: number, littleEndian: boolean): this {
    checkRange(value, 0, 0xffffffff, "u32");
    this.view.setUint32(this.offset, value, littleEndian);
    this.offset += 4;
    return this;
  }

  i32(value: number, littleEndian: boolean): this {
    checkRange(value, -0x80000000, 0x7fffffff, "i32");
    this.view.setInt32(this.offset, value, littleEndian);
    this.offset += 4;
    return this;
  }

  raw(data: Uint8Array): this {
    this.bytes.set(data, this.offset);
    this.offset += data.byteLength;
    return this;
  }

  zeros(count: number): this {
    this.offset += count; // the buffer starts zeroed
    return this;
  }

  /** The written bytes; throws if the size computed up front was wrong (an encoder bug). */
  finish(): Uint8Array {
    if (this.offset !== this.bytes.byteLength) {
      throw new Error(`encoder size mismatch: wrote ${this.offset} of ${this.bytes.byteLength} bytes`);
    }
    return this.bytes;
  }
}

function checkRange(value: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} out of range: ${value}`);
  }
}
