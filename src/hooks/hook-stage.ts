// HookChain: the pipeline stage that applies several operator hooks in order to each batch,
// carrying every record's tags through later hooks' drops, for outputs that write comments.
import { basename } from "node:path";
import type { PacketBatch } from "../packet/packet-batch.ts";
import type { Logger } from "../logging/index.ts";
import { PACKET_OUTCOME, type HookCountersSnapshot } from "./hook-counters.ts";
import { HookRunner } from "./hook-runtime.ts";
import type { HookSettings } from "./settings.ts";

/** What the hook stage hands on: the surviving records and, per record, the tags hooks gave it. */
export interface HookStageResult {
  batch: PacketBatch;
  /** One entry per record of `batch`; undefined when a record has no tags. */
  tags: (readonly string[] | undefined)[];
}

export interface HookFileOptions {
  settings?: Partial<HookSettings>;
  logger?: Logger;
}

export class HookChain {
  constructor(readonly runners: readonly HookRunner[]) {}

  /** Compiles each file in order; throws the first HookCompileError (after disposing the ones compiled). */
  static async fromFiles(paths: readonly string[], options: HookFileOptions = {}): Promise<HookChain> {
    const runners: HookRunner[] = [];
    try {
      for (const path of paths) {
        const source = await Bun.file(path).text();
        runners.push(await HookRunner.create({ name: basename(path), filename: path, source, ...options }));
      }
    } catch (error) {
      for (const runner of runners) runner.dispose();
      throw error;
    }
    return new HookChain(runners);
  }

  /** Runs every hook in order. A batch emptied by one hook is not shown to the next. */
  run(batch: PacketBatch, interfaceName = ""): HookStageResult {
    let current = batch;
    let tags: (readonly string[] | undefined)[] | undefined;
    for (const runner of this.runners) {
      if (current.count === 0) break;
      const result = runner.run(current, interfaceName);
      tags = tags === undefined ? result.tags : mergeTags(tags, result.outcomes, result.tags);
      current = result.batch;
    }
    return { batch: current, tags: tags ?? new Array(current.count).fill(undefined) };
  }

  /** Counters of every hook, in chain order. */
  stats(): HookCountersSnapshot[] {
    return this.runners.map((runner) => runner.stats);
  }

  dispose(): void {
    for (const runner of this.runners) runner.dispose();
  }
}

/** Tags before a hook (per its input record) + tags it added (per its output record) -> per output record. */
function mergeTags(
  before: readonly (readonly string[] | undefined)[],
  outcomes: Uint8Array,
  added: readonly (readonly string[] | undefined)[],
): (readonly string[] | undefined)[] {
  const merged: (readonly string[] | undefined)[] = [];
  for (let i = 0; i < outcomes.length; i++) {
    if (outcomes[i] === PACKET_OUTCOME.DROPPED) continue;
    const a = before[i];
    const b = added[merged.length];
    merged.push(a === undefined ? b : b === undefined ? a : [...a, ...b.filter((t) => !a.includes(t))]);
  }
  return merged;
}
