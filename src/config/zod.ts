// zod, configured once for the whole program: every schema module imports z from here, so the
// configuration is in force before the first schema is built (zod reads it per object schema,
// at construction). Also the two ways a module declares a schema that is built on first use.
//
// jitless: zod's default compiles one parser per object shape with new Function on its first
// parse. probe parses a configuration once at start, where the compiled parsers win nothing,
// and they cost ~2.6 MB of resident memory (JSC compiling and keeping them; docs/capture-history.md,
// "Memory: where it goes"). The interpreted parser gives the same results and messages.
//
// Built on first use: building zod schemas costs memory out of proportion to their size (the
// runtime code and JIT tiers that building them exercises). So schema modules declare their
// schemas with lazySchema() or kindSchema(): importing a module builds nothing, validating
// builds what the input reaches (a capture spec: its interface input and file output, not the
// other 20 kinds; ~180 schema objects instead of ~940, 2.5 MiB less peak RSS for an idle
// capture, 5 MiB for `probe capture --help`: docs/capture-history.md, "Memory: where it goes").
import { z } from "zod";

z.config({ jitless: true });

export { z };

/**
 * A schema built by `build` on its first parse (or `.unwrap()`), then kept. Parsing gives the
 * same results, issues and paths as the built schema itself, and `z.input`/`z.output` of it are
 * the built schema's. Use `.unwrap()` for the built schema's own API (`.shape`, `.extend()`),
 * inside another lazySchema() so that it, too, is built only when used.
 */
export function lazySchema<T extends z.ZodType>(build: () => T): z.ZodLazy<T> {
  let built: T | undefined;
  // zod's own lazy calls the getter again on every unwrap(): keep the first build
  return z.lazy(() => (built ??= build()));
}

/** One kind of a `z.discriminatedUnion("kind", [...])`: a lazySchema() that says its kind. */
export type KindSchema<T extends z.ZodObject> = z.ZodLazy<T> & {
  /** The object schema's fields (reading them builds it). */
  readonly shape: T["shape"];
};

/**
 * The option of kind `kind` of a `z.discriminatedUnion("kind", [...])`, built by
 * `build(z.literal(kind))` when a value of that kind is first parsed. The union picks an option
 * by the values its discriminator takes, which zod reads from a lazy's built schema, building
 * every option on the first parse: this states them instead (`_zod.propValues`, what zod's
 * object schema derives from its literal), so the union, its "Invalid discriminator value.
 * Expected 'a' | 'b'" message included, works unchanged while only the kinds parsed are built
 * (test/integration/lazy-schemas.test.ts holds zod to that).
 */
export function kindSchema<K extends string, T extends z.ZodObject<{ kind: z.ZodLiteral<K> } & z.core.$ZodShape>>(
  kind: K,
  build: (kind: z.ZodLiteral<K>) => T,
): KindSchema<T> {
  const schema = lazySchema(() => build(z.literal(kind)));
  schema._zod.propValues = { kind: new Set([kind]) };
  Object.defineProperty(schema, "shape", { get: () => schema.unwrap().shape });
  return schema as KindSchema<T>;
}
