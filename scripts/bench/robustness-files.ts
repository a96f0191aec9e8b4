// Red team for the files probe owns (npm run bench -- robustness): an adversary with write access
// to a capture directory plants what a rotating output could mistake for its own — regular files,
// symbolic links (to temporary "victim" files outside the directory), dangling links, hard links,
// FIFOs and directories under names the -w template makes, .part and -z (.gz) names, a symbolic
// link or someone else's file as the manifest — and dist/probe runs rotation with retention over
// them, twice (the second run must retire the first run's files). Then: every planted entry and
// every victim compared with its snapshot (type, inode, size, link target, content hash), and the
// files of ours counted. A last mode kills a capture with kill -9, swaps the .part it left for a
// link to a victim and restarts: recovery must not truncate the victim.
//
// Prints, per mode: tries, entries planted, entries wrongly touched (must be 0), files of ours
// retired by retention, files of ours left, and whether the limit held. Bounded: a fixed number
// of tries, each run killed after RUN_TIMEOUT_MS, the whole under BENCH_MAX_MS.
import { createHash } from "node:crypto";
import {
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePcapGlobalHeader } from "../../src/protocols/pcap/index.ts";
import { probeBinary } from "./support/measure.ts";
import { prng } from "./support/prng.ts";

/** Tries per mode (each a fresh directory, a different planting), and the whole bench's budget. */
const TRIES_PER_MODE = Number(process.env.BENCH_FILES_TRIES ?? 3);
const BENCH_MAX_MS = 55_000;
/** One probe run may take this long at most (it replays a 1 MB file; seconds under load). */
const RUN_TIMEOUT_MS = 20_000;
const PACKETS = 6000;
const FRAME_BYTES = 100;

interface Mode {
  readonly name: string;
  /** -w template (file name part) and the rotation flags. */
  readonly template: string;
  readonly flags: readonly string[];
  /** Names the template makes, for the planting (the first runs' numbering starts after them). */
  readonly plantNames: readonly string[];
  /** The limit to check on what is left: bytes of ours, or files of ours (a .gz counts with its file). */
  readonly limit: { bytes: number } | { files: number };
}

const MODES: readonly Mode[] = [
  {
    name: "%N -C 0.05 --retain-bytes 200k",
    template: "out-%N.pcap",
    flags: ["-C", "0.05", "--retain-bytes", "200k"],
    plantNames: ["out-0000.pcap", "out-0001.pcap", "out-0002.pcap", "out-0003.pcap", "out-0004.pcap.part", "out-0005.pcap.gz"],
    limit: { bytes: 200_000 + 50_116 },
  },
  {
    name: "plain name -C 0.05 --retain-bytes 200k",
    template: "out.pcap",
    flags: ["-C", "0.05", "--retain-bytes", "200k"],
    plantNames: ["out.pcap", "out.pcap1", "out.pcap2", "out.pcap3", "out.pcap4.part", "out.pcap5.gz"],
    limit: { bytes: 200_000 + 50_116 },
  },
  {
    name: "ring -C 0.05 -W 4",
    template: "ring",
    flags: ["-C", "0.05", "-W", "4"],
    plantNames: ["ring1", "ring2", "ring3.part"],
    limit: { files: 4 },
  },
  {
    name: "%N --rotate-packets 500 -W 3 -z gzip",
    template: "z-%N.pcap",
    flags: ["--rotate-packets", "500", "-W", "3", "-z", "gzip"],
    plantNames: ["z-0000.pcap", "z-0001.pcap.gz", "z-0002.pcap", "z-0003.pcap.part"],
    limit: { files: 3 },
  },
];

/** What a planted entry or a victim was, to find out whether anything touched it. */
interface Snapshot {
  readonly path: string;
  readonly state: string;
}

function describe(path: string): string {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return "missing";
  }
  const base = `ino=${stat.ino} mode=${stat.mode.toString(8)} nlink=${stat.nlink} uid=${stat.uid}`;
  if (stat.isSymbolicLink()) return `${base} link->${readlinkSync(path)}`;
  if (stat.isFile()) return `${base} size=${stat.size} sha=${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
  return base;
}

function snapshot(paths: readonly string[]): Snapshot[] {
  return paths.map((path) => ({ path, state: describe(path) }));
}

function touched(before: readonly Snapshot[]): string[] {
  return before.filter((s) => describe(s.path) !== s.state).map((s) => s.path);
}


function writeInput(path: string): void {
  const header = encodePcapGlobalHeader({ linktype: 1, snaplen: 262144, precision: "micro", littleEndian: true });
  const records = Buffer.alloc(PACKETS * (16 + FRAME_BYTES));
  const day = Date.UTC(2026, 11, 1) / 1000;
  for (let i = 0; i < PACKETS; i++) {
    const at = i * (16 + FRAME_BYTES);
    records.writeUInt32LE(day + Math.floor(i / 100), at);
    records.writeUInt32LE((i % 100) * 10_000, at + 4);
    records.writeUInt32LE(FRAME_BYTES, at + 8);
    records.writeUInt32LE(FRAME_BYTES, at + 12);
    records.writeUInt32BE(i, at + 16 + 42);
  }
  writeFileSync(path, Buffer.concat([header, records]));
}

/**
 * Plants, under each name, one of the things an adversary could leave (chosen by `random`), and
 * the manifest's name taken too on some tries. Returns the planted paths and the victims.
 */
function plant(dir: string, victimsDir: string, mode: Mode, random: () => number, manifestName: string | undefined): { planted: string[]; victims: string[] } {
  const planted: string[] = [];
  const victims: string[] = [];
  const victim = (label: string) => {
    const path = join(victimsDir, `${label}-${victims.length}`);
    writeFileSync(path, `victim ${label} ${victims.length}\n`.repeat(50));
    victims.push(path);
    return path;
  };
  const kinds = ["file", "symlink", "dangling", "hardlink", "fifo", "directory", "big-file"] as const;
  for (const name of mode.plantNames) {
    const path = join(dir, name);
    const kind = kinds[Math.floor(random() * kinds.length)]!;
    switch (kind) {
      case "file":
        writeFileSync(path, "pre-existing capture of someone else\n");
        break;
      case "big-file":
        writeFileSync(path, Buffer.alloc(120_000, 0x42));
        break;
      case "symlink":
        symlinkSync(victim("link"), path);
        break;
      case "dangling":
        symlinkSync(join(victimsDir, "does-not-exist"), path);
        break;
      case "hardlink":
        linkSync(victim("hard"), path);
        break;
      case "fifo":
        Bun.spawnSync(["mkfifo", path]);
        break;
      case "directory":
        mkdirSync(path);
        break;
    }
    planted.push(path);
  }
  if (manifestName) {
    const path = join(dir, manifestName);
    if (random() < 0.5) symlinkSync(victim("manifest-link"), path);
    else {
      // Someone else's manifest naming the victims and the planted names.
      const lines = [JSON.stringify({ probe: "owned-files", version: 1, template: mode.template })];
      for (const p of [...victims, ...planted]) {
        let stat;
        try {
          stat = lstatSync(p, { bigint: true });
        } catch {
          continue;
        }
        const name = p.startsWith(dir) ? p.slice(dir.length + 1) : p;
        lines.push(JSON.stringify({ op: "add", kind: "file", name, base: name, dev: String(stat.dev), ino: String(stat.ino), uid: 0, size: Number(stat.size) }));
      }
      writeFileSync(path, lines.join("\n") + "\n");
      chownSync(path, 65534, 65534);
    }
    planted.push(path);
  }
  return { planted, victims };
}

async function runProbe(args: readonly string[]): Promise<{ code: number; stderr: string }> {
  const proc = Bun.spawn([probeBinary, "capture", ...args], { stdout: "ignore", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), RUN_TIMEOUT_MS);
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stderr };
}

/** Files of ours left in `dir`: everything but what was planted and the manifests. */
function oursLeft(dir: string, planted: readonly string[]): string[] {
  return readdirSync(dir)
    .filter((name) => !name.startsWith(".probe-files-"))
    .map((name) => join(dir, name))
    .filter((path) => !planted.includes(path));
}

interface Row {
  mode: string;
  tries: number;
  planted: number;
  wronglyTouched: number;
  retired: number;
  left: number;
  /** Tries where the manifest's name was planted: a restart cannot retire the first run's files then. */
  manifestPlanted: number;
  limitHeld: number;
  /** Tries the limit is judged on (the manifest left alone: both runs' files retirable). */
  limitTries: number;
  runsFailed: number;
}

function manifestNameOf(template: string): string {
  return ".probe-files-" + createHash("sha256").update(template).digest("hex").slice(0, 16);
}

async function retentionMode(mode: Mode, root: string, input: string, random: () => number, deadline: number): Promise<Row> {
  const row: Row = { mode: mode.name, tries: 0, planted: 0, wronglyTouched: 0, retired: 0, left: 0, manifestPlanted: 0, limitHeld: 0, limitTries: 0, runsFailed: 0 };
  for (let t = 0; t < TRIES_PER_MODE && Date.now() < deadline; t++) {
    const dir = mkdtempSync(join(root, "out-"));
    const victimsDir = mkdtempSync(join(root, "victims-"));
    // Every other try also takes the manifest's name.
    const manifestPlanted = t % 2 === 1;
    const { planted, victims } = plant(dir, victimsDir, mode, random, manifestPlanted ? manifestNameOf(mode.template) : undefined);
    if (manifestPlanted) row.manifestPlanted++;
    const before = snapshot([...planted, ...victims]);
    row.tries++;
    row.planted += planted.length;
    for (let run = 0; run < 2; run++) {
      const r = await runProbe(["-r", input, "-w", join(dir, mode.template), ...mode.flags]);
      if (r.code !== 0) row.runsFailed++;
      if (r.code !== 0 && process.env.BENCH_VERBOSE) console.log(`${mode.name}: exit ${r.code}: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
      row.retired += (r.stderr.match(/retention: deleted /g) ?? []).length;
    }
    row.wronglyTouched += touched(before).length;
    const left = oursLeft(dir, planted);
    row.left += left.length;
    const held =
      "bytes" in mode.limit
        ? left.reduce((n, p) => n + statSync(p).size, 0) <= mode.limit.bytes
        : new Set(left.map((p) => p.replace(/\.gz$/, ""))).size <= mode.limit.files;
    if (!manifestPlanted) {
      row.limitTries++;
      if (held) row.limitHeld++;
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(victimsDir, { recursive: true, force: true });
  }
  return row;
}

/** kill -9 mid-file, the .part swapped for a link to a victim (or a hard link), then a restart. */
async function recoveryMode(root: string, input: string, deadline: number): Promise<Row> {
  const row: Row = { mode: "kill -9, .part swapped, restart", tries: 0, planted: 0, wronglyTouched: 0, retired: 0, left: 0, manifestPlanted: 0, limitHeld: 0, limitTries: 0, runsFailed: 0 };
  for (let t = 0; t < TRIES_PER_MODE && Date.now() < deadline; t++) {
    const dir = mkdtempSync(join(root, "kill-"));
    const victimsDir = mkdtempSync(join(root, "victims-"));
    const template = join(dir, "k-%N.pcap");
    const proc = Bun.spawn([probeBinary, "capture", "-r", input, "--realtime", "-w", template, "--rotate-packets", "100000"], { stdout: "ignore", stderr: "ignore" });
    const part = join(dir, "k-0000.pcap.part");
    for (let i = 0; i < 200 && !(existsSync(part) && statSync(part).size > 24); i++) await Bun.sleep(25);
    proc.kill(9);
    await proc.exited;
    row.tries++;
    if (!existsSync(part)) {
      row.runsFailed++;
      continue;
    }
    const victim = join(victimsDir, "victim");
    // The victim larger than the part: a truncation "to the last complete record" would show.
    writeFileSync(victim, "precious\n".repeat(10_000));
    rmSync(part);
    if (t % 2 === 0) symlinkSync(victim, part);
    else linkSync(victim, part);
    row.planted++;
    const before = snapshot([part, victim]);
    const r = await runProbe(["-r", input, "-c", "100", "-w", template, "--rotate-packets", "100000"]);
    if (r.code !== 0) row.runsFailed++;
    row.wronglyTouched += touched(before).length;
    row.left += oursLeft(dir, [part]).length;
    rmSync(dir, { recursive: true, force: true });
    rmSync(victimsDir, { recursive: true, force: true });
  }
  return row;
}

export async function benchRobustnessFiles(): Promise<void> {
  const deadline = Date.now() + BENCH_MAX_MS;
  const root = mkdtempSync(join(tmpdir(), "bench-files-"));
  const random = prng(Number(process.env.BENCH_SEED ?? 21));
  try {
    const input = join(root, "in.pcap");
    writeInput(input);
    const rows: Row[] = [];
    for (const mode of MODES) rows.push(await retentionMode(mode, root, input, random, deadline));
    rows.push(await recoveryMode(root, input, deadline));
    const total = rows.reduce(
      (t, r) => ({
        ...t,
        tries: t.tries + r.tries,
        planted: t.planted + r.planted,
        wronglyTouched: t.wronglyTouched + r.wronglyTouched,
        retired: t.retired + r.retired,
        left: t.left + r.left,
        manifestPlanted: t.manifestPlanted + r.manifestPlanted,
        limitHeld: t.limitHeld + r.limitHeld,
        limitTries: t.limitTries + r.limitTries,
        runsFailed: t.runsFailed + r.runsFailed,
      }),
      { mode: "total", tries: 0, planted: 0, wronglyTouched: 0, retired: 0, left: 0, manifestPlanted: 0, limitHeld: 0, limitTries: 0, runsFailed: 0 } as Row,
    );
    rows.push(total);
    console.log("\nFiles probe owns: planted files, links, hard links, FIFOs, directories and manifests in the output directory");
    const header = ["mode", "tries", "planted", "wrongly touched", "ours retired", "ours left", "manifest planted", "limit held", "runs failed"];
    const table = rows.map((r) =>
      [r.mode, r.tries, r.planted, r.wronglyTouched, r.retired, r.left, r.manifestPlanted, r.limitTries ? `${r.limitHeld}/${r.limitTries}` : "-", r.runsFailed].map(String),
    );
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
    const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
    console.log(line(header));
    for (const row of table) console.log(line(row));
    console.log(
      "limit held: judged after the restart, on tries whose manifest the adversary left alone. With its name taken (a link, someone\n" +
        "else's file) the manifest is refused and not replaced: each run retires its own files, a restart cannot retire the earlier\n" +
        "run's, and a ring whose every slot holds such a file stops with one line (the 'runs failed').",
    );
    if (total.wronglyTouched > 0) console.log(`FAILED: ${total.wronglyTouched} planted entries or victims were touched`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchRobustnessFiles();
