// The rotating output's manifest (owned-files.ts) on real files: what it records survives a
// restart, and nothing but a file probe wrote — still that very file — is ever deleted. Forged
// records (a path outside the directory, a name the template does not make, a file that is not
// the one recorded), a manifest planted as a symbolic link or owned by someone else, hard links
// and swapped files are all refused; the targets are temporary files, checked byte for byte.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryLogger } from "../../src/logging/index.ts";
import { identityOf } from "../../src/outputs/rotating-file/file-identity.ts";
import { MANIFEST_COMPACT_SLACK_RECORDS, manifestName, OwnedFiles } from "../../src/outputs/rotating-file/owned-files.ts";

const TEMPLATE = "c-%N.pcap";
const isOurName = (name: string) => /^c-\d{4,}\.pcap$/.test(name);

let root: string;
let dir: string;
let logger: ReturnType<typeof memoryLogger>;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "owned-files-"));
  dir = join(root, "out");
  mkdirSync(dir);
  logger = memoryLogger();
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function owned(): OwnedFiles {
  const files = new OwnedFiles(dir, TEMPLATE, isOurName, logger);
  files.load();
  return files;
}

/** Writes `name` as probe would (exclusive create) and records it closed with its size. */
function writeOurs(files: OwnedFiles, name: string, bytes: number): void {
  const fd = openSync(join(dir, name), "wx");
  writeFileSync(fd, Buffer.alloc(bytes, 7));
  closeSync(fd);
  files.recordClosed(name, identityOf(lstatSync(join(dir, name), { bigint: true })), bytes);
}

const manifest = () => join(dir, manifestName(TEMPLATE));
const statBig = (path: string) => lstatSync(path, { bigint: true });

describe("owned files", () => {
  test("a restart reads the earlier run's records, oldest first, and deletes only those files", () => {
    const first = owned();
    writeOurs(first, "c-0000.pcap", 100);
    writeOurs(first, "c-0001.pcap", 200);
    first.close();
    writeFileSync(join(dir, "c-0002.pcap"), "not probe's");
    const second = owned();
    const groups = second.groups();
    expect(groups.map((g) => [g.base, g.bytes])).toEqual([
      ["c-0000.pcap", 100],
      ["c-0001.pcap", 200],
    ]);
    expect(second.delete(groups[0]!.entries[0]!)).toBe(100);
    expect(existsSync(join(dir, "c-0000.pcap"))).toBe(false);
    second.close();
    expect(owned().groups().map((g) => g.base)).toEqual(["c-0001.pcap"]);
    expect(readFileSync(join(dir, "c-0002.pcap"), "utf8")).toBe("not probe's");
  });

  test("forged records are refused by their names even with the target's true identity: /etc-like paths, ../x, names the template does not make", () => {
    const outside = join(root, "passwd");
    writeFileSync(outside, "root:x:0:0\n");
    const sibling = join(root, "x");
    writeFileSync(sibling, "sibling");
    writeFileSync(join(dir, "notes.txt"), "notes");
    const first = owned();
    first.close();
    const record = (name: string, path: string) => {
      const s = statBig(path);
      return JSON.stringify({ op: "add", kind: "file", name, base: name, dev: String(s.dev), ino: String(s.ino), uid: Number(s.uid), size: Number(s.size) }) + "\n";
    };
    appendFileSync(manifest(), record(outside, outside) + record("../x", sibling) + record("notes.txt", join(dir, "notes.txt")) + "{not json\n");
    const second = owned();
    expect(second.groups()).toEqual([]);
    expect(logger.lines.some((l) => l.includes("4 records refused"))).toBe(true);
    expect(readFileSync(outside, "utf8")).toBe("root:x:0:0\n");
    expect(readFileSync(sibling, "utf8")).toBe("sibling");
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("notes");
  });

  test("a recorded name that is no longer the file written is left alone and forgotten: a symbolic link, another inode, a hard link, a new size", () => {
    const first = owned();
    for (const [i, size] of [100, 100, 100, 100].entries()) writeOurs(first, `c-000${i}.pcap`, size);
    first.close();
    const target = join(root, "target");
    writeFileSync(target, "precious");
    // 0: swapped for a symbolic link; 1: replaced by another file; 2: hard-linked elsewhere; 3: appended to.
    rmSync(join(dir, "c-0000.pcap"));
    symlinkSync(target, join(dir, "c-0000.pcap"));
    writeFileSync(join(dir, "c-0001.pcap.new"), Buffer.alloc(100, 1));
    renameSync(join(dir, "c-0001.pcap.new"), join(dir, "c-0001.pcap"));
    linkSync(join(dir, "c-0002.pcap"), join(root, "hard"));
    appendFileSync(join(dir, "c-0003.pcap"), "more");
    const second = owned();
    expect(second.groups()).toEqual([]);
    const leftAlone = logger.lines.filter((l) => l.includes("left alone"));
    expect(leftAlone.map((l) => /left alone \S+\/(c-\d+\.pcap): (.*) since probe wrote it/.exec(l)?.slice(1, 3))).toEqual([
      ["c-0000.pcap", "a symbolic link"],
      ["c-0001.pcap", "another file (device or inode changed)"],
      ["c-0002.pcap", "2 hard links"],
      ["c-0003.pcap", "size changed (100 -> 104 bytes)"],
    ]);
    expect(readFileSync(target, "utf8")).toBe("precious");
    for (const i of [0, 1, 2, 3]) expect(existsSync(join(dir, `c-000${i}.pcap`))).toBe(true);
    // Forgotten: a third run does not even look at them.
    second.close();
    logger.lines.length = 0;
    expect(owned().groups()).toEqual([]);
    expect(logger.lines.filter((l) => l.includes("left alone"))).toEqual([]);
  });

  test("delete() checks again at the last moment: a file swapped after listing is not deleted", () => {
    const files = owned();
    writeOurs(files, "c-0000.pcap", 50);
    const [group] = files.groups();
    const target = join(root, "target");
    writeFileSync(target, Buffer.alloc(50, 3));
    rmSync(join(dir, "c-0000.pcap"));
    linkSync(target, join(dir, "c-0000.pcap"));
    expect(files.delete(group!.entries[0]!)).toBeUndefined();
    expect(statSync(target).nlink).toBe(2);
    expect(readFileSync(target)).toEqual(Buffer.alloc(50, 3));
  });

  test("a manifest that is a symbolic link, someone else's, or writable by others is not trusted, read or written", () => {
    const elsewhere = join(root, "elsewhere");
    const ours = owned();
    writeOurs(ours, "c-0000.pcap", 10);
    ours.close();
    const text = readFileSync(manifest(), "utf8");

    // A symbolic link in its place (to a file holding valid-looking records): not followed.
    writeFileSync(elsewhere, text);
    rmSync(manifest());
    symlinkSync(elsewhere, manifest());
    const viaLink = owned();
    expect(viaLink.groups()).toEqual([]);
    writeOurs(viaLink, "c-0001.pcap", 10);
    viaLink.close();
    expect(readFileSync(elsewhere, "utf8")).toBe(text);
    expect(lstatSync(manifest()).isSymbolicLink()).toBe(true);
    expect(logger.lines.some((l) => l.includes("is a symbolic link: left alone"))).toBe(true);

    // Owned by another user (what an unprivileged attacker who replaced it would leave).
    rmSync(manifest());
    writeFileSync(manifest(), text);
    chownSync(manifest(), 65534, 65534);
    expect(owned().groups()).toEqual([]);
    expect(logger.lines.some((l) => l.includes("is owned by uid 65534"))).toBe(true);
    expect(readFileSync(manifest(), "utf8")).toBe(text);

    // Writable by others.
    chownSync(manifest(), 0, 0);
    chmodSync(manifest(), 0o666);
    expect(owned().groups()).toEqual([]);
    expect(logger.lines.some((l) => l.includes("is writable by others"))).toBe(true);
    expect(existsSync(join(dir, "c-0000.pcap"))).toBe(true);
  });

  test("the manifest is rewritten once deleted files' records outnumber the live ones; what it says stays true", () => {
    const files = owned();
    const rounds = MANIFEST_COMPACT_SLACK_RECORDS;
    for (let i = 0; i < rounds; i++) {
      const name = `c-${String(i).padStart(4, "0")}.pcap`;
      writeOurs(files, name, 1);
      if (i < rounds - 3) files.delete(files.entry(name)!);
    }
    files.close();
    const lines = readFileSync(manifest(), "utf8").trim().split("\n");
    // Without the rewrite: a header, two records per file deleted and one per file kept (2046).
    // With it, never more than the slack beyond twice the live records (and a few in flight).
    expect(lines.length).toBeLessThanOrEqual(MANIFEST_COMPACT_SLACK_RECORDS + 2 * 4 + 2);
    expect(owned().groups().map((g) => g.base)).toEqual([rounds - 3, rounds - 2, rounds - 1].map((i) => `c-${String(i).padStart(4, "0")}.pcap`));
  });
});
