// libc through bun:ffi for the TPACKET_V3 ring engine. Like src/capture/libpcap/ffi.ts and
// src/sys (syslog's socket) this is one of the few places probe calls native code (the ring engine
// needs the packet-socket system calls that libpcap would otherwise make for us). These calls are
// made once per capture or once per ring block, never once per packet (the capture thread,
// ring-thread.c, makes its own calls from C).
import { dlopen, FFIType, read } from "bun:ffi";

const { ptr: P, i32, u32, u64, i64, cstring } = FFIType;

const ringLibcSymbols = {
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, P, u32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, P, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, P, P], returns: i32 },
  mmap: { args: [P, u64, i32, i32, i32, i64], returns: P },
  munmap: { args: [P, u64], returns: i32 },
  close: { args: [i32], returns: i32 },
  memfd_create: { args: [P, u32], returns: i32 },
  eventfd: { args: [u32, i32], returns: i32 },
  write: { args: [i32, P, u64], returns: i64 },
  poll: { args: [P, u32, i32], returns: i32 },
  __errno_location: { args: [], returns: P },
  strerror: { args: [i32], returns: cstring },
} as const;

type RingLibc = ReturnType<typeof dlopen<typeof ringLibcSymbols>>["symbols"];
let libc: RingLibc | undefined;

/** libc's symbols for the ring, loaded on first use (glibc's soname). */
export function ringLibc(): RingLibc {
  libc ??= dlopen("libc.so.6", ringLibcSymbols).symbols;
  return libc;
}

/** errno of the calling thread, read right after a failed call. */
export function lastErrno(): number {
  const location = ringLibc().__errno_location();
  return location ? read.i32(location, 0) : 0;
}

/** strerror(errno) text. */
export function errnoText(errno: number): string {
  return String(ringLibc().strerror(errno));
}
