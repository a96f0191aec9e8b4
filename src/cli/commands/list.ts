// `probe list`: the capture interfaces, like `tcpdump -D`, with their addresses; --json for tools.
import { listInterfaces, type CaptureInterface } from "../../capture/libpcap/devices.ts";
import { PcapIfFlag } from "../../capture/libpcap/constants.ts";
import { parseCommandLine } from "../parse-options.ts";
import { ExitCode } from "../usage-error.ts";

export const LIST_HELP = `Usage: probe list [--json]

List the interfaces probe can capture on, numbered like 'tcpdump -D', with their flags
and IPv4/IPv6 addresses. --json prints an array of
{name, description, flags, loopback, up, running, addresses:[{family, addr, netmask?, broadaddr?, dstaddr?}]}.

      --json    the list as JSON
  -h, --help    this text
`;

const connectionStatus = ["", "Connected", "Disconnected", "Not applicable"] as const;

export function formatInterfaceLine(index: number, device: CaptureInterface): string {
  const flags: string[] = [];
  if (device.up) flags.push("Up");
  if (device.running) flags.push("Running");
  if (device.flags & PcapIfFlag.WIRELESS) flags.push("Wireless");
  if (device.loopback) flags.push("Loopback");
  const status = connectionStatus[(device.flags & PcapIfFlag.CONNECTION_STATUS_MASK) >> 4];
  if (status && !device.loopback) flags.push(status);
  const description = device.description ? ` (${device.description})` : "";
  const lines = [`${index}.${device.name}${description}${flags.length ? ` [${flags.join(", ")}]` : ""}`];
  for (const a of device.addresses) {
    const extra = [a.netmask && `netmask ${a.netmask}`, a.broadaddr && `broadcast ${a.broadaddr}`, a.dstaddr && `peer ${a.dstaddr}`]
      .filter(Boolean)
      .join(" ");
    lines.push(`    ${a.family} ${a.addr}${extra ? ` ${extra}` : ""}`);
  }
  return lines.join("\n");
}

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const LIST_OPTIONS = {
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export function runList(argv: string[]): number {
  const { values } = parseCommandLine("list", argv, LIST_OPTIONS);
  if (values.help) {
    process.stdout.write(LIST_HELP);
    return ExitCode.OK;
  }
  const devices = listInterfaces();
  if (values.json) {
    process.stdout.write(`${JSON.stringify(devices, null, 2)}\n`);
  } else {
    process.stdout.write(`${devices.map((d, i) => formatInterfaceLine(i + 1, d)).join("\n")}\n`);
  }
  return ExitCode.OK;
}
