// The RT output: libtrace's RT protocol served to libtrace tools and to probe's rt:// input,
// unreliable or reliable with a memory fifo or a disk spool that survives kill -9.
export { RtServer, RT_SERVER_DEFAULT_PORT, RT_STATUS_INTERVAL_MS, type RtServerOptions } from "./rt-server.ts";
export { DiskSpool, SpoolError, DEFAULT_SPOOL_SEGMENT_BYTES, CURSOR_WRITE_INTERVAL_MS, type SpoolRecovery } from "./fifo/disk-spool.ts";
export { MemoryFifo } from "./fifo/memory-fifo.ts";
export { SPOOL_FULL_POLICIES, type PacketFifo, type SpoolFullPolicy } from "./fifo/packet-fifo.ts";
export { prepareRtOutput } from "./rt-output.ts";
