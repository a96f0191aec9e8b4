// The default serve mode (`probe` with no command, what `npm start` runs): one capture hub
// behind an RPCAP daemon and a PCAP-over-IP server, both on loopback unless told otherwise,
// printing the exact commands that read from them.
import { chooseDefaultInterface } from "../../capture/default-interface.ts";
import { listInterfaces } from "../../capture/libpcap/devices.ts";
import { parseHostPort } from "../../config/addresses.ts";
import { pcapOverIpConfigSchema } from "../../config/pcap-over-ip-config.ts";
import {
  DEFAULT_ACTIVE_RETRY_MS,
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_DATA_QUEUE_BYTES,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONTROL_PLEN,
  DEFAULT_MAX_SESSIONS,
  RPCAP_DEFAULT_PORT,
} from "../../config/rpcapd-config.ts";
import { Authenticator } from "../../daemon/auth/index.ts";
import { RpcapDaemon } from "../../daemon/rpcapd.ts";
import { stderrLogger } from "../../logging/index.ts";
import { PCAP_OVER_IP_DEFAULT_PORT } from "../../outputs/pcap-over-ip/pcap-over-ip-server.ts";
import { CaptureHub } from "../../pipeline/capture-hub.ts";
import { parseCommandLine } from "../parse-options.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hookConfigFromFlags, startHooks } from "../hook-options.ts";
import { hookConfigSchema } from "../../config/hook-config.ts";
import { validated } from "../validated.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { ExitCode, UsageError } from "../usage-error.ts";
import { startPcapOverIp } from "./pcap-over-ip.ts";
import { METRICS_CLI_OPTION, METRICS_OPTION_HELP, startMetricsOption } from "../metrics-option.ts";
import { captureHubCollector, pcapOverIpCollector, rpcapdCollector } from "../../metrics/index.ts";

export const SERVE_HELP = `Usage: probe [-i INTERFACE] [-f FILTER] [--pcap-over-ip ADDR:PORT] [--rpcap ADDR:PORT]
             [--no-rpcap] [--users FILE]

With no command, probe serves one capture two ways at once:
  PCAP-over-IP on 127.0.0.1:${PCAP_OVER_IP_DEFAULT_PORT}  (tshark -i TCP@127.0.0.1:${PCAP_OVER_IP_DEFAULT_PORT})
  RPCAP        on 127.0.0.1:${RPCAP_DEFAULT_PORT}   (probe capture -i rpcap://127.0.0.1/IFACE -w -)
Both bind to loopback by default: neither protocol encrypts, and PCAP-over-IP has no
authentication. RPCAP allows NULL authentication on loopback unless --users is given.

  -i, --interface NAME       interface (default: first up, running, non-loopback one)
  -f, --filter EXPR          filter for the PCAP-over-IP stream
      --pcap-over-ip A:P     where to serve PCAP-over-IP
      --rpcap A:P            where the RPCAP daemon listens
      --no-rpcap             serve PCAP-over-IP only
      --users FILE           RPCAP password file (then NULL authentication is refused)
${METRICS_OPTION_HELP}  -h, --help                 this text
${HOOK_OPTIONS_HELP}Hooks apply to both outputs.
For everything else use 'probe pcap-over-ip' and 'probe rpcapd'.
`;

export async function runServe(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseCommandLine("probe", argv, {
    interface: { type: "string", short: "i" },
    filter: { type: "string", short: "f" },
    "pcap-over-ip": { type: "string" },
    rpcap: { type: "string" },
    "no-rpcap": { type: "boolean" },
    users: { type: "string" },
    help: { type: "boolean", short: "h" },
    ...METRICS_CLI_OPTION,
    ...HOOK_CLI_OPTIONS,
  });
  if (v.help) {
    process.stdout.write(SERVE_HELP);
    return ExitCode.OK;
  }
  if (positionals.length > 0) throw new UsageError(`unknown command '${positionals[0]}'`);
  const parse = (flag: string, text: string | undefined, port: number) => {
    try {
      return text ? parseHostPort(text, port) : { host: "127.0.0.1", port };
    } catch (error) {
      throw new UsageError(`${flag}: ${(error as Error).message}`);
    }
  };
  const poipAddress = parse("--pcap-over-ip", v["pcap-over-ip"], PCAP_OVER_IP_DEFAULT_PORT);
  const rpcapAddress = parse("--rpcap", v.rpcap, RPCAP_DEFAULT_PORT);
  const iface = v.interface ?? chooseDefaultInterface(listInterfaces());
  const log = stderrLogger();
  const hookConfig = validated("probe", hookConfigSchema, hookConfigFromFlags(v));
  const hooks = await startHooks({ config: hookConfig, logger: log, interfaceName: iface });
  const hub = new CaptureHub();

  const poip = await startPcapOverIp(
    pcapOverIpConfigSchema.parse({ interface: iface, filter: v.filter ?? "", listen: [poipAddress] }),
    hub,
    log,
    hooks,
  );
  let rpcap: RpcapDaemon | undefined;
  if (!v["no-rpcap"]) {
    const authenticator = await Authenticator.create({ nullAuth: !v.users, ...(v.users ? { usersFile: v.users } : {}) });
    rpcap = new RpcapDaemon({
      listen: { host: rpcapAddress.host, port: rpcapAddress.port, ipv4Only: false },
      active: [],
      authenticator,
      udpstrMtu: 0,
      dataPort: 0,
      authTimeoutMs: DEFAULT_AUTH_TIMEOUT_MS,
      idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
      activeRetryMs: DEFAULT_ACTIVE_RETRY_MS,
      dataQueueBytes: DEFAULT_DATA_QUEUE_BYTES,
      maxControlPlen: DEFAULT_MAX_CONTROL_PLEN,
      maxSessions: DEFAULT_MAX_SESSIONS,
      hub,
      ...(hooks ? { transformBatch: (batch: PacketBatch) => hooks.stage.apply(batch).batch } : {}),
      log,
    });
    try {
      await rpcap.start();
    } catch (error) {
      await poip.stop();
      await hub.close();
      throw error;
    }
  }
  const metrics = startMetricsOption(
    v.metrics,
    [captureHubCollector(hub), pcapOverIpCollector(poip.server), ...(rpcap ? [rpcapdCollector(rpcap)] : [])],
    log,
  );
  const poipPort = poip.server.listening[0]?.port;
  const lines = [
    `probe is serving ${iface}:`,
    `  tshark -i TCP@${poipAddress.host}:${poipPort}`,
    `  nc ${poipAddress.host} ${poipPort} | tcpdump -n -r -`,
  ];
  if (rpcap) lines.push(`  probe capture -i rpcap://${rpcapAddress.host}:${rpcap.port}/${iface} -w - | tcpdump -n -r -`);
  lines.push("Ctrl-C to stop.");
  process.stderr.write(`${lines.join("\n")}\n`);

  const signal = Promise.withResolvers<void>();
  process.on("SIGINT", () => signal.resolve());
  process.on("SIGTERM", () => signal.resolve());
  const failure = await Promise.race([signal.promise.then(() => undefined), poip.ended]);
  await metrics?.server.stop();
  await rpcap?.stop();
  await poip.stop();
  await hub.close();
  if (hooks) for (const line of hooks.summaryLines()) log.info(line);
  hooks?.close();
  if (failure) throw failure;
  return ExitCode.OK;
}
