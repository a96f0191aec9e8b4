// A PCAP-over-IP consumer for tests: connects (TCP or TLS), feeds everything it receives to
// the project's streaming pcap reader, and collects the packets; can stop reading on demand.
import type { Socket } from "bun";
import type { PacketBatch } from "../../src/packet/packet-batch.ts";
import { forEachRecord } from "../../src/packet/packet-batch.ts";
import { CaptureFileReader } from "../../src/protocols/pcap/index.ts";

export interface StreamClient {
  readonly reader: CaptureFileReader;
  readonly packets: { caplen: number; len: number; data: Uint8Array }[];
  bytesReceived: number;
  closed: boolean;
  error?: unknown;
  socket: Socket<undefined>;
  close(): void;
}

export async function connectStreamClient(
  port: number,
  options: { host?: string; tls?: Record<string, unknown>; paused?: boolean } = {},
): Promise<StreamClient> {
  const reader = new CaptureFileReader();
  const client = { reader, packets: [], bytesReceived: 0, closed: false } as unknown as StreamClient;
  const take = (batch: PacketBatch) =>
    forEachRecord(batch, (r, bytes) =>
      client.packets.push({ caplen: r.caplen, len: r.len, data: bytes.slice(r.dataOffset, r.dataOffset + r.caplen) }),
    );
  const socket = await Bun.connect({
    hostname: options.host ?? "127.0.0.1",
    port,
    ...(options.tls ? { tls: options.tls } : {}),
    socket: {
      data(_s, chunk) {
        client.bytesReceived += chunk.byteLength;
        try {
          reader.push(new Uint8Array(chunk), take);
        } catch (error) {
          client.error = error;
        }
      },
      close() {
        client.closed = true;
      },
      error(_s, error) {
        client.error = error;
      },
    },
  });
  if (options.paused) socket.pause();
  client.socket = socket;
  client.close = () => socket.end();
  return client;
}
