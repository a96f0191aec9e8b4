// One QuickJS runtime + context holding one compiled hook and its in-VM driver: compile with
// limits, run one batch under a deadline, read results back, dispose every handle.
//
// Memory: setMemoryLimit() alone is NOT enough in this build. Measured with quickjs-emscripten
// 0.32 (singlefile release-sync): a runtime limited to 8 MiB allocated 300 x 1 MiB Uint8Arrays
// without an error; only single allocations larger than the limit fail. (QuickJS's default
// allocator counts usable sizes, and its usable-size function returns 0 under EMSCRIPTEN.)
// So each hook gets its own QuickJS wasm instance whose WebAssembly.Memory has a hard maximum
// (the build's 16 MiB base + the limit + room for batch copies): a bomb hits a real malloc
// failure, "out of memory", within that instance and the host process cannot grow past it.
// The runtime's own accounting (JS_ComputeMemoryUsage memory_used_size, which does count
// every object and buffer) enforces the configured limit itself: the interrupt handler walks
// it every few ms of VM time, and it is walked after every few batches (slow growth). The walk
// costs ~0.1 ms for a small heap, ~2 ms for 100k objects.
//
// Isolation: the context gets only ECMAScript intrinsics. No host function is registered
// (no newFunction), no module loader is set (so `import` fails), and nothing of Bun or the
// host is reachable; `Function("return this")()` and `eval` only reach the VM's own global.
// Memory is capped per runtime (setMemoryLimit) and CPU per call by an interrupt handler that
// compares the clock with a deadline (the resulting "interrupted" error cannot be caught by
// hook code).
//
// How often the deadline is looked at: QuickJS calls the handler once per 10,000 "polls"
// (JS_INTERRUPT_COUNTER_INIT; a poll is a function call or a loop back-edge). That is fine for
// cheap polls, but a poll can be very dear: a hook that recurses and catches the "stack
// overflow" error pays a backtrace of the whole stack (thousands of frames) on every call, so
// 10,000 polls took 7-13 s under a 50 ms budget (issue 9); a loop over a dear builtin (a join
// of a large array) is the same. So the Guard sets the context's interrupt counter itself, to
// INTERRUPT_POLLS, at arm() and after every call (PollControl below). Measured on this build, a
// handler call per 16 polls costs nothing visible (5M loop iterations and 1M calls: 300 ms with
// a call every 16 polls, 270-550 ms every 10,000), and the recursion above is stopped within
// ~2x its budget. The counter is a field of QuickJS's JSContext in the instance's own wasm
// memory; its offset is found once per process on a throwaway context and verified there
// before it is ever written (if not found, QuickJS's own interval applies).
import { newQuickJSWASMModuleFromVariant, newVariant, type QuickJSContext, type QuickJSHandle, type QuickJSRuntime, type QuickJSWASMModule } from "quickjs-emscripten-core";
import variant from "@jitl/quickjs-singlefile-mjs-release-sync";
import { driverSource } from "./vm-driver.ts";

/** Pages of the build's initial memory (emscripten INITIAL_MEMORY default, 16 MiB): data, stack and first heap. */
const WASM_BASE_BYTES = 16 * 1024 * 1024;
const WASM_PAGE_BYTES = 65536;

/**
 * Room in a hook's wasm memory beyond its limit for the host's batch copies: meta + data in the
 * VM and their copies out are ~2.2x a chunk (HOOK_CHUNK_MAX_BYTES), plus the driver's result.
 */
export const WASM_BATCH_SLACK_BYTES = 8 * 1024 * 1024;

/** Largest batch slice handed to the VM in one call; bigger batches are cut into chunks this size. */
export const HOOK_CHUNK_MAX_BYTES = 1024 * 1024;

/**
 * A new QuickJS instance (its own wasm memory) for one hook, capped at base + limit + slack.
 * The single-file variant embeds the wasm in JavaScript, so `bun build --compile` keeps one
 * executable with nothing to find on disk. Takes ~20 ms (50 ms the first time).
 */
export async function newQuickJSInstance(memoryLimitBytes: number): Promise<QuickJSWASMModule> {
  const maximumPages = Math.ceil((WASM_BASE_BYTES + memoryLimitBytes + WASM_BATCH_SLACK_BYTES) / WASM_PAGE_BYTES);
  const memory = new WebAssembly.Memory({ initial: WASM_BASE_BYTES / WASM_PAGE_BYTES, maximum: maximumPages });
  const module = await newQuickJSWASMModuleFromVariant(newVariant(variant, { wasmMemory: memory }));
  instanceMemory.set(module, memory);
  return module;
}

/** Each instance's wasm memory, for PollControl (weak: gone with the instance). */
const instanceMemory = new WeakMap<QuickJSWASMModule, WebAssembly.Memory>();

/** QuickJS's JS_INTERRUPT_COUNTER_INIT: the counter's value right after it called the handler. */
const QUICKJS_INTERRUPT_COUNTER_INIT = 10_000;
/**
 * Polls between two looks at the clock. A deadline is overrun by at most this many polls; the
 * dearest poll seen (a stack-overflow backtrace at the largest hookMaxStackBytes) costs ~1.5 ms.
 */
export const INTERRUPT_POLLS = 16;
/** How far into JSContext the counter is looked for (the struct is a few hundred bytes). */
const CONTEXT_SCAN_BYTES = 2048;

/**
 * Byte offset of `interrupt_counter` in this build's JSContext: undefined before the probe,
 * null when the probe failed (then QuickJS's own 10,000-poll interval applies).
 */
let interruptCounterOffset: number | null | undefined;

/**
 * Finds the counter's offset on a throwaway context: at the handler's first call the counter
 * was just reset to 10,000, so it is the one int32 of the struct holding 10,000; writing 100
 * there must then make the handler run about 100 times as often over the same loop.
 */
function probeInterruptCounterOffset(quickjs: QuickJSWASMModule, memory: WebAssembly.Memory): number | null {
  const runtime = quickjs.newRuntime();
  const context = runtime.newContext();
  try {
    const base = contextPointer(context);
    if (base === undefined) return null;
    let candidates: number[] | undefined;
    let calls = 0;
    runtime.setInterruptHandler(() => {
      if (candidates === undefined) {
        const words = new Int32Array(memory.buffer, base, CONTEXT_SCAN_BYTES / 4);
        candidates = [];
        for (let i = 0; i < words.length; i++) if (words[i] === QUICKJS_INTERRUPT_COUNTER_INIT) candidates.push(i * 4);
      }
      calls++;
      return false;
    });
    const loop = "for (let i = 0; i < 100000; i++) {}";
    context.evalCode(loop).dispose();
    if (candidates?.length !== 1) return null;
    const offset = candidates[0]!;
    const baselineCalls = calls;
    calls = 0;
    runtime.setInterruptHandler(() => {
      calls++;
      const words = new Int32Array(memory.buffer);
      if (words[(base + offset) >> 2] !== QUICKJS_INTERRUPT_COUNTER_INIT) return true; // not the counter: stop
      words[(base + offset) >> 2] = 100;
      return false;
    });
    const result = context.evalCode(loop);
    const stopped = result.error !== undefined;
    result.dispose();
    return !stopped && calls > 20 * Math.max(1, baselineCalls) ? offset : null;
  } finally {
    context.dispose();
    runtime.dispose();
  }
}

function contextPointer(context: QuickJSContext): number | undefined {
  const pointer = (context as unknown as { ctx?: { value?: unknown } }).ctx?.value;
  return typeof pointer === "number" && pointer > 0 ? pointer : undefined;
}

/** Writes a context's interrupt counter: how many polls until QuickJS calls the handler again. */
class PollControl {
  constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly address: number,
  ) {}

  static for(quickjs: QuickJSWASMModule, context: QuickJSContext): PollControl | undefined {
    const memory = instanceMemory.get(quickjs);
    if (!memory) return undefined;
    if (interruptCounterOffset === undefined) interruptCounterOffset = probeInterruptCounterOffset(quickjs, memory);
    const base = contextPointer(context);
    if (interruptCounterOffset === null || base === undefined) return undefined;
    return new PollControl(memory, base + interruptCounterOffset);
  }

  set(polls: number): void {
    new Int32Array(this.memory.buffer)[this.address >> 2] = polls;
  }
}

/** Limits of one sandbox. See settings.ts for defaults and the reasons behind them. */
export interface SandboxLimits {
  memoryLimitBytes: number;
  /** CPU time allowed for one batch (all packets of it), in milliseconds. */
  batchBudgetMs: number;
  /** Time allowed to evaluate the hook module's top level when compiling, in milliseconds. */
  compileBudgetMs: number;
  /** QuickJS stack limit; deep recursion throws "stack overflow" (catchable, counted as a throw). */
  maxStackBytes: number;
}

/** Why a hook failed to compile; stable codes for logs and tests. */
export const COMPILE_ERROR = {
  SYNTAX: "syntax",
  EVALUATION: "evaluation",
  NO_DEFAULT_EXPORT: "no-default-export",
  TOP_LEVEL_AWAIT: "top-level-await",
  TIMEOUT: "timeout",
  OUT_OF_MEMORY: "out-of-memory",
} as const;
export type CompileErrorCode = (typeof COMPILE_ERROR)[keyof typeof COMPILE_ERROR];

export class HookCompileError extends Error {
  override readonly name = "HookCompileError";
  constructor(
    readonly code: CompileErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Why a driver call ended without finishing normally. */
export const RUN_FAILURE = {
  TIMEOUT: "timeout",
  OUT_OF_MEMORY: "out-of-memory",
  /** The driver itself failed (e.g. a hook replaced an intrinsic it relies on, or the VM stack overflowed). */
  INTERNAL: "internal",
} as const;
export type RunFailure = (typeof RUN_FAILURE)[keyof typeof RUN_FAILURE];

/** After a finished batch, the accounting is walked at least every this many batches... */
export const MEMORY_CHECK_EVERY_BATCHES = 8;
/** ...or when this much time has passed since the last walk. */
export const MEMORY_CHECK_INTERVAL_MS = 250;
/**
 * Inside one call, the accounting is walked at most every this many ms of VM time (or four
 * times the last walk's cost, whichever is longer), so short batches never pay for it.
 */
const IN_CALL_MEMORY_CHECK_MS = 2;

/**
 * Result of one batch. `memoryOverLimit`: the batch finished but the runtime now holds more than
 * its limit, so the caller must rebuild the VM.
 */
export type DriverOutcome =
  | { failure: undefined; memoryOverLimit: boolean }
  | { failure: RunFailure; message: string };

interface VmError {
  name: string;
  message: string;
}

/** Interrupt handler state shared by compile and run: a deadline and the memory limit. */
class Guard {
  deadline = Number.POSITIVE_INFINITY;
  memoryExceeded = false;
  /** Walks the runtime's accounting; set once the runtime exists. */
  usage: (() => number) | undefined;
  /** Sets the polls until the next handler call; undefined = QuickJS's fixed 10,000. */
  polls: PollControl | undefined;
  private nextCheck = 0;
  private checkCostMs = 0;

  constructor(private readonly memoryLimitBytes: number) {}

  arm(budgetMs: number): void {
    const now = performance.now();
    this.deadline = now + budgetMs;
    this.nextCheck = now + Math.max(IN_CALL_MEMORY_CHECK_MS, 4 * this.checkCostMs);
    this.memoryExceeded = false;
    this.polls?.set(INTERRUPT_POLLS);
  }

  disarm(): void {
    this.deadline = Number.POSITIVE_INFINITY;
  }

  /** Walks the accounting now; true when over the limit. */
  overLimit(): boolean {
    if (this.usage === undefined) return false;
    const started = performance.now();
    const used = this.usage();
    this.checkCostMs = performance.now() - started;
    return used > this.memoryLimitBytes;
  }

  /** The interrupt handler: true stops the VM with an uncatchable "interrupted" error. */
  readonly shouldInterrupt = (): boolean => {
    const now = performance.now();
    if (now > this.deadline) return true;
    if (now >= this.nextCheck && this.overLimit()) {
      this.memoryExceeded = true;
      return true;
    }
    if (now >= this.nextCheck) this.nextCheck = performance.now() + Math.max(IN_CALL_MEMORY_CHECK_MS, 4 * this.checkCostMs);
    this.polls?.set(INTERRUPT_POLLS); // QuickJS has just reset it to 10,000
    return false;
  };
}

export class HookSandbox {
  private disposed = false;
  private lastMemoryCheck = performance.now();
  private batchesSinceMemoryCheck = 0;

  private constructor(
    private readonly runtime: QuickJSRuntime,
    private readonly context: QuickJSContext,
    private readonly drive: QuickJSHandle,
    private readonly limits: SandboxLimits,
    private readonly guard: Guard,
  ) {}

  /** Compiles `source` (an ES module whose default export is the hook function) in a fresh runtime. */
  static create(quickjs: QuickJSWASMModule, source: string, filename: string, limits: SandboxLimits): HookSandbox {
    const guard = new Guard(limits.memoryLimitBytes);
    const runtime = quickjs.newRuntime({
      memoryLimitBytes: limits.memoryLimitBytes,
      maxStackSizeBytes: limits.maxStackBytes,
    });
    let context: QuickJSContext | undefined;
    try {
      const ctx = runtime.newContext();
      context = ctx;
      guard.usage = () => memoryUsed(runtime, ctx);
      guard.polls = PollControl.for(quickjs, ctx);
      runtime.setInterruptHandler(guard.shouldInterrupt);
      guard.arm(limits.compileBudgetMs);
      const factory = evalOrThrow(context, driverSource(), "probe-hook-driver.js", "global", guard);
      let drive: QuickJSHandle;
      try {
        const namespace = evalOrThrow(context, source, filename, "module", guard);
        try {
          const state = context.getPromiseState(namespace);
          if (state.type === "pending") {
            throw new HookCompileError(COMPILE_ERROR.TOP_LEVEL_AWAIT, "top-level await is not supported in hooks");
          }
          if (state.type === "rejected") {
            const error = readError(context, state.error);
            throw new HookCompileError(classifyCompile(error, guard), `${error.name}: ${error.message}`);
          }
          if (!state.notAPromise) state.value.dispose();
          const hook = context.getProp(namespace, "default");
          try {
            if (context.typeof(hook) !== "function") {
              throw new HookCompileError(
                COMPILE_ERROR.NO_DEFAULT_EXPORT,
                "the hook module must `export default function (pkt, ctx) { ... }`",
              );
            }
            const made = context.callFunction(factory, context.undefined, hook);
            if (made.error) {
              const error = readError(context, made.error);
              throw new HookCompileError(classifyCompile(error, guard), `${error.name}: ${error.message}`);
            }
            drive = made.value;
          } finally {
            hook.dispose();
          }
        } finally {
          namespace.dispose();
        }
      } finally {
        factory.dispose();
      }
      if (guard.memoryExceeded) throw new HookCompileError(COMPILE_ERROR.OUT_OF_MEMORY, "the module's top level exceeded the memory limit");
      guard.disarm();
      if (guard.overLimit()) {
        drive.dispose();
        throw new HookCompileError(COMPILE_ERROR.OUT_OF_MEMORY, "the module's top level exceeded the memory limit");
      }
      return new HookSandbox(runtime, context, drive, limits, guard);
    } catch (error) {
      context?.dispose();
      runtime.dispose();
      if (error instanceof HookCompileError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new HookCompileError(COMPILE_ERROR.EVALUATION, message);
    }
  }

  /**
   * Runs the driver over one batch. `meta` and `data` are copied into the VM; after the call
   * `read(metaView, dataView, resultView)` receives borrowed views of the VM's copies (also
   * after a timeout, so the host can see how far the driver got) and of the result entries the
   * driver returned (undefined when it returned none or failed), then every handle is released.
   */
  runBatch(
    meta: Int32Array,
    data: Uint8Array,
    interfaceName: string,
    read: (metaView: Int32Array, dataView: Uint8Array, resultView: Uint8Array | undefined) => void,
  ): DriverOutcome {
    if (this.disposed) throw new Error("HookSandbox used after dispose()");
    const context = this.context;
    // newArrayBuffer copies from an ArrayBuffer; pass exact-length buffers so no extra copy is made.
    const metaHandle = context.newArrayBuffer(exactBuffer(meta));
    try {
      const dataHandle = context.newArrayBuffer(exactBuffer(data));
      try {
        const nameHandle = context.newString(interfaceName);
        let outcome: DriverOutcome;
        let resultHandle: QuickJSHandle | undefined;
        try {
          try {
            this.guard.arm(this.limits.batchBudgetMs);
            const result = context.callFunction(this.drive, context.undefined, metaHandle, dataHandle, nameHandle);
            this.guard.disarm();
            if (result.error) {
              const error = readError(context, result.error);
              outcome = { failure: classifyRun(error, this.guard), message: this.guard.memoryExceeded ? "InternalError: memory limit exceeded" : `${error.name}: ${error.message}` };
            } else {
              // The driver returns its result buffer (an ArrayBuffer) or undefined; kept until read() is done.
              if (context.typeof(result.value) === "object") resultHandle = result.value;
              else result.value.dispose();
              outcome = { failure: undefined, memoryOverLimit: this.checkMemory() };
            }
          } finally {
            nameHandle.dispose();
          }
          const metaOut = context.getArrayBuffer(metaHandle);
          try {
            const dataOut = context.getArrayBuffer(dataHandle);
            try {
              const resultOut = resultHandle === undefined ? undefined : context.getArrayBuffer(resultHandle);
              try {
                const m = metaOut.value;
                read(new Int32Array(m.buffer, m.byteOffset, m.byteLength >> 2), dataOut.value, resultOut?.value);
              } finally {
                resultOut?.dispose();
              }
            } finally {
              dataOut.dispose();
            }
          } finally {
            metaOut.dispose();
          }
        } finally {
          resultHandle?.dispose();
        }
        return outcome;
      } finally {
        dataHandle.dispose();
      }
    } finally {
      metaHandle.dispose();
    }
  }

  /** After a finished batch: true when the runtime holds more than its limit (walked every few batches or after an interval). */
  private checkMemory(): boolean {
    const now = performance.now();
    this.batchesSinceMemoryCheck++;
    if (this.batchesSinceMemoryCheck < MEMORY_CHECK_EVERY_BATCHES && now - this.lastMemoryCheck < MEMORY_CHECK_INTERVAL_MS) {
      return false;
    }
    this.lastMemoryCheck = now;
    this.batchesSinceMemoryCheck = 0;
    return this.guard.overLimit();
  }

  /** Bytes the runtime has allocated (QuickJS accounting: JS_ComputeMemoryUsage memory_used_size). */
  memoryUsedBytes(): number {
    return memoryUsed(this.runtime, this.context);
  }

  /** Releases the driver, context and runtime. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.drive.dispose();
    this.context.dispose();
    this.runtime.dispose();
  }
}

function memoryUsed(runtime: QuickJSRuntime, context: QuickJSContext): number {
  const usage = runtime.computeMemoryUsage();
  try {
    const used = context.getProp(usage, "memory_used_size");
    try {
      return context.getNumber(used);
    } finally {
      used.dispose();
    }
  } finally {
    usage.dispose();
  }
}

function evalOrThrow(context: QuickJSContext, code: string, filename: string, type: "global" | "module", guard: Guard): QuickJSHandle {
  const result = context.evalCode(code, filename, { type, strict: true });
  if (result.error) {
    const error = readError(context, result.error);
    throw new HookCompileError(classifyCompile(error, guard), `${error.name}: ${error.message}`);
  }
  return result.value;
}

/** Reads name and message of a VM error value and disposes the handle. Never throws. */
function readError(context: QuickJSContext, handle: QuickJSHandle): VmError {
  try {
    const dumped: unknown = context.dump(handle);
    if (dumped !== null && typeof dumped === "object") {
      const { name, message } = dumped as { name?: unknown; message?: unknown };
      return { name: String(name ?? "Error"), message: String(message ?? "") };
    }
    return { name: "thrown value", message: String(dumped) };
  } catch {
    return { name: "Error", message: "unreadable error value" };
  } finally {
    handle.dispose();
  }
}

function classifyCompile(error: VmError, guard: Guard): CompileErrorCode {
  if (error.name === "SyntaxError") return COMPILE_ERROR.SYNTAX;
  if (guard.memoryExceeded) return COMPILE_ERROR.OUT_OF_MEMORY;
  if (error.name === "InternalError" && error.message === "interrupted") return COMPILE_ERROR.TIMEOUT;
  if (error.name === "InternalError" && error.message === "out of memory") return COMPILE_ERROR.OUT_OF_MEMORY;
  return COMPILE_ERROR.EVALUATION;
}

function classifyRun(error: VmError, guard: Guard): RunFailure {
  if (guard.memoryExceeded) return RUN_FAILURE.OUT_OF_MEMORY;
  if (error.name === "InternalError" && error.message === "interrupted") return RUN_FAILURE.TIMEOUT;
  if (error.name === "InternalError" && error.message === "out of memory") return RUN_FAILURE.OUT_OF_MEMORY;
  return RUN_FAILURE.INTERNAL;
}

function exactBuffer(view: Uint8Array | Int32Array): ArrayBuffer {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer) {
    return view.buffer;
  }
  return view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer;
}
