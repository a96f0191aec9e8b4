#!/usr/bin/env node
// One-step set-up for a fresh Debian machine with Node and npm, run as root.
// Installs only what is missing, so `npm start` and `npm test` are cheap the second time:
//   (always)       npm dependencies (Bun comes from the pinned npm package `bun`)
//   (always)       libpcap0.8 through apt-get, the one native library probe loads at run time
//   --build        dist/probe, rebuilt when any file under src/ is newer than the binary;
//                  gcc through apt-get when there is no cc (the capture thread's C is built
//                  with the program: scripts/build-ring-native.ts)
//   --test-tools   the third-party judges and helpers the tests use (tshark, tcpdump,
//                  capinfos, editcap, mergecap, socat, nft, ip, openssl, setpriv, libtrace's
//                  traceanon/tracepktdump, systemd-analyze, python3-prometheus-client)
// Plain Node with no dependencies: it runs before node_modules exists.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));
const log = (msg) => process.stderr.write(`setup: ${msg}\n`);

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: ["ignore", "inherit", "inherit"], cwd: root, ...opts });
  if (r.status !== 0) {
    log(`'${cmd} ${argv.join(" ")}' failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

function has(command) {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function hasLibrary(soname) {
  try {
    return execFileSync("ldconfig", ["-p"], { encoding: "utf8" }).includes(soname);
  } catch {
    return ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib"]
      .some((dir) => existsSync(join(dir, soname)));
  }
}

let aptUpdated = false;
function aptInstall(packages) {
  if (packages.length === 0) return;
  if (!has("apt-get")) {
    log(`missing ${packages.join(", ")} and no apt-get here: install them by hand`);
    process.exit(1);
  }
  if (process.getuid && process.getuid() !== 0) {
    log(`missing ${packages.join(", ")}: run as root once, or: sudo apt-get install ${packages.join(" ")}`);
    process.exit(1);
  }
  if (!aptUpdated) {
    log("apt-get update");
    run("apt-get", ["update", "-qq"]);
    aptUpdated = true;
  }
  log(`apt-get install ${packages.join(" ")}`);
  run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

// 1. npm dependencies (including Bun itself).
const bunBinary = join(root, "node_modules", ".bin", "bun");
const lockNewer = existsSync(join(root, "node_modules", ".package-lock.json")) &&
  statSync(join(root, "package-lock.json")).mtimeMs > statSync(join(root, "node_modules", ".package-lock.json")).mtimeMs;
if (!existsSync(bunBinary) || !existsSync(join(root, "node_modules", "zod")) || lockNewer) {
  log("installing npm dependencies");
  run("npm", [existsSync(join(root, "package-lock.json")) ? "ci" : "install", "--no-audit", "--no-fund"]);
}

// 2. Native libraries and, for tests, the judging tools.
const aptMissing = [];
if (!hasLibrary("libpcap.so.0.8")) aptMissing.push("libpcap0.8");
if (args.has("--build") && !has("cc")) aptMissing.push("gcc");
if (args.has("--test-tools")) {
  const tools = {
    tshark: "tshark", tcpdump: "tcpdump", capinfos: "wireshark-common", editcap: "wireshark-common",
    mergecap: "wireshark-common", socat: "socat", nft: "nftables", ip: "iproute2", openssl: "openssl",
    setpriv: "util-linux", traceanon: "libtrace-tools", tracepktdump: "libtrace-tools",
    "systemd-analyze": "systemd", "/usr/bin/python3": "python3",
  };
  for (const [command, pkg] of Object.entries(tools)) {
    if (!has(command) && !aptMissing.includes(pkg)) aptMissing.push(pkg);
  }
  // Debian's Prometheus text parser judges the metrics endpoint; it is a module of Debian's python3.
  const prometheus = spawnSync("/usr/bin/python3", ["-c", "import prometheus_client"], { stdio: "ignore" });
  if (prometheus.status !== 0) aptMissing.push("python3-prometheus-client");
}
aptInstall(aptMissing);
// bun test writes its JUnit report here (npm test) and does not create the folder itself.
if (args.has("--test-tools")) mkdirSync(join(root, ".test-results"), { recursive: true });

// 3. The compiled binary.
if (args.has("--build")) {
  const binary = join(root, "dist", "probe");
  const sourceTime = Math.max(newestMtime(join(root, "src")), statSync(join(root, "package.json")).mtimeMs,
    statSync(join(root, "scripts", "build.ts")).mtimeMs, statSync(join(root, "scripts", "build-ring-native.ts")).mtimeMs);
  // build/ holds the ring's native library that tests run from source load (and the build embeds).
  const nativeBuilt = existsSync(join(root, "build")) && readdirSync(join(root, "build")).some((name) => name.startsWith("ring-native-"));
  if (!existsSync(binary) || statSync(binary).mtimeMs < sourceTime || !nativeBuilt) {
    log("building dist/probe");
    run(bunBinary, ["run", "scripts/build.ts"]);
  }
}
