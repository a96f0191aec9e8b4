// The ring engine's native code: ring-walk.c (the block walker) and ring-thread.c (the capture
// thread), one translation unit, loaded the first time a capture on this thread needs it and then
// kept for the process's life.
//
// Two ways to get it, tried in this order:
//   1. prebuilt: the build compiles the unit with the system's C compiler (cc -O2,
//      scripts/build-ring-native.ts) and puts the shared library's bytes in the executable as a
//      build-time constant; they are loaded with dlopen from a memfd. Run from source (bun
//      test), the library in build/ is loaded.
//   2. TinyCC: the compiler built into Bun compiles the same text at run time (bun:ffi cc, ~10 ms).
// The library's name carries a hash of the source, so a library built from other sources (the C
// files edited since the last build) is never loaded: TinyCC compiles the current text instead.
// Why prebuilt first: TinyCC's compile touched ~2 MiB more of the runtime's code (peak RSS) and
// took ~10 ms of every start; and cc -O2 code is faster than TinyCC's, which does not optimize
// (docs/capture-history.md, "Memory: where it goes"). PROBE_RING_NATIVE=tinycc asks for TinyCC (tests,
// benchmarks).
import { cc, dlopen, ptr, type Pointer } from "bun:ffi";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ringLibc } from "./ffi.ts";
import walkerSource from "./ring-walk.c" with { type: "text" };
import threadSource from "./ring-thread.c" with { type: "text" };

/** ring-walk.c's entry point: (block address, output address, state address) → a WalkResult. */
export type NativeWalk = (block: Pointer, out: Pointer, state: Pointer) => number;

/** Where the native code came from: the library built with the program, or TinyCC at run time. */
export type RingNativesOrigin = "prebuilt" | "tinycc";

/** The loaded functions. */
export interface RingNatives {
  walk: NativeWalk;
  /** ring-thread.c: 1 when this build can run the capture thread (x86-64), else 0. */
  threadSupported: () => number;
  /** ring-thread.c: starts the thread over a control block; 0 or an errno. */
  threadStart: (control: Pointer) => number;
  /** ring-thread.c: joins an ended thread. */
  threadJoin: (control: Pointer) => number;
  origin: RingNativesOrigin;
}

/** The one translation unit: ring-thread.c uses ring-walk.c's types and walker, so the walker comes first. */
export const RING_NATIVE_SOURCE = `${walkerSource}\n${threadSource}`;

/** The environment variable that asks for TinyCC ("tinycc") instead of the prebuilt library. */
export const RING_NATIVE_ENV = "PROBE_RING_NATIVE";

/** The prebuilt library's file name without ".so": "ring-native-" and a hash of the source it is built from. */
export function ringNativeLibraryStem(): string {
  return `ring-native-${Bun.hash(RING_NATIVE_SOURCE).toString(16).padStart(16, "0")}`;
}

/** Where `bun test` and `bun run src/...` find the library that scripts/build-ring-native.ts wrote. */
export const RING_NATIVE_BUILD_DIRECTORY = join(import.meta.dir, "../../../build");

/** Modules of the compiled executable live in its embedded file system, /$bunfs/root. */
const RUNNING_FROM_EXECUTABLE = import.meta.dir.startsWith("/$bunfs/");

const symbols = {
  probe_ring_walk: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  probe_ring_thread_supported: { args: [], returns: "i32" },
  probe_ring_thread_start: { args: ["ptr"], returns: "i32" },
  probe_ring_thread_join: { args: ["ptr"], returns: "i32" },
} as const;

/** memfd_create(2) flag: the descriptor is not inherited by programs this process runs. */
const MFD_CLOEXEC = 1;

/** scripts/build.ts defines it in the executable (base64 of build/ring-native-HASH.so); undefined from source. */
declare const PROBE_RING_NATIVE_LIBRARY_BASE64: string | undefined;

type Loaded = { natives: RingNatives; library: object } | { error: string };

/**
 * The native code of this thread (a capture Worker loads its own), or why there is none.
 * The library object is kept with it: its functions live as long as it does.
 */
let loaded: Loaded | undefined;

/** The ring's native functions, loaded or compiled on first use, or why they cannot be. */
export function ringNatives(): RingNatives | { error: string } {
  loaded ??= load(process.env[RING_NATIVE_ENV] === "tinycc" ? "tinycc" : "prebuilt");
  return "error" in loaded ? loaded : loaded.natives;
}

/**
 * Loads the native code the given way, without keeping it (ringNatives keeps the first); "prebuilt"
 * falls back to TinyCC when no prebuilt library matches the source. Exported for tests that run
 * both.
 */
export function loadRingNatives(wanted: RingNativesOrigin): Loaded {
  return load(wanted);
}

function load(wanted: RingNativesOrigin): Loaded {
  if (wanted === "prebuilt") {
    const prebuilt = loadPrebuilt();
    if (prebuilt) return prebuilt;
  }
  return compileWithTinyCC();
}

/** The prebuilt library for this source, or undefined when there is none (or it does not load). */
function loadPrebuilt(): Loaded | undefined {
  const stem = ringNativeLibraryStem();
  if (!RUNNING_FROM_EXECUTABLE) {
    const onDisk = join(RING_NATIVE_BUILD_DIRECTORY, `${stem}.so`);
    return existsSync(onDisk) ? usable(open(onDisk, "prebuilt")) : undefined;
  }
  // In the executable: the library's bytes, a constant the build defined (reading an embedded
  // file through Bun's /$bunfs instead cost ~1.5 MiB of runtime code); dlopen needs a path, so
  // they go to a memfd, as cc()'s source does below. The build made them from this very source.
  if (typeof PROBE_RING_NATIVE_LIBRARY_BASE64 !== "string") return undefined;
  const bytes = Buffer.from(PROBE_RING_NATIVE_LIBRARY_BASE64, "base64");
  return usable(atPrivatePath(bytes, "probe-ring-native.so", (path) => open(path, "prebuilt")));
}

/** A prebuilt library that does not load (another libc, say) leaves the work to TinyCC. */
function usable(result: Loaded): Loaded | undefined {
  return "error" in result ? undefined : result;
}

/**
 * cc() reads its source from a path, and a source embedded in the executable (/$bunfs/...) is
 * not readable to it, so the text goes to a memfd.
 */
function compileWithTinyCC(): Loaded {
  return atPrivatePath(new TextEncoder().encode(RING_NATIVE_SOURCE), "probe-ring-native.c", (path) => open(path, "tinycc"));
}

/**
 * Calls `use` with a path holding `bytes`: a memfd (/proc/self/fd/N) or, when there is no memfd
 * or no /proc, a file in a private temporary directory removed right after.
 */
function atPrivatePath(bytes: Uint8Array, name: string, use: (path: string) => Loaded): Loaded {
  const fd = memfdWith(bytes, name);
  if (fd >= 0) {
    try {
      const path = `/proc/self/fd/${fd}`;
      if (existsSync(path)) return use(path);
    } finally {
      ringLibc().close(fd);
    }
  }
  let directory: string | undefined;
  try {
    directory = mkdtempSync(join(tmpdir(), "probe-ring-native-"));
    const path = join(directory, name);
    writeFileSync(path, bytes, { mode: 0o600 });
    return use(path);
  } catch (error) {
    return { error: firstLine(error) };
  } finally {
    if (directory) rmSync(directory, { recursive: true, force: true });
  }
}

/** A memfd holding `bytes`, or -1 when memfd_create or write fails. */
function memfdWith(bytes: Uint8Array, name: string): number {
  try {
    const c = ringLibc();
    const fd = c.memfd_create(ptr(new TextEncoder().encode(`${name}\0`)), MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (Number(c.write(fd, ptr(bytes), bytes.byteLength)) === bytes.byteLength) return fd;
    c.close(fd);
  } catch {
    // no memfd_create in this libc
  }
  return -1;
}

/** dlopen()s a prebuilt library or cc()-compiles a source at `path`. */
function open(path: string, origin: RingNativesOrigin): Loaded {
  try {
    const library = origin === "prebuilt" ? dlopen(path, symbols) : cc({ source: path, symbols });
    const s = library.symbols;
    const natives: RingNatives = {
      walk: s.probe_ring_walk as NativeWalk,
      threadSupported: s.probe_ring_thread_supported as () => number,
      threadStart: s.probe_ring_thread_start as (control: Pointer) => number,
      threadJoin: s.probe_ring_thread_join as (control: Pointer) => number,
      origin,
    };
    return { natives, library };
  } catch (error) {
    return { error: firstLine(error) };
  }
}

function firstLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error).split("\n")[0]!;
}
