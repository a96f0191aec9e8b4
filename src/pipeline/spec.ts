// PipelineSpec: the whole of what probe runs, declared once — inputs, an ordered list of
// stages, outputs — as one zod schema. Every command turns its flags into one of these and
// hands it to the runner (src/pipeline/runner.ts); `probe run FILE` reads one from YAML or JSON;
// `--print-pipeline` prints the one a command line makes. Parsed specs are deeply frozen.
//
// Adding a kind: one `kindSchema("name", (kind) => z.strictObject({ kind, ... }))` listed in the
// discriminated union below (inputSpecSchema, stageSpecSchema or outputSpecSchema) and one builder
// in src/pipeline/registry.ts. Nothing else changes.
//
// Schemas are built on first use (src/config/zod.ts): importing this module builds the unions'
// shells; validating a spec builds the top level and the kinds that spec holds.
import { UDPSTR_DEFAULT_MAX_SENDERS, UDPSTR_DEFAULT_MAX_SENDERS_PER_ADDRESS, UDPSTR_DEFAULT_SENDER_IDLE_MS } from "../protocols/udpstr/index.ts";
import { kindSchema, lazySchema, z } from "../config/zod.ts";
import { MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";
import { hookSettingsSchema } from "../config/hook-config.ts";
import { DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_ADDRESS, DEFAULT_PRESSURE_AUTH_TIMEOUT_MS } from "../config/rpcapd-config.ts";
import { DEFAULT_RT_ACK_TIMEOUT_MS, DEFAULT_RT_FIFO_BYTES, DEFAULT_RT_QUEUE_BYTES, MIN_RT_FIFO_BYTES } from "../config/rt-config.ts";
import { rotatingFileSpecSchema } from "../config/rotating-file-config.ts";
import { onlyDirectionSchema, processingStageSchemas } from "./stages/processing-spec.ts";

/** A port as operators type it; 0 asks the system for a free one (tests, ephemeral listeners). */
const port = () => z.number().int().min(0).max(65535);
export const hostPortSchema = lazySchema(() => z.strictObject({ host: z.string().min(1), port: port() }));

// ---------------------------------------------------------------------------------- inputs

const inputCommon = () => ({
  /** What hooks see as pkt.interfaceName and pcapng IDBs carry; defaults per kind. */
  name: z.string().min(1).optional(),
  /** Capture filter (tcpdump syntax), run by the kernel for live inputs, else in userland. */
  filter: z.string().default(""),
  snaplen: z.number().int().min(1).max(MAXIMUM_SNAPLEN).default(MAXIMUM_SNAPLEN),
});

export const interfaceInputSchema = kindSchema("interface", (kind) =>
  z.strictObject({
    kind,
    ...inputCommon(),
    device: z.string().min(1),
    promiscuous: z.boolean().default(true),
    /** Kernel buffer in KiB, like tcpdump -B; 0 = libpcap's default. */
    bufferKiB: z.number().int().min(0).max(4 * 1024 * 1024).default(0),
    immediate: z.boolean().default(false),
    direction: z.enum(["inout", "in", "out"]).default("inout"),
    /** Who reads the interface: Linux's TPACKET_V3 ring read directly (least CPU) or libpcap (docs/capture.md). */
    engine: z.enum(["ring", "libpcap"]).default("ring"),
  }),
);

export const fileInputSchema = kindSchema("file", (kind) =>
  z.strictObject({
    kind,
    ...inputCommon(),
    path: z.string().min(1),
    /** Replay at the pace of the file's timestamps instead of as fast as outputs take it. */
    realtime: z.boolean().default(false),
    /** Who reads the file: probe's streaming reader or libpcap's pcap_open_offline. */
    reader: z.enum(["probe", "libpcap"]).default("probe"),
  }),
);

export const rpcapInputSchema = kindSchema("rpcap", (kind) =>
  z.strictObject({
    kind,
    ...inputCommon(),
    /** rpcap://[USER:PASS@]HOST[:PORT]/IFACE or rpcaps://... */
    url: z.string().min(1),
    promiscuous: z.boolean().default(true),
    /** rpcaps://: CA file the server certificate must chain to (default the built-in public CAs). */
    tlsCa: z.string().min(1).optional(),
    /** rpcaps://: accept any server certificate (logged). */
    insecure: z.boolean().default(false),
  }),
);

export const pcapOverIpInputSchema = kindSchema("pcap-over-ip", (kind) =>
  z.strictObject({
    kind,
    ...inputCommon(),
    /** tcp://HOST:PORT, TCP@HOST:PORT or tls://HOST:PORT */
    url: z.string().min(1),
    /** Redial with backoff (0.5 s doubling to 30 s) after a failure (the merge goes on with the other inputs). */
    reconnect: z.boolean().default(true),
    /** Also redial after the server closed the stream cleanly (--from keeps serving; capture ends). */
    reconnectAfterCleanEnd: z.boolean().default(false),
    /** tls://: CA file the server certificate must chain to (default the built-in public CAs). */
    tlsCa: z.string().min(1).optional(),
    /** tls://: client certificate and key, for servers that require mutual TLS. */
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    /** tls://: accept any server certificate (logged). */
    insecure: z.boolean().default(false),
  }),
);

export const udpstrInputSchema = kindSchema("udpstr", (kind) =>
  z.strictObject({
    kind,
    ...inputCommon(),
    listen: hostPortSchema,
    /** Link type of the forwarded frames: udpstr does not carry it (1 = Ethernet). */
    linktype: z.number().int().min(0).max(0xffff).default(1),
    /** SO_RCVBUF: a burst of ~5000 full datagrams while the event loop is busy. */
    receiveBufferBytes: z.number().int().min(0).max(1 << 30).default(8 * 1024 * 1024),
    /** Live loss report interval; 0 = only at exit. */
    reportSeconds: z.number().int().min(0).max(86400).default(5),
    /** CIDR blocks whose senders are read (--allow); empty = everyone who can reach the port. Others are counted and dropped. */
    allow: z.array(z.string().min(1)).default([]),
    /** Most senders (source address and port) tracked at once: bounds what random source ports can make the receiver keep. */
    maxSenders: z.number().int().min(1).max(4096).default(UDPSTR_DEFAULT_MAX_SENDERS),
    /** Most senders from one address at once, so one host cycling source ports leaves room for the others. */
    maxSendersPerAddress: z.number().int().min(1).max(4096).default(UDPSTR_DEFAULT_MAX_SENDERS_PER_ADDRESS),
    /** A sender silent this long is evicted (its figures kept in the summary's evicted total). */
    senderIdleSeconds: z.number().int().min(1).max(86400).default(UDPSTR_DEFAULT_SENDER_IDLE_MS / 1000),
  }),
);

export const rtInputSchema = kindSchema("rt", (kind) =>
  z.strictObject({
    kind,
    ...inputCommon(),
    /**
     * rt://HOST:PORT[?state=FILE]: a libtrace RT server (probe's rt output, WDCap). FILE keeps
     * (stream id, last sequence written) so a restart drops what a reliable sender re-sends.
     * Read like a file (nothing dropped): each batch is acknowledged once the outputs took it.
     */
    url: z.string().min(1),
    /** Redial with backoff (0.5 s doubling to 30 s) after the stream opened and then dropped. */
    reconnect: z.boolean().default(true),
  }),
);

/**
 * Active-mode RPCAP probes (libpcap's `rpcapd -a`, `probe rpcapd --active`) dialling in, as one
 * stream (libpcap#960): each is captured with AUTH (NULL, or username/password), OPEN of
 * `device` (default: the probe's preselected interface, else its first) and STARTCAP with
 * `filter` run on the probe.
 */
export const rpcapActiveInputSchema = kindSchema("rpcap-active", (kind) =>
  z.strictObject({
    kind,
    ...inputCommon(),
    listen: hostPortSchema,
    device: z.string().min(1).optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    /** Names for probe addresses ("10.0.0.5": "edge-1"), for logs and metrics. */
    probeNames: z.record(z.string(), z.string().min(1)).default({}),
    promiscuous: z.boolean().default(true),
    /** Ask for a UDP data channel read as udpstr (probes running `rpcapd -t MTU`). */
    udpstr: z.boolean().default(false),
    /** Only probes in these CIDR blocks may dial in (as `--allow`); empty = anyone. */
    allow: z.array(z.string().min(1)).optional(),
    /** Probes named at once (default MAX_ACTIVE_PROBES, src/capture/remote). */
    maxProbes: z.number().int().min(1).max(100_000).optional(),
    /** Connections from one address (default MAX_ACTIVE_CONNECTIONS_PER_ADDRESS). */
    maxConnectionsPerAddress: z.number().int().min(1).max(100_000).optional(),
    /** A connection not capturing this long after accept is closed (default ACTIVE_PROBE_SETUP_TIMEOUT_MS). */
    setupTimeoutMs: z.number().int().min(100).max(86_400_000).optional(),
    /**
     * Probes dial in with TLS (`rpcapd -a ... -S`): this side is the TLS client, as libpcap's
     * collector is, verifying each probe's certificate against its address (docs/collect.md).
     */
    tls: z
      .strictObject({
        /** CA file the probes' certificates must chain to (default the built-in public CAs). */
        ca: z.string().min(1).optional(),
        /** Accept any certificate (logged). */
        insecure: z.boolean().default(false),
      })
      .optional(),
  }).refine((spec) => !(spec.tls && spec.udpstr), { message: "tls cannot be combined with udpstr: the UDP data channel has no TLS", path: ["tls"] }),
);

export const inputSpecSchema = z.discriminatedUnion("kind", [
  interfaceInputSchema,
  fileInputSchema,
  rpcapInputSchema,
  pcapOverIpInputSchema,
  udpstrInputSchema,
  rtInputSchema,
  rpcapActiveInputSchema,
]);

// ---------------------------------------------------------------------------------- stages

export const snaplenStageSchema = kindSchema("snaplen", (kind) =>
  z.strictObject({
    kind,
    /** Bytes kept of each packet (like tcpdump -s, but after the merge and before the outputs). */
    bytes: z.number().int().min(1).max(MAXIMUM_SNAPLEN),
  }),
);

export const filterStageSchema = kindSchema("filter", (kind) =>
  z.strictObject({
    kind,
    /** tcpdump expression, compiled per link type and run in userland on every input's records. */
    expression: z.string().min(1),
  }),
);

export const samplingStageSchema = kindSchema("sampling", (kind) =>
  z.strictObject({
    kind,
    /** one-every-n keeps packets 1, n+1, 2n+1...; first-after-ms keeps the first after each interval. */
    method: z.enum(["one-every-n", "first-after-ms"]),
    value: z.number().int().min(1).max(0xffffffff),
  }),
);

export const hooksStageSchema = kindSchema("hooks", (kind) =>
  hookSettingsSchema
    .unwrap()
    .extend({
      kind,
      /** Hook files (JavaScript, docs/hooks.md), applied in this order. */
      files: z.array(z.string().min(1)).min(1).max(16, "at most 16 hooks"),
    })
    .strict(),
);

export const stageSpecSchema = z.discriminatedUnion("kind", [
  snaplenStageSchema,
  filterStageSchema,
  samplingStageSchema,
  hooksStageSchema,
  // anonymize, truncate-headers, checksums, direction (docs/stages.md)
  ...processingStageSchemas,
]);

// ---------------------------------------------------------------------------------- outputs

export const fileOutputSchema = kindSchema("file", (kind) =>
  z.strictObject({
    kind,
    /** A path, or "-" for standard output. */
    path: z.string().min(1),
    format: z.enum(["pcap", "pcapng"]).default("pcap"),
  }),
);

/** Per-consumer queue bound: how far one PCAP-over-IP consumer may fall behind (16 MiB). */
export const DEFAULT_PCAP_OVER_IP_QUEUE_BYTES = 16 * 1024 * 1024;

export const pcapOverIpOutputSchema = kindSchema("pcap-over-ip", (kind) =>
  z.strictObject({
    kind,
    /** Listeners; empty with no `connect` means 127.0.0.1:57012. */
    listen: z.array(hostPortSchema).default([]),
    /** Consumers to dial out to, redialled with backoff. */
    connect: z.array(hostPortSchema).default([]),
    /** CIDR blocks allowed to connect; empty = everyone who can reach a listener. */
    allow: z.array(z.string().min(1)).default([]),
    tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1).optional() }).optional(),
    connectTls: z.strictObject({ ca: z.string().min(1).optional(), insecure: z.boolean().default(false) }).optional(),
    slowConsumer: z.enum(["drop", "disconnect"]).default("drop"),
    queueBytes: z.number().int().min(64 * 1024).default(DEFAULT_PCAP_OVER_IP_QUEUE_BYTES),
    /** Forward only the packets a direction stage tagged in (or out); untagged ones are not sent. */
    onlyDirection: onlyDirectionSchema.optional(),
  }),
);

export const rpcapdOutputSchema = kindSchema("rpcapd", (kind) =>
  z.strictObject({
    kind,
    /** Where to listen; absent = active mode only. host absent = every address. */
    listen: z.strictObject({ host: z.string().min(1).optional(), port: port(), ipv4Only: z.boolean().default(false) }).optional(),
    /** Collectors to dial (active mode), redialled every activeRetryMs. */
    active: z.array(hostPortSchema).default([]),
    tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
    /** rpcapd's -f file (ActiveClient, PassiveClient, NullAuthPermit), reread on SIGHUP. */
    configFile: z.string().min(1).optional(),
    hostListFile: z.string().min(1).optional(),
    passiveClients: z.array(z.string().min(1)).default([]),
    nullAuth: z.boolean().default(false),
    usersFile: z.string().min(1).optional(),
    /** ExtraHop -i: the one interface clients may OPEN. */
    preselectedInterface: z.string().min(1).optional(),
    /** --interfaces (libpcap#1301): the only interfaces FINDALLIF lists and OPEN accepts. */
    interfaces: z.array(z.string().min(1)).min(1).optional(),
    /** inetd mode (libpcap's rpcapd -i): serve the one connection on standard input/output, then end the run. */
    inetd: z.boolean().default(false),
    /** udpstr packing on UDP data channels: 0 = plain RPCAP. */
    udpstrMtu: z.number().int().min(0).max(65000).default(0),
    dataPort: port().default(0),
    authTimeoutMs: z.number().int().min(100).default(90_000),
    idleTimeoutMs: z.number().int().min(100).default(180_000),
    activeRetryMs: z.number().int().min(50).default(30_000),
    dataQueueBytes: z.number().int().min(64 * 1024).default(16 * 1024 * 1024),
    maxControlPlen: z.number().int().min(1024).default(128 * 1024),
    maxSessions: z.number().int().min(1).default(DEFAULT_MAX_SESSIONS),
    /** Sessions from one address (IPv4, IPv6 /64): one peer cannot take every slot. */
    maxSessionsPerAddress: z.number().int().min(1).default(DEFAULT_MAX_SESSIONS_PER_ADDRESS),
    /** Auth deadline once 3/4 of the slots are taken (idle pre-auth connections are cut sooner). */
    pressureAuthTimeoutMs: z.number().int().min(100).default(DEFAULT_PRESSURE_AUTH_TIMEOUT_MS),
    /** Accept system-account passwords although the session captures with the daemon's rights. */
    systemAccountsShareCapture: z.boolean().default(false),
    /** Send sessions only the packets a direction stage tagged in (or out); untagged ones are not sent. */
    onlyDirection: onlyDirectionSchema.optional(),
  }),
);

export const udpstrOutputSchema = kindSchema("udpstr", (kind) =>
  z.strictObject({
    kind,
    target: hostPortSchema,
    /** Datagram size, udpstr header included (1472 = a 1500-byte link minus IPv4 and UDP headers). */
    mtu: z.number().int().min(37).max(65000).default(1472),
    /** SO_SNDBUF; 0 = the kernel's default. */
    sendBufferBytes: z.number().int().min(0).max(1 << 30).default(0),
  }),
);

export const rtOutputSchema = kindSchema("rt", (kind) =>
  z
    .strictObject({
      kind,
      /** Listeners; empty means 127.0.0.1:3435 (libtrace's default). RT has no authentication. */
      listen: z.array(hostPortSchema).default([]),
      /** One client at a time; every packet stays in the fifo until that client acknowledges it. */
      reliable: z.boolean().default(false),
      /** Reliable: keep the fifo on disk in this directory (survives kill -9); absent = memory. */
      spool: z.string().min(1).optional(),
      spoolMaxBytes: z.number().int().min(MIN_RT_FIFO_BYTES).default(DEFAULT_RT_FIFO_BYTES),
      /** When the fifo is full: hold (bounded, then drop), drop the oldest, or drop new packets. */
      spoolFull: z.enum(["block", "drop-oldest", "drop-new"]).default("block"),
      /** fdatasync the spool every N ms; 0 = OS-buffered. */
      spoolFsyncMs: z.number().int().min(0).max(60_000).default(0),
      spoolSegmentBytes: z.number().int().min(64 * 1024).optional(),
      /** STATUS period to the reliable client; 0 = none (tracestats counts STATUS as packets). */
      statusIntervalMs: z.number().int().min(0).max(3_600_000).default(1_000).refine((ms) => ms === 0 || ms >= 50, { message: "0 (off) or at least 50 ms" }),
      /** Reliable: close a client that has left sent records unacknowledged this long (frees the slot); 0 = never. */
      ackTimeoutMs: z.number().int().min(0).max(3_600_000).default(DEFAULT_RT_ACK_TIMEOUT_MS).refine((ms) => ms === 0 || ms >= 100, { message: "0 (never) or at least 100 ms" }),
      /** Unreliable: a client more than queueBytes behind is dropped from (counted) or disconnected. */
      slowConsumer: z.enum(["drop", "disconnect"]).default("drop"),
      queueBytes: z.number().int().min(64 * 1024).default(DEFAULT_RT_QUEUE_BYTES),
      /** After the inputs end (a replayed file), keep serving until a signal so clients drain the fifo. */
      keepServing: z.boolean().default(true),
    })
    .refine((o) => o.spool === undefined || o.reliable, { message: "spool needs reliable (an unreliable server keeps nothing)", path: ["spool"] }),
);

export const outputSpecSchema = z.discriminatedUnion("kind", [
  fileOutputSchema,
  pcapOverIpOutputSchema,
  rpcapdOutputSchema,
  udpstrOutputSchema,
  rtOutputSchema,
  // -w with rotation flags (docs/rotation.md)
  rotatingFileSpecSchema,
]);

// ---------------------------------------------------------------------------------- the whole

export const pipelineSpecSchema = lazySchema(() =>
  z
    .strictObject({
      inputs: z.array(inputSpecSchema).max(64, "at most 64 inputs").default([]),
      stages: z.array(stageSpecSchema).max(64, "at most 64 stages").default([]),
      outputs: z.array(outputSpecSchema).min(1, "at least one output").max(64, "at most 64 outputs"),
      /** Timestamp precision of the stream (pcap magic, pcapng if_tsresol). */
      precision: z.enum(["micro", "nano"]).default("micro"),
      /** Several inputs: how long a record may wait for a slower input before it goes out of order. */
      merge: z.strictObject({ windowMs: z.number().int().min(1).max(86_400_000).optional() }).default({}),
      /** Stop after this many packets have come in (before the stages, like tcpdump -c). */
      stopAfterPackets: z.number().int().min(1).optional(),
      /** No summary on standard error at the end. */
      quiet: z.boolean().default(false),
      /** --metrics: serve Prometheus metrics at http://HOST:PORT/metrics while the pipeline runs. */
      metrics: hostPortSchema.optional(),
    })
    .refine((s) => s.inputs.length > 0 || s.outputs.every((o) => o.kind === "rpcapd"), {
      message: "at least one input (only rpcapd outputs open their captures on demand)",
      path: ["inputs"],
    }),
);

export type PipelineSpec = Readonly<z.infer<typeof pipelineSpecSchema>>;
export type InputSpec = z.infer<typeof inputSpecSchema>;
export type StageSpec = z.infer<typeof stageSpecSchema>;
export type OutputSpec = z.infer<typeof outputSpecSchema>;
/** What a command builds before defaults apply (the schema's input type). */
export type PipelineSpecInput = z.input<typeof pipelineSpecSchema>;

/** One problem in a spec: where (a path of keys and indexes) and what. */
export interface SpecIssue {
  path: readonly (string | number)[];
  message: string;
  /** Keys the schema does not know, for an "unrecognized keys" issue: the caller quotes them escaped. */
  unknownKeys?: readonly string[];
}

/** Validates `raw`, returning the frozen spec or the issues (for the caller to locate and word). */
export function checkPipelineSpec(raw: unknown): { spec: PipelineSpec } | { issues: SpecIssue[] } {
  const result = pipelineSpecSchema.safeParse(raw);
  if (!result.success) {
    return {
      issues: result.error.issues.map((i) => ({
        path: i.path.filter((p) => typeof p !== "symbol") as (string | number)[],
        message: i.message,
        ...(i.code === "unrecognized_keys" ? { unknownKeys: i.keys } : {}),
      })),
    };
  }
  return { spec: deepFreeze(result.data) };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Default name of an input: what hooks see and pcapng IDBs carry (never a URL: it may hold a password). */
export function inputName(input: InputSpec): string {
  if (input.name) return input.name;
  switch (input.kind) {
    case "interface":
      return input.device;
    case "file":
      return input.path.split("/").pop() ?? input.path;
    case "rpcap": {
      const device = /\/([^/]*)$/.exec(input.url)?.[1];
      return device || "rpcap";
    }
    case "pcap-over-ip":
      return input.url.replace(/^[a-z]+:\/\/([^@]*@)?/i, "").replace(/^TCP@/i, "");
    case "udpstr":
      return `udpstr:${input.listen.port}`;
    case "rt":
      return input.url.replace(/^rt:\/\//i, "").replace(/\?.*$/, "");
    case "rpcap-active":
      return `rpcap-active:${input.listen.port}`;
  }
}
