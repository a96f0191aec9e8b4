// The rotating file output as a declared part of a PipelineSpec (kind "rotating-file"): the
// builder the output registry calls (its schema: src/config/rotating-file-config.ts). The command-line
// flags that make one are src/cli/rotation-options.ts; docs/rotation.md explains both.
import type { RotatingFileSpec } from "../../config/rotating-file-config.ts";
import type { Logger } from "../../logging/index.ts";
import { RotatingFileOutput, type RotatingFileError } from "./rotating-file-output.ts";

// The schema lives with the other settings (src/config), below the pipeline that holds it in
// its output union; re-exported here for the output's own users.
export { rotatingFileSpecSchema, type RotatingFileSpec } from "../../config/rotating-file-config.ts";

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
