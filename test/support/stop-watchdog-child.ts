// A process that arms the real StopWatchdog and then hangs as a stop can: "spin" keeps the main
// thread busy (no timer runs; only the Worker can end it), "wait" awaits a promise that never
// settles (the main thread's timer ends it), "disarm" disarms and then lingers (nothing fires).
import { StopWatchdog } from "../../src/cli/stop-watchdog.ts";

const mode = process.argv[2];
const watchdog = new StopWatchdog({ name: "probe", timeoutMs: 300, killGraceMs: 300 });
watchdog.update(["output file - (standard output)", "input lo"]);
watchdog.arm();
if (mode === "spin") {
  const until = Date.now() + 20_000; // bounded: a broken watchdog ends the test, not the machine
  while (Date.now() < until) {}
  process.exit(0);
} else if (mode === "wait") {
  setTimeout(() => process.exit(0), 20_000);
  await new Promise(() => {});
} else {
  watchdog.disarm();
  await Bun.sleep(1200);
  process.stdout.write("lingered\n");
}
