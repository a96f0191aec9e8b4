// Who is on the other end of standard input, for rpcapd's inetd mode (`probe rpcapd -i`):
// getpeername(2) on fd 0 through bun:ffi, falling back to systemd's REMOTE_ADDR.
//
// Like auth/libcrypt-ffi.ts, a binding outside src/capture/libpcap (STYLE.md 3): one libc call
// with a stack-sized buffer allocated per call, no handles kept. Node/Bun expose no peer address
// for an inherited fd (Bun's `new net.Socket({ fd: 0 })` does not attach to it, measured), and
// the session needs the address: passive data connections are accepted from it only, active
// and UDP data channels are sent to it, and logs name it.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { formatIPv4, formatIPv6, unmapIPv4 } from "../net/ip-address.ts";

/** sizeof(struct sockaddr_storage) on Linux. */
const SOCKADDR_STORAGE_BYTES = 128;
const AF_INET = 2;
const AF_INET6 = 10;

const libcSymbols = { getpeername: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 } } as const;
let libc: ReturnType<typeof dlopen<typeof libcSymbols>>["symbols"] | undefined;

/** The IPv4/IPv6 peer of socket `fd`, or undefined when `fd` is not an inet socket (pipe, tty, unix). */
export function socketPeer(fd: number): { address: string; port: number } | undefined {
  try {
    libc ??= dlopen("libc.so.6", libcSymbols).symbols;
  } catch {
    return undefined;
  }
  const storage = new Uint8Array(SOCKADDR_STORAGE_BYTES);
  const length = new Uint32Array([SOCKADDR_STORAGE_BYTES]);
  if (libc.getpeername(fd, ptr(storage), ptr(length)) !== 0) return undefined;
  const view = new DataView(storage.buffer);
  const family = view.getUint16(0, true); // sa_family_t is host order (little-endian on x86/arm)
  const port = view.getUint16(2, false);
  if (family === AF_INET && length[0]! >= 8) {
    return { address: formatIPv4(storage.subarray(4, 8)), port };
  }
  if (family === AF_INET6 && length[0]! >= 24) {
    return { address: unmapIPv4(formatIPv6(storage.subarray(8, 24))), port };
  }
  return undefined;
}

/**
 * The control connection's peer in inetd mode: getpeername(0), else REMOTE_ADDR (set by
 * systemd for Accept=yes sockets), else undefined (stdin is not a network connection).
 */
export function inetdPeerAddress(environment: NodeJS.ProcessEnv = process.env): string | undefined {
  const peer = socketPeer(0);
  if (peer) return peer.address;
  const remote = environment.REMOTE_ADDR?.trim();
  return remote ? unmapIPv4(remote) : undefined;
}
