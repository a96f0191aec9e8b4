// Where a pipeline file's syntax goes wrong, for one line an operator can act on:
// - JSON: a strict scanner (RFC 8259) that reports the line and column of the first error, a key
//   given twice (JSON.parse keeps the last silently) and nesting deeper than a spec needs.
// - YAML: Bun.YAML.parse reports no position (its error's line/column are those of the JavaScript
//   that called it), but Bun's module loader runs the same parser and reports one, so a file
//   that failed to parse is parsed once more as a virtual module to learn where.
// - YAML keys given twice: Bun.YAML keeps the last silently (YAML 1.2 forbids duplicates, 3.2.1.1),
//   so a scanner walks the block mappings and flow mappings of a file that did parse.
// Pure text in, positions out: no file access.
import { escapeControlCharacters, peerText } from "../logging/peer-text.ts";

/** A place in the text: line and column both count from 1 (columns in UTF-16 units). */
export interface TextPosition {
  line: number;
  column: number;
}

export interface SyntaxProblem extends TextPosition {
  message: string;
}

/**
 * Deepest nesting of objects and arrays a spec file may have: a spec is about five levels deep
 * (outputs[0].triggers.period); the bound keeps the scanner's recursion far from the stack limit.
 */
export const MAX_SPEC_NESTING_DEPTH = 64;

/** Longest key quoted back in a message: enough to recognise it, never a whole line of a file. */
const MAX_QUOTED_KEY_CHARS = 60;

/** A key as it may appear in a message: quoted and escaped, never raw control characters. */
export function quotedKey(key: string): string {
  return peerText(key, MAX_QUOTED_KEY_CHARS);
}

/** Line and column of a UTF-16 index into `text`. */
export function positionAt(text: string, index: number): TextPosition {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i >= 0 && i < index; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: index - lineStart + 1 };
}

// ---------------------------------------------------------------------------------- JSON

class JsonScanError extends Error {
  constructor(
    readonly index: number,
    message: string,
  ) {
    super(message);
  }
}

/** The first syntax error of a JSON text (RFC 8259), a duplicate key, or too deep a nesting; undefined when it is sound. */
export function checkJsonSyntax(text: string): SyntaxProblem | undefined {
  let at = 0;
  const isSpace = (c: string | undefined) => c === " " || c === "\t" || c === "\n" || c === "\r";
  const skipSpace = () => {
    while (isSpace(text[at])) at++;
  };
  const describe = (c: string | undefined) => (c === undefined ? "the end of the file" : `${escapeControlCharacters(JSON.stringify(c))}`);
  const fail = (message: string, index = at): never => {
    throw new JsonScanError(index, message);
  };
  const string = (): string => {
    const start = at;
    at++; // the opening quote
    for (;;) {
      const c = text[at];
      if (c === undefined) fail("a string is not closed", start);
      if (c === '"') break;
      if (c! < " ") fail("a control character inside a string (write it as an escape)");
      if (c === "\\") {
        const e = text[at + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(at + 2, at + 6))) fail("\\u wants four hex digits");
          at += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) fail("an unknown escape in a string");
        at += 2;
        continue;
      }
      at++;
    }
    at++;
    return JSON.parse(text.slice(start, at)) as string;
  };
  const value = (depth: number): void => {
    skipSpace();
    const c = text[at];
    if (c === "{" || c === "[") {
      if (depth >= MAX_SPEC_NESTING_DEPTH) fail(`nested deeper than ${MAX_SPEC_NESTING_DEPTH} levels`);
      at++;
      skipSpace();
      const close = c === "{" ? "}" : "]";
      if (text[at] === close) {
        at++;
        return;
      }
      const keys = new Map<string, number>();
      for (;;) {
        if (c === "{") {
          skipSpace();
          if (text[at] !== '"') fail(`expected a key in double quotes, found ${describe(text[at])}`);
          const keyAt = at;
          const key = string();
          const first = keys.get(key);
          if (first !== undefined) fail(`the key ${quotedKey(key)} is given twice (first on line ${positionAt(text, first).line})`, keyAt);
          keys.set(key, keyAt);
          skipSpace();
          if (text[at] !== ":") fail(`expected ':' after a key, found ${describe(text[at])}`);
          at++;
        }
        value(depth + 1);
        skipSpace();
        if (text[at] === ",") {
          at++;
          continue;
        }
        if (text[at] === close) {
          at++;
          return;
        }
        fail(`expected ',' or '${close}', found ${describe(text[at])}`);
      }
    }
    if (c === '"') {
      string();
      return;
    }
    const literal = /^(?:true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)/.exec(text.slice(at, at + 400));
    if (!literal) fail(`expected a value, found ${describe(c)}`);
    at += literal![0].length;
  };
  try {
    value(0);
    skipSpace();
    if (at < text.length) fail(`text after the end of the JSON value`);
    return undefined;
  } catch (error) {
    if (!(error instanceof JsonScanError)) throw error;
    return { ...positionAt(text, Math.min(error.index, text.length)), message: error.message };
  }
}

// ---------------------------------------------------------------------------------- YAML

/**
 * Whether a parsed value nests objects and arrays more than `limit` levels deep (the top one
 * counts as the first). Shared nodes (YAML aliases) are walked again only when met deeper than
 * before, so an alias bomb costs nodes x limit, not its expansion.
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const checkedAt = new Map<object, number>();
  const deep = (node: unknown, depth: number): boolean => {
    if (node === null || typeof node !== "object") return false;
    if (depth >= limit) return true;
    const before = checkedAt.get(node);
    if (before !== undefined && before >= depth) return false;
    for (const child of Object.values(node)) if (deep(child, depth + 1)) return true;
    checkedAt.set(node, depth);
    return false;
  };
  return deep(value, 0);
}

let locateCount = 0;

/**
 * Where Bun's YAML parser stops on `text` (which Bun.YAML.parse refused), as line, column and
 * its message; undefined if the loader accepts it after all. The text is handed to the module
 * loader as a virtual module (a runtime plugin), so nothing is written or read from disk.
 */
export function locateYamlError(text: string): SyntaxProblem | undefined {
  const name = `probe-pipeline-file-check-${++locateCount}`;
  Bun.plugin({
    name,
    setup(build) {
      build.module(name, () => ({ contents: text, loader: "yaml" }));
    },
  });
  try {
    require(name);
    return undefined;
  } catch (error) {
    const position = (error as { position?: { line?: unknown; column?: unknown } } | null)?.position;
    if (typeof position?.line !== "number" || typeof position.column !== "number") return undefined;
    const message = error instanceof Error ? error.message : "not valid YAML";
    return { line: position.line, column: position.column, message };
  }
}

/** A key given twice in one YAML mapping. */
export interface DuplicateKey extends TextPosition {
  key: string;
  firstLine: number;
}

interface FlowLevel {
  close: "}" | "]";
  keys: Map<string, number> | undefined;
  /** The last scalar read since the last ',' or opening bracket: the key if ':' follows. */
  pending: { text: string; line: number; column: number } | undefined;
  /** A ':' was seen since the last ',': what follows is a value. */
  valued: boolean;
}

/** A flow collection or quoted scalar still open at the end of a line. */
interface FlowCarry {
  levels: FlowLevel[];
  quote: '"' | "'" | undefined;
  /** The quoted scalar so far (a key when ':' follows it). */
  quoted: { text: string; line: number; column: number } | undefined;
}

class DuplicateFound extends Error {
  constructor(readonly duplicate: DuplicateKey) {
    super("duplicate key");
  }
}

function noteKey(keys: Map<string, number>, key: string, line: number, column: number): void {
  if (key === "<<") return; // merge keys (YAML 1.1) may repeat
  const first = keys.get(key);
  if (first !== undefined) throw new DuplicateFound({ key, line, column, firstLine: first });
  keys.set(key, line);
}

/** The text of a quoted scalar between its quotes, unescaped enough to compare keys. */
function unquote(raw: string, quote: '"' | "'"): string {
  if (quote === "'") return raw.replaceAll("''", "'");
  try {
    return JSON.parse(`"${raw.replace(/\\x([0-9a-fA-F]{2})/g, "\\u00$1")}"`) as string;
  } catch {
    return raw;
  }
}

/**
 * Scans `line` from `from` in flow context (inside [...] or {...}, or a quoted scalar), noting
 * flow-mapping keys. Returns the state to carry to the next line, or undefined when everything
 * opened on this line closed.
 */
function scanFlow(line: string, from: number, lineNumber: number, carry: FlowCarry): FlowCarry | undefined {
  let at = from;
  /** Something was read: once the levels are all closed again, the flow value has ended. */
  let started = carry.levels.length > 0 || carry.quote !== undefined;
  const top = () => carry.levels.at(-1);
  const scalarRead = (text: string, column: number) => {
    const level = top();
    if (level) level.pending = { text, line: lineNumber, column };
  };
  while (at < line.length) {
    if (carry.quote) {
      const quote = carry.quote;
      let end = at;
      for (; end < line.length; end++) {
        if (quote === '"' && line[end] === "\\") {
          end++;
          continue;
        }
        if (line[end] === quote) {
          if (quote === "'" && line[end + 1] === "'") {
            end++;
            continue;
          }
          break;
        }
      }
      carry.quoted!.text += (carry.quoted!.text && at === 0 ? " " : "") + line.slice(at, end);
      if (end >= line.length) return carry; // still open: a multi-line quoted scalar
      carry.quote = undefined;
      scalarRead(unquote(carry.quoted!.text, quote), carry.quoted!.column);
      carry.quoted = undefined;
      at = end + 1;
      if (carry.levels.length === 0) return undefined;
      continue;
    }
    const c = line[at]!;
    if (c === " " || c === "\t") {
      at++;
      continue;
    }
    if (c === "#" && (at === 0 || line[at - 1] === " " || line[at - 1] === "\t")) break;
    if (started && carry.levels.length === 0) return undefined; // the flow value ended: the rest is not ours
    started = true;
    if (c === "{" || c === "[") {
      carry.levels.push({ close: c === "{" ? "}" : "]", keys: c === "{" ? new Map() : undefined, pending: undefined, valued: false });
      at++;
      continue;
    }
    if (c === "}" || c === "]") {
      carry.levels.pop();
      at++;
      if (carry.levels.length === 0) return undefined;
      continue;
    }
    if (c === ",") {
      const level = top()!;
      level.pending = undefined;
      level.valued = false;
      at++;
      continue;
    }
    if (c === ":") {
      const level = top()!;
      if (level.keys && level.pending && !level.valued) noteKey(level.keys, level.pending.text, level.pending.line, level.pending.column);
      level.pending = undefined;
      level.valued = true;
      at++;
      continue;
    }
    if (c === '"' || c === "'") {
      carry.quote = c;
      carry.quoted = { text: "", line: lineNumber, column: at + 1 };
      at++;
      continue;
    }
    // A plain scalar: up to a flow indicator, ': ' or ' #'.
    const start = at;
    while (at < line.length) {
      const d = line[at]!;
      if (d === "," || d === "[" || d === "]" || d === "{" || d === "}") break;
      if (d === ":" && (at + 1 === line.length || /[\s,[\]{}]/.test(line[at + 1]!))) break;
      if (d === "#" && /[ \t]/.test(line[at - 1] ?? "")) break;
      at++;
    }
    scalarRead(line.slice(start, at).trimEnd(), start + 1);
  }
  return carry.levels.length > 0 || carry.quote ? carry : undefined;
}

/**
 * The first key given twice in one mapping of a YAML text that parsed, with the line of its
 * first appearance; undefined when there is none. Covers block mappings (keys plain or quoted,
 * under sequence items at any depth) and flow mappings ({a: 1, a: 2}, across lines too); skips
 * block scalars (| and >), comments and multi-line quoted scalars.
 */
export function findDuplicateYamlKey(text: string): DuplicateKey | undefined {
  const lines = text.split(/\r?\n/);
  const levels: { indent: number; keys: Map<string, number> }[] = [];
  let carry: FlowCarry | undefined;
  /** Inside a block scalar: lines indented more than this (or blank) are its content. */
  let blockScalarParent = -1;
  const closeDeeperThan = (indent: number) => {
    while (levels.length > 0 && levels.at(-1)!.indent > indent) levels.pop();
  };
  /** The value after a key or a '-': starts a block scalar, a flow collection or a quoted scalar. */
  const scanValue = (line: string, from: number, lineNumber: number, parentIndent: number) => {
    let at = from;
    while (at < line.length) {
      while (line[at] === " " || line[at] === "\t") at++;
      // node properties: an anchor or a tag before the value
      const property = /^[&!]\S*/.exec(line.slice(at));
      if (!property) break;
      at += property[0].length;
    }
    const c = line[at];
    if (c === "|" || c === ">") {
      if (/^[|>][1-9+-]{0,2}\s*(#.*)?$/.test(line.slice(at))) blockScalarParent = parentIndent;
      return;
    }
    if (c === "{" || c === "[" || c === '"' || c === "'") carry = scanFlow(line, at, lineNumber, { levels: [], quote: undefined, quoted: undefined });
  };
  try {
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n]!;
      const lineNumber = n + 1;
      if (carry) {
        carry = scanFlow(line, 0, lineNumber, carry);
        continue;
      }
      const indent = /^ */.exec(line)![0].length;
      if (blockScalarParent >= 0) {
        if (line.trim() === "" || indent > blockScalarParent) continue;
        blockScalarParent = -1;
      }
      const rest = line.slice(indent);
      if (rest.trim() === "" || rest.startsWith("#")) continue;
      if (indent === 0 && /^(---|\.\.\.)(\s|$)/.test(line)) {
        levels.length = 0;
        continue;
      }
      if (indent === 0 && line.startsWith("%")) continue;
      let at = indent;
      let parentIndent = indent;
      // sequence items: each '-' closes the mappings deeper than itself
      while (line[at] === "-" && (at + 1 === line.length || line[at + 1] === " " || line[at + 1] === "\t")) {
        closeDeeperThan(at);
        parentIndent = at;
        at++;
        while (line[at] === " " || line[at] === "\t") at++;
      }
      if (at >= line.length || line[at] === "#") continue;
      if (at > indent) closeDeeperThan(at - 1);
      // the key, if this line holds one: "key:", 'key':, or plain up to ': '
      let key: string | undefined;
      let afterKey = -1;
      const keyColumn = at;
      let keyStart = at;
      const property = /^(?:[&!]\S*[ \t]+)+/.exec(line.slice(at));
      if (property) keyStart += property[0].length;
      const q = line[keyStart];
      if (q === '"' || q === "'") {
        const quoted = q === '"' ? /^"((?:[^"\\]|\\.)*)"[ \t]*:(?=\s|$)/.exec(line.slice(keyStart)) : /^'((?:[^']|'')*)'[ \t]*:(?=\s|$)/.exec(line.slice(keyStart));
        if (quoted) {
          key = unquote(quoted[1]!, q);
          afterKey = keyStart + quoted[0].length;
        }
      } else if (q !== undefined && !"[{?*|>%@`,#".includes(q)) {
        const colon = /:(?=\s|$)/.exec(line.slice(keyStart));
        const comment = /[ \t]#/.exec(line.slice(keyStart));
        if (colon && (!comment || comment.index > colon.index)) {
          key = line.slice(keyStart, keyStart + colon.index).trimEnd();
          afterKey = keyStart + colon.index + 1;
        }
      }
      if (key === undefined) {
        // not a key: a value of a sequence item, or a plain scalar's continuation
        scanValue(line, at, lineNumber, parentIndent);
        continue;
      }
      closeDeeperThan(keyColumn);
      let level = levels.at(-1);
      if (!level || level.indent < keyColumn) {
        level = { indent: keyColumn, keys: new Map() };
        levels.push(level);
      }
      noteKey(level.keys, key, lineNumber, keyStart + 1);
      scanValue(line, afterKey, lineNumber, keyColumn);
    }
  } catch (error) {
    if (error instanceof DuplicateFound) return error.duplicate;
    throw error;
  }
  return undefined;
}
