// Flags of the rotating file output, shared by every command that writes files (capture, run,
// collect, the serve mode): the parseArgs option table, the help text, and the translation of
// flags into a zod-validated output spec that buildRotatingFileOutput turns into the output.
// tcpdump's letters (-G -C -W -z) and dumpcap's ideas (interval, packets) keep their meaning.
import { FileNameTemplate, FileNameTemplateError } from "../outputs/rotating-file/index.ts";
import { rotatingFileSpecSchema, type RotatingFileSpec } from "../outputs/rotating-file/rotating-file-spec.ts";
import { basename, dirname } from "node:path";
import { byteSizeFlag } from "./byte-size.ts";
import { UsageError } from "./usage-error.ts";
import { validated } from "./validated.ts";

// The spec and its builder live beside the output (the pipeline's registry uses them too).
export { buildRotatingFileOutput, rotatingFileSpecSchema, type RotatingFileContext, type RotatingFileSpec } from "../outputs/rotating-file/rotating-file-spec.ts";

export const ROTATION_CLI_OPTIONS = {
  "rotate-period": { type: "string" },
  "rotate-per-period": { type: "string" },
  "rotate-seconds": { type: "string", short: "G" },
  "rotate-interval": { type: "string" },
  "rotate-size": { type: "string", short: "C" },
  "rotate-packets": { type: "string" },
  "rotate-on-loss": { type: "boolean" },
  "no-rotate-on-loss": { type: "boolean" },
  "ring-files": { type: "string", short: "W" },
  "retain-bytes": { type: "string" },
  "retain-min-free": { type: "string" },
  "fsync-on-rotate": { type: "boolean" },
  "post-rotate-command": { type: "string", short: "z" },
  "on-disk-full": { type: "string" },
} as const;

export const ROTATION_OPTIONS_HELP = `  -w may hold strftime conversions, always UTC (%Y %m %d %H %M %S %y %j %s %F %T),
  %N (file sequence number, zero-padded to 4 digits; %6N for 6) and %I (input name).
  Without conversions files are numbered as tcpdump -C numbers them (out, out1, out2...).
  Existing files are never overwritten. Any of these flags turns rotation on:
      --rotate-period P   hour or day: cut files at UTC period boundaries
      --rotate-per-period N  N files per period, from the period's start (default 1;
                          day with 4: 00:00, 06:00, 12:00, 18:00 UTC); packet times decide,
                          and an empty slot makes no file
  -G, --rotate-seconds S  a new file every S seconds of wall clock (tcpdump -G)
      --rotate-interval S a new file at every multiple of S seconds of wall clock
                          (dumpcap -b interval:S; 3600 cuts on the hour)
  -C, --rotate-size MB    a new file once one holds more than MB x 1,000,000 bytes, as
                          tcpdump -C counts (a plain number of millions, 0.5 allowed)
      --rotate-packets N  a new file every N packets
      --rotate-on-loss    (default) kernel drops, this output's queue drops, input
                          reconnects and merge gaps close the file, and the next file's
                          first packet says why (pcapng comment; log line always)
      --no-rotate-on-loss do not cut on loss
  -W, --ring-files N      keep N files, deleting our oldest; with -C and a plain name a
                          ring named as tcpdump names it (out0..out{N-1})
      --retain-bytes SIZE keep at most SIZE bytes of our files (SIZE: 500M = 500x10^6,
                          2GiB = 2x2^30: docs/flags.md)
      --retain-min-free SIZE  delete our oldest files to keep SIZE free on the filesystem
      --fsync-on-rotate   fsync each file (and its directory) when it closes
  -z, --post-rotate-command CMD  run CMD FILE after each file closes (tcpdump -z);
                          a failure is logged, capture goes on
      --on-disk-full P    stop (default: clean stop, exit 1) or drop (drop and count until
                          space returns)
  Files are written as NAME.part and renamed when closed; after a crash the next start cuts
  leftover .part files after their last complete record and renames them. "Our files" are
  those recorded in the manifest beside them (.probe-files-HASH, also what -z made of them):
  retention, the ring and recovery never touch a pre-existing file or a symbolic link.
`;

type RotationFlagValues = { [K in keyof typeof ROTATION_CLI_OPTIONS]?: (typeof ROTATION_CLI_OPTIONS)[K]["type"] extends "boolean" ? boolean : string };


/** True when a flag of the table was given (the file output then rotates). */
export function hasRotationFlags(values: RotationFlagValues): boolean {
  return Object.keys(ROTATION_CLI_OPTIONS).some((k) => values[k as keyof RotationFlagValues] !== undefined);
}

function parsePositive(flag: string, text: string | undefined, options: { integer: boolean }): number | undefined {
  if (text === undefined) return undefined;
  const pattern = options.integer ? /^\d+$/ : /^\d+(\.\d+)?$/;
  if (!pattern.test(text) || Number(text) <= 0) {
    throw new UsageError(`${flag} wants a ${options.integer ? "whole number" : "number"} above 0, not '${text}'`);
  }
  return Number(text);
}

/**
 * -w FILE as a pipeline output: rotating files when a rotation flag is given or the file name
 * holds a conversion (%Y, %N, %I...: a name that changes needs the rotating output), else one
 * plain file (or standard output). `format` is -F.
 */
export function fileOutputFromFlags(
  command: string,
  values: RotationFlagValues,
  path: string,
  format: "pcap" | "pcapng",
): RotatingFileSpec | { kind: "file"; path: string; format: "pcap" | "pcapng" } {
  const rotating = rotatingFileSpecFromFlags(command, values, { path, format }, { nameConversions: path !== "-" && hasNameConversions(path) });
  return rotating ?? { kind: "file", path, format };
}

/** strftime conversions, %N or %I in the file name part of a path ('%%' alone is not one). */
export function hasNameConversions(path: string): boolean {
  return basename(path).replace(/%%/g, "").includes("%");
}

/**
 * The rotating file output spec from parsed flags, or undefined when no rotation flag was given
 * (the command then writes one plain file). `path` and `format` are -w and -F. With
 * `nameConversions` the spec is made even without a flag (a -w name with %-conversions).
 */
export function rotatingFileSpecFromFlags(
  command: string,
  values: RotationFlagValues,
  file: { path: string; format: "pcap" | "pcapng" },
  options: { nameConversions?: boolean } = {},
): RotatingFileSpec | undefined {
  if (!hasRotationFlags(values) && !options.nameConversions) return undefined;
  if (file.path === "-") throw new UsageError(`${command}: rotation flags need -w FILE, not standard output`);
  if (values["rotate-on-loss"] && values["no-rotate-on-loss"]) {
    throw new UsageError(`${command}: give --rotate-on-loss or --no-rotate-on-loss, not both`);
  }
  const period = values["rotate-period"];
  if (period !== undefined && period !== "hour" && period !== "day") {
    throw new UsageError(`${command}: --rotate-period wants hour or day, not '${period}'`);
  }
  const perPeriod = parsePositive("--rotate-per-period", values["rotate-per-period"], { integer: true });
  if (perPeriod !== undefined && period === undefined) {
    throw new UsageError(`${command}: --rotate-per-period needs --rotate-period hour|day`);
  }
  const megabytes = parsePositive("-C", values["rotate-size"], { integer: false });
  const onDiskFull = values["on-disk-full"];
  if (onDiskFull !== undefined && onDiskFull !== "stop" && onDiskFull !== "drop") {
    throw new UsageError(`${command}: --on-disk-full wants stop or drop, not '${onDiskFull}'`);
  }
  if (dirname(file.path).includes("%")) {
    throw new UsageError(`${command}: -w ${file.path}: conversions go in the file name, not the directory`);
  }
  try {
    new FileNameTemplate(basename(file.path), "input");
  } catch (error) {
    if (error instanceof FileNameTemplateError) throw new UsageError(`${command}: ${error.message}`);
    throw error;
  }
  return validated(command, rotatingFileSpecSchema, {
    kind: "rotating-file",
    path: file.path,
    format: file.format,
    triggers: {
      ...(period ? { period: { unit: period, perPeriod: perPeriod ?? 1 } } : {}),
      everySeconds: parsePositive("-G", values["rotate-seconds"], { integer: false }),
      intervalSeconds: parsePositive("--rotate-interval", values["rotate-interval"], { integer: true }),
      maxBytes: megabytes === undefined ? undefined : Math.max(1, Math.round(megabytes * 1_000_000)),
      maxPackets: parsePositive("--rotate-packets", values["rotate-packets"], { integer: true }),
    },
    rotateOnLoss: !values["no-rotate-on-loss"],
    retention: {
      files: parsePositive("-W", values["ring-files"], { integer: true }),
      bytes: byteSizeFlag("--retain-bytes", values["retain-bytes"]),
      minFreeBytes: byteSizeFlag("--retain-min-free", values["retain-min-free"]),
    },
    fsyncOnRotate: values["fsync-on-rotate"] ?? false,
    postRotateCommand: values["post-rotate-command"],
    onDiskFull,
  });
}
