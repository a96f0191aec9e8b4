// Operator hooks: per-packet JavaScript run in a QuickJS sandbox (memory cap, CPU deadline,
// no host access), applied to PacketBatches as a chain, with counters, hot reload and a dry run.
export { HookChain, type HookStageResult, type HookFileOptions } from "./hook-stage.ts";
export { HookRunner, emptyBatchLike, type HookRunnerOptions, type HookBatchResult, type ReloadResult } from "./hook-runtime.ts";
export {
  FAILURE_KIND,
  PACKET_OUTCOME,
  failureName,
  type FailureKind,
  type PacketOutcome,
  type HookCountersSnapshot,
  type HookFailureCounts,
} from "./hook-counters.ts";
export { tagText, tagCountsText, hookLineText, tagComments } from "./hook-text.ts";
export { HookCompileError, COMPILE_ERROR, newQuickJSInstance, HOOK_CHUNK_MAX_BYTES, type CompileErrorCode } from "./sandbox.ts";
export { installHookReload, HOOK_RELOAD_DEBOUNCE_MS, type HookReloadHandle, type HookReloadOptions, type HookReloadTarget } from "./reload.ts";
export { runHookDryRun, describePacket, type HookDryRunOptions, type HookDryRunResult, type HookDryRunCounts } from "./dry-run.ts";
export {
  DEFAULT_HOOK_SETTINGS,
  DEFAULT_HOOK_MEMORY_LIMIT_BYTES,
  DEFAULT_HOOK_BATCH_BUDGET_MS,
  DEFAULT_HOOK_COMPILE_BUDGET_MS,
  DEFAULT_HOOK_MAX_STACK_BYTES,
  HOOK_DISABLE_AFTER_CONSECUTIVE_FAILURES,
  HOOK_LOG_LINES_PER_SECOND,
  HOOK_TAG_NAMES_COUNTED,
  HOOK_FAIL_POLICY,
  type HookSettings,
  type HookFailPolicy,
} from "./settings.ts";
export { fixChecksums, internetChecksum, CHECKSUM_OUTCOME, type ChecksumFixResult, type ChecksumOutcome } from "../packet/checksums.ts";
export { decodeOffsets, LINKTYPE, ETHERTYPE, IP_PROTOCOL, ipProtocolName, type PacketOffsets } from "../packet/packet-offsets.ts";
