// Pipeline files: a PipelineSpec (src/pipeline/spec.ts) as YAML or JSON, what `probe run FILE`
// reads and `--print-pipeline` writes. Bad files get one error per problem naming the key
// and its line, like "outputs[0].format (line 7): expected one of pcap|pcapng".
import { checkPipelineSpec, type PipelineSpec, type SpecIssue } from "../pipeline/spec.ts";
import { ProbeError } from "../packet/probe-error.ts";

export type PipelineFileFormat = "yaml" | "json";

/** Largest pipeline file read: a spec is a few hundred bytes; this bounds a mistaken path. */
export const MAX_PIPELINE_FILE_BYTES = 1024 * 1024;

/** JSON when the name ends in .json or the text starts with '{'; YAML otherwise. */
export function pipelineFileFormat(name: string, text: string): PipelineFileFormat {
  return name.endsWith(".json") || text.trimStart().startsWith("{") ? "json" : "yaml";
}

/** Parses and validates a spec file's text; throws a usage ProbeError naming key and line. */
export function parsePipelineText(name: string, text: string): PipelineSpec {
  const format = pipelineFileFormat(name, text);
  let raw: unknown;
  try {
    raw = format === "json" ? JSON.parse(text) : Bun.YAML.parse(text);
  } catch (error) {
    const e = error as Error & { line?: number; column?: number };
    const where = e.line !== undefined ? ` (line ${e.line}${e.column !== undefined ? `, column ${e.column}` : ""})` : jsonWhere(text, e.message);
    throw new ProbeError("bad-spec", "usage", `${name}: not valid ${format.toUpperCase()}${where}: ${e.message.replace(/^YAML Parse error: /, "")}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ProbeError("bad-spec", "usage", `${name}: a pipeline is a mapping with inputs, stages and outputs`);
  }
  const checked = checkPipelineSpec(raw);
  if ("issues" in checked) {
    const lines = checked.issues.map((issue) => `${name}: ${describeIssue(issue, text)}`);
    throw new ProbeError("bad-spec", "usage", lines.join("\n"));
  }
  return checked.spec;
}

/** The spec as text `probe run` reads back to the same spec. */
export function formatPipeline(spec: PipelineSpec, format: PipelineFileFormat = "yaml"): string {
  const plain = kindFirst(JSON.parse(JSON.stringify(spec)));
  if (format === "json") return `${JSON.stringify(plain, null, 2)}\n`;
  const text = Bun.YAML.stringify(plain, null, 2);
  return `# probe pipeline: run it with 'probe run FILE'\n${text.endsWith("\n") ? text : `${text}\n`}`;
}

/** The same value with every object's `kind` key first, so each entry reads from its kind. */
function kindFirst(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(kindFirst);
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value).map(([k, v]) => [k, kindFirst(v)] as const);
  entries.sort(([a], [b]) => Number(b === "kind") - Number(a === "kind"));
  return Object.fromEntries(entries);
}

function describeIssue(issue: SpecIssue, text: string): string {
  const path = issue.path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i > 0 ? "." : ""}${p}`)).join("");
  const line = lineOf(issue.path, text);
  return `${path || "(top level)"}${line ? ` (line ${line})` : ""}: ${issue.message}`;
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

function jsonWhere(text: string, message: string): string {
  const position = /position (\d+)/.exec(message);
  if (!position) return "";
  return ` (line ${text.slice(0, Number(position[1])).split("\n").length})`;
}

/** Reads and parses a pipeline file; errors name the file. */
export async function readPipelineFile(path: string): Promise<PipelineSpec> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new ProbeError("no-such-file", "usage", `${path}: no such file`);
  if (file.size > MAX_PIPELINE_FILE_BYTES) throw new ProbeError("bad-spec", "usage", `${path}: larger than ${MAX_PIPELINE_FILE_BYTES} bytes; not a pipeline file`);
  return parsePipelineText(path, await file.text());
}
