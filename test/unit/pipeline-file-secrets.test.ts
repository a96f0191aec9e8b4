// Secrets in printed pipelines (src/pipeline/pipeline-file.ts): formatPipeline prints each inline
// secret as <redacted> with a comment saying how to give it, leaves everything else as it was,
// and parsePipelineText refuses a file that still holds the marker, naming the right entry.
import { describe, expect, test } from "bun:test";
import { formatPipeline, parsePipelineText, REDACTED_SECRET } from "../../src/pipeline/pipeline-file.ts";
import { checkPipelineSpec, type PipelineSpecInput } from "../../src/pipeline/spec.ts";

function spec(raw: PipelineSpecInput) {
  const checked = checkPipelineSpec(raw);
  if (!("spec" in checked)) throw new Error(JSON.stringify(checked.issues));
  return checked.spec;
}

function refusal(text: string): string {
  try {
    parsePipelineText("p.yaml", text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("accepted");
}

const out = [{ kind: "file", path: "b.pcap" }] as const;

describe("--print-pipeline leaves secrets out", () => {
  const urls: [string, string][] = [
    ["rpcap://alice:pw@h/eth0", `rpcap://alice:${REDACTED_SECRET}@h/eth0`],
    ["rpcaps://alice:p%40ss:w@h:2003/eth0", `rpcaps://alice:${REDACTED_SECRET}@h:2003/eth0`],
    ["rpcap://alice@h/eth0", "rpcap://alice@h/eth0"],
    ["rpcap://h/eth@0", "rpcap://h/eth@0"],
    ["rpcap://alice:@h/eth0", "rpcap://alice:@h/eth0"],
  ];
  for (const [url, printed] of urls) {
    test(`${url} prints as ${printed}`, () => {
      const text = formatPipeline(spec({ inputs: [{ kind: "rpcap", url }], outputs: [...out] }));
      expect(text).toContain(`url: ${printed}\n`);
      expect(text.includes("Secrets are not printed")).toBe(printed !== url);
    });
  }

  test("an rpcap-active password and a passphrase: redacted, the rest as it was, JSON too", () => {
    const s = spec({
      inputs: [{ kind: "rpcap-active", listen: { host: "127.0.0.1", port: 2003 }, username: "u", password: "hunter2" }],
      stages: [{ kind: "snaplen", bytes: 96 }, { kind: "anonymize", passphrase: "correct horse" }],
      outputs: [...out],
    });
    const yaml = formatPipeline(s);
    expect(yaml).not.toContain("hunter2");
    expect(yaml).not.toContain("correct horse");
    expect(yaml).toContain("#   inputs[0].password: write the password here\n");
    expect(yaml).toContain("#   stages[1].passphrase: write the passphrase here");
    expect(yaml).toContain("    username: u\n");
    const json = JSON.parse(formatPipeline(s, "json"));
    expect(json.inputs[0].password).toBe(REDACTED_SECRET);
    expect(json.stages[1].passphrase).toBe(REDACTED_SECRET);
    expect(s.stages[1]).toEqual({ kind: "anonymize", passphrase: "correct horse", only: "both" });
    // the printed text is refused, one line per secret, each at its line
    const lines = refusal(yaml).split("\n");
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatch(/^p\.yaml: inputs\[0\]\.password \(line \d+\): redacted by --print-pipeline; write the password here$/);
    expect(lines[1]).toMatch(/^p\.yaml: stages\[1\]\.passphrase \(line \d+\): redacted by --print-pipeline; /);
    const lineNumber = (needle: string) => yaml.split("\n").findIndex((l) => l.startsWith(needle)) + 1;
    expect(lines[0]).toContain(`(line ${lineNumber("    password:")})`);
    expect(lines[1]).toContain(`(line ${lineNumber("    passphrase:")})`);
  });

  test("the entry is named by its index in the file, entries that are not mappings counted", () => {
    const message = refusal("inputs:\n  - kind: file\n    path: a\nstages:\n  - 7\n  - kind: anonymize\n    passphrase: <redacted>\noutputs: [{kind: file, path: b}]\n");
    expect(message).toBe("p.yaml: stages[1].passphrase (line 7): redacted by --print-pipeline; write the passphrase here, or replace it by keyFile: FILE holding the 32-byte key (docs/stages.md derives it from a passphrase)");
  });
});
