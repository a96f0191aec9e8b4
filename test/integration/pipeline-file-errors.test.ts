// `probe run FILE` on files that are not good pipeline files, through the built binary: each gets
// one line (a spec with several mistakes one line per mistake) naming the real line and column,
// nothing of a file that is not a spec is echoed, keys are escaped, directories, devices, FIFOs
// and large files each get their own reason without hanging; and --print-pipeline leaves
// secrets out, so that a printed pipeline with a redacted secret is refused, not run.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runProbe, runTool } from "../support/probe-binary.ts";
import { vectorPath } from "../support/fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "pipeline-file-errors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function specFile(text: string | Uint8Array, extension = "yaml"): string {
  const path = join(dir, `f${++files}.${extension}`);
  writeFileSync(path, text);
  return path;
}

/** Runs `probe run PATH`: exit status 2 and exactly the one line `probe: PATH: <message>`. */
async function refusedWith(path: string, message: string): Promise<void> {
  const r = await runProbe(["run", path], { timeoutMs: 10_000 });
  expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 2, stderr: `probe: ${path}: ${message}\n` });
  expect(r.stdout).toBe("");
}

const GOOD_SPEC = "inputs:\n  - kind: file\n    path: a.pcap\noutputs:\n  - kind: file\n    path: b.pcap\n";

describe("syntax errors name the real line and column of the file", () => {
  const yaml: [string, string][] = [
    ["inputs:\n  - kind: file\n    path: a.pcap\n  bad: [\noutputs: x\n", "not valid YAML (line 4, column 3): Unexpected token"],
    ["# a comment\ninputs: [\noutputs: []\n", "not valid YAML (line 3, column 1): Unexpected token"],
    [`${GOOD_SPEC}quiet: *nothing\n`, "not valid YAML (line 7, column 8): Unresolved alias"],
    [`${GOOD_SPEC}precision:\tmicro\n\t\tquiet: true\n`, "not valid YAML (line 8, column 3): Tab characters cannot be used as indentation"],
    ['inputs:\n  - kind: file\n    path: "a\\qb.pcap"\n', "not valid YAML (line 3, column 14): Unexpected character"],
  ];
  for (const [text, message] of yaml) {
    test(`YAML: ${message}`, async () => {
      await refusedWith(specFile(text), message);
    });
  }

  const json: [string, string][] = [
    ['{\n  "inputs": [\n    {"kind": "file",, }\n  ]\n}\n', "not valid JSON (line 3, column 21): expected a key in double quotes, found \",\""],
    ['{\n  "inputs": [{"kind": "file", "path": "a.pcap"}],\n  "outputs": [{"kind": "file", "path": "b", "format": pcap}]\n}\n', "not valid JSON (line 3, column 55): expected a value, found \"p\""],
    ['{"inputs": [{"kind": "file", "path": "a.pcap"}],\n "outputs": [\n', "not valid JSON (line 3, column 1): expected a value, found the end of the file"],
    ['{"quiet": true}\n}', "not valid JSON (line 2, column 1): text after the end of the JSON value"],
  ];
  for (const [text, message] of json) {
    test(`JSON: ${message}`, async () => {
      await refusedWith(specFile(text, "json"), message);
    });
  }
});

describe("duplicate keys are refused with the place of the second", () => {
  test("YAML, in a block mapping", async () => {
    await refusedWith(specFile(`${GOOD_SPEC}    path: c.pcap\n`), 'not valid YAML (line 7, column 5): the key "path" is given twice in one mapping (first on line 6)');
  });
  test("YAML, in a flow mapping", async () => {
    await refusedWith(
      specFile("inputs:\n  - kind: file\n    path: a.pcap\noutputs:\n  - {kind: udpstr, target: {host: 127.0.0.1, port: 9, port: 10}}\n"),
      'not valid YAML (line 5, column 55): the key "port" is given twice in one mapping (first on line 5)',
    );
  });
  test("YAML, at the top level", async () => {
    await refusedWith(specFile(`quiet: true\n${GOOD_SPEC}quiet: false\n`), 'not valid YAML (line 8, column 1): the key "quiet" is given twice in one mapping (first on line 1)');
  });
  test("JSON", async () => {
    await refusedWith(
      specFile('{\n  "inputs": [{"kind": "file", "path": "a.pcap"}],\n  "outputs": [{"kind": "file", "path": "b.pcap"}],\n  "inputs": []\n}\n', "json"),
      'not valid JSON (line 4, column 3): the key "inputs" is given twice (first on line 2)',
    );
  });
});

describe("what a file holds is never echoed raw", () => {
  test("an unknown key with terminal control sequences and a newline is escaped, one line per key", async () => {
    const path = specFile(`${GOOD_SPEC}"\\e]0;owned\\a\\e[2J\\nprobe: all good": 1\n`);
    const r = await runProbe(["run", path]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(`probe: ${path}: "\\x1b]0;owned\\x07\\x1b[2J\\nprobe: all good": unknown key\n`);
    expect(/[\u0000-\u0009\u000b-\u001f\u007f]/.test(r.stderr)).toBe(false);
  });

  test("a shadow-like file (lines with colons, no spec key): one line, none of its text", async () => {
    const path = specFile("root:$6$Zq1SECRETSALT$HASHHASHHASH:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n");
    await refusedWith(path, "not a pipeline file: a mapping without inputs, stages or outputs");
  });

  test("/etc/shadow itself (probe runs as root): one line, none of its text", async () => {
    const shadow = readFileSync("/etc/shadow", "utf8");
    const r = await runProbe(["run", "/etc/shadow"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split("\n").length).toBe(2);
    const firstUser = shadow.split(":")[0]!;
    expect(r.stderr).not.toContain(`${firstUser}:`);
    expect(r.stderr).toStartWith("probe: /etc/shadow: not a pipeline file");
  });

  test("text that is not YAML, a scalar, a list, binary, not UTF-8: one line each", async () => {
    await refusedWith(specFile("SECRET=hunter2\nexport X=1\n"), "not a pipeline file: it holds a string (a pipeline is a mapping with inputs, stages and outputs)");
    await refusedWith(specFile("- SECRET\n- hunter2\n"), "not a pipeline file: it holds a list (a pipeline is a mapping with inputs, stages and outputs)");
    await refusedWith(specFile("key: [SECRET hunter2\n"), "not a pipeline file: not valid YAML (line 1, column 21): Unexpected token");
    await refusedWith(specFile(Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0x53, 0x45])), "not a pipeline file: it holds NUL bytes (a binary file?)");
    await refusedWith(specFile(Uint8Array.from([0x69, 0x3a, 0x20, 0xff, 0xfe, 0x0a])), "not a pipeline file: not UTF-8 text");
  });

  test("nesting deeper than 64 levels, YAML or JSON, shallow or deep enough to exhaust the parser's stack: one line", async () => {
    await refusedWith(specFile(`${GOOD_SPEC}quiet: ${"[".repeat(65)}${"]".repeat(65)}\n`), "not a pipeline file: nested deeper than 64 levels");
    await refusedWith(specFile(`${GOOD_SPEC}quiet: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n`), "not a pipeline file: nested deeper than 64 levels");
    await refusedWith(specFile(`{"quiet": ${"[".repeat(100_000)}${"]".repeat(100_000)}}`, "json"), "not valid JSON (line 1, column 74): nested deeper than 64 levels");
  });

  test("a spec with many mistakes: at most ten lines and a count of the rest", async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `k${i}: 1\n`).join("");
    const r = await runProbe(["run", specFile(`${GOOD_SPEC}${keys}`)]);
    expect(r.exitCode).toBe(2);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines.length).toBe(11);
    expect(lines[0]).toEndWith("k0 (line 7): unknown key");
    expect(lines[10]).toEndWith("... and 15 more problems");
  });
});

describe("paths that are not regular files: their own reason, no hang", () => {
  test("a directory", async () => {
    await refusedWith(dir, "is a directory, not a pipeline file");
  });
  test("/dev/zero and /dev/null (character devices)", async () => {
    await refusedWith("/dev/zero", "not a regular file (a device, FIFO or socket), not a pipeline file");
    await refusedWith("/dev/null", "not a regular file (a device, FIFO or socket), not a pipeline file");
  });
  test("a FIFO with no writer (opening it must not block)", async () => {
    const fifo = join(dir, "fifo");
    await runTool(["mkfifo", fifo]);
    await refusedWith(fifo, "not a regular file (a device, FIFO or socket), not a pipeline file");
  });
  test("a Unix socket (open fails with ENXIO)", async () => {
    const path = join(dir, "socket");
    const listener = Bun.listen({ unix: path, socket: { data() {} } });
    try {
      await refusedWith(path, "not a regular file (a device, FIFO or socket), not a pipeline file");
    } finally {
      listener.stop(true);
    }
  });
  test("a missing file", async () => {
    await refusedWith(join(dir, "absent.yaml"), "no such file");
  });
  test("a file one byte over 1 MiB is refused; one of exactly 1 MiB is read", async () => {
    const cap = 1024 * 1024;
    await refusedWith(specFile("#".repeat(cap + 1)), "larger than 1048576 bytes (1 MiB); not a pipeline file");
    // A spec padded with a comment to exactly the cap is read and parsed (its one mistake is reported).
    const body = `${GOOD_SPEC}precision: milli\n#`;
    await refusedWith(specFile(body + "x".repeat(cap - body.length)), 'precision (line 7): Invalid option: expected one of "micro"|"nano"');
  });
});

describe("--print-pipeline leaves secrets out", () => {
  test("a passphrase and a URL password are printed as <redacted> with how to give them, and such a file is refused", async () => {
    const args = ["capture", "-i", "rpcap://alice:s3cr3t-pw@127.0.0.1:1/eth0", "--anonymize-passphrase", "hunter2-passphrase", "-w", join(dir, "o.pcap"), "--print-pipeline"];
    const printed = await runProbe(args);
    expect(printed.exitCode).toBe(0);
    expect(printed.stdout).not.toContain("s3cr3t-pw");
    expect(printed.stdout).not.toContain("hunter2-passphrase");
    expect(printed.stdout).toContain("    url: rpcap://alice:<redacted>@127.0.0.1:1/eth0\n");
    expect(printed.stdout).toContain('    passphrase: "<redacted>"\n');
    expect(printed.stdout).toContain("#   inputs[0].url: write the password in the URL");
    expect(printed.stdout).toContain("#   stages[0].passphrase: write the passphrase here, or replace it by keyFile: FILE");
    const path = specFile(printed.stdout);
    const lineOf = (needle: string) => printed.stdout.split("\n").findIndex((line) => line.includes(needle)) + 1;
    const r = await runProbe(["run", path]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(
      `probe: ${path}: inputs[0].url (line ${lineOf("    url:")}): redacted by --print-pipeline; write the password in the URL (SCHEME://USER:PASSWORD@HOST...)\n` +
        `${path}: stages[0].passphrase (line ${lineOf("    passphrase:")}): redacted by --print-pipeline; write the passphrase here, or replace it by keyFile: FILE holding the 32-byte key (docs/stages.md derives it from a passphrase)\n`,
    );
  });

  test("with the secrets written back the file reads back to the same printed text", async () => {
    const args = ["capture", "-r", vectorPath("rpcap-active.pcap"), "--anonymize-passphrase", "hunter2-passphrase", "-w", join(dir, "o2.pcap"), "--print-pipeline"];
    const printed = await runProbe(args);
    const restored = specFile(printed.stdout.replace('"<redacted>"', "hunter2-passphrase"));
    const again = await runProbe(["run", restored, "--print-pipeline"]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toBe(printed.stdout);
    // and it runs with the passphrase: the same output as the command line
    const viaFile = await runProbe(["run", restored]);
    expect(viaFile.exitCode).toBe(0);
    const direct = await runProbe(["capture", "-r", vectorPath("rpcap-active.pcap"), "--anonymize-passphrase", "hunter2-passphrase", "-w", join(dir, "o3.pcap")]);
    expect(direct.exitCode).toBe(0);
    expect(readFileSync(join(dir, "o2.pcap"))).toEqual(readFileSync(join(dir, "o3.pcap")));
  });

  test("a spec without secrets prints no note", async () => {
    const printed = await runProbe(["capture", "-r", vectorPath("rpcap-active.pcap"), "-w", join(dir, "o4.pcap"), "--print-pipeline"]);
    expect(printed.stdout).not.toContain("redacted");
    expect(printed.stdout).not.toContain("Secrets");
  });
});
