// Where a pipeline file's syntax goes wrong (src/pipeline/spec-syntax.ts): the strict JSON scanner
// judged by JSON.parse on every mutation of a real spec, the YAML duplicate-key scanner judged by
// PyYAML (a loader that refuses duplicates and names the duplicate's line and column), and Bun's
// YAML error positions checked against the character that is wrong.
import { describe, expect, test } from "bun:test";
import { checkJsonSyntax, findDuplicateYamlKey, locateYamlError, MAX_SPEC_NESTING_DEPTH, nestedDeeperThan, positionAt } from "../../src/pipeline/spec-syntax.ts";
import { seededRandom } from "../support/packet-builder.ts";

const EVERY_KIND_YAML = new URL("../fixtures/pipeline-every-kind.yaml", import.meta.url).pathname;

describe("JSON: the first error's line and column", () => {
  const bad: [string, number, number, string][] = [
    ['{\n  "inputs": [\n   {"kind": "file",, }\n]}\n', 3, 20, "expected a key in double quotes"],
    ['{\n\n  "x": tru }', 3, 8, "expected a value"],
    ['{"a": [1, 2', 1, 12, "expected ',' or ']', found the end of the file"],
    ['{"a": "x\u0001"}', 1, 9, "a control character inside a string"],
    ['{"a": 1}\n  x', 2, 3, "text after the end of the JSON value"],
    ['{"a": 01}', 1, 8, "expected ',' or '}'"],
    ['{"a":\n  "\\q"}', 2, 4, "an unknown escape"],
    ['{"a": "open', 1, 7, "a string is not closed"],
    ['{\n  "a": 1,\n  "b": 2,\n  "a": 3\n}', 4, 3, 'the key "a" is given twice (first on line 2)'],
    ['{"a": {"b": 1, "b": 2}}', 1, 16, 'the key "b" is given twice (first on line 1)'],
    ['{"\\u0061": 1, "a": 2}', 1, 15, 'the key "a" is given twice'],
    [`${"[".repeat(MAX_SPEC_NESTING_DEPTH + 1)}${"]".repeat(MAX_SPEC_NESTING_DEPTH + 1)}`, 1, MAX_SPEC_NESTING_DEPTH + 1, `nested deeper than ${MAX_SPEC_NESTING_DEPTH} levels`],
    ["", 1, 1, "expected a value, found the end of the file"],
  ];
  for (const [text, line, column, message] of bad) {
    test(`${JSON.stringify(text).slice(0, 40)} -> line ${line}, column ${column}: ${message}`, () => {
      const problem = checkJsonSyntax(text);
      expect(problem && { line: problem.line, column: problem.column }).toEqual({ line, column });
      expect(problem!.message).toContain(message);
    });
  }

  test("nesting up to the limit is fine; a message quoting a key escapes it", () => {
    expect(checkJsonSyntax(`${"[".repeat(MAX_SPEC_NESTING_DEPTH)}${"]".repeat(MAX_SPEC_NESTING_DEPTH)}`)).toBeUndefined();
    const problem = checkJsonSyntax('{"\\u001b[31m": 1, "\\u001b[31m": 2}');
    expect(problem!.message).toContain('"\\x1b[31m"');
    expect(problem!.message).not.toContain("\u001b");
  });

  test("agrees with JSON.parse on 3000 one-byte mutations of a real spec (duplicates aside)", () => {
    const spec = JSON.stringify(
      { inputs: [{ kind: "file", path: "a.pcap", filter: "tcp port 80" }], stages: [{ kind: "snaplen", bytes: 96 }], outputs: [{ kind: "udpstr", target: { host: "::1", port: 9 }, mtu: 1.5e3 }], quiet: true },
      null,
      2,
    );
    expect(checkJsonSyntax(spec)).toBeUndefined();
    const rand = seededRandom(8259);
    const alphabet = '{}[],:"\\ \n\t0123456789.-+eEtrufalsn\u0001x';
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const at = Math.floor(rand() * spec.length);
      const op = Math.floor(rand() * 3);
      const c = alphabet[Math.floor(rand() * alphabet.length)]!;
      const text = op === 0 ? spec.slice(0, at) + spec.slice(at + 1) : op === 1 ? spec.slice(0, at) + c + spec.slice(at) : spec.slice(0, at) + c + spec.slice(at + 1);
      let parsed = true;
      try {
        JSON.parse(text);
      } catch {
        parsed = false;
      }
      const problem = checkJsonSyntax(text);
      if (parsed && problem) expect(problem.message).toContain("given twice");
      else expect({ text, refused: problem !== undefined }).toEqual({ text, refused: !parsed });
      if (problem) refused++;
    }
    expect(refused).toBeGreaterThan(1000);
  });
});

/** PyYAML as the judge of duplicate keys: a SafeLoader that refuses a mapping's second key with its line and column. */
type Judged = { line: number; column: number } | null | "unjudged";
function pyyamlDuplicate(texts: string[]): Judged[] {
  const script = `
import json, sys, yaml
class Strict(yaml.SafeLoader):
    pass
def mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen and key != "<<":
            raise KeyError((key_node.start_mark.line + 1, key_node.start_mark.column + 1))
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)
Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
out = []
for text in json.load(sys.stdin):
    try:
        list(yaml.load_all(text, Loader=Strict))
        out.append(None)
    except KeyError as e:
        line, column = e.args[0]
        out.append({"line": line, "column": column})
    except yaml.YAMLError:
        out.append("unjudged")  # YAML 1.2 that PyYAML (YAML 1.1) cannot read, e.g. a plain ::1 in a flow mapping
print(json.dumps(out))
`;
  const r = Bun.spawnSync(["python3", "-c", script], { stdin: Buffer.from(JSON.stringify(texts)), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`python3 exited ${r.exitCode}: ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString()) as Judged[];
}

describe("YAML: a key given twice, judged by PyYAML", () => {
  const texts = [
    "a: 1\nb: 2\na: 3\n",
    "- kind: file\n  path: a\n- kind: file\n  path: b\n",
    "- kind: file\n  path: a\n  path: b\n",
    "x:\n  y: 1\nz:\n  y: 2\n",
    'x:\n  y: 1\n  "y": 2\n',
    "x:\n  'y': 1\n  y: 2\n",
    "a: {b: 1, c: {b: 2}, b: 3}\n",
    "a: [ {k: 1},\n {k: 2, k: 3} ]\n",
    "a: [ {k: 1},\n {k: 2, j: 3} ]\n",
    "a: |\n  b: 1\n  b: 2\nc: 1\n",
    "a: >-\n\n  text\n\n  text: 1\nb: 2\n",
    'a: "multi\n  line: x\n  line: y"\nb: 1\n',
    "a:\n- b: 1\n- b: 2\nc: 1\n",
    "a:\n- b: 1\n  b: 2\n",
    "a: 1 # a: 2\nb: 'x: y'\n",
    "- - a: 1\n    b: 2\n  - a: 1\n",
    "- - a: 1\n    a: 2\n",
    "l: {host: ::1, port: 0, url: rpcap://h/e}\n",
    "l: {host: ::1, port: 0, host: x}\n",
    "a: &x 1\nb: *x\n",
    "outputs:\n  - kind: file\n    path: out.pcap\n    format: pcap\n  - kind: rt\n    listen:\n      - host: 127.0.0.1\n        port: 3435\n      - host: ::1\n        port: 3435\n        port: 3436\n",
    "inputs:\n  - kind: file   # the archive\n    path: a\n    name: x\n    name: y\n",
    "a:\n  b:\n    c: 1\n  d: 2\n  b: 3\n",
    "a: 'it''s'\nb: \"q\\\"\"\na: 1\n",
    "stages:\n  - kind: hooks\n    files: [a.js, b.js]\n    files: [c.js]\n",
  ];

  test("the same verdict and position as PyYAML on every text", () => {
    const judged = pyyamlDuplicate(texts);
    expect(judged.filter((j) => j !== null && j !== "unjudged").length).toBeGreaterThan(10);
    expect(judged.filter((j) => j === "unjudged").length).toBeLessThanOrEqual(2);
    texts.forEach((text, i) => {
      if (judged[i] === "unjudged") return;
      const ours = findDuplicateYamlKey(text);
      expect({ text, duplicate: ours ? { line: ours.line, column: ours.column } : null }).toEqual({ text, duplicate: judged[i]! });
    });
  }, 60_000);

  test("every line of a real spec duplicated in turn: the same verdict as PyYAML", async () => {
    const spec = await Bun.file(EVERY_KIND_YAML).text();
    expect(findDuplicateYamlKey(spec)).toBeUndefined();
    const lines = spec.split("\n");
    const variants = lines.map((_, i) => [...lines.slice(0, i + 1), lines[i]!, ...lines.slice(i + 1)].join("\n")).filter((text) => {
      try {
        Bun.YAML.parse(text);
        return true;
      } catch {
        return false;
      }
    });
    expect(variants.length).toBeGreaterThan(50);
    const judged = pyyamlDuplicate(variants);
    let duplicates = 0;
    variants.forEach((text, i) => {
      const ours = findDuplicateYamlKey(text);
      const expected = judged[i]!;
      if (expected === "unjudged") throw new Error(`PyYAML cannot read variant ${i}`);
      if (expected) duplicates++;
      expect({ i, duplicate: ours ? { line: ours.line, column: ours.column } : null }).toEqual({ i, duplicate: expected });
    });
    expect(duplicates).toBeGreaterThan(50);
  }, 60_000);

  test("the duplicate names the key and the line it first appeared on; ::1 in a flow mapping is a value", () => {
    expect(findDuplicateYamlKey("a: 1\nb: 2\na: 3\n")).toEqual({ key: "a", line: 3, column: 1, firstLine: 1 });
    expect(findDuplicateYamlKey("l: {host: ::1, port: 0, url: rpcap://h/e}\n")).toBeUndefined();
    expect(findDuplicateYamlKey("l: {host: ::1, port: 0, host: x}\n")).toEqual({ key: "host", line: 1, column: 25, firstLine: 1 });
  });
});

describe("YAML: Bun's parser's position of the error", () => {
  const bad: [string, number, number, string][] = [
    ["inputs:\n  - kind: file\n    path: a.pcap\n  bad: [\noutputs: x\n", 4, 3, "Unexpected token"],
    ["a: [\nb: 1\n", 2, 1, "Unexpected token"],
    ["a: 1\nb: 2\n  c: 3\n", 3, 4, "Unexpected token"],
    ["k: 1\nkey: *nope\n", 2, 6, "Unresolved alias"],
    ['a: 1\nb: "\\q"\n', 2, 6, "Unexpected character"],
    ["a: 1\n\t\tb: 1\n", 2, 3, "Tab characters cannot be used as indentation"],
  ];
  for (const [text, line, column, message] of bad) {
    test(`${JSON.stringify(text).slice(0, 40)} -> line ${line}, column ${column}`, () => {
      expect(() => Bun.YAML.parse(text)).toThrow();
      expect(locateYamlError(text)).toEqual({ line, column, message });
    });
  }

  test("a text that parses has no error position", () => {
    expect(locateYamlError("a: 1\n")).toBeUndefined();
  });

  test("positionAt counts lines and columns from 1", () => {
    expect(positionAt("ab\ncd\n", 0)).toEqual({ line: 1, column: 1 });
    expect(positionAt("ab\ncd\n", 4)).toEqual({ line: 2, column: 2 });
    expect(positionAt("ab\ncd\n", 6)).toEqual({ line: 3, column: 1 });
  });
});

describe("nesting depth of a parsed YAML value", () => {
  const nested = (levels: number): unknown => {
    let value: unknown = 1;
    for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { k: value };
    return value;
  };
  test("the same limit as the JSON scanner: 64 levels pass, 65 do not", () => {
    expect(nestedDeeperThan(nested(MAX_SPEC_NESTING_DEPTH), MAX_SPEC_NESTING_DEPTH)).toBe(false);
    expect(nestedDeeperThan(nested(MAX_SPEC_NESTING_DEPTH + 1), MAX_SPEC_NESTING_DEPTH)).toBe(true);
    expect(checkJsonSyntax(JSON.stringify(nested(MAX_SPEC_NESTING_DEPTH)))).toBeUndefined();
    expect(checkJsonSyntax(JSON.stringify(nested(MAX_SPEC_NESTING_DEPTH + 1)))?.message).toBe(`nested deeper than ${MAX_SPEC_NESTING_DEPTH} levels`);
  });
  test("an alias bomb (shared nodes) is walked in linear time, and a deep node met late through an alias counts", () => {
    const lines = ['a: &a ["x", "x"]'];
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + (i % 26))}${i}: &n${i} [${i === 1 ? "*a, *a" : `*n${i - 1}, *n${i - 1}`}]`);
    const bomb = Bun.YAML.parse(lines.join("\n"));
    expect(nestedDeeperThan(bomb, MAX_SPEC_NESTING_DEPTH)).toBe(false);
    // 40 levels met first one level down (41 in all: fine), then 26 levels further down (67: too deep)
    const shared = nested(40);
    let wrapped: unknown = shared;
    for (let i = 0; i < 26; i++) wrapped = [wrapped];
    expect(nestedDeeperThan({ shallow: shared }, MAX_SPEC_NESTING_DEPTH)).toBe(false);
    expect(nestedDeeperThan({ shallow: shared, deep: wrapped }, MAX_SPEC_NESTING_DEPTH)).toBe(true);
  });
});
