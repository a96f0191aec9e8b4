// The rotating file output as a declared part of a PipelineSpec (kind "rotating-file"): the zod
// schema the spec's output union holds and the builder the registry calls. The command-line
// flags that make one are src/cli/rotation-options.ts; docs/rotation.md explains both.
import { kindSchema, z } from "../../config/zod.ts";
import type { Logger } from "../../logging/index.ts";
import { RotatingFileOutput, type RotatingFileError } from "./rotating-file-output.ts";

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

/** What the runner gives the output besides its spec. */
export interface RotatingFileContext {
  readonly logger: Logger;
  /** Stops the pipeline when the output cannot go on (disk full with --on-disk-full stop). */
  readonly onFatal?: (error: RotatingFileError) => void;
  readonly clockMs?: () => number;
  readonly timers?: boolean;
}

/** Builds the PipelineOutput for a spec. */
export function buildRotatingFileOutput(spec: RotatingFileSpec, context: RotatingFileContext): RotatingFileOutput {
  return new RotatingFileOutput({
    path: spec.path,
    format: spec.format,
    triggers: stripUndefined(spec.triggers),
    rotateOnLoss: spec.rotateOnLoss,
    retention: stripUndefined(spec.retention),
    fsyncOnRotate: spec.fsyncOnRotate,
    postRotateCommand: spec.postRotateCommand,
    onDiskFull: spec.onDiskFull,
    logger: context.logger,
    ...(context.onFatal ? { onFatal: context.onFatal } : {}),
    ...(context.clockMs ? { clockMs: context.clockMs } : {}),
    ...(context.timers !== undefined ? { timers: context.timers } : {}),
  });
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
