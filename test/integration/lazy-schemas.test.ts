// Schemas built on first use (src/config/zod.ts: lazySchema, kindSchema; docs/capture-history.md,
// "Memory: where it goes"): a union of kinds builds a kind only when a value of it is parsed,
// and answers exactly as the eager union did: same data, same defaults, same issues and paths,
// the unknown-kind message listing every kind. The PipelineSpec cases below were recorded from
// the commit before the schemas went lazy (1e71266).
import { describe, expect, test } from "bun:test";
import { formatPipeline, parsePipelineText } from "../../src/pipeline/pipeline-file.ts";
import { kindSchema, lazySchema, z } from "../../src/config/zod.ts";
import { hookSettingsSchema } from "../../src/config/hook-config.ts";
import { DEFAULT_HOOK_SETTINGS } from "../../src/hooks/settings.ts";
import { checkPipelineSpec } from "../../src/pipeline/spec.ts";

const EVERY_KIND_YAML = new URL("../fixtures/pipeline-every-kind.yaml", import.meta.url).pathname;

/** The same two kinds, eager (as zod builds them) and through kindSchema, counting builds. */
function twoKinds() {
  const built: string[] = [];
  const aFields = { size: z.number().int().min(1).default(8), name: z.string().min(1).optional() };
  const eager = z.discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("a"), ...aFields }),
    z.strictObject({ kind: z.literal("b"), when: z.enum(["now", "later"]) }).refine((b) => b.when === "now", { message: "only now", path: ["when"] }),
  ]);
  const a = kindSchema("a", (kind) => {
    built.push("a");
    return z.strictObject({ kind, ...aFields });
  });
  const b = kindSchema("b", (kind) => {
    built.push("b");
    return z.strictObject({ kind, when: z.enum(["now", "later"]) }).refine((v) => v.when === "now", { message: "only now", path: ["when"] });
  });
  return { built, eager, lazy: z.discriminatedUnion("kind", [a, b]), a };
}

const plain = (result: { success: boolean; data?: unknown; error?: { issues: unknown[] } }) =>
  result.success ? { data: result.data } : { issues: result.error!.issues.map((i) => JSON.parse(JSON.stringify(i, (k, v) => (k === "inst" ? undefined : v)))) };

describe("kindSchema and lazySchema", () => {
  test("a union of kinds builds none at construction and each kind on the first parse of a value of it, once", () => {
    const { built, lazy } = twoKinds();
    expect(built).toEqual([]);
    expect(lazy.safeParse({ kind: "a" }).success).toBe(true);
    expect(lazy.safeParse({ kind: "a", size: 3 }).success).toBe(true);
    expect(built).toEqual(["a"]);
    expect(lazy.safeParse({ kind: "c" }).success).toBe(false);
    expect(lazy.safeParse(null).success).toBe(false);
    expect(built).toEqual(["a"]);
    expect(lazy.safeParse({ kind: "b", when: "later" }).success).toBe(false);
    expect(built).toEqual(["a", "b"]);
  });

  const values: [string, unknown][] = [
    ["a with its default", { kind: "a" }],
    ["a with fields", { kind: "a", size: 3, name: "x" }],
    ["a with a bad and an unknown field", { kind: "a", size: 0, extra: 1 }],
    ["b refined", { kind: "b", when: "later" }],
    ["b with a bad enum", { kind: "b", when: "soon" }],
    ["an unknown kind", { kind: "c" }],
    ["no kind", { size: 3 }],
    ["a kind of the wrong type", { kind: 1 }],
    ["not an object", "a"],
    ["null", null],
  ];
  for (const [what, value] of values) {
    test(`answers as the eager union does: ${what}`, () => {
      const { eager, lazy } = twoKinds();
      expect(plain(lazy.safeParse(value))).toEqual(plain(eager.safeParse(value)));
      expect(plain(z.array(lazy).safeParse([{ kind: "a" }, value]))).toEqual(plain(z.array(eager).safeParse([{ kind: "a" }, value])));
    });
  }

  test("the unknown-kind message lists every kind, built or not", () => {
    const { built, lazy } = twoKinds();
    const result = lazy.safeParse({ kind: "c" });
    expect(result.error?.issues.map((i) => [i.path, i.message])).toEqual([[["kind"], "Invalid discriminator value. Expected 'a' | 'b'"]]);
    expect(built).toEqual([]);
  });

  test("shape reads the built object's fields; unwrap() gives the one built schema", () => {
    const { a, built } = twoKinds();
    expect(Object.keys(a.shape)).toEqual(["kind", "size", "name"]);
    expect(a.shape.kind.value).toBe("a");
    expect(a.unwrap()).toBe(a.unwrap());
    expect(built).toEqual(["a"]);
  });

  test("lazySchema builds on the first parse, once, however often it is parsed or unwrapped", () => {
    let builds = 0;
    const schema = lazySchema(() => {
      builds++;
      return z.object({ n: z.number().default(1) });
    });
    expect(builds).toBe(0);
    expect(schema.parse({})).toEqual({ n: 1 });
    expect(schema.unwrap().extend({ m: z.string() }).parse({ m: "x" })).toEqual({ n: 1, m: "x" });
    expect(schema.safeParse({ n: "1" }).success).toBe(false);
    expect(builds).toBe(1);
  });

  test("DEFAULT_HOOK_SETTINGS, written out, is what the schema makes of nothing", () => {
    expect(DEFAULT_HOOK_SETTINGS).toEqual(hookSettingsSchema.parse({}));
    expect(Object.isFrozen(DEFAULT_HOOK_SETTINGS)).toBe(true);
  });
});

describe("PipelineSpec with kinds built on first use", () => {
  const issues = (raw: unknown) => {
    const checked = checkPipelineSpec(raw);
    return "issues" in checked ? checked.issues.map((i) => [i.path, i.message]) : [];
  };
  const withInput = (input: unknown) => ({ inputs: [input], outputs: [{ kind: "file", path: "x" }] });
  const withStage = (stage: unknown) => ({ inputs: [{ kind: "interface", device: "lo" }], stages: [stage], outputs: [{ kind: "file", path: "x" }] });
  const withOutput = (output: unknown) => ({ inputs: [{ kind: "interface", device: "lo" }], outputs: [output] });

  test("an unknown kind names every kind of its list, as before", () => {
    expect(issues(withInput({ kind: "nope" }))).toEqual([
      [["inputs", 0, "kind"], "Invalid discriminator value. Expected 'interface' | 'file' | 'rpcap' | 'pcap-over-ip' | 'udpstr' | 'rt' | 'rpcap-active'"],
    ]);
    expect(issues(withStage({ kind: "nope" }))).toEqual([
      [["stages", 0, "kind"], "Invalid discriminator value. Expected 'snaplen' | 'filter' | 'sampling' | 'hooks' | 'anonymize' | 'truncate-headers' | 'checksums' | 'direction'"],
    ]);
    expect(issues(withOutput({ kind: 5 }))).toEqual([
      [["outputs", 0, "kind"], "Invalid discriminator value. Expected 'file' | 'pcap-over-ip' | 'rpcapd' | 'udpstr' | 'rt' | 'rotating-file'"],
    ]);
    expect(issues(withInput(null))).toEqual([[["inputs", 0], "Invalid input: expected object, received null"]]);
  });

  const bad: [string, unknown, [(string | number)[], string][]][] = [
    ["interface", withInput({ kind: "interface", device: "", snaplen: 0, extra: 1, engine: "x" }), [
      [["inputs", 0, "snaplen"], "Too small: expected number to be >=1"],
      [["inputs", 0, "device"], "Too small: expected string to have >=1 characters"],
      [["inputs", 0, "engine"], 'Invalid option: expected one of "ring"|"libpcap"'],
      [["inputs", 0], 'Unrecognized key: "extra"'],
    ]],
    ["rpcap-active", withInput({ kind: "rpcap-active", listen: { host: "h", port: 70000 }, udpstr: true, tls: {} }), [
      [["inputs", 0, "listen", "port"], "Too big: expected number to be <=65535"],
      [["inputs", 0, "tls"], "tls cannot be combined with udpstr: the UDP data channel has no TLS"],
    ]],
    ["rt output", withOutput({ kind: "rt", spool: "/tmp", statusIntervalMs: 10 }), [
      [["outputs", 0, "statusIntervalMs"], "0 (off) or at least 50 ms"],
      [["outputs", 0, "spool"], "spool needs reliable (an unreliable server keeps nothing)"],
    ]],
    ["pcap-over-ip output", withOutput({ kind: "pcap-over-ip", listen: [{ host: "h", port: 1, x: 1 }], onlyDirection: "both", queueBytes: 1 }), [
      [["outputs", 0, "listen", 0], 'Unrecognized key: "x"'],
      [["outputs", 0, "queueBytes"], "Too small: expected number to be >=65536"],
      [["outputs", 0, "onlyDirection"], 'Invalid option: expected one of "in"|"out"'],
    ]],
    ["rotating-file output", withOutput({ kind: "rotating-file", path: "", triggers: { period: { unit: "week", perPeriod: 0 } } }), [
      [["outputs", 0, "path"], "Too small: expected string to have >=1 characters"],
      [["outputs", 0, "triggers", "period", "unit"], 'Invalid option: expected one of "hour"|"day"'],
      [["outputs", 0, "triggers", "period", "perPeriod"], "Too small: expected number to be >=1"],
    ]],
    ["anonymize stage", withStage({ kind: "anonymize", keyFile: "k", passphrase: "p" }), [[["stages", 0], "anonymize wants exactly one of keyFile, passphrase or prefixes"]]],
    ["hooks stage", withStage({ kind: "hooks", files: [], hookFail: "maybe", hookMemoryLimitBytes: 1 }), [
      [["stages", 0, "hookFail"], 'Invalid option: expected one of "pass"|"drop"'],
      [["stages", 0, "hookMemoryLimitBytes"], "Too small: expected number to be >=1048576"],
      [["stages", 0, "files"], "Too small: expected array to have >=1 items"],
    ]],
  ];
  for (const [kind, raw, expected] of bad) {
    test(`a bad ${kind} gives the same paths and messages as before`, () => {
      expect(issues(raw)).toEqual(expected);
    });
  }

  test("a spec with every kind gets the defaults it got before, prints and reads back to the same spec", async () => {
    const text = await Bun.file(EVERY_KIND_YAML).text();
    const spec = parsePipelineText("every-kind.yaml", text);
    expect([spec.inputs.length, spec.stages.length, spec.outputs.length]).toEqual([7, 8, 6]);
    expect(formatPipeline(spec, "yaml")).toBe(text);
    // the same spec as written by hand, defaults left out: the schema fills in what the file holds
    const sparse = {
      inputs: [
        { kind: "interface", device: "lo" },
        { kind: "file", path: "a.pcap" },
        { kind: "rpcap", url: "rpcap://h/eth0" },
        { kind: "pcap-over-ip", url: "tcp://h:1" },
        { kind: "udpstr", listen: { host: "::", port: 0 } },
        { kind: "rt", url: "rt://h:3435" },
        { kind: "rpcap-active", listen: { host: "::", port: 0 }, tls: {} },
      ],
      stages: [
        { kind: "snaplen", bytes: 96 },
        { kind: "filter", expression: "tcp" },
        { kind: "sampling", method: "one-every-n", value: 3 },
        { kind: "hooks", files: ["a.js"] },
        { kind: "anonymize", keyFile: "k" },
        { kind: "truncate-headers" },
        { kind: "checksums", action: "check" },
        { kind: "direction", inbound: "src net 10.0.0.0/8" },
      ],
      outputs: [
        { kind: "file", path: "-" },
        { kind: "pcap-over-ip", onlyDirection: "in" },
        { kind: "rpcapd", listen: { port: 0 } },
        { kind: "udpstr", target: { host: "h", port: 1 } },
        { kind: "rt", reliable: true, spool: "/tmp" },
        { kind: "rotating-file", path: "a-%N.pcap", triggers: { maxBytes: 5 } },
      ],
      precision: "nano",
      merge: { windowMs: 5 },
      stopAfterPackets: 3,
      quiet: true,
      metrics: { host: "h", port: 9 },
    };
    const checked = checkPipelineSpec(sparse);
    if (!("spec" in checked)) throw new Error(JSON.stringify(checked.issues));
    expect(checked.spec).toEqual(spec);
    expect(formatPipeline(checked.spec, "json")).toBe(formatPipeline(parsePipelineText("p.json", formatPipeline(spec, "json")), "json"));
  });

  test("importing the spec builds almost nothing; a capture spec builds a fraction of what every kind needs", () => {
    // before: importing spec.ts built 898 schema objects (every kind), a capture spec 38 more
    const run = Bun.spawnSync([process.execPath, new URL("../support/count-built-schemas.ts", import.meta.url).pathname, EVERY_KIND_YAML], { stderr: "inherit" });
    expect(run.exitCode).toBe(0);
    const counts = JSON.parse(run.stdout.toString()) as { accepted: boolean; afterImport: number; afterCaptureSpec: number; afterEveryKind: number };
    expect(counts.accepted).toBe(true);
    expect(counts.afterImport).toBeLessThan(counts.afterEveryKind / 8);
    expect(counts.afterCaptureSpec).toBeLessThan(counts.afterEveryKind / 3);
  });
});
