// The pipeline: inputs → stages → outputs, declared once in a PipelineSpec (spec.ts) and run by
// one runner (runner.ts); kinds are registered in registry.ts. Also: bounded per-consumer queues,
// the hub that shares one capture among RPCAP sessions, and merging of several inputs.
export { ConsumerQueue, DEFAULT_CONSUMER_QUEUE_BYTES, type BatchSink, type ConsumerCounters } from "./consumer-queue.ts";
export { CaptureHub, type SharedCaptures, type SourceFactory, type StagesFactory, type SubscribeOptions, type Subscription } from "./capture-hub.ts";
export { HookStage, type HookStageCounters } from "./hook-stage.ts";
export type { PacketStage } from "./stage.ts";
export { StageChain } from "./stage-chain.ts";
export { StopProgress } from "./stop-progress.ts";
