// Rotating capture files for months-long captures: names from a UTC strftime template, cuts by
// period, clock, size, count and on loss, retention, crash-safe .part files, -z post-rotate commands.
export {
  RotatingFileOutput,
  RotatingFileError,
  FLUSH_INTERVAL_MS,
  DISK_FULL_RETRY_INTERVAL_MS,
  type RotatingFileOptions,
  type RotatingFileFormat,
  type RotatingFileErrorCode,
} from "./rotating-file-output.ts";
export { FileNameTemplate, FileNameTemplateError, fileSafeInputName, DEFAULT_SEQUENCE_DIGITS } from "./file-name-template.ts";
export {
  PERIOD_SECONDS,
  cutBefore,
  cutByContent,
  dueWithoutPacket,
  periodSlotOf,
  periodSlotStartSec,
  type CutReason,
  type PeriodUnit,
  type RotationTriggers,
} from "./rotation-policy.ts";
export { recoverPartFiles, scanPartFile, type PartScan, type RecoveredFile } from "./part-recovery.ts";
export { PART_SUFFIX, STAGING_BYTES } from "./part-file.ts";
export { filesToDelete, type RetentionLimits } from "./retention.ts";
