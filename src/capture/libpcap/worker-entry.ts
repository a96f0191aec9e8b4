// Starts the capture worker. The worker is a second entrypoint of `bun build --compile`
// (scripts/build.ts); inside dist/probe entrypoints live under /$bunfs/root/ by their path
// relative to src/, so the compiled binary names it there, and source runs resolve it beside us.

const COMPILED_WORKER_PATH = "/$bunfs/root/capture/libpcap/capture-worker.js";

export function startCaptureWorker(): Worker {
  const compiled = import.meta.url.includes("/$bunfs/");
  return new Worker(compiled ? COMPILED_WORKER_PATH : new URL("./capture-worker.ts", import.meta.url).href);
}
