// Pipeline files: a PipelineSpec (src/pipeline/spec.ts) as YAML or JSON, what `probe run FILE`
// reads and `--print-pipeline` writes. Bad files get one error per problem naming the key
// and its line, like "outputs[0].format (line 7): expected one of pcap|pcapng"; syntax errors
// name the line and column (src/pipeline/spec-syntax.ts). What the file holds is never echoed
// except a key, escaped and cut short: `probe run /etc/shadow` prints no line of it.
// Printed pipelines leave secrets out (REDACTED_SECRET), and a file that still holds the marker
// is refused, so a printed pipeline never runs with "<redacted>" as a passphrase.
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { escapeControlCharacters } from "../logging/peer-text.ts";
import { checkPipelineSpec, type PipelineSpec, type SpecIssue } from "./spec.ts";
import { ProbeError } from "../packet/probe-error.ts";
import { checkJsonSyntax, findDuplicateYamlKey, locateYamlError, MAX_SPEC_NESTING_DEPTH, nestedDeeperThan, quotedKey } from "./spec-syntax.ts";

export type PipelineFileFormat = "yaml" | "json";

/** Largest pipeline file read: a spec is a few hundred bytes; this bounds a mistaken path. */
export const MAX_PIPELINE_FILE_BYTES = 1024 * 1024;

/**
 * Most problems reported for one file, one line each: enough to fix a real spec in one go; a
 * file that is something else entirely must not turn into a screenful.
 */
export const MAX_REPORTED_SPEC_ISSUES = 10;

/** Longest key whose line is looked for in the text: spec keys are short words. */
const MAX_LOCATED_KEY_CHARS = 200;

/** What `--print-pipeline` writes instead of a secret; a file holding it is refused. */
export const REDACTED_SECRET = "<redacted>";

/** The spec's top-level keys: a mapping with none of them is some other file, not a spec with mistakes. */
const SPEC_TOP_LEVEL_KEYS = ["inputs", "stages", "outputs", "precision", "merge", "stopAfterPackets", "quiet", "metrics"];

/** JSON when the name ends in .json or the text starts with '{'; YAML otherwise. */
export function pipelineFileFormat(name: string, text: string): PipelineFileFormat {
  return name.endsWith(".json") || text.trimStart().startsWith("{") ? "json" : "yaml";
}

function badSpec(message: string): ProbeError {
  // Every line escaped: a message quotes keys and names from the file, and no byte of a file may
  // reach a terminal as a control sequence.
  return new ProbeError("bad-spec", "usage", message.split("\n").map(escapeControlCharacters).join("\n"));
}

/** Parses and validates a spec file's text; throws a usage ProbeError naming key, line and column. */
export function parsePipelineText(name: string, text: string): PipelineSpec {
  if (text.includes("\0")) throw badSpec(`${name}: not a pipeline file: it holds NUL bytes (a binary file?)`);
  const format = pipelineFileFormat(name, text);
  let raw: unknown;
  if (format === "json") {
    const problem = checkJsonSyntax(text);
    if (problem) throw badSpec(`${name}: not valid JSON (line ${problem.line}, column ${problem.column}): ${problem.message}`);
    raw = JSON.parse(text);
  } else {
    try {
      raw = Bun.YAML.parse(text);
    } catch (error) {
      // Deep nesting makes Bun's parser run out of stack; the module loader may not, so it is not asked.
      if (error instanceof RangeError) throw badSpec(`${name}: not a pipeline file: nested deeper than ${MAX_SPEC_NESTING_DEPTH} levels`);
      const problem = locateYamlError(text);
      const where = problem ? ` (line ${problem.line}, column ${problem.column})` : "";
      const what = problem ? problem.message : "a syntax error";
      const looksLikeSpec = SPEC_TOP_LEVEL_KEYS.some((key) => new RegExp(`^["']?${key}["']?\\s*:`, "m").test(text));
      throw badSpec(`${name}: ${looksLikeSpec ? "not valid YAML" : "not a pipeline file: not valid YAML"}${where}: ${what}`);
    }
    if (nestedDeeperThan(raw, MAX_SPEC_NESTING_DEPTH)) throw badSpec(`${name}: not a pipeline file: nested deeper than ${MAX_SPEC_NESTING_DEPTH} levels`);
    const duplicate = findDuplicateYamlKey(text);
    if (duplicate) {
      throw badSpec(`${name}: not valid YAML (line ${duplicate.line}, column ${duplicate.column}): the key ${quotedKey(duplicate.key)} is given twice in one mapping (first on line ${duplicate.firstLine})`);
    }
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    const what = Array.isArray(raw) ? "a list" : raw === null ? "nothing" : `a ${typeof raw}`;
    throw badSpec(`${name}: not a pipeline file: it holds ${what} (a pipeline is a mapping with inputs, stages and outputs)`);
  }
  if (!Object.keys(raw).some((key) => SPEC_TOP_LEVEL_KEYS.includes(key))) {
    throw badSpec(`${name}: not a pipeline file: a mapping without inputs, stages or outputs`);
  }
  const redacted = secretFields(raw).filter((field) => field.value.includes(REDACTED_SECRET));
  if (redacted.length > 0) {
    throw badSpec(redacted.map((field) => `${name}: ${describePath(field.path)}${lineText(field.path, text)}: redacted by --print-pipeline; ${field.supply}`).join("\n"));
  }
  const checked = checkPipelineSpec(raw);
  if ("issues" in checked) {
    const lines = checked.issues.flatMap((issue) => describeIssue(issue, text)).map((line) => `${name}: ${line}`);
    const shown = lines.slice(0, MAX_REPORTED_SPEC_ISSUES);
    if (lines.length > shown.length) shown.push(`${name}: ... and ${lines.length - shown.length} more problems`);
    throw badSpec(shown.join("\n"));
  }
  return checked.spec;
}

/** A setting that holds a secret: where, its text, and how to give it when a printed pipeline left it out. */
interface SecretField {
  path: (string | number)[];
  value: string;
  /** Replaces the secret in a printed copy. */
  redact(): void;
  supply: string;
}

/**
 * The secrets a spec (or a parsed file, not yet validated) holds inline: an anonymize stage's
 * passphrase, the password of an rpcap-active input, the password in an input URL
 * (rpcap://USER:PASS@HOST/IFACE). Key and certificate settings are file names, not secrets.
 */
function secretFields(spec: object): SecretField[] {
  const fields: SecretField[] = [];
  /** The list's entries that are objects, each with its index in the list (the path names it). */
  const entries = (key: string): [Record<string, unknown>, number][] => {
    const list = (spec as Record<string, unknown>)[key];
    if (!Array.isArray(list)) return [];
    return list.flatMap((entry, index) => (typeof entry === "object" && entry !== null ? [[entry as Record<string, unknown>, index] as [Record<string, unknown>, number]] : []));
  };
  entries("inputs").forEach(([input, index]) => {
    if (typeof input.password === "string") {
      fields.push({
        path: ["inputs", index, "password"],
        value: input.password,
        redact: () => (input.password = REDACTED_SECRET),
        supply: "write the password here",
      });
    }
    if (typeof input.url === "string") {
      const url = input.url;
      const password = urlPassword(url);
      if (password) {
        fields.push({
          path: ["inputs", index, "url"],
          value: url.slice(password.start, password.end),
          redact: () => (input.url = `${url.slice(0, password.start)}${REDACTED_SECRET}${url.slice(password.end)}`),
          supply: "write the password in the URL (SCHEME://USER:PASSWORD@HOST...)",
        });
      }
    }
  });
  entries("stages").forEach(([stage, index]) => {
    if (stage.kind === "anonymize" && typeof stage.passphrase === "string") {
      fields.push({
        path: ["stages", index, "passphrase"],
        value: stage.passphrase,
        redact: () => (stage.passphrase = REDACTED_SECRET),
        supply: "write the passphrase here, or replace it by keyFile: FILE holding the 32-byte key (docs/stages.md derives it from a passphrase)",
      });
    }
  });
  return fields;
}

/** Where the password of SCHEME://USER:PASSWORD@HOST/... sits in the text; undefined when there is none. */
function urlPassword(url: string): { start: number; end: number } | undefined {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url);
  if (!scheme) return undefined;
  const authorityStart = scheme[0].length;
  const authorityEnd = url.slice(authorityStart).search(/[/?#]|$/) + authorityStart;
  const at = url.lastIndexOf("@", authorityEnd - 1);
  if (at < authorityStart) return undefined;
  const colon = url.indexOf(":", authorityStart);
  if (colon < 0 || colon > at || colon + 1 === at) return undefined;
  return { start: colon + 1, end: at };
}

/** The spec as text `probe run` reads back to the same spec, secrets left out (REDACTED_SECRET) and said how to give. */
export function formatPipeline(spec: PipelineSpec, format: PipelineFileFormat = "yaml"): string {
  const copy = JSON.parse(JSON.stringify(spec)) as object;
  const secrets = secretFields(copy);
  for (const secret of secrets) secret.redact();
  const plain = kindFirst(copy);
  if (format === "json") return `${JSON.stringify(plain, null, 2)}\n`;
  const text = Bun.YAML.stringify(plain, null, 2);
  const note = secrets.length === 0 ? "" : [
    `# Secrets are not printed: replace each ${REDACTED_SECRET} before 'probe run' takes this file (keep it readable by you alone):`,
    ...secrets.map((secret) => `#   ${describePath(secret.path)}: ${secret.supply}`),
  ].map((line) => `${line}\n`).join("");
  return `# probe pipeline: run it with 'probe run FILE'\n${note}${text.endsWith("\n") ? text : `${text}\n`}`;
}

/** The same value with every object's `kind` key first, so each entry reads from its kind. */
function kindFirst(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(kindFirst);
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value).map(([k, v]) => [k, kindFirst(v)] as const);
  entries.sort(([a], [b]) => Number(b === "kind") - Number(a === "kind"));
  return Object.fromEntries(entries);
}

/** One line per problem; an unknown key gets its own line, the key quoted and escaped. */
function describeIssue(issue: SpecIssue, text: string): string[] {
  if (issue.unknownKeys) {
    return issue.unknownKeys.map((key) => `${describePath([...issue.path, key])}${lineText([...issue.path, key], text)}: unknown key`);
  }
  return [`${describePath(issue.path)}${lineText(issue.path, text)}: ${issue.message}`];
}

/** outputs[0].format; a key that is not a plain word is quoted and escaped (it came from the file). */
function describePath(path: readonly (string | number)[]): string {
  const text = path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i > 0 ? "." : ""}${/^[A-Za-z0-9_-]{1,60}$/.test(p) ? p : quotedKey(p)}`)).join("");
  return text || "(top level)";
}

function lineText(path: readonly (string | number)[], text: string): string {
  const line = lineOf(path, text);
  return line ? ` (line ${line})` : "";
}

/**
 * The line where a key path is written, found by looking for each key in turn after the last
 * one found (YAML `key:` or JSON `"key":`) and, for list indexes, the n-th item after it. A
 * heuristic good enough to point at the right place; undefined when a key is not written.
 */
function lineOf(path: readonly (string | number)[], text: string): number | undefined {
  let at = 0;
  let found = false;
  for (const part of path) {
    // A key longer than any real one is not looked for: the search would cost more than it tells.
    if (typeof part === "string" && part.length > MAX_LOCATED_KEY_CHARS) break;
    if (typeof part === "number") {
      // YAML list items start with '-'; JSON items with '{' after '[' or ','.
      let index = -1;
      const pattern = /^\s*-\s|[[,]\s*\{/gm;
      pattern.lastIndex = at;
      let match: RegExpExecArray | null;
      while ((match = pattern.exec(text)) !== null) {
        index++;
        if (index === part) {
          at = match.index + match[0].length - 1;
          found = true;
          break;
        }
      }
      if (index !== part) break;
      continue;
    }
    const escaped = part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const pattern = new RegExp(`(^|[\\s{,-])"?${escaped}"?\\s*:`, "gm");
    pattern.lastIndex = at;
    const match = pattern.exec(text);
    if (!match) break;
    at = match.index + match[1]!.length;
    found = true;
  }
  return found ? text.slice(0, at).split("\n").length : undefined;
}

/** Why a path cannot be read as a pipeline file, in a few words, from the error open() gave. */
function openFailure(error: unknown): string {
  switch ((error as { code?: unknown } | null)?.code) {
    case "ENOENT":
    case "ENOTDIR":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "ELOOP":
      return "too many levels of symbolic links";
    case "ENXIO":
      return "not a regular file (a device, FIFO or socket), not a pipeline file";
    default:
      return `cannot open it (${String((error as { code?: unknown } | null)?.code ?? "unknown error")})`;
  }
}

/**
 * Reads and parses a pipeline file; errors name the file and say in one line what it is when it
 * is not a pipeline file (a directory, a device, a FIFO, something large or binary). The file
 * is opened non-blocking (a FIFO with no writer cannot hang the open), checked with fstat on
 * the open descriptor (no race between a check and the read), and read with a bound (/dev/zero
 * or a file that grows cannot make it read forever).
 */
export async function readPipelineFile(path: string): Promise<PipelineSpec> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    throw new ProbeError(code === "ENOENT" || code === "ENOTDIR" ? "no-such-file" : "cannot-open", "usage", `${path}: ${openFailure(error)}`);
  }
  let text: string;
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw badSpec(`${path}: is a directory, not a pipeline file`);
    if (!stat.isFile()) throw badSpec(`${path}: not a regular file (a device, FIFO or socket), not a pipeline file`);
    if (stat.size > MAX_PIPELINE_FILE_BYTES) throw badSpec(`${path}: larger than ${MAX_PIPELINE_FILE_BYTES} bytes (1 MiB); not a pipeline file`);
    // One byte more than the cap tells a file that grew past it since fstat.
    const buffer = new Uint8Array(MAX_PIPELINE_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const got = readSync(fd, buffer, length, buffer.byteLength - length, null);
      if (got === 0) break;
      length += got;
      if (length === buffer.byteLength) throw badSpec(`${path}: larger than ${MAX_PIPELINE_FILE_BYTES} bytes (1 MiB); not a pipeline file`);
    }
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, length));
    } catch {
      throw badSpec(`${path}: not a pipeline file: not UTF-8 text`);
    }
  } catch (error) {
    if (error instanceof ProbeError) throw error;
    throw new ProbeError("bad-spec", "usage", `${path}: cannot read it (${String((error as { code?: unknown } | null)?.code ?? "unknown error")})`);
  } finally {
    closeSync(fd);
  }
  return parsePipelineText(path, text);
}
