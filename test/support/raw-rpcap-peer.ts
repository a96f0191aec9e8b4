// A deliberately dumb RPCAP peer for misbehaviour tests: writes whatever bytes it is told,
// frames whatever comes back, and notes when the daemon closes the connection.
import type { Socket } from "bun";
import { connect as netConnect } from "node:net";
import { RpcapFramer, type RpcapMessage } from "../../src/protocols/rpcap/index.ts";
import { waitFor } from "./probe-binary.ts";

export interface RawPeer {
  messages: RpcapMessage[];
  closed: boolean;
  write(bytes: Uint8Array): void;
  /** Waits for the n-th message (1-based) or throws. */
  nth(n: number, timeoutMs?: number): Promise<RpcapMessage>;
  waitClosed(timeoutMs?: number): Promise<void>;
  end(): void;
}

export async function rawPeer(port: number, host = "127.0.0.1"): Promise<RawPeer> {
  const framer = new RpcapFramer(() => 1 << 24);
  const peer = { messages: [] as RpcapMessage[], closed: false } as RawPeer;
  let socket!: Socket<undefined>;
  socket = await Bun.connect({
    hostname: host,
    port,
    socket: {
      data: (_s, chunk) => void peer.messages.push(...framer.push(chunk)),
      close: () => void (peer.closed = true),
      error: () => void (peer.closed = true),
    },
  });
  peer.write = (bytes) => void socket.write(bytes);
  peer.end = () => socket.end();
  peer.nth = async (n, timeoutMs = 5000) => {
    await waitFor(() => peer.messages.length >= n, timeoutMs, `message ${n}`);
    return peer.messages[n - 1]!;
  };
  peer.waitClosed = (timeoutMs = 5000) => waitFor(() => peer.closed, timeoutMs, "daemon closing the connection");
  return peer;
}

/**
 * Like {@link rawPeer}, but from a chosen loopback source address (127.0.0.2, 127.0.0.3, ...), so
 * one test can play several peers: node:net's localAddress, which Bun.connect does not offer.
 */
export async function rawPeerFrom(port: number, localAddress: string, host = "127.0.0.1"): Promise<RawPeer> {
  const framer = new RpcapFramer(() => 1 << 24);
  const peer = { messages: [] as RpcapMessage[], closed: false } as RawPeer;
  const socket = netConnect({ host, port, localAddress });
  socket.on("data", (chunk: Buffer) => void peer.messages.push(...framer.push(chunk)));
  socket.on("close", () => void (peer.closed = true));
  socket.on("error", () => void (peer.closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  peer.write = (bytes) => void socket.write(bytes);
  peer.end = () => void socket.destroy();
  peer.nth = async (n, timeoutMs = 5000) => {
    await waitFor(() => peer.messages.length >= n, timeoutMs, `message ${n}`);
    return peer.messages[n - 1]!;
  };
  peer.waitClosed = (timeoutMs = 5000) => waitFor(() => peer.closed, timeoutMs, "daemon closing the connection");
  return peer;
}
