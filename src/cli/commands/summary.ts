// `probe summary`: a live capture summary of one interface, one line a second (packets/s,
// bytes/s, kernel drops), until Ctrl-C or --seconds.
import { chooseDefaultInterface } from "../../capture/default-interface.ts";
import { listInterfaces } from "../../capture/libpcap/devices.ts";
import { LiveCaptureSource } from "../../capture/live-capture-source.ts";
import { parseCommandLine, parseInteger } from "../parse-options.ts";
import { ExitCode } from "../usage-error.ts";

export const SUMMARY_HELP = `Usage: probe summary [-i INTERFACE] [-f FILTER] [--seconds N]

probe summary captures on INTERFACE (default: the first interface that is up,
running and not loopback) and prints one line a second: packets and bytes in that second,
totals, and packets dropped by the kernel. Stops on Ctrl-C or after --seconds.

  -i, --interface NAME  interface to capture on (see 'probe list')
  -f, --filter EXPR     tcpdump filter expression
      --seconds N       stop after N seconds
  -h, --help            this text
`;

const SUMMARY_INTERVAL_MS = 1000;

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const SUMMARY_OPTIONS = {
  interface: { type: "string", short: "i" },
  filter: { type: "string", short: "f" },
  seconds: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export async function runSummary(argv: string[]): Promise<number> {
  const { values } = parseCommandLine("summary", argv, SUMMARY_OPTIONS);
  if (values.help) {
    process.stdout.write(SUMMARY_HELP);
    return ExitCode.OK;
  }
  const seconds = parseInteger("--seconds", values.seconds, 1, 365 * 86400);
  const iface = values.interface ?? chooseDefaultInterface(listInterfaces());
  const source = new LiveCaptureSource({ interface: iface, ...(values.filter ? { filter: values.filter } : {}) });
  let packets = 0;
  let bytes = 0;
  let totalPackets = 0;
  let totalBytes = 0;
  const ended = Promise.withResolvers<void>();
  await source.start({
    onBatch(batch) {
      packets += batch.count;
      bytes += batch.bytes.byteLength - 16 * batch.count;
    },
    onEnd: () => ended.resolve(),
  });
  process.stderr.write(`probe: summarising ${iface} (Ctrl-C to stop)\n`);
  const started = Date.now();
  const timer = setInterval(async () => {
    totalPackets += packets;
    totalBytes += bytes;
    const stats = await source.stats().catch(() => undefined);
    const elapsed = Math.round((Date.now() - started) / 1000);
    process.stdout.write(
      `${new Date().toISOString()} ${iface}: ${packets} pkt/s ${bytes} B/s total ${totalPackets} pkts ${totalBytes} B` +
        ` kernel-drops ${stats?.kernel?.dropped ?? "?"}\n`,
    );
    packets = 0;
    bytes = 0;
    if (seconds !== undefined && elapsed >= seconds) ended.resolve();
  }, SUMMARY_INTERVAL_MS);
  const stop = () => ended.resolve();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  await ended.promise;
  clearInterval(timer);
  await source.stop();
  return ExitCode.OK;
}
