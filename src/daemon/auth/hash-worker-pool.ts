// A small pool of password-hashing Workers (hash-worker.ts): at most `workers` checks run at
// once, each on its own thread with a deadline; idle workers are ended and started again on
// demand, so a reloaded configuration leaves nothing running behind it.
import type { CryptResult } from "./libcrypt-ffi.ts";

/**
 * Where `bun build --compile` puts the worker entrypoint (scripts/build.ts lists it beside
 * src/cli/main.ts; entrypoints live under /$bunfs/root/ by their path relative to src/).
 */
const COMPILED_WORKER_PATH = "/$bunfs/root/daemon/auth/hash-worker.js";

/**
 * Jobs that may wait for a free worker. The authenticator's scheduler never runs more checks
 * than there are workers, so this only guards other callers; beyond it a job fails at once.
 */
const MAX_QUEUED_HASH_JOBS = 256;

/** One hashing request as the worker receives it. */
export type HashJob =
  | { id: number; kind: "verify"; password: string; hash: string }
  | { id: number; kind: "crypt"; password: string; setting: string; libcryptPath: string };

/** The worker's answer to one {@link HashJob}. */
export type HashJobResult = { id: number; kind: "verify"; matches: boolean } | { id: number; kind: "crypt"; result: CryptResult };

/** Hashing as the password backends need it; {@link HashWorkerPool} runs it off the main thread. */
export interface PasswordHasher {
  /** argon2 or bcrypt (PHC / modular-crypt hash as Bun.password writes it); false on any error. */
  verifyPassword(password: string, hash: string): Promise<boolean>;
  /** crypt_r(3) through libcrypt; never rejects for a bad setting (see cryptHash). */
  crypt(password: string, setting: string, libcryptPath: string): Promise<CryptResult>;
}

/** Sizes and deadlines of {@link HashWorkerPool}. */
export interface HashWorkerPoolOptions {
  /** Threads hashing at once. */
  workers: number;
  /** A job still running after this long ends its worker and fails. */
  jobTimeoutMs: number;
  /** An idle worker is ended after this long. */
  idleWorkerMs: number;
  /** Starts one worker (tests substitute a slow or broken one). */
  spawn?: () => Worker;
}

type JobInput = HashJob extends infer J ? (J extends { id: number } ? Omit<J, "id"> : never) : never;

interface PendingJob {
  job: HashJob;
  resolve(result: HashJobResult): void;
  reject(error: Error): void;
}

interface WorkerSlot {
  worker: Worker;
  running: PendingJob | null;
  deadline: ReturnType<typeof setTimeout> | null;
  idleTimer: ReturnType<typeof setTimeout> | null;
}

function spawnHashWorker(): Worker {
  const compiled = import.meta.url.includes("/$bunfs/");
  return new Worker(compiled ? COMPILED_WORKER_PATH : new URL("./hash-worker.ts", import.meta.url).href);
}

/** Runs hashing jobs on up to `workers` threads, first come first served. */
export class HashWorkerPool implements PasswordHasher {
  private readonly slots = new Set<WorkerSlot>();
  private readonly queue: PendingJob[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: HashWorkerPoolOptions) {}

  /** Workers currently alive (for tests and status). */
  get workerCount(): number {
    return this.slots.size;
  }

  async verifyPassword(password: string, hash: string): Promise<boolean> {
    const result = await this.submit({ kind: "verify", password, hash });
    return result.kind === "verify" && result.matches;
  }

  async crypt(password: string, setting: string, libcryptPath: string): Promise<CryptResult> {
    const result = await this.submit({ kind: "crypt", password, setting, libcryptPath });
    if (result.kind !== "crypt") return { ok: false, reason: "hash worker answered a different job" };
    return result.result;
  }

  /** Ends every worker; jobs still queued or running fail. */
  close(): void {
    this.closed = true;
    for (const slot of [...this.slots]) this.endWorker(slot, new Error("hash workers closed"));
    for (const pending of this.queue.splice(0)) pending.reject(new Error("hash workers closed"));
  }

  private submit(input: JobInput): Promise<HashJobResult> {
    if (this.closed) return Promise.reject(new Error("hash workers closed"));
    if (this.queue.length >= MAX_QUEUED_HASH_JOBS) {
      return Promise.reject(new Error(`${MAX_QUEUED_HASH_JOBS} hashing jobs already waiting`));
    }
    const job = { ...input, id: this.nextId++ } as HashJob;
    const { promise, resolve, reject } = Promise.withResolvers<HashJobResult>();
    this.queue.push({ job, resolve, reject });
    this.pump();
    return promise;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const slot = this.idleSlot();
      if (!slot) return;
      this.start(slot, this.queue.shift()!);
    }
  }

  private idleSlot(): WorkerSlot | undefined {
    for (const slot of this.slots) if (!slot.running) return slot;
    if (this.slots.size >= this.options.workers) return undefined;
    const worker = (this.options.spawn ?? spawnHashWorker)();
    // The daemon's listener keeps the process alive; an idle hashing thread must not.
    worker.unref();
    const slot: WorkerSlot = { worker, running: null, deadline: null, idleTimer: null };
    worker.onmessage = (event: MessageEvent<HashJobResult>) => this.finished(slot, event.data);
    worker.onerror = (event) => this.endWorker(slot, new Error(`hash worker failed: ${event.message}`));
    this.slots.add(slot);
    return slot;
  }

  private start(slot: WorkerSlot, pending: PendingJob): void {
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = null;
    slot.running = pending;
    slot.deadline = setTimeout(
      () => this.endWorker(slot, new Error(`password check took longer than ${this.options.jobTimeoutMs} ms`)),
      this.options.jobTimeoutMs,
    );
    slot.worker.postMessage(pending.job);
  }

  private finished(slot: WorkerSlot, result: HashJobResult): void {
    const pending = slot.running;
    if (!pending || pending.job.id !== result.id) return;
    if (slot.deadline) clearTimeout(slot.deadline);
    slot.deadline = null;
    slot.running = null;
    pending.resolve(result);
    slot.idleTimer = setTimeout(() => this.endWorker(slot, null), this.options.idleWorkerMs);
    slot.idleTimer.unref(); // ending an idle thread is no reason to keep the process alive
    this.pump();
  }

  /** Terminates one worker; its running job (if any) fails with `error`. */
  private endWorker(slot: WorkerSlot, error: Error | null): void {
    if (!this.slots.delete(slot)) return;
    if (slot.deadline) clearTimeout(slot.deadline);
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.worker.terminate();
    const pending = slot.running;
    slot.running = null;
    if (pending) pending.reject(error ?? new Error("hash worker ended"));
    this.pump();
  }
}
