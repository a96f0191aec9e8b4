// Settings of `probe pcap-over-ip`, validated once with zod and frozen.
import { z } from "zod";
import { MAX_SNAPLEN } from "./capture-config.ts";
import { hookConfigSchema } from "./hook-config.ts";

const hostPort = z.object({ host: z.string().min(1), port: z.number().int().min(0).max(65535) });

/** Per-consumer queue bound: how far one consumer may fall behind before the policy applies. */
export const DEFAULT_PCAP_OVER_IP_QUEUE_BYTES = 16 * 1024 * 1024;

export const pcapOverIpConfigSchema = z
  .object({
    interface: z.string().min(1).optional(),
    from: z.array(z.string()).default([]),
    filter: z.string().default(""),
    snaplen: z.number().int().min(1).max(MAX_SNAPLEN).default(MAX_SNAPLEN),
    listen: z.array(hostPort).default([]),
    connect: z.array(hostPort).default([]),
    allow: z.array(z.string()).default([]),
    nanoseconds: z.boolean().default(false),
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    tlsCa: z.string().optional(),
    connectTls: z.boolean().default(false),
    connectInsecure: z.boolean().default(false),
    slowConsumer: z.enum(["drop", "disconnect"]).default("drop"),
    queueBytes: z.number().int().min(64 * 1024).default(DEFAULT_PCAP_OVER_IP_QUEUE_BYTES),
    bufferKiB: z.number().int().min(0).default(0),
  })
  .extend(hookConfigSchema.shape)
  .refine((c) => !(c.interface && c.from.length > 0), { message: "give -i INTERFACE or --from URL..., not both" })
  .refine((c) => (c.tlsCert === undefined) === (c.tlsKey === undefined), { message: "--tls-cert and --tls-key go together" })
  // --tls-ca serves two ends: client certificates on a TLS listener, and the server certificate
  // of --connect-tls peers and tls:// --from sources.
  .refine((c) => c.tlsCa === undefined || c.tlsCert !== undefined || c.connectTls || c.from.length > 0, {
    message: "--tls-ca needs --tls-cert and --tls-key (mutual TLS), --connect-tls or --from",
  });

export type PcapOverIpConfig = Readonly<z.infer<typeof pcapOverIpConfigSchema>>;
