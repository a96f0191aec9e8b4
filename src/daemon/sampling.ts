// RPCAP SETSAMPLING applied for real, per client, after the pipeline's shared stages: the
// Sampler is the pipeline's sampling stage's (src/pipeline/stages/sampling.ts).
export { Sampler, type Sampling } from "../pipeline/stages/sampling.ts";
