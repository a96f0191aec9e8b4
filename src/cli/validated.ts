// Validates a command's raw settings against its zod schema and freezes the result; zod's
// issues become one UsageError line each, naming the setting.
import type { z } from "../config/zod.ts";
import { UsageError } from "./usage-error.ts";

export function validated<S extends z.ZodType>(command: string, schema: S, raw: unknown): Readonly<z.infer<S>> {
  const result = schema.safeParse(stripUndefined(raw));
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const path = issue.path.join(".");
      return `${command}: ${path ? `${path}: ` : ""}${issue.message}`;
    });
    throw new UsageError(lines.join("\n"));
  }
  return Object.freeze(result.data);
}

function stripUndefined(raw: unknown): unknown {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw;
  return Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
}
