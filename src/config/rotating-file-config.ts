// The rotating file output's settings (kind "rotating-file" in a PipelineSpec): the zod schema
// the spec's output union holds. The command-line flags that make one are
// src/cli/rotation-options.ts; docs/rotation.md explains both.
import { kindSchema, z } from "./zod.ts";

/** The rotating file output as a declared spec (part of a pipeline's output list), built on first use. */
export const rotatingFileSpecSchema = kindSchema("rotating-file", (kind) =>
  z.strictObject({
    kind,
    /** -w: directory, then a file name template (strftime UTC, %N, %I). */
    path: z.string().min(1),
    format: z.enum(["pcap", "pcapng"]).default("pcap"),
    /** When to cut a file (any of them); none: one file, still written as NAME.part. */
    triggers: z.strictObject({
      period: z.strictObject({ unit: z.enum(["hour", "day"]), perPeriod: z.number().int().min(1).max(86_400) }).optional(),
      everySeconds: z.number().positive().max(366 * 86_400).optional(),
      intervalSeconds: z.number().int().min(1).max(366 * 86_400).optional(),
      maxBytes: z.number().int().min(1).optional(),
      maxPackets: z.number().int().min(1).optional(),
    }).default({}),
    rotateOnLoss: z.boolean().default(true),
    retention: z.strictObject({
      files: z.number().int().min(1).optional(),
      bytes: z.number().int().min(1).optional(),
      minFreeBytes: z.number().int().min(0).optional(),
    }).default({}),
    fsyncOnRotate: z.boolean().default(false),
    postRotateCommand: z.string().min(1).optional(),
    onDiskFull: z.enum(["stop", "drop"]).default("stop"),
  }),
);

export type RotatingFileSpec = Readonly<z.infer<typeof rotatingFileSpecSchema>>;
