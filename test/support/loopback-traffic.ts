// Bounded UDP traffic on 127.0.0.1 for capture tests: a sink socket on a free port (so the
// kernel sends no ICMP port-unreachable) and a sender whose payload i is (seq + k) & 0xff,
// the same pattern as the shared vectors.

export interface LoopbackFlow {
  /** Destination port the sink listens on. */
  port: number;
  /** Sends one datagram per size, payload (seq + k) & 0xff; resolves when all are sent. */
  send(sizes: readonly number[], options?: { firstSeq?: number; gapMs?: number }): Promise<void>;
  /** Payloads as sent, in order. */
  readonly sent: Uint8Array[];
  close(): void;
}

export function payloadFor(seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let k = 0; k < size; k++) bytes[k] = (seq + k) & 0xff;
  return bytes;
}

/** Hard bound on one test's traffic. */
const MAX_PACKETS_PER_SEND = 200_000;

export async function openLoopbackFlow(): Promise<LoopbackFlow> {
  const sink = await Bun.udpSocket({ hostname: "127.0.0.1" });
  const sender = await Bun.udpSocket({ hostname: "127.0.0.1" });
  const sent: Uint8Array[] = [];
  return {
    port: sink.port,
    sent,
    async send(sizes, options = {}) {
      if (sizes.length > MAX_PACKETS_PER_SEND) throw new Error("test traffic over its bound");
      let seq = options.firstSeq ?? sent.length;
      for (const size of sizes) {
        const payload = payloadFor(seq++, size);
        sent.push(payload);
        sender.send(payload, sink.port, "127.0.0.1");
        if (options.gapMs) await Bun.sleep(options.gapMs);
      }
    },
    close() {
      sink.close();
      sender.close();
    },
  };
}
