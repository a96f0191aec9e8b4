// Settings of `probe rpcapd`: rpcapd's flags and config-file keys merged once into a frozen,
// zod-validated object. Timeouts and limits are named with units and reasons.
import { lazySchema, z } from "./zod.ts";
import { hookConfigSchema } from "./hook-config.ts";
import { logConfigSchema } from "./log-config.ts";

/** IANA-registered RPCAP port where the daemon listens (rpcap-protocol.h RPCAP_DEFAULT_NETPORT). */
export const RPCAP_DEFAULT_PORT = 2002;
/** Port a collector listens on for active connections (RPCAP_DEFAULT_NETPORT_ACTIVE). */
export const RPCAP_DEFAULT_ACTIVE_PORT = 2003;
/**
 * A connection must authenticate within this time (libpcap RPCAP_TIMEOUT_INIT, 90 s): an
 * unauthenticated peer holding a socket open costs the daemon and tells us nothing.
 */
export const DEFAULT_AUTH_TIMEOUT_MS = 90_000;
/**
 * An authenticated control connection with no capture running is closed after this long
 * without a message (libpcap RPCAP_TIMEOUT_RUNTIME, 180 s).
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 180_000;
/** Wait between attempts to reach an active-mode collector (libpcap's RPCAP_ACTIVE_WAIT, 30 s). */
export const DEFAULT_ACTIVE_RETRY_MS = 30_000;
/** Per-session bound on data waiting for a slow data-channel reader before drops are counted. */
export const DEFAULT_DATA_QUEUE_BYTES = 16 * 1024 * 1024;
/** Largest control message payload accepted: a maximal UPDATEFILTER (8192 insns * 8 + 8) plus slack. */
export const DEFAULT_MAX_CONTROL_PLEN = 128 * 1024;
/** Concurrent control connections; beyond it new ones get an error and are closed. */
export const DEFAULT_MAX_SESSIONS = 64;
/**
 * Concurrent passive connections from one address (IPv4, or IPv6 /64). A libpcap client uses one
 * control connection per capture plus a short one to list interfaces; 8 covers a person with a
 * few Wireshark windows, and one address can no longer take all 64 slots with idle connections.
 */
export const DEFAULT_MAX_SESSIONS_PER_ADDRESS = 8;
/**
 * Auth deadline once more than 3/4 of the session slots are taken (instead of the 90 s
 * RPCAP_TIMEOUT_INIT): a real client sends AUTH right after connecting, and with password checks
 * bounded (src/daemon/auth) it is answered within a few seconds even under a flood, so 10 s only
 * cuts off connections that hold a slot without logging in.
 */
export const DEFAULT_PRESSURE_AUTH_TIMEOUT_MS = 10_000;
/** ExtraHop's default udpstr datagram size: a 1500-byte link minus IPv4 and UDP headers. */
export const UDPSTR_DEFAULT_MTU = 1472;
/** ExtraHop's upper bound on -t. */
export const UDPSTR_MAX_MTU = 65000;

/**
 * Built on first use (src/config/zod.ts): `probe capture` imports this module for the defaults
 * above (the rpcapd output's) and never validates rpcapd's settings.
 */
export const rpcapdConfigSchema = lazySchema(() => {
  const hostPort = z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) });
  return z
    .object({
      bindAddress: z.string().optional(),
      port: z.number().int().min(0).max(65535).default(RPCAP_DEFAULT_PORT),
      ipv4Only: z.boolean().default(false),
      hostListFile: z.string().optional(),
      /** Hosts from the config file's PassiveClient lines (merged with the -l file). */
      passiveClients: z.array(z.string()).default([]),
      nullAuth: z.boolean().default(false),
      active: z.array(hostPort).default([]),
      activeOnly: z.boolean().default(false),
      daemonize: z.boolean().default(false),
      saveConfigFile: z.string().optional(),
      configFile: z.string().optional(),
      tls: z.boolean().default(false),
      tlsKey: z.string().default("key.pem"),
      tlsCert: z.string().default("cert.pem"),
      preselectedInterface: z.string().optional(),
      /** inetd mode (libpcap's `rpcapd -i`): serve the one connection on standard input/output. */
      inetd: z.boolean().default(false),
      /** `--interfaces`: the only interfaces listed and openable (libpcap#1301); undefined = all. */
      interfaces: z.array(z.string().min(1)).min(1).optional(),
      /** udpstr packing on UDP data channels: 0 = off (plain RPCAP, the default here). */
      udpstrMtu: z.number().int().min(0).max(UDPSTR_MAX_MTU).default(0),
      /** libpcap 1.11's fixed data port (libpcap#1120): 0 = a fresh ephemeral port per capture. */
      dataPort: z.number().int().min(0).max(65535).default(0),
      usersFile: z.string().optional(),
      authTimeoutMs: z.number().int().min(100).default(DEFAULT_AUTH_TIMEOUT_MS),
      idleTimeoutMs: z.number().int().min(100).default(DEFAULT_IDLE_TIMEOUT_MS),
      activeRetryMs: z.number().int().min(50).default(DEFAULT_ACTIVE_RETRY_MS),
      dataQueueBytes: z.number().int().min(64 * 1024).default(DEFAULT_DATA_QUEUE_BYTES),
      maxControlPlen: z.number().int().min(1024).default(DEFAULT_MAX_CONTROL_PLEN),
      maxSessions: z.number().int().min(1).default(DEFAULT_MAX_SESSIONS),
      maxSessionsPerAddress: z.number().int().min(1).default(DEFAULT_MAX_SESSIONS_PER_ADDRESS),
      pressureAuthTimeoutMs: z.number().int().min(100).default(DEFAULT_PRESSURE_AUTH_TIMEOUT_MS),
      /** Accept system-account passwords although the session captures with the daemon's rights. */
      systemAccountsShareCapture: z.boolean().default(false),
    })
    .extend(hookConfigSchema.unwrap().shape)
    .extend(logConfigSchema.unwrap().shape);
});

export type RpcapdConfig = Readonly<z.infer<typeof rpcapdConfigSchema>>;

/**
 * rpcapd's config file (rpcapd/fileconf.c): `key = value` lines, '#' comments. Keys:
 * ActiveClient = host,port (repeatable), PassiveClient = host (repeatable), NullAuthPermit = YES|NO.
 */
export interface RpcapdFileSettings {
  active: { host: string; port: number }[];
  passiveClients: string[];
  nullAuth: boolean;
}

export function parseRpcapdConfigFile(text: string): RpcapdFileSettings {
  const settings: RpcapdFileSettings = { active: [], passiveClients: [], nullAuth: false };
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`line ${index + 1}: expected 'key = value'`);
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).trim();
    switch (key) {
      case "activeclient": {
        const [host, portText] = value.split(/[,\s]+/);
        const port = portText ? Number(portText) : RPCAP_DEFAULT_ACTIVE_PORT;
        if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
          throw new Error(`line ${index + 1}: ActiveClient wants 'host,port'`);
        }
        settings.active.push({ host, port });
        break;
      }
      case "passiveclient":
        for (const host of value.split(/[,\s]+/).filter(Boolean)) settings.passiveClients.push(host);
        break;
      case "nullauthpermit":
        settings.nullAuth = /^yes$/i.test(value);
        break;
      default:
        throw new Error(`line ${index + 1}: unknown key '${line.slice(0, eq).trim()}'`);
    }
  });
  return settings;
}

export function formatRpcapdConfigFile(settings: RpcapdFileSettings): string {
  const lines = ["# probe rpcapd configuration (rpcapd's format)"];
  for (const a of settings.active) lines.push(`ActiveClient = ${a.host},${a.port}`);
  for (const p of settings.passiveClients) lines.push(`PassiveClient = ${p}`);
  lines.push(`NullAuthPermit = ${settings.nullAuth ? "YES" : "NO"}`);
  return `${lines.join("\n")}\n`;
}
