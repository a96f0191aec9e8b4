// The ring engine's native code: ring-walk.c (the block walker) and ring-thread.c (the capture
// thread), compiled as one translation unit by the TinyCC built into Bun (bun:ffi cc, ~5 ms) the
// first time a capture on this thread needs them, then kept for the process's life.
import { cc, ptr, type Pointer } from "bun:ffi";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ringLibc } from "./ffi.ts";
import walkerSource from "./ring-walk.c" with { type: "text" };
import threadSource from "./ring-thread.c" with { type: "text" };

/** ring-walk.c's entry point: (block address, output address, state address) → a WalkResult. */
export type NativeWalk = (block: Pointer, out: Pointer, state: Pointer) => number;

/** The compiled functions. */
export interface RingNatives {
  walk: NativeWalk;
  /** ring-thread.c: 1 when this build can run the capture thread (x86-64), else 0. */
  threadSupported: () => number;
  /** ring-thread.c: starts the thread over a control block; 0 or an errno. */
  threadStart: (control: Pointer) => number;
  /** ring-thread.c: joins an ended thread. */
  threadJoin: (control: Pointer) => number;
}

const symbols = {
  probe_ring_walk: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  probe_ring_thread_supported: { args: [], returns: "i32" },
  probe_ring_thread_start: { args: ["ptr"], returns: "i32" },
  probe_ring_thread_join: { args: ["ptr"], returns: "i32" },
} as const;

/** memfd_create(2) flag: the descriptor is not inherited by programs this process runs. */
const MFD_CLOEXEC = 1;

/**
 * The compiled code of this thread (a capture Worker compiles its own), or why there is none.
 * The library object is kept with it: its functions live as long as it does.
 */
let compiled: { natives: RingNatives; library: object } | { error: string } | undefined;

/** The ring's native functions, compiled on first use, or why they cannot be. */
export function ringNatives(): RingNatives | { error: string } {
  compiled ??= compile();
  return "error" in compiled ? compiled : compiled.natives;
}

/**
 * cc() reads its source from a path, and a source embedded in the executable (/$bunfs/...) is
 * not readable to it, so the text goes to a memfd (/proc/self/fd/N) or, when there is no memfd
 * or no /proc, to a private temporary directory removed right after.
 */
function compile(): { natives: RingNatives; library: object } | { error: string } {
  // ring-thread.c uses ring-walk.c's types and walker: one unit, walker first.
  const bytes = new TextEncoder().encode(`${walkerSource}\n${threadSource}`);
  const fd = sourceMemfd(bytes);
  if (fd >= 0) {
    try {
      const path = `/proc/self/fd/${fd}`;
      if (existsSync(path)) return compileAt(path);
    } finally {
      ringLibc().close(fd);
    }
  }
  let directory: string | undefined;
  try {
    directory = mkdtempSync(join(tmpdir(), "probe-ring-native-"));
    const path = join(directory, "ring-native.c");
    writeFileSync(path, bytes, { mode: 0o600 });
    return compileAt(path);
  } catch (error) {
    return { error: firstLine(error) };
  } finally {
    if (directory) rmSync(directory, { recursive: true, force: true });
  }
}

/** A memfd holding `bytes`, or -1 when memfd_create or write fails. */
function sourceMemfd(bytes: Uint8Array): number {
  try {
    const c = ringLibc();
    const fd = c.memfd_create(ptr(new TextEncoder().encode("probe-ring-native.c\0")), MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (Number(c.write(fd, ptr(bytes), bytes.byteLength)) === bytes.byteLength) return fd;
    c.close(fd);
  } catch {
    // no memfd_create in this libc
  }
  return -1;
}

function compileAt(path: string): { natives: RingNatives; library: object } | { error: string } {
  try {
    const library = cc({ source: path, symbols });
    const s = library.symbols;
    const natives: RingNatives = {
      walk: s.probe_ring_walk as NativeWalk,
      threadSupported: s.probe_ring_thread_supported as () => number,
      threadStart: s.probe_ring_thread_start as (control: Pointer) => number,
      threadJoin: s.probe_ring_thread_join as (control: Pointer) => number,
    };
    return { natives, library };
  } catch (error) {
    return { error: firstLine(error) };
  }
}

function firstLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error).split("\n")[0]!;
}
