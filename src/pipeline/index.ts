// The pipeline between capture and outputs: bounded per-consumer queues, the hub that shares
// one capture among consumers, and the stage that runs operator hooks on a consumer's batches.
export { ConsumerQueue, DEFAULT_CONSUMER_QUEUE_BYTES, type BatchSink, type ConsumerCounters } from "./consumer-queue.ts";
export { CaptureHub, type SourceFactory, type SubscribeOptions, type Subscription } from "./capture-hub.ts";
export { HookStage, type HookStageOptions, type HookStageCounters, type RecordTags } from "./hook-stage.ts";
