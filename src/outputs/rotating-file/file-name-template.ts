// File names of a rotating output: the -w template with strftime conversions (always UTC), a
// sequence number (%N, zero-padded) and the input name (%I); or, for a plain name without
// conversions, tcpdump's numbering (savefile.c MakeFilename, checked against Debian's tcpdump
// 4.99.3): `-w out -C 1` writes out, out1, out2...; with `-W N` the ring is out0..out{N-1},
// the number zero-padded to the digits of N (`-W 12`: out00..out11).
//
// The same template also recognises the files it made (a matcher), so retention and .part
// recovery touch only our own files, also those of an earlier run.

/** Default width of %N (zero-padded): 10,000 files before it grows a digit. `%6N` sets another. */
export const DEFAULT_SEQUENCE_DIGITS = 4;
/** Widest %N accepted: a counter that never wraps in practice. */
export const MAX_SEQUENCE_DIGITS = 12;

/** strftime conversions we expand (UTC), each with the regular expression of what it produces. */
const TIME_CONVERSIONS: Readonly<Record<string, { format: (d: Date) => string; pattern: string }>> = {
  Y: { format: (d) => String(d.getUTCFullYear()).padStart(4, "0"), pattern: "\\d{4}" },
  y: { format: (d) => two(d.getUTCFullYear() % 100), pattern: "\\d{2}" },
  m: { format: (d) => two(d.getUTCMonth() + 1), pattern: "\\d{2}" },
  d: { format: (d) => two(d.getUTCDate()), pattern: "\\d{2}" },
  H: { format: (d) => two(d.getUTCHours()), pattern: "\\d{2}" },
  M: { format: (d) => two(d.getUTCMinutes()), pattern: "\\d{2}" },
  S: { format: (d) => two(d.getUTCSeconds()), pattern: "\\d{2}" },
  j: { format: (d) => String(dayOfYear(d)).padStart(3, "0"), pattern: "\\d{3}" },
  s: { format: (d) => String(Math.floor(d.getTime() / 1000)), pattern: "\\d+" },
  F: { format: (d) => `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())}`, pattern: "\\d{4}-\\d{2}-\\d{2}" },
  T: { format: (d) => `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`, pattern: "\\d{2}:\\d{2}:\\d{2}" },
};

type Token =
  | { readonly kind: "literal"; readonly text: string }
  | { readonly kind: "time"; readonly conversion: string }
  | { readonly kind: "sequence"; readonly digits: number }
  | { readonly kind: "input" };

/** What one file's name is made of. */
export interface NameFields {
  /** Seconds since the epoch of the file's start (period start, interval start or first packet). */
  readonly timeSec: number;
  /** The file's sequence number in this output (continues after the files already on disk). */
  readonly sequence: number;
}

/** A template that cannot be used: its text names the conversion. */
export class FileNameTemplateError extends Error {
  override readonly name = "FileNameTemplateError";
}

/** Characters an input name may bring into a file name; anything else becomes '_'. */
const SAFE_NAME_CHARACTER = /[A-Za-z0-9._+-]/;

/** An input name as it appears in a file name (no '/', no spaces, nothing a shell would trip on). */
export function fileSafeInputName(name: string): string {
  const safe = Array.from(name, (c) => (SAFE_NAME_CHARACTER.test(c) ? c : "_")).join("");
  return safe.length > 0 ? safe : "input";
}

export class FileNameTemplate {
  /** True when the template has a conversion (%Y, %N, %I...); false for tcpdump-style plain names. */
  readonly hasConversions: boolean;
  readonly hasSequence: boolean;
  private readonly tokens: readonly Token[];

  /**
   * @param template the file name part of -w (no directory)
   * @param inputName what %I expands to (already made file-safe)
   * @param ringFiles tcpdump's -W with -C on a plain name: the ring size (names padded to its digits)
   */
  constructor(
    readonly template: string,
    readonly inputName: string,
    readonly ringFiles?: number,
  ) {
    this.tokens = parseTemplate(template);
    this.hasConversions = this.tokens.some((t) => t.kind !== "literal");
    this.hasSequence = this.tokens.some((t) => t.kind === "sequence");
  }

  /**
   * The file name for `fields`, with `collision` > 0 when earlier candidates were taken: a plain
   * name or a %N template move on by sequence instead (the caller passes a larger one), a
   * template without %N gets `_K` before its extension.
   */
  format(fields: NameFields, collision = 0): string {
    if (!this.hasConversions) return this.plainName(fields.sequence);
    const date = new Date(fields.timeSec * 1000);
    let name = "";
    for (const token of this.tokens) {
      if (token.kind === "literal") name += token.text;
      else if (token.kind === "time") name += TIME_CONVERSIONS[token.conversion]!.format(date);
      else if (token.kind === "sequence") name += String(fields.sequence).padStart(token.digits, "0");
      else name += this.inputName;
    }
    if (collision > 0 && !this.hasSequence) {
      const dot = name.lastIndexOf(".");
      return dot > 0 ? `${name.slice(0, dot)}_${collision}${name.slice(dot)}` : `${name}_${collision}`;
    }
    return name;
  }

  /**
   * Recognises names this template makes (for any time and sequence); group 1 is the sequence
   * number when the name carries one.
   */
  matcher(): RegExp {
    if (!this.hasConversions) {
      const base = escapeRegExp(this.template);
      if (this.ringFiles !== undefined) return new RegExp(`^${base}(\\d{${ringDigits(this.ringFiles)}})$`);
      return new RegExp(`^${base}(\\d*)$`);
    }
    let pattern = "";
    let sequenceSeen = false;
    for (const token of this.tokens) {
      if (token.kind === "literal") pattern += escapeRegExp(token.text);
      else if (token.kind === "time") pattern += `(?:${TIME_CONVERSIONS[token.conversion]!.pattern})`;
      else if (token.kind === "sequence") {
        // Only the first %N captures; later ones repeat the same number.
        pattern += sequenceSeen ? "\\d+" : `(\\d{${token.digits},})`;
        sequenceSeen = true;
      } else pattern += escapeRegExp(this.inputName);
    }
    if (!this.hasSequence) {
      // The collision suffix `_K` before the extension (see format).
      const dot = pattern.lastIndexOf("\\.");
      pattern = dot > 0 ? `${pattern.slice(0, dot)}(?:_\\d+)?${pattern.slice(dot)}` : `${pattern}(?:_\\d+)?`;
    }
    return new RegExp(`^${pattern}$`);
  }

  /** The sequence number a matched name carries (tcpdump's plain `out` is 0), or undefined. */
  sequenceOf(match: RegExpExecArray): number | undefined {
    if (!this.hasConversions) return match[1] === undefined || match[1] === "" ? 0 : Number(match[1]);
    return this.hasSequence ? Number(match[1]) : undefined;
  }

  private plainName(sequence: number): string {
    if (this.ringFiles !== undefined) {
      const digits = ringDigits(this.ringFiles);
      return digits === 0 ? this.template : `${this.template}${String(sequence % this.ringFiles).padStart(digits, "0")}`;
    }
    return sequence === 0 ? this.template : `${this.template}${sequence}`;
  }
}

function parseTemplate(template: string): Token[] {
  const tokens: Token[] = [];
  let literal = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== "%") {
      literal += c;
      continue;
    }
    let j = i + 1;
    while (j < template.length && /\d/.test(template[j]!)) j++;
    const width = template.slice(i + 1, j);
    const conversion = template[j];
    if (conversion === undefined) throw new FileNameTemplateError(`-w '${template}' ends with a lone '%'`);
    if (width !== "" && conversion !== "N") {
      throw new FileNameTemplateError(`-w '${template}': only %N takes a width (as %6N), not %${width}${conversion}`);
    }
    if (conversion === "%") literal += "%";
    else {
      if (literal) tokens.push({ kind: "literal", text: literal });
      literal = "";
      if (conversion === "N") {
        const digits = width === "" ? DEFAULT_SEQUENCE_DIGITS : Number(width);
        if (digits < 1 || digits > MAX_SEQUENCE_DIGITS) {
          throw new FileNameTemplateError(`-w '${template}': %N width must be 1 to ${MAX_SEQUENCE_DIGITS}`);
        }
        tokens.push({ kind: "sequence", digits });
      } else if (conversion === "I") tokens.push({ kind: "input" });
      else if (conversion in TIME_CONVERSIONS) tokens.push({ kind: "time", conversion });
      else {
        throw new FileNameTemplateError(
          `-w '${template}': unknown conversion %${conversion} (known: %${Object.keys(TIME_CONVERSIONS).join(" %")} %N %I %%)`,
        );
      }
    }
    i = j;
  }
  if (literal) tokens.push({ kind: "literal", text: literal });
  return tokens;
}

function two(n: number): string {
  return String(n).padStart(2, "0");
}

function dayOfYear(d: Date): number {
  return Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
}

/**
 * Width of ring numbers: the digits of N-1 (tcpdump.c getWflagChars; -W 10 writes out0..out9,
 * -W 11 out00..out10, and -W 1 writes plain `out`, width 0).
 */
function ringDigits(ringFiles: number): number {
  return ringFiles <= 1 ? 0 : String(ringFiles - 1).length;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
