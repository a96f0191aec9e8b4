// Which pipelines keep the executable's start-up JIT policy (src/cli/jit-policy.ts): those whose
// JavaScript runs once per batch (files out, no stages); the rest return to the normal policy.
import { describe, expect, test } from "bun:test";
import { keepsStartupJitPolicy } from "../../src/cli/jit-policy.ts";
import { checkPipelineSpec, type PipelineSpec, type PipelineSpecInput } from "../../src/pipeline/spec.ts";

function spec(raw: PipelineSpecInput): PipelineSpec {
  const checked = checkPipelineSpec(raw);
  if ("issues" in checked) throw new Error(JSON.stringify(checked.issues));
  return checked.spec;
}

const lo = { kind: "interface", device: "lo" } as const;

describe("the JIT policy after start-up", () => {
  test("a capture into files keeps the start-up policy", () => {
    expect(keepsStartupJitPolicy(spec({ inputs: [lo], outputs: [{ kind: "file", path: "/dev/null" }] }))).toBe(true);
    expect(keepsStartupJitPolicy(spec({ inputs: [lo], outputs: [{ kind: "file", path: "a.pcap" }, { kind: "rotating-file", path: "b-%Y.pcap", triggers: { everySeconds: 60 } }] }))).toBe(true);
  });

  test("network outputs and stages return to the normal policy", () => {
    expect(keepsStartupJitPolicy(spec({ inputs: [lo], outputs: [{ kind: "pcap-over-ip", listen: [{ host: "127.0.0.1", port: 0 }] }] }))).toBe(false);
    expect(keepsStartupJitPolicy(spec({ inputs: [lo], outputs: [{ kind: "file", path: "/dev/null" }, { kind: "udpstr", target: { host: "127.0.0.1", port: 9 } }] }))).toBe(false);
    expect(keepsStartupJitPolicy(spec({ inputs: [lo], stages: [{ kind: "snaplen", bytes: 96 }], outputs: [{ kind: "file", path: "/dev/null" }] }))).toBe(false);
  });
});
