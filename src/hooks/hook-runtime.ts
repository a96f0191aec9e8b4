// HookRunner: one operator hook applied to PacketBatches. It decodes offsets on the host,
// runs the sandboxed hook once per batch, applies verdicts and the failure policy, fixes
// checksums on request, counts everything, and rebuilds or reloads the sandbox when needed.
//
// Ownership: the input batch is only read; the VM works on its own copy. The result batch is
// either the input batch itself (nothing changed) or a newly allocated owned batch.
import type { PacketBatch } from "../packet/packet-batch.ts";
import { BATCH_RECORD_HEADER_BYTES, EPB_FLAG_DIRECTION_MASK, pickMeta, sliceRecords } from "../packet/packet-batch.ts";
import { silentLogger, type Logger } from "../logging/index.ts";
import { countChecksumOutcomes, fixChecksumsPacked } from "../packet/checksums.ts";
import {
  copyCounters,
  emptyCounters,
  FAILURE_KIND,
  failureName,
  PACKET_OUTCOME,
  RateLimiter,
  type FailureKind,
  type HookCountersSnapshot,
} from "./hook-counters.ts";
import { decodeOffsetsInto, OFFSET_FIELD_COUNT } from "../packet/packet-offsets.ts";
import { CHECKSUM_BAD_COMMENT_PREFIX } from "../packet/checksums.ts";
import { HOOK_CHUNK_MAX_BYTES, HookCompileError, HookSandbox, newQuickJSInstance, RUN_FAILURE, type DriverOutcome, type RunFailure, type SandboxLimits } from "./sandbox.ts";
import {
  DEFAULT_HOOK_SETTINGS,
  HOOK_DISABLE_AFTER_CONSECUTIVE_FAILURES,
  HOOK_LOG_LINES_PER_SECOND,
  HOOK_TAG_NAMES_COUNTED,
  type HookSettings,
} from "./settings.ts";
import { decodeDriverResult, DRIVER_LIMITS, META_HEADER, META_HEADER_INTS, META_RECORD, META_RECORD_INTS, RECORD_FLAG, RECORD_MARK, VERDICT, type DriverResult } from "./vm-driver.ts";
import { hookLineText } from "./hook-text.ts";
import type { QuickJSWASMModule } from "quickjs-emscripten-core";

export interface HookRunnerOptions {
  /** Name in logs and counters (usually the file's base name). */
  name: string;
  /** The hook module's source text. */
  source: string;
  /** File name shown in stack traces; defaults to `name`. */
  filename?: string;
  /** Limits and policy; missing fields take the defaults of settings.ts. */
  settings?: Partial<HookSettings>;
  logger?: Logger;
}

/** One hook's output for one batch. */
export interface HookBatchResult {
  /** Records that were not dropped, with edits applied. The input batch itself when nothing changed. */
  batch: PacketBatch;
  /** Tags per output record (undefined when a record has none). */
  tags: (readonly string[] | undefined)[];
  /** PACKET_OUTCOME per input record. */
  outcomes: Uint8Array;
  /** FAILURE_KIND per input record (NONE when the hook ran fine). */
  failures: Uint8Array;
}

export type ReloadResult = { ok: true } | { ok: false; error: HookCompileError };

/**
 * Per-record decision before the output is written, one byte per record (no object per packet).
 * The output caplen and the fix-checksums flag stay in the record's meta slots.
 */
const DECISION = {
  DROP: 0,
  /** Keep the VM's bytes (the hook ran and passed or edited the packet). */
  KEEP_VM: 1,
  /** Keep the input bytes unchanged (the failure policy kept it). */
  KEEP_INPUT: 2,
} as const;

export class HookRunner {
  private sandbox: HookSandbox | undefined;
  private source: string;
  private readonly counters: HookCountersSnapshot;
  private readonly logLimiter = new RateLimiter(HOOK_LOG_LINES_PER_SECOND);
  private readonly failureLogLimiter = new RateLimiter(1);
  private readonly checksumScratch = new Int32Array(OFFSET_FIELD_COUNT);
  private readonly settings: HookSettings;
  private readonly logger: Logger;
  private readonly filename: string;
  private disposedFlag = false;
  /** Names in counters.tagged (kept here: counting an object's keys per tag would cost more than the tag). */
  private tagNamesCounted = 0;

  private constructor(
    private quickjs: QuickJSWASMModule,
    readonly name: string,
    options: HookRunnerOptions,
    sandbox: HookSandbox,
    settings: HookSettings,
  ) {
    this.sandbox = sandbox;
    this.source = options.source;
    this.settings = settings;
    this.logger = options.logger ?? silentLogger;
    this.filename = options.filename ?? options.name;
    this.counters = emptyCounters(name);
  }

  /** Compiles the hook; throws HookCompileError when the source does not compile or has no default export. */
  static async create(options: HookRunnerOptions): Promise<HookRunner> {
    // Settings arrive validated (src/config/hook-config.ts); unset ones take the defaults.
    const settings: HookSettings = Object.freeze({ ...DEFAULT_HOOK_SETTINGS, ...options.settings });
    const quickjs = await newQuickJSInstance(settings.hookMemoryLimitBytes);
    const sandbox = HookSandbox.create(quickjs, options.source, options.filename ?? options.name, limitsOf(settings));
    return new HookRunner(quickjs, options.name, options, sandbox, settings);
  }

  /** A copy of the counters. */
  get stats(): HookCountersSnapshot {
    return copyCounters(this.counters);
  }

  get disabled(): boolean {
    return this.counters.disabled;
  }

  get policy(): HookSettings["hookFail"] {
    return this.settings.hookFail;
  }

  /**
   * Compiles `source` in a new sandbox (in a new QuickJS instance, so the old hook's memory does
   * not count against the new one); on success it replaces the running hook (ctx.state starts
   * empty) and re-enables a disabled hook. On failure the old hook keeps running and the reason
   * is logged and returned.
   */
  async reload(source: string): Promise<ReloadResult> {
    let next: HookSandbox;
    let quickjs: QuickJSWASMModule;
    try {
      quickjs = await newQuickJSInstance(this.settings.hookMemoryLimitBytes);
      next = HookSandbox.create(quickjs, source, this.filename, limitsOf(this.settings));
    } catch (error) {
      const compileError = error instanceof HookCompileError ? error : new HookCompileError("evaluation", String(error));
      this.counters.reloadFailures++;
      this.logger.warn(`hook ${this.name}: reload failed (${compileError.code}: ${compileError.message}); the previous version keeps running`);
      return { ok: false, error: compileError };
    }
    if (this.disposedFlag) {
      next.dispose();
      return { ok: false, error: new HookCompileError("evaluation", "the hook was disposed during reload") };
    }
    this.sandbox?.dispose();
    this.sandbox = next;
    this.quickjs = quickjs;
    this.source = source;
    this.counters.reloads++;
    this.counters.consecutiveFailures = 0;
    if (this.counters.disabled) this.logger.warn(`hook ${this.name}: re-enabled by reload`);
    this.counters.disabled = false;
    this.logger.info(`hook ${this.name}: reloaded (ctx.state starts empty)`);
    return { ok: true };
  }

  /** Reads `path` and reloads from it (see reload()). A read error is returned like a compile error. */
  async reloadFromFile(path: string): Promise<ReloadResult> {
    let source: string;
    try {
      source = await Bun.file(path).text();
    } catch (error) {
      const compileError = new HookCompileError("evaluation", `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
      this.counters.reloadFailures++;
      this.logger.warn(`hook ${this.name}: reload failed (${compileError.message}); the previous version keeps running`);
      return { ok: false, error: compileError };
    }
    return await this.reload(source);
  }

  /** Releases the sandbox. The runner passes nothing afterwards (run() throws). Idempotent. */
  dispose(): void {
    this.sandbox?.dispose();
    this.sandbox = undefined;
    this.counters.disabled = true;
    this.disposedFlag = true;
  }

  /** Applies the hook to one batch. Never throws for anything the hook does. */
  run(batch: PacketBatch, interfaceName = ""): HookBatchResult {
    if (this.disposedFlag) throw new Error(`hook ${this.name}: run() after dispose()`);
    const started = Bun.nanoseconds();
    const count = batch.count;
    const outcomes = new Uint8Array(count);
    const failures = new Uint8Array(count);
    this.counters.batches++;
    this.counters.packets += count;
    if (count === 0) return { batch, tags: [], outcomes, failures };
    try {
      if (batch.bytes.byteLength <= HOOK_CHUNK_MAX_BYTES) return carryMeta(batch, this.runChunk(batch, interfaceName, outcomes, failures));
      // Big batches go through the VM in slices: bounded copies inside the capped wasm memory,
      // and a CPU budget that applies per slice.
      const parts = splitBatch(batch, HOOK_CHUNK_MAX_BYTES).map((chunk) =>
        this.runChunk(chunk, interfaceName, new Uint8Array(chunk.count), new Uint8Array(chunk.count)),
      );
      return carryMeta(batch, joinResults(batch, parts));
    } finally {
      this.counters.timeNs += Bun.nanoseconds() - started;
    }
  }

  private runChunk(batch: PacketBatch, interfaceName: string, outcomes: Uint8Array, failures: Uint8Array): HookBatchResult {
    if (this.counters.disabled || this.sandbox === undefined) return this.applyPolicyToAll(batch, outcomes, failures);
    return this.runInSandbox(this.sandbox, batch, interfaceName, outcomes, failures);
  }

  private applyPolicyToAll(batch: PacketBatch, outcomes: Uint8Array, failures: Uint8Array): HookBatchResult {
    failures.fill(FAILURE_KIND.SKIPPED);
    this.counters.skipped += batch.count;
    if (this.settings.hookFail === "pass") {
      this.counters.passed += batch.count;
      return { batch, tags: new Array(batch.count).fill(undefined), outcomes, failures };
    }
    outcomes.fill(PACKET_OUTCOME.DROPPED);
    this.counters.dropped += batch.count;
    return { batch: emptyBatchLike(batch), tags: [], outcomes, failures };
  }

  private runInSandbox(
    sandbox: HookSandbox,
    batch: PacketBatch,
    interfaceName: string,
    outcomes: Uint8Array,
    failures: Uint8Array,
  ): HookBatchResult {
    const count = batch.count;
    const input = batch.bytes;
    const meta = buildMeta(batch);
    const decisions = new Uint8Array(count);
    let vmData: Uint8Array | undefined;
    let progress = 0;
    let stopped = false;
    let driverResult: DriverResult | undefined;
    let logsSuppressed = 0;
    const outcome: DriverOutcome = runGuarded(() => sandbox.runBatch(meta, input, interfaceName, (metaView, dataView, resultView) => {
      // Read only the slots the driver writes; everything else comes from the host's own meta.
      progress = metaView[META_HEADER.PROGRESS]!;
      stopped = metaView[META_HEADER.STOP] !== 0;
      if (resultView !== undefined) {
        const length = metaView[META_HEADER.RESULT_BYTES]!;
        const valid = Number.isInteger(length) && length > 0 && length <= resultView.byteLength;
        if (valid) driverResult = decodeDriverResult(resultView.subarray(0, length));
      }
      const tagged = driverResult !== undefined && driverResult.tagNames.length > 0;
      for (let i = 0; i < count; i++) {
        const base = META_HEADER_INTS + i * META_RECORD_INTS;
        meta[base + META_RECORD.VERDICT] = metaView[base + META_RECORD.VERDICT]!;
        meta[base + META_RECORD.OUT_CAPLEN] = metaView[base + META_RECORD.OUT_CAPLEN]!;
        meta[base + META_RECORD.FLAGS] = metaView[base + META_RECORD.FLAGS]!;
        if (tagged) meta[base + META_RECORD.TAGS] = metaView[base + META_RECORD.TAGS]!;
      }
      const suppressed = metaView[META_HEADER.LOGS_SUPPRESSED]!;
      if (suppressed > 0) logsSuppressed = suppressed;
      // Copy the VM's data once, but only if the hook changed something (the common no-op case skips it).
      if (!Buffer.from(dataView.buffer, dataView.byteOffset, dataView.byteLength).equals(input)) vmData = dataView.slice();
    }));
    const runFailure: RunFailure | undefined = outcome.failure;
    if (!Number.isInteger(progress) || progress < 0 || progress > count) progress = 0;
    // Records below `progress` were run; the one at `progress` was running when the batch
    // stopped (timeout, out of memory, driver failure); the ones after it never ran.
    const incomplete = progress < count;

    const policyKeeps = this.settings.hookFail === "pass";
    let lastFailure: FailureKind = FAILURE_KIND.NONE;
    /** Packets the hook itself failed on (threw, bad verdict, out of memory inside it): what the driver's first-error message describes. */
    let hookErrors = 0;
    for (let i = 0; i < count; i++) {
      const base = META_HEADER_INTS + i * META_RECORD_INTS;
      const caplenIn = meta[base + META_RECORD.CAPLEN]!;
      const verdict = meta[base + META_RECORD.VERDICT]!;
      let failure: FailureKind = FAILURE_KIND.NONE;
      let decided = false;
      if (i > progress) {
        failure = FAILURE_KIND.SKIPPED;
      } else if (i === progress && incomplete) {
        if (verdict === VERDICT.OUT_OF_MEMORY && stopped) {
          failure = FAILURE_KIND.OUT_OF_MEMORY;
          hookErrors++;
        } else {
          failure = runFailure !== undefined ? runFailureKind(runFailure) : FAILURE_KIND.INTERNAL;
        }
      } else if (verdict === VERDICT.PASS || verdict === VERDICT.REPLACED) {
        const caplen = meta[base + META_RECORD.OUT_CAPLEN]!;
        if (Number.isInteger(caplen) && caplen >= 0 && caplen <= caplenIn) {
          decisions[i] = DECISION.KEEP_VM;
          decided = true;
        } else {
          failure = FAILURE_KIND.INTERNAL;
        }
      } else if (verdict === VERDICT.DROP) {
        decisions[i] = DECISION.DROP;
        decided = true;
      } else if (verdict === VERDICT.THREW) {
        failure = FAILURE_KIND.THREW;
        hookErrors++;
      } else if (verdict === VERDICT.BAD_VERDICT) {
        failure = FAILURE_KIND.BAD_VERDICT;
        hookErrors++;
      } else {
        failure = FAILURE_KIND.INTERNAL;
      }
      if (!decided) {
        decisions[i] = policyKeeps ? DECISION.KEEP_INPUT : DECISION.DROP;
        meta[base + META_RECORD.OUT_CAPLEN] = caplenIn;
        meta[base + META_RECORD.FLAGS] = 0;
        failures[i] = failure;
        if (failure === FAILURE_KIND.SKIPPED) {
          this.counters.skipped++;
        } else {
          this.counters.failures[failureName(failure) as keyof HookCountersSnapshot["failures"]]++;
          this.counters.consecutiveFailures++;
          lastFailure = failure;
        }
      } else {
        this.counters.consecutiveFailures = 0;
      }
    }

    const tagsByInput = this.readDriverResult(outcome, driverResult, meta, count, failures, hookErrors, logsSuppressed);
    const result = this.writeOutput(batch, meta, decisions, vmData, outcomes, failures, tagsByInput);

    if (!incomplete && outcome.failure === undefined && outcome.memoryOverLimit) {
      // The batch finished, but what the hook keeps now exceeds the limit: count it and start over.
      this.counters.failures.outOfMemory++;
      this.counters.consecutiveFailures++;
      lastFailure = FAILURE_KIND.OUT_OF_MEMORY;
      this.recreate(`memory limit exceeded (${this.settings.hookMemoryLimitBytes} bytes) after a batch`);
    }
    if (incomplete) {
      const why = outcome.failure !== undefined ? `${outcome.failure}: ${outcome.message}` : stopped ? "out-of-memory inside the hook" : "driver stopped early";
      this.recreate(why);
    }
    if (!this.counters.disabled && this.counters.consecutiveFailures >= HOOK_DISABLE_AFTER_CONSECUTIVE_FAILURES) {
      this.disable(`${this.counters.consecutiveFailures} failures in a row (last: ${failureName(lastFailure)})`);
    }
    return result;
  }

  /**
   * Tags per input record, log lines and the first error message from the driver's result,
   * validated. The tag entries are handed out to records in order, each record taking as many as
   * its META_RECORD.TAGS count says: the record a tag lands on is decided here, by position, never
   * by anything in the entries. What reaches the log is escaped (hookLineText).
   */
  private readDriverResult(
    outcome: DriverOutcome,
    result: DriverResult | undefined,
    meta: Int32Array,
    count: number,
    failures: Uint8Array,
    hookErrors: number,
    logsSuppressed: number,
  ): (string[] | undefined)[] {
    const tagsByInput: (string[] | undefined)[] = new Array(count);
    if (outcome.failure !== undefined) {
      const message = outcome.message;
      this.logFailure(() => `batch stopped: ${hookLineText(message)}`);
      return tagsByInput;
    }
    if (result !== undefined && result.tagNames.length > 0) {
      const names = result.tagNames;
      let next = 0;
      for (let i = 0; i < count && next < names.length; i++) {
        const tags = meta[META_HEADER_INTS + i * META_RECORD_INTS + META_RECORD.TAGS]!;
        if (!(tags > 0)) continue;
        const end = Math.min(names.length, next + tags);
        if (failures[i] !== FAILURE_KIND.NONE) {
          next = end;
          continue;
        }
        for (; next < end; next++) {
          const name = names[next]!;
          if (name.length === 0 || name.length > DRIVER_LIMITS.TAG_CHARS) continue;
          const list = (tagsByInput[i] ??= []);
          if (list.length < DRIVER_LIMITS.TAGS_PER_PACKET && !list.includes(name)) list.push(name);
        }
      }
    }
    if (result !== undefined) {
      for (const line of result.logs.slice(0, DRIVER_LIMITS.LOG_LINES_PER_BATCH)) {
        if (this.logLimiter.take()) {
          this.counters.logLines++;
          this.logger.info(`hook ${this.name}: ${hookLineText(line.slice(0, DRIVER_LIMITS.LOG_LINE_CHARS))}`);
        } else {
          this.counters.logLinesSuppressed++;
        }
      }
    }
    if (Number.isSafeInteger(logsSuppressed) && logsSuppressed > 0) this.counters.logLinesSuppressed += logsSuppressed;
    if (hookErrors > 0) {
      // The count is the host's own (from the verdicts); only the words come from the VM.
      const first = result?.firstError;
      this.logFailure(() => `${hookErrors} packet(s) failed in a batch; first: ${first === undefined ? "(no description)" : hookLineText(first.slice(0, DRIVER_LIMITS.LOG_LINE_CHARS))}`);
    }
    return tagsByInput;
  }

  private writeOutput(
    batch: PacketBatch,
    meta: Int32Array,
    decisions: Uint8Array,
    vmData: Uint8Array | undefined,
    outcomes: Uint8Array,
    failures: Uint8Array,
    tagsByInput: (string[] | undefined)[],
  ): HookBatchResult {
    const count = batch.count;
    const input = batch.bytes;
    // Size first, then write once, and find out whether anything changed at all.
    let total = 0;
    let changed = vmData !== undefined;
    for (let i = 0; i < count; i++) {
      const base = META_HEADER_INTS + i * META_RECORD_INTS;
      const caplen = meta[base + META_RECORD.OUT_CAPLEN]!;
      const keep = decisions[i] !== DECISION.DROP;
      if (!keep || caplen !== meta[base + META_RECORD.CAPLEN] || meta[base + META_RECORD.FLAGS] !== 0) changed = true;
      if (keep) total += BATCH_RECORD_HEADER_BYTES + caplen;
      const tags = tagsByInput[i];
      if (tags !== undefined) for (const tag of tags) this.countTag(tag);
    }
    const tagsOut: (readonly string[] | undefined)[] = [];
    if (!changed) {
      for (let i = 0; i < count; i++) tagsOut.push(tagsByInput[i]);
      this.counters.passed += count;
      return { batch, tags: tagsOut, outcomes, failures };
    }
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    const inView = new DataView(input.buffer, input.byteOffset, input.byteLength);
    let w = 0;
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const decision = decisions[i]!;
      if (decision === DECISION.DROP) {
        outcomes[i] = PACKET_OUTCOME.DROPPED;
        this.counters.dropped++;
        continue;
      }
      const base = META_HEADER_INTS + i * META_RECORD_INTS;
      const at = meta[base + META_RECORD.DATA_OFFSET]!;
      const caplenIn = meta[base + META_RECORD.CAPLEN]!;
      const caplen = meta[base + META_RECORD.OUT_CAPLEN]!;
      const header = at - BATCH_RECORD_HEADER_BYTES;
      view.setUint32(w, inView.getUint32(header, true), true);
      view.setUint32(w + 4, inView.getUint32(header + 4, true), true);
      view.setUint32(w + 8, caplen, true);
      // len (the wire length) is kept: a truncated record stays a valid pcap record (caplen <= len).
      view.setUint32(w + 12, inView.getUint32(header + 12, true), true);
      const dataAt = w + BATCH_RECORD_HEADER_BYTES;
      const source = decision === DECISION.KEEP_VM && vmData !== undefined ? vmData : input;
      out.set(source.subarray(at, at + caplen), dataAt);
      if ((meta[base + META_RECORD.FLAGS]! & RECORD_FLAG.FIX_CHECKSUMS) !== 0) {
        const packed = fixChecksumsPacked(out.subarray(dataAt, dataAt + caplen), batch.linktype, this.checksumScratch);
        if (packed === 0) this.counters.checksumsFixed += 2; // both FIXED (code 0): the common case, no allocation
        else {
          const counted = countChecksumOutcomes(packed);
          this.counters.checksumsFixed += counted.fixed;
          this.counters.checksumsSkipped += counted.skipped;
        }
      }
      const modified = caplen !== caplenIn || !bytesEqual(out, dataAt, input, at, caplen);
      outcomes[i] = modified ? PACKET_OUTCOME.MODIFIED : PACKET_OUTCOME.PASSED;
      if (modified) this.counters.modified++;
      else this.counters.passed++;
      tagsOut.push(tagsByInput[i]);
      w += BATCH_RECORD_HEADER_BYTES + caplen;
      kept++;
    }
    return {
      batch: { bytes: out, count: kept, linktype: batch.linktype, precision: batch.precision },
      tags: tagsOut,
      outcomes,
      failures,
    };
  }

  /** One more packet with tag `name`, by name while fewer than HOOK_TAG_NAMES_COUNTED names are counted. */
  private countTag(name: string): void {
    const tagged = this.counters.tagged;
    const counted = tagged[name];
    if (counted !== undefined) {
      tagged[name] = counted + 1;
    } else if (this.tagNamesCounted < HOOK_TAG_NAMES_COUNTED) {
      tagged[name] = 1;
      this.tagNamesCounted++;
    } else {
      this.counters.taggedOtherNames++;
    }
  }

  private recreate(reason: string): void {
    this.counters.recreations++;
    this.sandbox?.dispose();
    this.sandbox = undefined;
    try {
      this.sandbox = HookSandbox.create(this.quickjs, this.source, this.filename, limitsOf(this.settings));
      this.logger.warn(`hook ${this.name}: VM rebuilt after ${reason}; ctx.state was lost`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.disable(`VM could not be rebuilt after ${reason}: ${message}`);
    }
  }

  private disable(reason: string): void {
    this.counters.disabled = true;
    this.logger.error(
      `HOOK DISABLED: ${this.name}: ${reason}. Every packet now gets hookFail=${this.settings.hookFail} until the hook is reloaded.`,
    );
  }

  /** A failure line, at most one a second; the text is only built when it will be logged. */
  private logFailure(message: () => string): void {
    if (this.failureLogLimiter.take()) this.logger.warn(`hook ${this.name}: ${message()}`);
  }
}

/**
 * Host-side exceptions from the sandbox (a malloc failure while copying a batch into a full
 * wasm memory, a use of a broken context) become a failed run, so run() never throws.
 */
function runGuarded(call: () => DriverOutcome): DriverOutcome {
  try {
    return call();
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const outOfMemory = /memory|allocate/i.test(message);
    return { failure: outOfMemory ? RUN_FAILURE.OUT_OF_MEMORY : RUN_FAILURE.INTERNAL, message };
  }
}

/** Cuts a batch into views of at most `maxBytes` each (a record larger than that gets a view of its own). */
function splitBatch(batch: PacketBatch, maxBytes: number): PacketBatch[] {
  const chunks: PacketBatch[] = [];
  const bytes = batch.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let start = 0;
  let offset = 0;
  let count = 0;
  // Each chunk carries its own records' meta (direction flags, comments), realigned to index 0.
  const chunk = (first: number): PacketBatch => sliceRecords(batch, first, first + count, start, offset);
  for (let i = 0; i < batch.count; i++) {
    const size = BATCH_RECORD_HEADER_BYTES + view.getUint32(offset + 8, true);
    if (count > 0 && offset + size - start > maxBytes) {
      chunks.push(chunk(i - count));
      start = offset;
      count = 0;
    }
    offset += size;
    count++;
  }
  if (count > 0) chunks.push(chunk(batch.count - count));
  return chunks;
}

/**
 * Gives a new result batch the input's per-record meta (EPB flags, comments) of the records
 * that survived, so direction tags and checksum marks outlive a hook that drops or edits.
 */
function carryMeta(input: PacketBatch, result: HookBatchResult): HookBatchResult {
  if (!input.meta || result.batch === input) return result;
  const kept: number[] = [];
  for (let i = 0; i < input.count; i++) if (result.outcomes[i] !== PACKET_OUTCOME.DROPPED) kept.push(i);
  if (kept.length !== result.batch.count) return result; // cannot align: leave it without meta rather than misattribute
  const meta = pickMeta(input.meta, kept);
  return { ...result, batch: { ...result.batch, ...(meta ? { meta } : {}) } };
}

/** Joins the results of a batch's chunks into one result for the whole batch. */
function joinResults(batch: PacketBatch, parts: HookBatchResult[]): HookBatchResult {
  const outcomes = new Uint8Array(batch.count);
  const failures = new Uint8Array(batch.count);
  const tags: (readonly string[] | undefined)[] = [];
  let at = 0;
  let total = 0;
  let count = 0;
  let changed = false;
  for (const part of parts) {
    outcomes.set(part.outcomes, at);
    failures.set(part.failures, at);
    at += part.outcomes.length;
    for (const t of part.tags) tags.push(t);
    total += part.batch.bytes.byteLength;
    count += part.batch.count;
    if (part.batch.count !== part.outcomes.length || part.outcomes.some((o) => o !== PACKET_OUTCOME.PASSED)) changed = true;
  }
  if (!changed) return { batch, tags, outcomes, failures };
  const out = new Uint8Array(total);
  let w = 0;
  for (const part of parts) {
    out.set(part.batch.bytes, w);
    w += part.batch.bytes.byteLength;
  }
  return { batch: { bytes: out, count, linktype: batch.linktype, precision: batch.precision }, tags, outcomes, failures };
}

function runFailureKind(failure: RunFailure): FailureKind {
  if (failure === RUN_FAILURE.TIMEOUT) return FAILURE_KIND.TIMEOUT;
  if (failure === RUN_FAILURE.OUT_OF_MEMORY) return FAILURE_KIND.OUT_OF_MEMORY;
  return FAILURE_KIND.INTERNAL;
}

function limitsOf(settings: HookSettings): SandboxLimits {
  return {
    memoryLimitBytes: settings.hookMemoryLimitBytes,
    batchBudgetMs: settings.hookBatchBudgetMs,
    compileBudgetMs: settings.hookCompileBudgetMs,
    maxStackBytes: settings.hookMaxStackBytes,
  };
}

/** Builds the meta array: header, then decoded offsets and record fields per record. */
function buildMeta(batch: PacketBatch): Int32Array {
  const count = batch.count;
  const bytes = batch.bytes;
  const meta = new Int32Array(META_HEADER_INTS + count * META_RECORD_INTS);
  meta[META_HEADER.COUNT] = count;
  meta[META_HEADER.LINKTYPE] = batch.linktype;
  meta[META_HEADER.NANO] = batch.precision === "nano" ? 1 : 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + BATCH_RECORD_HEADER_BYTES > bytes.byteLength) throw new Error(`PacketBatch record ${i} header overruns the batch`);
    const caplen = view.getUint32(offset + 8, true);
    const at = offset + BATCH_RECORD_HEADER_BYTES;
    if (at + caplen > bytes.byteLength) throw new Error(`PacketBatch record ${i} data overruns the batch`);
    const base = META_HEADER_INTS + i * META_RECORD_INTS;
    decodeOffsetsInto(bytes, at, caplen, batch.linktype, meta, base);
    meta[base + META_RECORD.DATA_OFFSET] = at;
    meta[base + META_RECORD.CAPLEN] = caplen;
    meta[base + META_RECORD.LEN] = view.getUint32(offset + 12, true) | 0;
    meta[base + META_RECORD.TS_SEC] = view.getUint32(offset, true) | 0;
    meta[base + META_RECORD.TS_FRAC] = view.getUint32(offset + 4, true) | 0;
    meta[base + META_RECORD.VERDICT] = VERDICT.PASS;
    meta[base + META_RECORD.OUT_CAPLEN] = caplen;
    meta[base + META_RECORD.DIRECTION] = (batch.meta?.flags?.[i] ?? 0) & EPB_FLAG_DIRECTION_MASK;
    const comments = batch.meta?.comments?.[i];
    if (comments?.some((c) => c.startsWith(CHECKSUM_BAD_COMMENT_PREFIX))) meta[base + META_RECORD.MARKS] = RECORD_MARK.BAD_CHECKSUM;
    offset = at + caplen;
  }
  return meta;
}

function bytesEqual(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (a[aAt + k] !== b[bAt + k]) return false;
  return true;
}

/** An empty batch with the same link type and precision (every record dropped). */
export function emptyBatchLike(batch: PacketBatch): PacketBatch {
  return { bytes: new Uint8Array(0), count: 0, linktype: batch.linktype, precision: batch.precision };
}
