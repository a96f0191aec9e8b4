// Loaded before every test file (bunfig.toml). Live captures lend their batches (a view of shared
// memory, reused once the consumer's call returns: isLentBatch); with this set, the memory is
// poisoned as soon as it is freed, so a consumer that keeps a lent batch without copying it reads
// garbage in every test instead of only when the capture worker happens to refill the slot.
// Child processes (dist/probe) inherit it.
process.env.PROBE_DEBUG_POISON_LENT_BATCHES ??= "1";
