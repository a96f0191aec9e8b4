// A small seeded generator (xorshift32) so a benchmark's random choices repeat run to run
// (BENCH_SEED): the same fuzz, the same flood, the same corrupted bytes.

/** Numbers in [0, 1) from `seed`; seed 0 is taken as 1 (xorshift never leaves 0). */
export function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}
