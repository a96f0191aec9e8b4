// Compiles the ring engine's native code (src/capture/linux-ring/ring-walk.c and ring-thread.c,
// the unit ring-natives.ts loads) with the system's C compiler into build/ring-native-HASH.so,
// whose bytes scripts/build.ts puts in the executable. Without a C compiler the build goes on
// without it and the program compiles the same source with Bun's TinyCC when a capture starts
// (slower code, ~2 MiB more peak memory: docs/capture.md).
//
// Flags: -O2 (TinyCC does not optimize; this is the point), -fPIC -shared for dlopen,
// -fno-strict-aliasing because the walker reads kernel structures through casts of byte
// pointers, -Wall -Werror so a warning fails the build rather than hiding in its log.
import { mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { RING_NATIVE_BUILD_DIRECTORY, RING_NATIVE_SOURCE, ringNativeLibraryStem } from "../src/capture/linux-ring/ring-natives.ts";

export const RING_NATIVE_CFLAGS = ["-O2", "-fPIC", "-shared", "-fno-strict-aliasing", "-Wall", "-Werror"];

/** Builds the library (unless it is there already); its path, or undefined with the reason printed. */
export async function buildRingNative(): Promise<string | undefined> {
  const stem = ringNativeLibraryStem();
  const output = join(RING_NATIVE_BUILD_DIRECTORY, `${stem}.so`);
  mkdirSync(RING_NATIVE_BUILD_DIRECTORY, { recursive: true });
  // Libraries of earlier sources would never load again (their hash no longer matches).
  for (const name of readdirSync(RING_NATIVE_BUILD_DIRECTORY)) {
    if (name.startsWith("ring-native-") && name !== `${stem}.so`) rmSync(join(RING_NATIVE_BUILD_DIRECTORY, name), { force: true });
  }
  if (await Bun.file(output).exists()) return output;
  const compiler = process.env.CC || "cc";
  const temporary = `${output}.tmp`;
  let proc;
  try {
    proc = Bun.spawn([compiler, ...RING_NATIVE_CFLAGS, "-x", "c", "-", "-o", temporary], { stdin: new TextEncoder().encode(RING_NATIVE_SOURCE), stdout: "inherit", stderr: "inherit" });
  } catch {
    console.error(`build: no C compiler (${compiler}); the capture thread's code will be compiled by TinyCC at run time`);
    return undefined;
  }
  if ((await proc.exited) !== 0) {
    rmSync(temporary, { force: true });
    throw new Error(`build: ${compiler} failed on the ring engine's native code (src/capture/linux-ring/*.c)`);
  }
  // Renamed into place only when complete: an interrupted build leaves no half library behind.
  renameSync(temporary, output);
  return output;
}

if (import.meta.main) {
  const path = await buildRingNative();
  if (path) console.error(`built ${path}`);
}
