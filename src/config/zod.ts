// zod, configured once for the whole program: every schema module imports z from here, so the
// configuration is in force before the first schema is built (zod reads it per object schema,
// at construction).
//
// jitless: zod's default compiles one parser per object shape with new Function on its first
// parse. probe parses a configuration once at start, where the compiled parsers win nothing,
// and they cost ~2.6 MB of resident memory (JSC compiling and keeping them; docs/capture.md,
// "Memory: where it goes"). The interpreted parser gives the same results and messages.
import { z } from "zod";

z.config({ jitless: true });

export { z };
