// Records the profiles that lay out the executable's bytecode: Bun's profile-guided bytecode
// layout (`bun build --bytecode-order`; scripts/build.ts passes every profile in
// scripts/bytecode-order/). A run of an executable built with bytecode and started with
// BUN_BYTECODE_ORDER_OUT=FILE writes, at exit, hashes of the functions it ran; the next build
// puts their bytecode together at the front of the embedded bundle, so a run reads and decodes
// less of the executable (peak RSS: docs/capture-history.md, "Memory: where it goes"). Functions are
// matched by a hash of their syntax, so a profile keeps working as the code changes; functions
// added since are placed after the recorded ones. The files hold hashes only.
//
// Each profile is one way operators start probe, most common first (the build's order):
//   1-capture.order  probe capture -i lo -w FILE with UDP traffic flowing (needs root)
//   2-serve.order    probe (the default serve mode) on lo with a PCAP-over-IP reader and traffic
// Usage, after changes that move much code: npm run build && bun run scripts/record-bytecode-order.ts && npm run build
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, udpLoad } from "./bench/support/measure.ts";
import { waitFor } from "../test/support/probe-binary.ts";

const root = new URL("..", import.meta.url).pathname;
const probe = join(root, "dist/probe");
const profiles = join(root, "scripts/bytecode-order");
/** Traffic during a recording (udp-load.ts, unpaced): enough batches for the per-batch paths to run many times. */
const PACKETS = 200_000;
const PACKET_BYTES = 100;
/** Every recorded run is stopped after this long, whatever happens. */
const RUN_LIMIT_MS = 30_000;

const work = mkdtempSync(join(tmpdir(), "probe-bytecode-order-"));

/**
 * Runs probe with BUN_BYTECODE_ORDER_OUT (one file per process: %p) until `drive` is done, then
 * stops it with SIGINT (as an operator's Ctrl-C); without `drive`, until it exits by itself.
 */
async function record(name: string, argv: string[], drive?: (stderr: () => string) => Promise<void>): Promise<void> {
  const pattern = join(work, `${name}-%p.order`);
  let stderr = "";
  const proc = Bun.spawn([probe, ...argv], { env: { ...process.env, BUN_BYTECODE_ORDER_OUT: pattern }, stdout: "ignore", stderr: "pipe" });
  const reader = (async () => {
    for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk);
  })();
  const limit = setTimeout(() => proc.kill("SIGKILL"), RUN_LIMIT_MS);
  try {
    await drive?.(() => stderr);
  } finally {
    if (drive) proc.kill("SIGINT");
    await proc.exited;
    clearTimeout(limit);
    await reader;
  }
  const written = readdirSync(work).filter((file) => file.startsWith(`${name}-`));
  if (written.length === 0) throw new Error(`${name}: probe wrote no profile (exit ${proc.exitCode}): ${stderr.trim()}`);
}

// A sink on the traffic's port, so the kernel answers no ICMP port-unreachable (the sender would fail).
const sink = await Bun.udpSocket({ hostname: "127.0.0.1" });
const port = sink.port;

await record("1-capture", ["capture", "-i", "lo", "-w", join(work, "capture.pcap"), `udp dst port ${port}`], async (stderr) => {
  await waitFor(() => stderr().includes("listening on"), 10_000, "the capture to open");
  await udpLoad(port, PACKETS, PACKET_BYTES);
  await Bun.sleep(200);
});

const servePort = await freePort();
await record("2-serve", ["-i", "lo", "--pcap-over-ip", `127.0.0.1:${servePort}`, "--no-rpcap", "-f", `udp dst port ${port}`], async (stderr) => {
  await waitFor(() => stderr().includes("127.0.0.1:" + servePort), 10_000, "the PCAP-over-IP listener");
  let received = 0;
  const reader = connect(servePort, "127.0.0.1");
  reader.on("data", (chunk) => (received += chunk.length));
  reader.on("error", () => {});
  await waitFor(() => received >= 24, 10_000, "the pcap header");
  await udpLoad(port, PACKETS, PACKET_BYTES);
  await Bun.sleep(200);
  reader.destroy();
});

sink.close();

// The files go in as written (their format has sections: never merge them); a run's Workers
// write files of their own (%p). The build passes them in name order: most common first.
rmSync(profiles, { recursive: true, force: true });
mkdirSync(profiles, { recursive: true });
const written = readdirSync(work).filter((file) => file.endsWith(".order")).sort();
const perRun = new Map<string, string[]>();
for (const file of written) {
  const run = file.slice(0, file.lastIndexOf("-"));
  perRun.set(run, [...(perRun.get(run) ?? []), file]);
}
for (const [run, files] of perRun) {
  files.forEach((file, i) => {
    const target = join(profiles, files.length === 1 ? `${run}.order` : `${run}-${i + 1}.order`);
    copyFileSync(join(work, file), target);
    chmodSync(target, 0o644);
  });
  console.error(`recorded ${run}: ${files.length} file(s)`);
}
rmSync(work, { recursive: true, force: true });
