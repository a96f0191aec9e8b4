// parseCommandLine: a value option that is not repeatable, given twice, is a usage error
// (node's parseArgs keeps the last one silently: `probe summary -f udp -f tcp` summarised tcp).
import { describe, expect, test } from "bun:test";
import { parseCommandLine } from "../../src/cli/parse-options.ts";
import { UsageError } from "../../src/cli/usage-error.ts";

const OPTIONS = {
  filter: { type: "string", short: "f" },
  input: { type: "string", short: "i", multiple: true },
  verbose: { type: "boolean", short: "v" },
} as const;

function usageMessage(argv: string[]): string {
  try {
    parseCommandLine("summary", argv, OPTIONS);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  return "accepted";
}

describe("parseCommandLine", () => {
  test("a value option given twice is refused, naming it", () => {
    expect(usageMessage(["-f", "udp", "-f", "tcp"])).toBe("summary: -f given twice; give it once");
    expect(usageMessage(["-f", "udp", "--filter", "tcp"])).toBe("summary: -f and --filter both given; give it once");
    expect(usageMessage(["--filter=udp", "--filter=tcp"])).toBe("summary: --filter given twice; give it once");
  });

  test("repeatable options and repeated switches stay allowed", () => {
    expect(usageMessage(["-i", "lo", "-i", "eth0", "-v", "-v", "-f", "udp"])).toBe("accepted");
    const { values, tokens } = parseCommandLine("summary", ["-i", "lo", "-i", "eth0", "-v", "-v"], OPTIONS);
    expect(values.input).toEqual(["lo", "eth0"]);
    expect(tokens.filter((t) => t.kind === "option" && t.name === "verbose")).toHaveLength(2);
  });
});
