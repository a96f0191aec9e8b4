// Every command's --help against its parser: each flag the help lists is accepted by the
// command (run through probe itself, so argv rewrites such as rpcapd's bare -i count), each
// option the parser defines appears in the help, and `-x, --long` pairs match the parser's
// short letters. Adding a flag without documenting it fails here. And every probe command line
// in README.md and docs/*.md parses: a renamed or removed flag fails here too.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CAPTURE_HELP, CAPTURE_OPTIONS } from "../../src/cli/commands/capture.ts";
import { COLLECT_RPCAP_ACTIVE_HELP, COLLECT_RPCAP_ACTIVE_OPTIONS } from "../../src/cli/commands/collect-rpcap-active.ts";
import { COLLECT_HELP, COLLECT_OPTIONS } from "../../src/cli/commands/collect.ts";
import { FORWARD_HELP, FORWARD_OPTIONS } from "../../src/cli/commands/forward.ts";
import { HOOK_HELP, HOOK_TEST_OPTIONS } from "../../src/cli/commands/hook.ts";
import { LIST_HELP, LIST_OPTIONS } from "../../src/cli/commands/list.ts";
import { PASSWD_HELP, PASSWD_OPTIONS } from "../../src/cli/commands/passwd.ts";
import { PCAP_OVER_IP_HELP, PCAP_OVER_IP_OPTIONS } from "../../src/cli/commands/pcap-over-ip.ts";
import { RPCAPD_HELP, RPCAPD_OPTIONS } from "../../src/cli/commands/rpcapd.ts";
import { RT_HELP, RT_OPTIONS } from "../../src/cli/commands/rt.ts";
import { RUN_HELP, RUN_OPTIONS } from "../../src/cli/commands/run.ts";
import { SERVE_HELP, SERVE_OPTIONS } from "../../src/cli/commands/serve.ts";
import { SUMMARY_HELP, SUMMARY_OPTIONS } from "../../src/cli/commands/summary.ts";
import { repoRoot, runProbe } from "../support/probe-binary.ts";

type OptionTable = Readonly<Record<string, { readonly type: string; readonly short?: string }>>;

interface CommandUnderTest {
  name: string;
  /** argv before the flags: the command (and what selects its parser). */
  prefix: string[];
  /** argv that prints the help. */
  helpArgv: string[];
  help: string;
  options: OptionTable;
}

const COMMANDS: CommandUnderTest[] = [
  { name: "capture", prefix: ["capture"], helpArgv: ["capture", "--help"], help: CAPTURE_HELP, options: CAPTURE_OPTIONS },
  { name: "rpcapd", prefix: ["rpcapd"], helpArgv: ["rpcapd", "--help"], help: RPCAPD_HELP, options: RPCAPD_OPTIONS },
  { name: "pcap-over-ip", prefix: ["pcap-over-ip"], helpArgv: ["pcap-over-ip", "--help"], help: PCAP_OVER_IP_HELP, options: PCAP_OVER_IP_OPTIONS },
  { name: "forward", prefix: ["forward"], helpArgv: ["forward", "--help"], help: FORWARD_HELP, options: FORWARD_OPTIONS },
  { name: "collect", prefix: ["collect"], helpArgv: ["collect", "--help"], help: COLLECT_HELP, options: COLLECT_OPTIONS },
  {
    name: "collect --rpcap-active-listen",
    prefix: ["collect", "--rpcap-active-listen", "127.0.0.1:0"],
    helpArgv: ["collect", "--rpcap-active-listen", "127.0.0.1:0", "--help"],
    help: COLLECT_RPCAP_ACTIVE_HELP,
    options: COLLECT_RPCAP_ACTIVE_OPTIONS,
  },
  { name: "rt", prefix: ["rt"], helpArgv: ["rt", "--help"], help: RT_HELP, options: RT_OPTIONS },
  { name: "run", prefix: ["run"], helpArgv: ["run", "--help"], help: RUN_HELP, options: RUN_OPTIONS },
  { name: "hook test", prefix: ["hook", "test"], helpArgv: ["hook", "--help"], help: HOOK_HELP, options: HOOK_TEST_OPTIONS },
  { name: "passwd", prefix: ["passwd"], helpArgv: ["passwd", "--help"], help: PASSWD_HELP, options: PASSWD_OPTIONS },
  { name: "list", prefix: ["list"], helpArgv: ["list", "--help"], help: LIST_HELP, options: LIST_OPTIONS },
  { name: "summary", prefix: ["summary"], helpArgv: ["summary", "--help"], help: SUMMARY_HELP, options: SUMMARY_OPTIONS },
  // The serve mode has no command word; main.ts takes -h/--help itself (hence --help-serve).
  { name: "serve mode", prefix: [], helpArgv: ["--help-serve"], help: SERVE_HELP, options: SERVE_OPTIONS },
];

/** An option that no command defines: parseArgs stops at the first unknown option, in order. */
const SENTINEL = "--qa-not-an-option";

interface HelpFlag {
  flag: string;
  /** The long name it is paired with on the same line (`-i, --interface`). */
  pairedLong?: string;
}

/**
 * The flags an option-definition line names: lines indented 2 to 6 spaces whose first word is
 * a flag; the flag column ends at the first run of two spaces (the description) or at the end
 * of the line (the description then starts on the next one).
 */
export function flagsInHelp(help: string): HelpFlag[] {
  const found: HelpFlag[] = [];
  for (const line of help.split("\n")) {
    const match = /^ {2,6}(-.*)$/.exec(line);
    if (!match) continue;
    const column = match[1]!.split(/ {2,}/)[0]!;
    const flags = [...column.matchAll(/(?<![\w|-])(--?[A-Za-z0-9][\w-]*)/g)].map((m) => m[1]!);
    const long = flags.find((f) => f.startsWith("--"));
    for (const flag of flags) found.push(flag.startsWith("--") ? { flag } : { flag, ...(long ? { pairedLong: long } : {}) });
  }
  return found;
}

function parserFlags(options: OptionTable): Set<string> {
  const flags = new Set<string>();
  for (const [long, definition] of Object.entries(options)) {
    flags.add(`--${long}`);
    if (definition.short) flags.add(`-${definition.short}`);
  }
  return flags;
}

/**
 * Runs `probe PREFIX FLAG x FLAG x ... SENTINEL` (a value after each: a boolean flag turns it
 * into a positional, checked only after parsing) and returns the flags probe called unknown,
 * dropping each and running again until only the sentinel is refused.
 */
async function flagsProbeRefuses(command: CommandUnderTest, flags: readonly string[]): Promise<string[]> {
  const refused: string[] = [];
  let remaining = [...flags];
  for (let attempt = 0; attempt <= flags.length; attempt++) {
    const argv = [...command.prefix, ...remaining.flatMap((flag) => [flag, "x"]), SENTINEL];
    const result = await runProbe(argv, { timeoutMs: 15_000 });
    expect(result.exitCode).toBe(2);
    const unknown = /Unknown option '([^']+)'/.exec(result.stderr)?.[1];
    if (unknown === undefined) throw new Error(`${command.name}: expected an unknown-option error, got: ${result.stderr}`);
    if (unknown === SENTINEL) return refused;
    refused.push(unknown);
    remaining = remaining.filter((flag) => flag !== unknown);
  }
  return refused;
}

describe("help texts", () => {
  test("the flag extractor reads both column layouts and paired lines", () => {
    const help = "  -i, --interface NAME    capture on NAME\n      --tls-ca FILE\n                          trust FILE, like tcpdump -D\n  --udpstr-listen A:P  where\n      --direction-in FILTER, --direction-out FILTER\nprose -x\n";
    expect(flagsInHelp(help)).toEqual([
      { flag: "-i", pairedLong: "--interface" },
      { flag: "--interface" },
      { flag: "--tls-ca" },
      { flag: "--udpstr-listen" },
      { flag: "--direction-in" },
      { flag: "--direction-out" },
    ]);
  });

  test("probe --help and -V exit 0 and list every command", async () => {
    const help = await runProbe(["--help"]);
    expect(help.exitCode).toBe(0);
    // (main.ts runs on import, so its text is read from the binary.)
    for (const command of ["list", "capture", "rpcapd", "pcap-over-ip", "rt", "forward", "collect", "hook test", "passwd", "summary", "run"]) {
      expect(help.stdout).toContain(`\n  ${command} `);
    }
    const version = await runProbe(["--version"]);
    expect(version.exitCode).toBe(0);
    const unknown = await runProbe(["no-such-command"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'no-such-command'");
  });

  for (const command of COMMANDS) {
    describe(command.name, () => {
      test("--help prints the help text and exits 0", async () => {
        const result = await runProbe(command.helpArgv);
        expect(result.exitCode).toBe(0);
        expect(result.stdout).toBe(command.help);
      });

      test("every option the parser defines is in the help, with its short letter", () => {
        const listed = flagsInHelp(command.help);
        const listedNames = new Set(listed.map((f) => f.flag));
        // A long flag may instead be named in the text (an old name, the default of a --no- pair);
        // a short letter must be on an option line.
        const named = (flag: string) => new RegExp(`(?<![\\w-])${flag}(?![\\w-])`).test(command.help);
        const missing = [...parserFlags(command.options)].filter((flag) => !listedNames.has(flag) && !(flag.startsWith("--") && named(flag)));
        expect(missing).toEqual([]);
        const wrongPairs = listed
          .filter((f) => f.pairedLong !== undefined)
          .filter((f) => command.options[f.pairedLong!.slice(2)]?.short !== f.flag.slice(1))
          .map((f) => `${f.flag}, ${f.pairedLong}`);
        expect(wrongPairs).toEqual([]);
      });

      test("every flag the help lists is accepted by the command", async () => {
        const listed = [...new Set(flagsInHelp(command.help).map((f) => f.flag))];
        // main.ts answers -h/--help before the serve mode's parser sees them.
        const flags = command.prefix.length === 0 ? listed.filter((f) => f !== "-h" && f !== "--help") : listed;
        expect(await flagsProbeRefuses(command, flags)).toEqual([]);
      }, 60_000);
    });
  }
});

/** Splits a shell word list with '...' and "..." quoting (enough for documentation examples). */
function shellWords(text: string): string[] {
  const words: string[] = [];
  for (const match of text.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) words.push(match[1] ?? match[2] ?? match[3]!);
  return words;
}

/**
 * The probe command lines of a Markdown page: in fenced or indented code, starting with
 * `probe`, joined across trailing backslashes, cut before a pipe, redirection, comment or a
 * two-space gap (a description column). Synopses with [optional] parts or ... are left out.
 */
export function probeCommandLines(markdown: string): { line: number; argv: string[] }[] {
  const found: { line: number; argv: string[] }[] = [];
  const lines = markdown.split("\n");
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("```")) {
      fenced = !fenced;
      continue;
    }
    if (!fenced && !line.startsWith("    ")) continue;
    let text = line.trim();
    const start = i;
    while (text.endsWith("\\") && i + 1 < lines.length) text = `${text.slice(0, -1).trimEnd()} ${lines[++i]!.trim()}`;
    if (!/^probe(\s|$)/.test(text)) continue;
    const command = text.slice("probe".length).replace(/^ /, "").split(/ {2,}|\s(?:\||#|>|2>|;|&&)(?:\s|$)/)[0]!;
    if (/\[|\.\.\.|COMMAND|\(/.test(command)) continue;
    found.push({ line: start + 1, argv: shellWords(command) });
  }
  return found;
}

describe("command lines in README.md and docs/", () => {
  test("the extractor joins continued lines and cuts pipes, comments and description columns", () => {
    const page = "text\n\n    probe capture -i eth0 -f 'tcp port 443' \\\n        -w - | tshark -r -\n    probe list [--json]        synopsis\n    probe          the serve mode\n";
    expect(probeCommandLines(page)).toEqual([
      { line: 3, argv: ["capture", "-i", "eth0", "-f", "tcp port 443", "-w", "-"] },
      { line: 6, argv: [] },
    ]);
  });

  const pages = ["README.md", ...readdirSync(join(repoRoot, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
  test("every one parses: each flag exists for its command", async () => {
    const refused: string[] = [];
    let checked = 0;
    for (const page of pages) {
      for (const { line, argv } of probeCommandLines(readFileSync(join(repoRoot, page), "utf8"))) {
        checked++;
        const result = await runProbe([...argv, SENTINEL], { timeoutMs: 15_000 });
        if (!result.stderr.includes(`Unknown option '${SENTINEL}'`)) refused.push(`${page}:${line}: probe ${argv.join(" ")} -> ${result.stderr.trim().split("\n")[0]}`);
      }
    }
    expect(refused).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  }, 120_000);
});
