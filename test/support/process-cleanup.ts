// The probe (and tool) processes an integration test file starts, stopped after each test:
// SIGTERM to whatever still runs, then wait for every one to exit, so no test leaves a daemon
// holding a port or the capture for the next.
import { afterEach } from "bun:test";
import type { Subprocess } from "bun";

/** Call at the top of a test file; push every process started into the returned list. */
export function processesStoppedAfterEach(): Subprocess[] {
  const procs: Subprocess[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      if (p.exitCode === null) p.kill("SIGTERM");
      await p.exited;
    }
  });
  return procs;
}
