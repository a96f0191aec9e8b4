// Robustness run (npm run bench -- robustness): dist/probe rpcapd with a users file and -n,
// one healthy capture session, and, at the same time, fuzzed RPCAP messages from many loopback
// addresses plus an AUTH flood (abandoned wrong-password AUTHs from one address and from many),
// while a real user logs in again and again. Prints messages sent, daemon exits (must be 0),
// healthy-session packets received vs sent, a real login's latency idle (the anchor) and worst
// under the flood, and the daemon's RSS and open fds before and after. Every loop is bounded in
// count and time; the numbers are noisy on a shared machine. Issue 9, "Tests".
import { connect as netConnect, type Socket } from "node:net";
import { readdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileFilter } from "../../src/capture/libpcap/compile-filter.ts";
import { hashPasswordLine } from "../../src/daemon/auth/index.ts";
import { encodeAuthRequest, encodeMessage, RpcapAuthType, RpcapClient, RpcapFramer, RpcapMessageType } from "../../src/protocols/rpcap/index.ts";
import { probeBinary, udpLoad, watchPeakRss } from "./support/measure.ts";
import { prng } from "./support/prng.ts";

/** Fuzzed messages sent in all (bounded), and the time the fuzz may take at most. */
const FUZZ_MESSAGES = Number(process.env.BENCH_FUZZ_MESSAGES ?? 20_000);
const FUZZ_MAX_MS = 30_000;
/** Abandoned wrong-password AUTHs in the flood. */
const FLOOD_AUTHS = Number(process.env.BENCH_FLOOD_AUTHS ?? 600);
/** Real logins measured during the flood, one every REAL_LOGIN_GAP_MS. */
const REAL_LOGINS = 10;
const REAL_LOGIN_GAP_MS = 300;
/** Healthy session's load: bounded count at a modest rate. */
const HEALTHY_PACKETS = 20_000;
const HEALTHY_RATE = 5_000;


function rssAndFds(pid: number): { rssMiB: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKiB = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return { rssMiB: rssKiB / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** Opens a TCP connection from a chosen loopback address; resolves once connected (or null). */
function dial(port: number, from: string, onData?: (chunk: Buffer) => void): Promise<Socket | null> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port, localAddress: from });
    socket.once("connect", () => resolve(socket));
    socket.once("error", () => resolve(null));
    socket.on("error", () => {});
    if (onData) socket.on("data", onData);
    else socket.on("data", () => {});
  });
}

/** One real login from 127.0.0.3: ms until AUTH_REPLY, or Infinity if refused or over 60 s. */
async function realLogin(port: number, password: string): Promise<number> {
  const framer = new RpcapFramer(() => 1 << 20);
  const started = performance.now();
  const { promise, resolve } = Promise.withResolvers<number>();
  const timer = setTimeout(() => resolve(Infinity), 60_000);
  const socket = await dial(port, "127.0.0.3", (chunk) => {
    for (const message of framer.push(chunk)) {
      resolve(message.header.type === RpcapMessageType.AUTH_REPLY ? performance.now() - started : Infinity);
    }
  });
  if (!socket) return Infinity;
  socket.on("close", () => resolve(Infinity));
  socket.write(encodeMessage(0, RpcapMessageType.AUTH_REQ, 0, encodeAuthRequest({ authType: RpcapAuthType.PWD, username: "alice", password })));
  const ms = await promise;
  clearTimeout(timer);
  socket.destroy();
  return ms;
}

/** One fuzzed message: random type/version/value, random or lying plen, random payload. */
function fuzzMessage(random: () => number): Uint8Array {
  const pick = random();
  const payload = new Uint8Array(Math.floor(random() * 96));
  for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(random() * 256);
  const type = random() < 0.7 ? 1 + Math.floor(random() * 16) : Math.floor(random() * 256);
  const ver = random() < 0.8 ? 0 : Math.floor(random() * 256);
  const bytes = encodeMessage(ver, type, Math.floor(random() * 65536), payload);
  if (pick < 0.1) {
    // A plen that lies (larger than what follows, up to 4 GiB).
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(4, Math.floor(random() * 2 ** 32));
  } else if (pick < 0.2) {
    return bytes.subarray(0, Math.floor(random() * bytes.length)); // cut short
  }
  return bytes;
}

export async function benchRobustness(): Promise<void> {
  const seed = Number(process.env.BENCH_SEED ?? 9);
  const random = prng(seed);
  const dir = mkdtempSync(join(tmpdir(), "probe-robustness-"));
  const users = join(dir, "users");
  const password = "correct horse battery staple";
  // Bun.password's defaults (argon2id m=64 MiB, t=2), as `probe passwd` writes them.
  writeFileSync(users, `${await hashPasswordLine("alice", password)}\n`, { mode: 0o600 });
  const port = 43000 + Math.floor(Math.random() * 1000);
  const daemon = Bun.spawn([probeBinary, "rpcapd", "-n", "--users", users, "-4", "-b", "127.0.0.1", "-p", String(port)], { stdout: "ignore", stderr: "pipe" });
  let daemonLog = "";
  void (async () => {
    // Keep the tail only: the fuzz makes the daemon log a line per refused message.
    for await (const chunk of daemon.stderr as ReadableStream<Uint8Array>) daemonLog = (daemonLog + new TextDecoder().decode(chunk)).slice(-65_536);
  })();
  const peak = watchPeakRss(daemon.pid, 100);
  try {
    const deadline = Date.now() + 10_000;
    while (!daemonLog.includes("rpcapd listening") && Date.now() < deadline) await Bun.sleep(50);
    const before = rssAndFds(daemon.pid);

    // Anchor: a real login with nothing else going on (the first one starts a hashing thread).
    await realLogin(port, password);
    const idleLoginMs = await realLogin(port, password);

    // The healthy session: null auth, capture on lo, a bounded UDP load to a port of its own.
    const sinkPort = 30000 + Math.floor(Math.random() * 10000);
    const sink = await Bun.udpSocket({ hostname: "127.0.0.1", port: sinkPort });
    const healthy = await RpcapClient.connect({ host: "127.0.0.1", port });
    await healthy.authenticate();
    await healthy.open("lo");
    let received = 0;
    await healthy.startCapture({ snaplen: 256, filter: compileFilter(`udp dst port ${sinkPort}`, 1, 256), onBatch: (batch) => void (received += batch.count) });
    await Bun.sleep(300);
    const load = udpLoad(sinkPort, HEALTHY_PACKETS, 64, HEALTHY_RATE);

    // The fuzz: short connections from 127.0.1.x, each a burst of fuzzed messages.
    let fuzzSent = 0;
    const fuzzEnd = Date.now() + FUZZ_MAX_MS;
    const fuzz = (async () => {
      let address = 0;
      while (fuzzSent < FUZZ_MESSAGES && Date.now() < fuzzEnd) {
        const from = `127.0.1.${1 + (address++ % 200)}`;
        const socket = await dial(port, from);
        if (!socket) continue;
        const burst = 20 + Math.floor(random() * 60);
        // Half the connections log in first (null auth) so the fuzz reaches the post-AUTH handlers.
        if (random() < 0.5) socket.write(encodeMessage(0, RpcapMessageType.AUTH_REQ, 0, encodeAuthRequest({ authType: RpcapAuthType.NULL, username: "", password: "" })));
        for (let i = 0; i < burst && fuzzSent < FUZZ_MESSAGES; i++, fuzzSent++) socket.write(fuzzMessage(random));
        await Bun.sleep(5);
        socket.destroy();
      }
    })();

    // The flood: wrong-password AUTHs sent and abandoned, half from one address, half from many.
    let floodSent = 0;
    const flood = (async () => {
      while (floodSent < FLOOD_AUTHS && Date.now() < fuzzEnd) {
        const from = floodSent % 2 === 0 ? "127.0.0.5" : `127.0.2.${1 + (floodSent % 100)}`;
        const socket = await dial(port, from);
        floodSent++;
        if (!socket) continue;
        socket.write(encodeMessage(0, RpcapMessageType.AUTH_REQ, 0, encodeAuthRequest({ authType: RpcapAuthType.PWD, username: "alice", password: `guess-${floodSent}` })));
        await Bun.sleep(10);
        socket.destroy();
      }
    })();

    // Real logins during the flood.
    const latencies: number[] = [];
    for (let i = 0; i < REAL_LOGINS; i++) {
      await Bun.sleep(REAL_LOGIN_GAP_MS);
      latencies.push(await realLogin(port, password));
    }
    await Promise.all([fuzz, flood]);
    const sent = (await load).sent;
    const drainDeadline = Date.now() + 5_000;
    while (received < sent && Date.now() < drainDeadline) await Bun.sleep(50);
    healthy.close();
    sink.close();
    await Bun.sleep(2_000); // let closed sessions and idle hashing work settle
    const after = rssAndFds(daemon.pid);
    const exits = daemon.exitCode === null ? 0 : 1;
    const worst = Math.max(...latencies);
    const failedLogins = latencies.filter((ms) => !Number.isFinite(ms)).length;

    console.log("\n## robustness (rpcapd --users, -n; fuzz + AUTH flood + healthy capture)");
    const rows: [string, string][] = [
      ["seed", String(seed)],
      ["RPCAP messages sent (fuzzed)", `${fuzzSent} (bound ${FUZZ_MESSAGES} / ${FUZZ_MAX_MS / 1000} s)`],
      ["abandoned wrong-password AUTHs", `${floodSent} (half from 127.0.0.5, half from 100 addresses)`],
      ["daemon exits", `${exits}${exits ? ` (exit code ${daemon.exitCode})` : ""}`],
      ["healthy session packets received / sent", `${received} / ${sent}${received === sent ? " (lossless)" : ""}`],
      ["real login latency, idle (anchor)", `${idleLoginMs.toFixed(0)} ms`],
      ["real login latency under flood, worst of " + REAL_LOGINS, Number.isFinite(worst) ? `${worst.toFixed(0)} ms` : `${failedLogins} of ${REAL_LOGINS} failed`],
      ["real login latency under flood, median", `${latencies.sort((a, b) => a - b)[Math.floor(latencies.length / 2)]!.toFixed(0)} ms`],
      ["daemon RSS before / after / peak", `${before.rssMiB.toFixed(1)} / ${after.rssMiB.toFixed(1)} / ${peak.stop().toFixed(1)} MiB`],
      ["daemon open fds before / after", `${before.fds} / ${after.fds} (a live hashing thread holds 2; ended after 60 s idle)`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [key, value] of rows) console.log(`| ${key.padEnd(width)} | ${value}`);
    if (exits) console.log(daemonLog.split("\n").slice(-20).join("\n"));
  } finally {
    daemon.kill("SIGTERM");
    await daemon.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchRobustness();
