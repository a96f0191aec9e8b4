// A thin layer over node:util parseArgs: strict parsing with errors turned into UsageErrors
// that name the command, so every subcommand reports bad flags the same way.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseHostPort, type HostPort } from "../net/addresses.ts";
import { UsageError } from "./usage-error.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseCommandLine<T extends Options>(command: string, argv: string[], options: T) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, "");
    throw new UsageError(`${command}: ${message}`);
  }
  refuseRepeatedValues(command, options, parsed.tokens);
  return parsed;
}

/**
 * A value option that is not repeatable, given twice, is refused: parseArgs keeps the last one
 * silently, so `probe summary -f udp -f tcp` summarised tcp alone and said nothing. (Repeatable
 * options say `multiple: true`; a repeated switch such as -v is a count, and stays allowed.)
 */
function refuseRepeatedValues(command: string, options: Options, tokens: readonly { kind: string; name?: string; rawName?: string }[]): void {
  const seen = new Map<string, string>();
  for (const token of tokens) {
    if (token.kind !== "option" || token.name === undefined) continue;
    const option = options[token.name];
    if (!option || option.type !== "string" || option.multiple) continue;
    const earlier = seen.get(token.name);
    if (earlier !== undefined) {
      const again = token.rawName ?? `--${token.name}`;
      throw new UsageError(`${command}: ${earlier === again ? `${earlier} given twice` : `${earlier} and ${again} both given`}; give it once`);
    }
    seen.set(token.name, token.rawName ?? `--${token.name}`);
  }
}

/** Parses a decimal integer flag value within [min, max]. */
export function parseInteger(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} wants a whole number, not '${text}'`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`${flag} must be between ${min} and ${max}, not ${value}`);
  return value;
}

/** The values of the given options in command-line order, with the option each came from. */
export function inOrder(tokens: readonly { kind: string; name?: string; value?: string | undefined }[], names: readonly string[]): { name: string; value: string }[] {
  return tokens
    .filter((t) => t.kind === "option" && t.name !== undefined && names.includes(t.name) && t.value !== undefined)
    .map((t) => ({ name: t.name!, value: t.value! }));
}

/** A HOST:PORT flag value (PORT may be left out when `defaultPort` is given); a bad one is a usage error naming the flag. */
export function hostPortFlag(flag: string, text: string, defaultPort?: number): HostPort {
  try {
    return parseHostPort(text, defaultPort);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}
