// Shared helpers of the RPCAP codec tests: hex in and out, ProtocolError assertions, a seeded
// random source for the bounded random-bytes tests.
import { expect } from "bun:test";
import { PacketBatchBuilder, type PacketBatch, type TimestampPrecision } from "../../src/packet/packet-batch.ts";
import { ProtocolError } from "../../src/packet/protocol-error.ts";

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
export const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ""), "hex"));

/** Asserts that `fn` throws a ProtocolError with this code (and offset, when given). */
export function expectProtocolError(fn: () => unknown, code: string, offset?: number): ProtocolError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  if (thrown === undefined) throw new Error(`expected ProtocolError ${code}, nothing was thrown`);
  expect(thrown).toBeInstanceOf(ProtocolError);
  const error = thrown as ProtocolError;
  expect(error.code).toBe(code);
  if (offset !== undefined) expect(error.offset).toBe(offset);
  return error;
}

/** Runs `fn`; anything thrown must be a ProtocolError. */
export function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
  }
}

/** A deterministic pseudo-random byte source (xorshift32), so failures reproduce. */
export function seededBytes(seed: number): (n: number) => Uint8Array {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  return (n) => Uint8Array.from({ length: n }, () => next() & 0xff);
}

/** A batch of packets; each packet is [tsSec, tsFrac, len, data]. */
export function batchOf(packets: [number, number, number, number[]][], precision: TimestampPrecision = "micro"): PacketBatch {
  const b = new PacketBatchBuilder(1, precision, 64);
  for (const [s, f, len, data] of packets) b.push(s, f, len, Uint8Array.from(data));
  return b.take()!;
}
