// RotatingFileOutput: the pipeline's stream written to a series of pcap or pcapng files that
// can run for months — cut by UTC period, wall clock, size, packet count and on loss (policy in
// rotation-policy.ts), named by a template (file-name-template.ts), trimmed by retention
// (retention.ts), each file written as NAME.part and renamed when it closes (part-file.ts), with
// leftover .part files of a killed run recovered at start (part-recovery.ts). Every file it
// creates is recorded in a manifest beside them (owned-files.ts): retention, the -W ring and
// recovery touch only what the manifest says probe wrote, never a pre-existing file or a link.
//
// Files open at their first packet, so an empty period makes no file. Every pcapng file starts
// with its own SHB and one IDB per input, so each file reads alone (CaptureFileEncoder, the -w
// file's encoder too, lays out headers and records; this file decides where files are cut). Writes are synchronous and
// batched (STAGING_BYTES, FLUSH_INTERVAL_MS): a file on disk always ends on a record boundary,
// a full disk is noticed at the write that failed, and kill -9 loses at most what was staged.
import { accessSync, constants, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Logger } from "../../logging/index.ts";
import { ProbeError } from "../../packet/probe-error.ts";
import { BATCH_RECORD_HEADER_BYTES, sliceRecords, type PacketBatch } from "../../packet/packet-batch.ts";
import { CaptureFileEncoder } from "../../protocols/pcap/index.ts";
import type { PipelineEvent, PipelineOutput, StreamDescription } from "../../pipeline/output.ts";
import { FileNameTemplate, FileNameTemplateError, fileSafeInputName } from "./file-name-template.ts";
import { describeEntry, isPlainName, lstatQuiet } from "./file-identity.ts";
import { isDerivedName, isManifestName, MAX_REPORTED_NAMES, OwnedFiles, peerName } from "./owned-files.ts";
import { FileWriteError, PART_SUFFIX, PartFile } from "./part-file.ts";
import { recoverPartFiles } from "./part-recovery.ts";
import { PostRotateCommand } from "./post-rotate-command.ts";
import { applyRetention, freeBytes, type RetentionLimits } from "./retention.ts";
import {
  cutByContent,
  dueWithoutPacket,
  fileNameTimeSec,
  newFileState,
  type CutReason,
  type OpenFileState,
  type RotationTriggers,
} from "./rotation-policy.ts";

/** Staged records are written at least this often: bounds what kill -9 can lose (1 s of packets). */
export const FLUSH_INTERVAL_MS = 1000;
/** With --on-disk-full drop, how often a write is tried again while the disk is full. */
export const DISK_FULL_RETRY_INTERVAL_MS = 1000;
/** How often --retain-min-free and --retain-bytes are checked while a file grows. */
export const RETENTION_CHECK_INTERVAL_MS = 1000;
/**
 * How often --retain-bytes is re-checked between new files: it lists and stats every file of ours
 * (months of hourly files are thousands), so less often than free space, which is one statfs.
 */
export const RETENTION_BYTES_CHECK_INTERVAL_MS = 10_000;
/** Period of the timer that runs tick(): a quarter of the flush interval keeps flushes close to it. */
export const TICK_INTERVAL_MS = 250;
/**
 * Loss reasons kept for the next file's first packet: events can repeat while no packet comes
 * (an input reconnecting in a loop); the rest are counted in one "and N more" line.
 */
export const MAX_PENDING_REASONS = 8;
/** Names tried before giving up on finding one that is free (a directory full of our names). */
export const MAX_NAME_ATTEMPTS = 100_000;
/**
 * Names of ours-looking files probe did not write that are reported one line each during a run
 * (a ring slot taken, say); beyond this they are only counted, so a directory full of planted
 * names cannot flood the log.
 */
export const MAX_FOREIGN_NAMES_REPORTED = 64;
/**
 * Names tried when each is taken between the free-name check and the exclusive create: only a
 * process racing us does that, and it must not be able to keep the output from opening a file
 * forever, nor stop it on the first try.
 */
export const MAX_CREATE_RACES = 16;
/** The queue-drop event's output name for drops in front of the pipeline's stages (runner.ts). */
const STAGES_QUEUE = "stages";
/** Errno codes that mean "no space" (--on-disk-full drop applies to these). */
const NO_SPACE_CODES: readonly string[] = ["ENOSPC", "EDQUOT"];

export type RotatingFileFormat = "pcap" | "pcapng";

export interface RotatingFileOptions {
  /** -w: the directory part is where files go; the file name part is the template. */
  readonly path: string;
  readonly format: RotatingFileFormat;
  readonly triggers: RotationTriggers;
  /** --rotate-on-loss: kernel drops, our queue's drops, input reconnects and merge gaps cut the file. */
  readonly rotateOnLoss: boolean;
  readonly retention: RetentionLimits;
  readonly fsyncOnRotate: boolean;
  /** -z COMMAND. */
  readonly postRotateCommand?: string | undefined;
  /** What a full disk does: stop the output (and the capture, through onFatal), or drop and count. */
  readonly onDiskFull: "stop" | "drop";
  readonly logger: Logger;
  /** Wall clock in milliseconds (tests inject one). */
  readonly clockMs?: () => number;
  /** Called once when the output cannot go on (disk full with "stop", unwritable directory). */
  readonly onFatal?: (error: RotatingFileError) => void;
  /** Run the flush/rotation timer (tests that drive tick() themselves turn it off). Default true. */
  readonly timers?: boolean;
  /** Output name for logs and PipelineEvent queue-drop matching. Default "file". */
  readonly name?: string;
}

export type RotatingFileErrorCode = "bad-template" | "unwritable" | "disk-full" | "write-failed" | "mixed-linktypes";

/** A failure of the rotating output, one line for the operator. */
export class RotatingFileError extends ProbeError {
  override readonly name = "RotatingFileError";
  constructor(
    override readonly code: RotatingFileErrorCode,
    message: string,
  ) {
    // The world's doing (a full disk, a directory we may not write): exit status 1.
    super(code, "runtime", message);
  }
}

interface CurrentFile {
  readonly file: PartFile;
  readonly state: OpenFileState;
}

type OutputState = "new" | "writing" | "dropping" | "failed" | "stopped";

export class RotatingFileOutput implements PipelineOutput {
  readonly name: string;
  private readonly directory: string;
  private readonly clockMs: () => number;
  private state: OutputState = "new";
  private template!: FileNameTemplate;
  private matcher!: RegExp;
  /** The files this output owns (this run's and, by the manifest, earlier runs'). */
  private owned!: OwnedFiles;
  /** Files a -z command is working on: counted by retention, not deleted under it. */
  private readonly busy = new Set<string>();
  /** Names reported as not ours during the run (bounded: MAX_FOREIGN_NAMES_REPORTED). */
  private readonly reportedForeign = new Set<string>();
  /** Encodes each file's header and records (set by start()). */
  private encoder!: CaptureFileEncoder;
  private current: CurrentFile | undefined;
  private nextSequence = 0;
  /** Reasons to record on the next file's first packet (loss events since the last file closed). */
  private pendingReasons: string[] = [];
  private stream: StreamDescription | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastFlushMs = 0;
  private lastRetentionMs = 0;
  private lastBytesRetentionMs = 0;
  private lastDiskRetryMs = 0;
  private droppedWhileFull = 0;
  /** Records of the batch being written that a file has accepted (for loss accounting on a failed write). */
  private acceptedInBatch = 0;
  private readonly postRotate: PostRotateCommand | undefined;
  private readonly stats = {
    packets_written: 0,
    bytes_written: 0,
    files_closed: 0,
    files_deleted: 0,
    packets_dropped_disk: 0,
    disk_errors: 0,
    loss_rotations: 0,
    parts_recovered: 0,
  };
  /**
   * Files closed by a rotation, per reason (the end of the output, "stop", is not a rotation;
   * "disk" is a file closed because the disk refused a write). Exported as `rotations__REASON`
   * keys: the metrics' `probe_output_rotations_total{reason=...}`.
   */
  private readonly rotations: Record<Exclude<CutReason, "stop">, number> = {
    period: 0, seconds: 0, interval: 0, size: 0, packets: 0, loss: 0, disk: 0,
  };

  constructor(private readonly options: RotatingFileOptions) {
    this.name = options.name ?? "file";
    this.directory = dirname(resolve(options.path));
    this.clockMs = options.clockMs ?? Date.now;
    this.postRotate = options.postRotateCommand ? new PostRotateCommand(options.postRotateCommand, options.logger) : undefined;
  }

  /** Checks the directory, recovers leftover .part files, applies retention. Rejects with one line. */
  async start(stream: StreamDescription): Promise<void> {
    if (this.state !== "new") return;
    const o = this.options;
    this.stream = stream;
    try {
      accessSync(this.directory, constants.W_OK | constants.X_OK);
      if (!statSync(this.directory).isDirectory()) throw Object.assign(new Error(), { code: "ENOTDIR" });
    } catch (error) {
      throw new RotatingFileError("unwritable", `-w ${o.path}: cannot write in ${this.directory}: ${describeErrno(error)}`);
    }
    if (o.format === "pcap" && new Set(stream.inputs.map((i) => i.linktype)).size > 1) {
      throw new RotatingFileError("mixed-linktypes", `-w ${o.path}: inputs have different link types; use -F pcapng`);
    }
    const inputName = fileSafeInputName(stream.inputs.map((i) => i.name).join("+"));
    const ring = o.triggers.maxBytes !== undefined && o.retention.files !== undefined ? o.retention.files : undefined;
    try {
      this.template = new FileNameTemplate(basename(o.path), inputName, ring);
    } catch (error) {
      if (error instanceof FileNameTemplateError) throw new RotatingFileError("bad-template", error.message);
      throw error;
    }
    this.matcher = this.template.matcher();
    this.encoder = this.newEncoder(stream);
    // %I makes the names depend on the inputs: another interface is another series of files.
    const manifestKey = /%I/.test(basename(o.path)) ? `${basename(o.path)}\0${inputName}` : basename(o.path);
    this.owned = new OwnedFiles(this.directory, manifestKey, (name) => this.matcher.test(name), o.logger);
    try {
      this.owned.load();
      for (const recovered of recoverPartFiles(this.owned, o.logger)) {
        if (recovered.path) this.stats.parts_recovered++;
      }
      this.reportForeignAtStart();
      this.nextSequence = this.firstSequence();
      this.runRetention(false);
    } catch (error) {
      const failure = this.asWriteError(error);
      throw new RotatingFileError("unwritable", `-w ${o.path}: ${failure.message}`);
    }
    this.state = "writing";
    this.lastFlushMs = this.lastRetentionMs = this.lastBytesRetentionMs = this.clockMs();
    if (o.timers !== false) {
      this.timer = setInterval(() => this.tick(), TICK_INTERVAL_MS);
      this.timer.unref?.();
    }
  }

  write(batch: PacketBatch): void {
    if (this.state === "dropping" && !this.retryAfterDiskFull()) {
      this.droppedWhileFull += batch.count;
      this.stats.packets_dropped_disk += batch.count;
      return;
    }
    if (this.state === "failed") {
      // Until the runner has stopped the pipeline (onFatal), packets are counted, not written.
      this.stats.packets_dropped_disk += batch.count;
      return;
    }
    if (this.state !== "writing" || batch.count === 0) return;
    this.acceptedInBatch = 0;
    try {
      this.writeRecords(batch);
    } catch (error) {
      // Lost: the chunk that failed (error.lostPackets) and the batch's records not yet handed to a file.
      this.onWriteError(this.asWriteError(error), batch.count - this.acceptedInBatch);
    }
  }

  /** A loss upstream: with --rotate-on-loss the file closes and the next one says why. */
  event(event: PipelineEvent): void {
    if (!this.options.rotateOnLoss || this.state === "stopped" || this.state === "failed") return;
    // Another output's queue drops leave our file whole; drops in front of the pipeline's
    // stages ("stages") are lost to every output.
    if (event.kind === "queue-drop" && event.output !== this.name && event.output !== STAGES_QUEUE) return;
    if ((event.kind === "kernel-drop" || event.kind === "queue-drop") && event.packets <= 0) return;
    this.lossCut(this.describeEvent(event));
  }

  /**
   * Timer work, also called by tests with an injected clock: writes staged records, closes a file
   * whose -G or --rotate-interval time is up, re-checks retention.
   */
  tick(): void {
    if (this.state !== "writing") return;
    const now = this.clockMs();
    try {
      if (this.current) {
        const due = dueWithoutPacket(this.options.triggers, this.current.state, now / 1000);
        if (due) this.closeCurrent(due);
        else if (now - this.lastFlushMs >= FLUSH_INTERVAL_MS) {
          this.current.file.flush();
          this.lastFlushMs = now;
        }
      }
      if (now - this.lastRetentionMs >= RETENTION_CHECK_INTERVAL_MS) this.runRetention(true);
    } catch (error) {
      this.onWriteError(this.asWriteError(error), 0);
    }
  }

  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    const wasFailed = this.state === "failed";
    this.state = "stopped";
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (!wasFailed && this.current) {
      try {
        this.closeCurrent("stop");
      } catch (error) {
        const failure = this.asWriteError(error);
        this.stats.disk_errors++;
        this.stats.packets_dropped_disk += failure.lostPackets;
        this.options.logger.error(`${this.describeWriteError(failure)}; the file ends at its last complete record`);
      }
    }
    if (this.droppedWhileFull > 0) {
      this.options.logger.warn(`${this.droppedWhileFull} packets dropped while the disk was full`);
    }
    await this.postRotate?.drain();
    // What -z made of the last files is known now: the limits hold for it too.
    if (!wasFailed && this.owned) {
      try {
        this.runRetention(false, { files: 0, bytes: 0 });
      } catch (error) {
        this.options.logger.warn(`retention at stop: ${this.asWriteError(error).message}`);
      }
    }
    this.owned?.close();
  }

  counters(): Readonly<Record<string, number>> {
    return {
      ...this.stats,
      post_rotate_failures: this.postRotate?.failures ?? 0,
      ...Object.fromEntries(Object.entries(this.rotations).map(([reason, n]) => [`rotations__${reason}`, n])),
    };
  }

  summaryLines(): string[] {
    const s = this.stats;
    const lines = [`${s.packets_written} packets written to ${s.files_closed} file${s.files_closed === 1 ? "" : "s"} (${s.bytes_written} bytes)`];
    if (s.packets_dropped_disk > 0) lines.push(`${s.packets_dropped_disk} packets dropped: disk full or unwritable`);
    if (s.files_deleted > 0) lines.push(`${s.files_deleted} old files deleted by retention`);
    return lines;
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Walks the records, cutting files where the policy says, and writes each run in one encode.
   * The clock is read once: it does not move within a batch, so -G and --rotate-interval can
   * only be due before the first record (a file opened mid-batch starts at the same time).
   */
  private writeRecords(batch: PacketBatch): void {
    const triggers = this.options.triggers;
    const pcap = this.options.format === "pcap";
    const bytes = batch.bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const nowSec = this.clockMs() / 1000;
    if (this.current) {
      const due = dueWithoutPacket(triggers, this.current.state, nowSec);
      if (due) this.closeCurrent(due);
    }
    let file = this.current?.state;
    if (pcap && batch.count > 0 && this.fitsWhole(batch, file)) {
      // No trigger can fire inside this batch: no walk over its records (each header a cache
      // miss on a large batch), one append.
      file ??= this.openFile(view.getUint32(0, true), nowSec);
      file.packets += batch.count;
      file.bytes += bytes.byteLength;
      this.writeRun(batch, 0, batch.count, 0, bytes.byteLength);
      return;
    }
    let runStart = 0;
    let runOffset = 0;
    let offset = 0;
    for (let i = 0; i < batch.count; i++) {
      const tsSec = view.getUint32(offset, true);
      const caplen = view.getUint32(offset + 8, true);
      if (file) {
        const reason = cutByContent(triggers, file, tsSec);
        if (reason) {
          this.writeRun(batch, runStart, i, runOffset, offset);
          this.closeCurrent(reason);
          file = undefined;
        }
      }
      if (!file) {
        runStart = i;
        runOffset = offset;
        file = this.openFile(tsSec, nowSec);
      }
      file.packets++;
      file.bytes += pcap ? BATCH_RECORD_HEADER_BYTES + caplen : this.encoder.recordBytes(batch, i, caplen, this.commentsOf(batch, i, file.packets === 1));
      offset += BATCH_RECORD_HEADER_BYTES + caplen;
    }
    this.writeRun(batch, runStart, batch.count, runOffset, offset);
  }

  /**
   * True when no content trigger can cut inside `batch` (pcap, where file bytes equal batch
   * bytes): no period, and the file stays within -C and --rotate-packets even with all of it.
   */
  private fitsWhole(batch: PacketBatch, file: OpenFileState | undefined): boolean {
    const t = this.options.triggers;
    if (t.period !== undefined) return false;
    const bytes = (file?.bytes ?? this.encoder.header.byteLength) + batch.bytes.byteLength;
    const packets = (file?.packets ?? 0) + batch.count;
    return (t.maxBytes === undefined || bytes <= t.maxBytes) && (t.maxPackets === undefined || packets <= t.maxPackets);
  }

  private commentsOf(batch: PacketBatch, index: number, firstOfFile: boolean): readonly string[] | undefined {
    const own = batch.meta?.comments?.[index];
    if (!firstOfFile || this.pendingReasons.length === 0) return own;
    return [...this.pendingReasons.map((r) => `probe: new file after ${r}`), ...(own ?? [])];
  }

  /** Encodes records [from, to) of the batch (at byte offsets [fromOffset, toOffset)) into the open file. */
  private writeRun(batch: PacketBatch, from: number, to: number, fromOffset: number, toOffset: number): void {
    if (to <= from || !this.current) return;
    const file = this.current;
    const run = sliceRecords(batch, from, to, fromOffset, toOffset);
    const firstOfFile = file.state.packets === to - from;
    // The loss reasons waiting for a new file go on its first record, before the record's own comments.
    const withReasons = firstOfFile && this.pendingReasons.length > 0;
    const encoded = this.encoder.encode(run, withReasons ? (i) => this.commentsOf(run, i, i === 0) : undefined);
    if (firstOfFile) this.pendingReasons = [];
    const before = file.file.acceptedPackets;
    try {
      file.file.append(encoded, run.count);
    } finally {
      this.acceptedInBatch += file.file.acceptedPackets - before;
    }
  }

  private openFile(tsSec: number, nowSec: number): OpenFileState {
    const o = this.options;
    const state = newFileState(o.triggers, tsSec, nowSec, this.encoder.header.byteLength);
    const timeSec = fileNameTimeSec(o.triggers, state, tsSec);
    // Count retention with the new file in it, so -W N means N files on disk at any time.
    this.runRetention(false, { files: 1, bytes: this.encoder.header.byteLength });
    let path = "";
    let file: PartFile | undefined;
    for (let race = 0; !file; race++) {
      path = this.freePath(timeSec);
      try {
        file = PartFile.create(path, this.encoder.header, (packets, bytes) => {
          this.stats.packets_written += packets;
          this.stats.bytes_written += bytes;
        });
      } catch (error) {
        // Taken between the check and the exclusive create (someone planting names as we go):
        // the next free name, a bounded number of times.
        if (!(error instanceof FileWriteError) || error.code !== "EEXIST" || race + 1 >= MAX_CREATE_RACES) throw error;
        this.reportForeign(basename(path), "name", "the next name used");
      }
    }
    this.owned.recordPart(basename(path), file.identity);
    this.current = { file, state };
    if (this.pendingReasons.length > 0) o.logger.info(`opened ${path} after ${this.pendingReasons.join("; ")}`);
    return state;
  }

  /**
   * The first name that is free: on disk neither as NAME nor NAME.part (a symbolic link, even a
   * dangling one, takes a name). Ring slots are reused when what is in them is ours; a slot
   * holding anything probe did not write is skipped (reported once).
   */
  private freePath(timeSec: number): string {
    const ring = this.template.ringFiles;
    let skippedSlots = 0;
    for (let attempt = 0, collision = 0; attempt < MAX_NAME_ATTEMPTS; attempt++) {
      const name = this.template.format({ timeSec, sequence: this.nextSequence }, collision);
      const path = join(this.directory, name);
      if (ring !== undefined) this.emptyRingSlot(name);
      if (!lstatQuiet(path) && !lstatQuiet(path + PART_SUFFIX)) {
        this.nextSequence++;
        return path;
      }
      if (ring !== undefined) {
        if (!this.busy.has(name)) this.reportForeign(name, "a ring slot", "skipped");
        if (++skippedSlots >= ring) {
          throw new FileWriteError("EEXIST", this.options.path, `every slot of the ${ring}-file ring holds a file its manifest does not record as probe's (or one -z is still working on); not overwritten`);
        }
      }
      if (this.template.hasSequence || !this.template.hasConversions) this.nextSequence++;
      else collision++;
    }
    throw new FileWriteError("EEXIST", this.options.path, `no free file name for -w ${this.options.path} after ${MAX_NAME_ATTEMPTS} tries`);
  }

  /** A ring slot's turn: our files in it (the capture file and what -z made of it) are deleted. */
  private emptyRingSlot(name: string): void {
    if (this.busy.has(name)) return;
    for (const entry of this.owned.all()) {
      if (entry.base !== name) continue;
      const bytes = this.owned.delete(entry);
      if (bytes === undefined || bytes === null) continue;
      this.stats.files_deleted++;
      this.options.logger.info(`retention: deleted ${join(this.directory, entry.name)} (${bytes} bytes, ring of ${this.template.ringFiles} files)`);
    }
  }

  /**
   * The sequence to continue from: after the highest on disk, ours or not (never over a name
   * taken); a ring goes on after the newest file of ours, by the manifest's order.
   */
  private firstSequence(): number {
    if (this.template.ringFiles !== undefined) {
      const newest = this.owned.all().filter((e) => e.kind !== "derived").at(-1);
      const match = newest && this.matcher.exec(newest.base);
      const sequence = match ? this.template.sequenceOf(match) : undefined;
      return sequence === undefined ? 0 : (sequence + 1) % this.template.ringFiles;
    }
    let highest = -1;
    for (const name of readdirSync(this.directory)) {
      const match = this.matcher.exec(name.endsWith(PART_SUFFIX) ? name.slice(0, -PART_SUFFIX.length) : name);
      if (!match) continue;
      const sequence = this.template.sequenceOf(match);
      if (sequence !== undefined) highest = Math.max(highest, sequence);
    }
    return highest + 1;
  }

  /**
   * One line at start for the names the template makes (NAME, NAME.part, NAME.gz...) that
   * probe did not write: they are left alone, never counted, never deleted.
   */
  private reportForeignAtStart(): void {
    const foreign: string[] = [];
    let count = 0;
    for (const name of readdirSync(this.directory)) {
      if (isManifestName(name) || !this.looksOurs(name)) continue;
      const entry = this.owned.entry(name);
      if (entry && !this.owned.mismatch(name)) continue;
      count++;
      if (foreign.length < MAX_REPORTED_NAMES) foreign.push(`${peerName(name)} (${describeEntry(lstatQuiet(join(this.directory, name)))})`);
    }
    if (count === 0) return;
    const more = count > foreign.length ? ` and ${count - foreign.length} more` : "";
    this.options.logger.warn(
      `-w ${this.options.path}: left alone ${count} name${count === 1 ? "" : "s"} the template makes that probe did not write: ${foreign.join(", ")}${more}`,
    );
  }

  /** A name this output would make: NAME, NAME.part, or a -z result NAME.SUFFIX. */
  private looksOurs(name: string): boolean {
    if (!isPlainName(name)) return false;
    if (this.matcher.test(name)) return true;
    if (name.endsWith(PART_SUFFIX) && this.matcher.test(name.slice(0, -PART_SUFFIX.length))) return true;
    const dot = name.lastIndexOf(".");
    return dot > 0 && this.matcher.test(name.slice(0, dot)) && isDerivedName(name.slice(0, dot), name);
  }

  /** One line for a name probe did not write, met during the run (each name once, bounded). */
  private reportForeign(name: string, what: string, action: string): void {
    if (this.reportedForeign.has(name) || this.reportedForeign.size >= MAX_FOREIGN_NAMES_REPORTED) return;
    this.reportedForeign.add(name);
    const stat = lstatQuiet(join(this.directory, name)) ?? lstatQuiet(join(this.directory, name + PART_SUFFIX));
    this.options.logger.warn(`${what} ${join(this.directory, peerName(name))} holds a ${describeEntry(stat)} probe did not write: left alone, ${action}`);
  }

  /** Closes and renames the open file; logs; runs -z. Throws FileWriteError from the last flush. */
  private closeCurrent(reason: CutReason, detail?: string): void {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    const path = this.finishFile(current, this.options.fsyncOnRotate);
    this.lastFlushMs = this.clockMs();
    if (!path) return;
    this.stats.files_closed++;
    if (reason !== "stop") this.rotations[reason]++;
    this.options.logger.info(
      `closed ${path}: ${current.state.packets} packets, ${current.file.size} bytes (${detail ?? REASON_TEXT[reason]})`,
    );
    this.submitPostRotate(path);
  }

  /**
   * Closes the file and records what it became in the manifest: its final name, nothing (a
   * file of only its header is deleted), or still NAME.part when it could not take its name
   * (logged). Returns the final path. Throws FileWriteError from the last flush, after recording.
   */
  private finishFile(current: CurrentFile, fsync: boolean): string | undefined {
    const base = basename(current.file.path);
    let failure: unknown;
    let result: ReturnType<PartFile["close"]> | undefined;
    try {
      result = current.file.close({ fsync, headerBytes: this.encoder.header.byteLength });
    } catch (error) {
      failure = error;
      // The last flush failed, yet the file was closed and named: what it became.
      result = current.file.closeResult ?? { path: undefined };
    }
    if (result.path) this.owned.recordClosed(base, current.file.identity, current.file.closedBytes);
    else if (result.conflict) this.options.logger.warn(`-w ${this.options.path}: ${result.conflict}`);
    else if (!lstatQuiet(current.file.partPath)) this.owned.forget(base + PART_SUFFIX);
    if (failure) throw failure;
    return result.path;
  }

  /**
   * -z on a closed file: the command runs only while the file is still the one written, and
   * what it leaves beside it (NAME.gz, NAME.xz...: new regular files of ours named NAME.SUFFIX)
   * is recorded as ours, so -W and retention count and retire it with the file.
   */
  private submitPostRotate(path: string): void {
    if (!this.postRotate) return;
    const base = basename(path);
    let before: Set<string> | undefined;
    this.postRotate.submit(path, {
      before: () => {
        if (!this.owned.entry(base)) {
          // Retention retired it while it waited for its turn (captures faster than -z).
          this.options.logger.info(`-z: ${path} was deleted by retention before its turn; not run`);
          return false;
        }
        const why = this.owned.mismatch(base);
        if (why) {
          this.options.logger.warn(`-z: ${path} is not the file probe wrote any more (${why}); not run`);
          return false;
        }
        before = new Set(this.namesDerivedFrom(base));
        this.busy.add(base);
        return true;
      },
      after: () => {
        this.busy.delete(base);
        try {
          this.recordDerived(base, before ?? new Set());
          if (this.state === "writing") this.runRetention(false);
        } catch (error) {
          this.options.logger.warn(`-z: after ${path}: ${(error as Error).message}`);
        }
      },
    });
  }

  private namesDerivedFrom(base: string): string[] {
    return readdirSync(this.directory).filter((name) => isDerivedName(base, name));
  }

  /** Records the regular files of ours a -z command left beside `base` that were not there before it. */
  private recordDerived(base: string, before: ReadonlySet<string>): void {
    const entry = this.owned.entry(base);
    if (entry) {
      const stat = lstatQuiet(join(this.directory, base));
      // Rewritten in place (same file, another size): keep it ours at its new size.
      if (stat?.isFile() && stat.dev === entry.identity.dev && stat.ino === entry.identity.ino) this.owned.recordResized(base, Number(stat.size));
    }
    const uid = process.geteuid?.() ?? -1;
    for (const name of this.namesDerivedFrom(base)) {
      if (before.has(name) || this.owned.entry(name)) continue;
      const stat = lstatQuiet(join(this.directory, name));
      if (!stat?.isFile() || stat.nlink !== 1n || Number(stat.uid) !== uid) {
        this.reportForeign(name, "-z result", "not counted as probe's");
        continue;
      }
      this.owned.recordDerived(base, name, stat);
    }
  }

  private lossCut(reason: string): void {
    this.stats.loss_rotations++;
    this.addPendingReason(reason);
    this.options.logger.warn(`${reason}: ${this.current ? "closing the current file" : "the next file"} will start after it`);
    try {
      this.closeCurrent("loss", reason);
    } catch (error) {
      this.onWriteError(this.asWriteError(error), 0);
    }
  }

  private addPendingReason(reason: string): void {
    if (this.pendingReasons.length < MAX_PENDING_REASONS - 1) {
      this.pendingReasons.push(reason);
      return;
    }
    const last = this.pendingReasons[MAX_PENDING_REASONS - 1];
    const more = last === undefined ? 1 : Number(/^(\d+) more loss events$/.exec(last)?.[1] ?? 1) + 1;
    this.pendingReasons[MAX_PENDING_REASONS - 1] = `${more} more loss events`;
  }

  private runRetention(periodic: boolean, open?: { files: number; bytes: number }): void {
    const r = this.options.retention;
    if (r.files === undefined && r.bytes === undefined && r.minFreeBytes === undefined) return;
    const now = this.clockMs();
    this.lastRetentionMs = now;
    let limits: RetentionLimits = r;
    if (periodic) {
      // Between new files the count cannot grow; bytes are checked less often than free space.
      const bytesDue = r.bytes !== undefined && now - this.lastBytesRetentionMs >= RETENTION_BYTES_CHECK_INTERVAL_MS;
      limits = { ...(bytesDue ? { bytes: r.bytes } : {}), ...(r.minFreeBytes !== undefined ? { minFreeBytes: r.minFreeBytes } : {}) };
      if (limits.bytes === undefined && (limits.minFreeBytes === undefined || freeBytes(this.directory) >= limits.minFreeBytes)) return;
    }
    if (limits.bytes !== undefined) this.lastBytesRetentionMs = now;
    const opened = open ?? (this.current ? { files: 1, bytes: this.current.file.size } : { files: 0, bytes: 0 });
    const current = this.current ? basename(this.current.file.path) : undefined;
    const result = applyRetention(this.owned, limits, opened, current, this.busy, this.options.logger);
    this.stats.files_deleted += result.deleted;
    if (result.stillShort && !periodic) {
      this.options.logger.warn(`--retain-min-free: less than ${r.minFreeBytes} bytes free in ${this.directory} with no closed file of ours left`);
    }
  }

  private onWriteError(error: FileWriteError, unacceptedPackets: number): void {
    const o = this.options;
    this.stats.disk_errors++;
    const lost = error.lostPackets + unacceptedPackets;
    this.stats.packets_dropped_disk += lost;
    // Close what is open: on disk it ends on a record boundary; the rename makes it final.
    const current = this.current;
    this.current = undefined;
    if (current) {
      try {
        const path = this.finishFile(current, false);
        if (path) {
          this.stats.files_closed++;
          this.rotations.disk++;
          o.logger.info(`closed ${path}: ends at its last complete record (${error.code})`);
        }
      } catch (closeError) {
        // Left as .part: the next start recovers it up to its last complete record.
        o.logger.warn(`could not close ${current.file.partPath}: ${(closeError as Error).message}`);
      }
    }
    if (o.onDiskFull === "drop" && NO_SPACE_CODES.includes(error.code)) {
      this.state = "dropping";
      this.droppedWhileFull = lost;
      this.lastDiskRetryMs = this.clockMs();
      o.logger.error(`${this.describeWriteError(error)}: dropping packets until space returns (--on-disk-full drop)`);
      return;
    }
    this.state = "failed";
    if (this.timer) clearInterval(this.timer);
    const code = NO_SPACE_CODES.includes(error.code) ? "disk-full" : "write-failed";
    const failure = new RotatingFileError(code, `${this.describeWriteError(error)}; stopped (the files written are complete)`);
    // Whoever stops the pipeline reports it (the runner: one line, exit 1); else it is logged.
    if (o.onFatal) o.onFatal(failure);
    else o.logger.error(failure.message);
  }

  /** In the dropping state: true when it is time to try again and there may be room. */
  private retryAfterDiskFull(): boolean {
    const now = this.clockMs();
    if (now - this.lastDiskRetryMs < DISK_FULL_RETRY_INTERVAL_MS) return false;
    this.lastDiskRetryMs = now;
    try {
      this.runRetention(false);
      if (freeBytes(this.directory) < this.encoder.header.byteLength + BATCH_RECORD_HEADER_BYTES) return false;
    } catch {
      return false;
    }
    const dropped = this.droppedWhileFull;
    this.state = "writing";
    this.droppedWhileFull = 0;
    this.options.logger.info(`space returned in ${this.directory}: writing again after dropping ${dropped} packets`);
    if (this.options.rotateOnLoss) this.addPendingReason(`disk full: ${dropped} packets dropped`);
    return true;
  }

  /**
   * A FileWriteError for any file-system failure (a rename, unlink or statfs that failed has an
   * errno code); anything else is a bug and is thrown on.
   */
  private asWriteError(error: unknown): FileWriteError {
    if (error instanceof FileWriteError) return error;
    const code = (error as NodeJS.ErrnoException)?.code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
      const path = (error as NodeJS.ErrnoException).path ?? this.directory;
      return new FileWriteError(code, path, `cannot use ${path}: ${code}`);
    }
    throw error;
  }

  private describeWriteError(error: FileWriteError): string {
    return `-w ${this.options.path}: ${error.message}${NO_SPACE_CODES.includes(error.code) ? " (disk full)" : ""}`;
  }

  private describeEvent(event: PipelineEvent): string {
    const inputName = (i: number) => JSON.stringify(this.stream?.inputs[i]?.name ?? `input ${i}`);
    switch (event.kind) {
      case "kernel-drop":
        return `kernel dropped ${event.packets} packets on ${inputName(event.input)}`;
      case "queue-drop":
        return event.output === STAGES_QUEUE ? `probe dropped ${event.packets} packets in front of the stages` : `output queue dropped ${event.packets} packets`;
      case "input-reconnect":
        return `input ${inputName(event.input)} reconnected`;
      case "merge-gap":
        return `merge gap of ${event.packets} packets`;
    }
  }

  /** pcap: the first input's link type, the largest snaplen; pcapng: one IDB per input with its name and description. */
  private newEncoder(stream: StreamDescription): CaptureFileEncoder {
    const inputs = stream.inputs.length > 0 ? stream.inputs : [{ name: "input", linktype: 1, snaplen: 262144, description: "" }];
    return new CaptureFileEncoder({
      format: this.options.format,
      precision: stream.precision,
      interfaces: inputs.map((input) => ({
        linktype: input.linktype,
        snaplen: input.snaplen,
        name: input.name,
        description: input.description && input.description !== input.name ? input.description : undefined,
      })),
      writeZeroFlags: true,
    });
  }
}

const REASON_TEXT: Readonly<Record<CutReason, string>> = {
  period: "period boundary",
  seconds: "-G time",
  interval: "--rotate-interval boundary",
  size: "-C size",
  packets: "--rotate-packets count",
  loss: "loss",
  stop: "output stopped",
  disk: "disk error",
};


function describeErrno(error: unknown): string {
  const code = (error as NodeJS.ErrnoException)?.code;
  switch (code) {
    case "ENOENT":
      return "no such directory (ENOENT)";
    case "EACCES":
    case "EPERM":
      return `permission denied (${code})`;
    case "ENOTDIR":
      return "not a directory (ENOTDIR)";
    case "EROFS":
      return "read-only filesystem (EROFS)";
    default:
      return code ?? String(error);
  }
}
