// Stopping a capture whose worker was never started resolves at once: a run that ends before
// an input started (another input failed, a signal during start-up) must not wait on it.
import { expect, test } from "bun:test";
import { CaptureWorkerClient, LiveCaptureSource } from "../../src/capture/live-capture-source.ts";

test("CaptureWorkerClient.stop() with no worker started resolves, with no kernel counters", async () => {
  const client = new CaptureWorkerClient({ linktype: 0, precision: "micro" });
  expect(await client.stop()).toBeUndefined();
});

test("LiveCaptureSource.stop() before start() resolves with nothing delivered", async () => {
  const source = new LiveCaptureSource({ interface: "lo" });
  expect(await source.stop()).toEqual({ delivered: 0 });
});
