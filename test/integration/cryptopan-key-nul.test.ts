// Debian's traceanon (libtrace 3.0.22) reads its CryptoPAn key file and copies it into the key
// with strlcpy (tools/traceanon/traceanon.c), so it stops at the first NUL byte and the rest of
// its 32-byte key stays zero. probe takes the file's 32 bytes as they are. These tests show the
// exact relationship with the real traceanon as judge: for a key K with a NUL byte, traceanon
// with K equals probe with K' = K cut at its first NUL and zero-filled to 32 bytes, and differs
// from probe with K. A key without NUL bytes gives both tools the same output (docs/stages.md).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AnonymizeStage } from "../../src/pipeline/stages/anonymize.ts";
import { CRYPTOPAN_KEY_BYTES } from "../../src/pipeline/stages/cryptopan.ts";
import { frame, ipPacket, pcapFile, seededRandom } from "../support/packet-builder.ts";
import { processCaptureFile } from "../support/process-capture-file.ts";
import { runProbe } from "../support/probe-binary.ts";

const dir = mkdtempSync(join(tmpdir(), "cryptopan-key-nul-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

const rand = seededRandom(21);
const byte = () => Math.floor(rand() * 256);

/** 32 random bytes with no NUL, then NULs at `nulAt` (the positions the test is about). */
function keyWithNulAt(...nulAt: number[]): Uint8Array {
  const key = Uint8Array.from({ length: CRYPTOPAN_KEY_BYTES }, () => 1 + Math.floor(rand() * 255));
  for (const at of nulAt) key[at] = 0;
  return key;
}

/** What traceanon's strlcpy leaves of a key: its bytes up to the first NUL, zeros after. */
function cutAtFirstNul(key: Uint8Array): Uint8Array {
  const cut = new Uint8Array(key.byteLength);
  const end = key.indexOf(0);
  cut.set(end < 0 ? key : key.subarray(0, end));
  return cut;
}

const input = join(dir, "in.pcap");
writeFileSync(
  input,
  pcapFile(
    1,
    Array.from({ length: 300 }, (_, i) => {
      const address = () => [1 + (byte() % 223), byte(), byte(), byte()].join(".");
      return frame("ethernet", ipPacket({ src: address(), dst: address(), l4: { kind: "udp", sport: 1000 + i, dport: 53, payload: 8 } }));
    }),
  ),
);

/** ip.src|ip.dst of every packet, by tshark. */
function addresses(path: string): string[] {
  return run(["tshark", "-r", path, "-n", "-T", "fields", "-E", "separator=|", "-e", "ip.src", "-e", "ip.dst"]).trimEnd().split("\n");
}

let runs = 0;
async function probeWith(key: Uint8Array): Promise<string[]> {
  const out = join(dir, `probe-${++runs}.pcap`);
  await processCaptureFile(input, out, "pcap", [new AnonymizeStage({ method: { kind: "cryptopan", key }, which: "both" })]);
  return addresses(out);
}

function traceanonWith(key: Uint8Array): string[] {
  const keyFile = join(dir, `key-${++runs}.bin`);
  writeFileSync(keyFile, key);
  const out = join(dir, `traceanon-${runs}.pcap`);
  run(["traceanon", "-s", "-d", "-f", keyFile, `pcapfile:${input}`, `pcapfile:${out}`]);
  return addresses(out);
}

describe("CryptoPAn keys with NUL bytes: probe takes 32 bytes, traceanon stops at the first NUL", () => {
  test("the input has 300 distinct-looking packets (the comparisons below mean something)", () => {
    const lines = addresses(input);
    expect(lines.length).toBe(300);
    expect(new Set(lines).size).toBe(300);
  });

  test("a key without NUL bytes: traceanon and probe agree", async () => {
    const key = keyWithNulAt();
    expect(key.includes(0)).toBe(false);
    const theirs = traceanonWith(key);
    expect(await probeWith(key)).toEqual(theirs);
    expect(theirs).not.toEqual(addresses(input));
  });

  // 10: inside the AES key (bytes 0-15); 16 and 24: inside the pad (bytes 16-31).
  for (const at of [10, 16, 24]) {
    test(`a NUL at byte ${at}: traceanon with K equals probe with K cut at the NUL and zero-filled, and differs from probe with K`, async () => {
      const key = keyWithNulAt(at);
      const cut = cutAtFirstNul(key);
      expect(cut.subarray(0, at)).toEqual(key.subarray(0, at));
      expect(cut.subarray(at).every((b) => b === 0)).toBe(true);
      const theirs = traceanonWith(key);
      expect(await probeWith(cut)).toEqual(theirs);
      const ours = await probeWith(key);
      const differing = ours.filter((line, i) => line !== theirs[i]).length;
      expect(differing).toBeGreaterThan(250);
    });
  }

  test("a key starting with NUL: traceanon uses the all-zero key", async () => {
    const key = keyWithNulAt(0, 5);
    const theirs = traceanonWith(key);
    expect(await probeWith(new Uint8Array(CRYPTOPAN_KEY_BYTES))).toEqual(theirs);
    expect(await probeWith(key)).not.toEqual(theirs);
    // Any other key starting with NUL gives traceanon the same output.
    expect(traceanonWith(keyWithNulAt(0))).toEqual(theirs);
  });

  test("a NUL as the last byte changes nothing: the cut key is the key", async () => {
    const key = keyWithNulAt(31);
    expect(cutAtFirstNul(key)).toEqual(key);
    expect(await probeWith(key)).toEqual(traceanonWith(key));
  });
});

describe("probe warns in one line when a key file holds a NUL byte", () => {
  test("a key with a NUL at byte 10: one warning naming the offset; the output is probe's CryptoPAn with all 32 bytes", async () => {
    const key = keyWithNulAt(10);
    const keyFile = join(dir, "warn.key");
    writeFileSync(keyFile, key);
    const out = join(dir, "warn.pcap");
    const r = await runProbe(["capture", "-r", input, "--anonymize-key-file", keyFile, "-w", out]);
    expect(r.exitCode).toBe(0);
    const warnings = r.stderr.split("\n").filter((line) => line.includes("NUL"));
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toContain(`anonymize: key file ${keyFile} holds a NUL byte at offset 10: probe uses all 32 bytes, traceanon -f stops at the first NUL, so their outputs differ (docs/stages.md)`);
    expect(addresses(out)).toEqual(await probeWith(key));
  });

  test("no warning for a key without NUL bytes, nor for one whose only NUL is the last byte", async () => {
    for (const key of [keyWithNulAt(), keyWithNulAt(31)]) {
      const keyFile = join(dir, `quiet-${++runs}.key`);
      writeFileSync(keyFile, key);
      const r = await runProbe(["capture", "-r", input, "--anonymize-key-file", keyFile, "-w", join(dir, `quiet-${runs}.pcap`)]);
      expect(r.exitCode).toBe(0);
      expect(r.stderr).not.toContain("NUL");
    }
  });
});
