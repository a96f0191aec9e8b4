// Settings of `probe rt`, validated once with zod and frozen.
import { z } from "zod";
import { MAX_SNAPLEN } from "./capture-config.ts";

const hostPort = z.object({ host: z.string().min(1), port: z.number().int().min(0).max(65535) });

/** Reliable fifo cap by default: 256 MiB, minutes of a busy link, small enough for any probe host. */
export const DEFAULT_RT_FIFO_BYTES = 256 * 1024 * 1024;
/** Unreliable per-client bound: ~2 s of 100 Mbit/s. */
export const DEFAULT_RT_QUEUE_BYTES = 32 * 1024 * 1024;
/** Smallest fifo: a few of the largest records (24 + 16 + 262144 bytes) must fit. */
const MIN_FIFO_BYTES = 1024 * 1024;

export const rtConfigSchema = z
  .object({
    interface: z.string().min(1).optional(),
    readFile: z.string().min(1).optional(),
    filter: z.string().default(""),
    snaplen: z.number().int().min(1).max(MAX_SNAPLEN).default(MAX_SNAPLEN),
    bufferKiB: z.number().int().min(0).default(0),
    promiscuous: z.boolean().default(true),
    direction: z.enum(["inout", "in", "out"]).default("inout"),
    immediate: z.boolean().default(false),
    listen: z.array(hostPort).default([]),
    reliable: z.boolean().default(false),
    spool: z.string().min(1).optional(),
    spoolMaxBytes: z.number().int().min(MIN_FIFO_BYTES).default(DEFAULT_RT_FIFO_BYTES),
    spoolFull: z.enum(["block", "drop-oldest", "drop-new"]).default("block"),
    spoolFsyncMs: z.number().int().min(0).max(60_000).default(0),
    spoolSegmentBytes: z.number().int().min(64 * 1024).optional(),
    statusIntervalMs: z.number().int().min(0).max(3_600_000).default(1_000).refine((ms) => ms === 0 || ms >= 50, { message: "0 (off) or at least 50 ms" }),
    slowConsumer: z.enum(["drop", "disconnect"]).default("drop"),
    queueBytes: z.number().int().min(64 * 1024).default(DEFAULT_RT_QUEUE_BYTES),
  })
  .refine((c) => !(c.interface && c.readFile), { message: "give -i INTERFACE or -r FILE, not both" })
  .refine((c) => c.spool === undefined || c.reliable, { message: "--spool needs --reliable (an unreliable server keeps nothing)" });

export type RtConfig = Readonly<z.infer<typeof rtConfigSchema>>;
