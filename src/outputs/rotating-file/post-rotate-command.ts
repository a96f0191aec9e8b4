// -z COMMAND: run after each rotation with the closed file's path as its one argument, like
// tcpdump's post-rotate command (tcpdump execs `COMMAND FILE` without a shell; so do we).
// A failure (cannot start, non-zero exit) is logged and never stops capture. The commands
// running at once and the paths waiting for them are bounded.
import type { Logger } from "../../logging/index.ts";

/** Commands running at once: compressors are CPU-heavy and a capture host has few cores. */
export const MAX_RUNNING_POST_ROTATE_COMMANDS = 2;
/** Closed files waiting for a command; beyond this a file is skipped (logged) so memory stays bounded. */
export const MAX_QUEUED_POST_ROTATE_FILES = 256;
/** How long stop() waits for running commands before leaving them running on their own. */
export const POST_ROTATE_STOP_WAIT_MS = 10_000;

/** What the output does around one command: checks and marks before it, records after it. */
export interface PostRotateHooks {
  /** Right before the command starts; false skips it (the file is no longer the one written). */
  readonly before?: () => boolean;
  /** After the command ended (or could not start), whatever its exit status. */
  readonly after?: () => void;
}

interface QueuedRun {
  readonly path: string;
  readonly hooks: PostRotateHooks | undefined;
}

export class PostRotateCommand {
  private readonly queue: QueuedRun[] = [];
  private readonly running = new Set<Promise<void>>();
  failures = 0;
  skipped = 0;

  constructor(
    private readonly command: string,
    private readonly logger: Logger,
  ) {}

  /** Runs the command on `path` now, or when a running one ends. */
  submit(path: string, hooks?: PostRotateHooks): void {
    if (this.queue.length >= MAX_QUEUED_POST_ROTATE_FILES) {
      this.skipped++;
      this.logger.warn(`-z ${this.command}: ${MAX_QUEUED_POST_ROTATE_FILES} files already waiting; not run for ${path}`);
      return;
    }
    this.queue.push({ path, hooks });
    this.startNext();
  }

  /** Waits for queued and running commands, at most POST_ROTATE_STOP_WAIT_MS. */
  async drain(): Promise<void> {
    const deadline = Date.now() + POST_ROTATE_STOP_WAIT_MS;
    while ((this.running.size > 0 || this.queue.length > 0) && Date.now() < deadline) {
      await Promise.race([...this.running, Bun.sleep(Math.max(1, deadline - Date.now()))]);
    }
    if (this.running.size > 0 || this.queue.length > 0) {
      this.logger.warn(`-z ${this.command}: ${this.running.size} still running, ${this.queue.length} not started at stop`);
    }
  }

  private startNext(): void {
    while (this.running.size < MAX_RUNNING_POST_ROTATE_COMMANDS && this.queue.length > 0) {
      const next = this.queue.shift()!;
      const run = this.run(next).finally(() => {
        this.running.delete(run);
        this.startNext();
      });
      this.running.add(run);
    }
  }

  private async run({ path, hooks }: QueuedRun): Promise<void> {
    let go = true;
    try {
      go = hooks?.before?.() ?? true;
    } catch (error) {
      this.logger.warn(`-z ${this.command} ${path}: not run: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      go = false;
    }
    if (!go) return;
    try {
      const proc = Bun.spawn([this.command, path], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
      const [code, errorText] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      if (code !== 0) {
        this.failures++;
        const detail = errorText.trim().split("\n").at(-1)?.slice(0, 200) ?? "";
        this.logger.warn(`-z ${this.command} ${path}: exit status ${code}${detail ? `: ${JSON.stringify(detail)}` : ""}`);
      }
    } catch (error) {
      this.failures++;
      this.logger.warn(`-z ${this.command} ${path}: cannot run: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    } finally {
      try {
        hooks?.after?.();
      } catch (error) {
        this.logger.warn(`-z ${this.command} ${path}: ${(error as Error).message}`);
      }
    }
  }
}
