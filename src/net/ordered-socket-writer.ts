// OrderedSocketWriter: for control connections that send small replies in order. Whatever the
// kernel does not take now is kept (in order) and written on drain; a peer that lets more than
// `maxPendingBytes` pile up is cut off instead of growing our memory.
import type { Socket } from "bun";

export class OrderedSocketWriter {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private ending = false;

  constructor(
    private readonly socket: Socket<unknown>,
    private readonly maxPendingBytes: number,
    private readonly onOverflow: () => void,
  ) {}

  send(bytes: Uint8Array): void {
    if (this.ending) return;
    if (this.pending.length === 0) {
      const written = this.socket.write(bytes);
      if (written >= bytes.byteLength) return;
      bytes = bytes.subarray(Math.max(0, written));
    }
    this.pending.push(bytes);
    this.pendingBytes += bytes.byteLength;
    if (this.pendingBytes > this.maxPendingBytes) this.onOverflow();
  }

  onDrain(): void {
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      const written = this.socket.write(head);
      if (written < head.byteLength) {
        this.pending[0] = head.subarray(Math.max(0, written));
        this.pendingBytes -= Math.max(0, written);
        return;
      }
      this.pending.shift();
      this.pendingBytes -= head.byteLength;
    }
    if (this.ending) this.socket.end();
  }

  /** Ends the socket once everything queued has been written. */
  end(): void {
    if (this.ending) return;
    this.ending = true;
    if (this.pending.length === 0) this.socket.end();
  }
}
