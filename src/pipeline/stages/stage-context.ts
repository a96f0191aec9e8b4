// What a stage builder gets besides its spec: the pipeline's inputs by index (names, for hooks
// and logs) and where to log. Builders may be async (a hook compiles) and throw a ProbeError
// naming the file or setting that is wrong.
import type { Logger } from "../../logging/index.ts";

export interface StageContext {
  /** Input names by index (meta.inputs); one entry per pipeline input, or the interface opened. */
  readonly inputNames: readonly string[];
  readonly log: Logger;
  /** Reload hook files on change and SIGHUP. */
  readonly reload: boolean;
}
