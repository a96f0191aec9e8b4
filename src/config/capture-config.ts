// The capture command's settings as one zod schema: flags are parsed into this shape once,
// validated, and frozen; nothing downstream reads argv.
import { z } from "zod";
import { hookConfigSchema } from "./hook-config.ts";
import { MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";

/** libpcap's MAXIMUM_SNAPLEN; tcpdump's default -s. */
/** The largest -s accepted (libpcap's MAXIMUM_SNAPLEN). */
export const MAX_SNAPLEN = MAXIMUM_SNAPLEN;

export const captureConfigSchema = z
  .object({
    interface: z.string().min(1).optional(),
    readFile: z.string().min(1).optional(),
    writeTarget: z.string().min(1, "-w FILE (or -w - for standard output) is required"),
    filter: z.string().default(""),
    snaplen: z.number().int().min(1).max(MAX_SNAPLEN).default(MAX_SNAPLEN),
    count: z.number().int().min(1).optional(),
    format: z.enum(["pcap", "pcapng"]).default("pcap"),
    promiscuous: z.boolean().default(true),
    /** Kernel buffer in KiB, like tcpdump -B. */
    bufferKiB: z.number().int().min(0).max(4 * 1024 * 1024).default(0),
    immediate: z.boolean().default(false),
    precision: z.enum(["micro", "nano"]).default("micro"),
    direction: z.enum(["inout", "in", "out"]).default("inout"),
    /** Replay a file at the pace of its timestamps instead of as fast as possible. */
    realtime: z.boolean().default(false),
    /** Who reads -r FILE: our streaming reader or libpcap's pcap_open_offline. */
    reader: z.enum(["probe", "libpcap"]).default("probe"),
    quiet: z.boolean().default(false),
    /** tls:// and rpcaps://: CA file the server certificate must chain to (default the built-in public CAs). */
    tlsCa: z.string().min(1).optional(),
    /** tls:// only: client certificate and key for servers that require mutual TLS. */
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    /** tls:// and rpcaps://: do not verify the server certificate (logged). */
    tlsInsecure: z.boolean().default(false),
    /** tcp:// and tls://: redial with backoff after a failure (--no-reconnect turns it off). */
    reconnect: z.boolean().default(true),
  })
  // hooks (files, in order), hookFail, hookMemoryLimitBytes, hookBatchBudgetMs...
  .extend(hookConfigSchema.shape)
  .refine((c) => (c.tlsCert === undefined) === (c.tlsKey === undefined), { message: "--tls-cert and --tls-key go together" })
  .refine((c) => (c.interface === undefined) !== (c.readFile === undefined), {
    message: "give exactly one of -i INTERFACE or -r FILE",
  });

export type CaptureConfig = Readonly<z.infer<typeof captureConfigSchema>>;
