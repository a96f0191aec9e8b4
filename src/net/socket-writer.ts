// SocketWriter: whole-buffer writes over a Bun socket. Bun's socket.write() takes what the
// kernel accepts and returns that count (verified on Bun 1.4.4: 1 MiB writes to a peer that
// does not read return 1048576, 1048576, 1048576, 774144); the rest is ours to keep until the
// socket's drain event. One write is outstanding at a time (ConsumerQueue serialises them).
import type { Socket } from "bun";
import { ownedBytes } from "../packet/packet-batch.ts";

export class SocketWriter {
  private remainder: Uint8Array | null = null;
  private waiter: { resolve(): void; reject(error: Error): void } | null = null;
  private closed = false;
  bytesWritten = 0;

  constructor(private readonly socket: Socket<unknown>) {}

  /** Bytes accepted by us but not yet by the kernel. */
  get pendingBytes(): number {
    return this.remainder?.byteLength ?? 0;
  }

  /**
   * Writes all of `bytes`: returns nothing when the kernel took it all, else a promise.
   * `borrowed`: the caller reuses `bytes` once this returns (a scratch buffer), so what the
   * kernel did not take is copied; otherwise only a lent batch's remainder is (ownedBytes).
   */
  write(bytes: Uint8Array, borrowed = false): void | Promise<void> {
    if (this.closed) return Promise.reject(new Error("socket closed"));
    if (this.remainder) return Promise.reject(new Error("SocketWriter: write while another is pending"));
    const written = this.socket.write(bytes);
    if (written < 0) return Promise.reject(new Error("socket write failed"));
    this.bytesWritten += written;
    if (written === bytes.byteLength) return;
    // The rest is written on drain, after the caller's bytes may have been reused: keep a copy
    // of borrowed or lent bytes.
    this.remainder = borrowed ? bytes.slice(written) : ownedBytes(bytes.subarray(written));
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** Call from the socket's drain handler. */
  onDrain(): void {
    const rest = this.remainder;
    if (!rest || this.closed) return;
    const written = this.socket.write(rest);
    if (written < 0) return this.fail(new Error("socket write failed"));
    this.bytesWritten += written;
    if (written < rest.byteLength) {
      this.remainder = rest.subarray(written);
      return;
    }
    this.remainder = null;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.resolve();
  }

  /** Call from the socket's close/error handler: a pending write fails. Idempotent. */
  onClose(): void {
    this.fail(new Error("socket closed"));
  }

  private fail(error: Error): void {
    this.closed = true;
    this.remainder = null;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(error);
  }
}
