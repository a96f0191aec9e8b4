// StopProgress: what a stop is still waiting for, by name ("output file - (standard output)"),
// so a stop that hangs can be reported as the part that did not stop instead of a silent
// process. The runner wraps each part of its stop in step(); the CLI's stop watchdog
// (src/cli/stop-watchdog.ts) reads pending() when its deadline passes.

export class StopProgress {
  private readonly steps = new Map<number, string>();
  private nextId = 0;

  /** `onChange` sees the pending steps after every change (the watchdog mirrors them off-thread). */
  constructor(private readonly onChange?: (pending: readonly string[]) => void) {}

  /** Runs one part of the stop, named `what` while it is pending. */
  async step<T>(what: string, run: () => Promise<T>): Promise<T> {
    const id = this.nextId++;
    this.steps.set(id, what);
    this.changed();
    try {
      return await run();
    } finally {
      this.steps.delete(id);
      this.changed();
    }
  }

  /** The parts still stopping, in the order they began. */
  pending(): string[] {
    return [...this.steps.values()];
  }

  private changed(): void {
    this.onChange?.(this.pending());
  }
}
