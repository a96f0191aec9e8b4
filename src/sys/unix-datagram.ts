// A connected Unix datagram socket through libc: Bun has no AF_UNIX SOCK_DGRAM (its UDP
// sockets are INET only, node:dgram refuses "unix_dgram"), and syslog's /dev/log is one.
// It lives in src/sys, below the logger that sends through it. Non-blocking: a
// full syslog queue drops the line (counted) rather than stalling the event loop.
import { dlopen, FFIType, ptr } from "bun:ffi";

const { ptr: P, i32, u32, u64, i64 } = FFIType;

const symbols = {
  socket: { args: [i32, i32, i32], returns: i32 },
  connect: { args: [i32, P, u32], returns: i32 },
  send: { args: [i32, P, u64, i32], returns: i64 },
  close: { args: [i32], returns: i32 },
} as const;

/** <sys/socket.h> on Linux. */
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
/** struct sockaddr_un: sa_family_t (2 bytes) + sun_path[108]. */
const SOCKADDR_UN_BYTES = 110;
const SUN_PATH_BYTES = 108;

let libc: ReturnType<typeof dlopen<typeof symbols>>["symbols"] | undefined;
const load = () => (libc ??= dlopen("libc.so.6", symbols).symbols);

export interface UnixDatagramSender {
  /** Sends one datagram; false when the kernel refused it (peer gone, queue full). */
  send(bytes: Uint8Array): boolean;
  close(): void;
}

/**
 * Connects a datagram socket to the Unix socket at `path`. Throws an Error naming the path
 * when it cannot (no such socket, not a datagram socket, permission).
 */
export function connectUnixDatagram(path: string): UnixDatagramSender {
  const encoded = new TextEncoder().encode(path);
  if (encoded.byteLength >= SUN_PATH_BYTES) throw new Error(`${path}: socket path longer than ${SUN_PATH_BYTES - 1} bytes`);
  const c = load();
  const address = new Uint8Array(SOCKADDR_UN_BYTES);
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(encoded, 2);
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`${path}: cannot create a Unix datagram socket`);
  if (c.connect(fd, ptr(address), 2 + encoded.byteLength + 1) !== 0) {
    c.close(fd);
    throw new Error(`${path}: cannot connect (no datagram socket listening there)`);
  }
  let open = true;
  return {
    send(bytes) {
      if (!open || bytes.byteLength === 0) return false;
      return Number(c.send(fd, ptr(bytes), bytes.byteLength, MSG_NOSIGNAL)) === bytes.byteLength;
    },
    close() {
      if (!open) return;
      open = false;
      c.close(fd);
    },
  };
}
