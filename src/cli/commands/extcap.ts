// Wireshark extcap: probe, symlinked into Wireshark's extcap folder, is listed by `tshark -D`
// and Wireshark as two interfaces that capture from a remote probe (or any PCAP-over-IP or
// RPCAP server). Wireshark asks with --extcap-interfaces, --extcap-dlts and --extcap-config,
// then runs `--capture --fifo PATH` with the values the user chose; probe writes pcap to the
// fifo through its own capture command. Protocol: Wireshark's doc/extcap.adoc (sentences of
// the form `interface {value=...}{display=...}`), checked against Debian's tshark 4.0.
import { PROBE_VERSION } from "../version.ts";
import { parseCommandLine } from "../parse-options.ts";
import { ExitCode, UsageError } from "../usage-error.ts";

/** The interfaces probe offers Wireshark, one per remote protocol. */
export const EXTCAP_INTERFACES = {
  "probe-pcap-over-ip": { display: "probe: remote capture over PCAP-over-IP", defaultPort: 57012 },
  "probe-rpcap": { display: "probe: remote capture over RPCAP", defaultPort: 2002 },
} as const;
type ExtcapInterface = keyof typeof EXTCAP_INTERFACES;

/** Characters that would end or split an extcap sentence field. */
function field(text: string): string {
  return text.replace(/[{}\n\r]/g, " ");
}

export function extcapInterfacesText(): string {
  const lines = [`extcap {version=${PROBE_VERSION}}{help=probe --help}`];
  for (const [value, { display }] of Object.entries(EXTCAP_INTERFACES)) lines.push(`interface {value=${value}}{display=${display}}`);
  return `${lines.join("\n")}\n`;
}

/** The link type is the remote capture's; Ethernet is what Wireshark shows before it starts. */
export function extcapDltsText(): string {
  return "dlt {number=1}{name=EN10MB}{display=Ethernet (the remote capture's link type is used)}\n";
}

export function extcapConfigText(iface: ExtcapInterface): string {
  const port = EXTCAP_INTERFACES[iface].defaultPort;
  const args: string[] = [
    `arg {number=0}{call=--remote-host}{display=Remote host}{type=string}{required=true}{default=127.0.0.1}{tooltip=Address of the probe (or other server) to capture from}`,
    `arg {number=1}{call=--remote-port}{display=Remote port}{type=unsigned}{range=1,65535}{default=${port}}{tooltip=TCP port of the server}`,
  ];
  if (iface === "probe-rpcap") {
    args.push(
      `arg {number=2}{call=--remote-interface}{display=Remote interface}{type=string}{required=true}{default=eth0}{tooltip=Interface on the remote host (probe list there shows them)}`,
      `arg {number=3}{call=--remote-user}{display=User}{type=string}{tooltip=Empty for NULL authentication}`,
      `arg {number=4}{call=--remote-password}{display=Password}{type=password}`,
    );
  }
  args.push(
    `arg {number=5}{call=--tls}{display=Use TLS}{type=boolflag}{default=false}{tooltip=rpcaps:// or tls:// (the server must have a certificate)}`,
    `arg {number=6}{call=--tls-ca}{display=CA certificate}{type=fileselect}{mustexist=true}{tooltip=PEM file of the CA that signed the server's certificate}`,
  );
  return `${args.join("\n")}\n`;
}

/** The probe capture source URL for the chosen interface and values (exported for tests). */
export function extcapSourceUrl(iface: ExtcapInterface, v: { host: string; port: number; tls: boolean; remoteInterface?: string; user?: string; password?: string }): string {
  const host = v.host.includes(":") && !v.host.startsWith("[") ? `[${v.host}]` : v.host;
  if (iface === "probe-pcap-over-ip") return `${v.tls ? "tls" : "tcp"}://${host}:${v.port}`;
  const auth = v.user ? `${encodeURIComponent(v.user)}:${encodeURIComponent(v.password ?? "")}@` : "";
  return `${v.tls ? "rpcaps" : "rpcap"}://${auth}${host}:${v.port}/${encodeURIComponent(v.remoteInterface ?? "")}`;
}

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const EXTCAP_OPTIONS = {
  "extcap-interfaces": { type: "boolean" },
  "extcap-version": { type: "string" },
  "extcap-interface": { type: "string" },
  "extcap-dlts": { type: "boolean" },
  "extcap-config": { type: "boolean" },
  "extcap-capture-filter": { type: "string" },
  "extcap-reload-option": { type: "string" },
  "extcap-control-in": { type: "string" },
  "extcap-control-out": { type: "string" },
  capture: { type: "boolean" },
  fifo: { type: "string" },
  "remote-host": { type: "string" },
  "remote-port": { type: "string" },
  "remote-interface": { type: "string" },
  "remote-user": { type: "string" },
  "remote-password": { type: "string" },
  tls: { type: "boolean" },
  "tls-ca": { type: "string" },
  debug: { type: "boolean" },
  "debug-file": { type: "string" },
} as const;

/** True when Wireshark (or a user imitating it) runs probe as an extcap program. */
export function isExtcapInvocation(argv: readonly string[]): boolean {
  return argv.some((arg) => arg.startsWith("--extcap-"));
}

/**
 * Runs one extcap request. `capture` is the command that captures (probe's own `capture`,
 * given its argv), so the extcap path and `probe capture` are one path.
 */
export async function runExtcap(argv: string[], capture: (argv: string[]) => Promise<number>): Promise<number> {
  const { values: v } = parseCommandLine("extcap", argv, EXTCAP_OPTIONS);
  if (v["extcap-interfaces"]) {
    process.stdout.write(extcapInterfacesText());
    return ExitCode.OK;
  }
  const iface = v["extcap-interface"];
  if (!iface || !(iface in EXTCAP_INTERFACES)) {
    throw new UsageError(`extcap: --extcap-interface must be one of ${Object.keys(EXTCAP_INTERFACES).join(", ")}${iface ? `, not '${field(iface)}'` : ""}`);
  }
  const name = iface as ExtcapInterface;
  if (v["extcap-dlts"]) {
    process.stdout.write(extcapDltsText());
    return ExitCode.OK;
  }
  if (v["extcap-config"]) {
    process.stdout.write(extcapConfigText(name));
    return ExitCode.OK;
  }
  if (!v.capture) return ExitCode.OK; // e.g. a filter check: probe accepts any filter here, the remote end compiles it
  if (!v.fifo) throw new UsageError("extcap: --capture needs --fifo PATH");
  const port = Number(v["remote-port"] ?? EXTCAP_INTERFACES[name].defaultPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`extcap: --remote-port must be 1..65535, not '${field(v["remote-port"] ?? "")}'`);
  if (name === "probe-rpcap" && !v["remote-interface"]) throw new UsageError("extcap: --remote-interface is required for probe-rpcap");
  const url = extcapSourceUrl(name, {
    host: v["remote-host"] ?? "127.0.0.1",
    port,
    tls: v.tls ?? false,
    ...(v["remote-interface"] ? { remoteInterface: v["remote-interface"] } : {}),
    ...(v["remote-user"] ? { user: v["remote-user"] } : {}),
    ...(v["remote-password"] ? { password: v["remote-password"] } : {}),
  });
  const args = ["-i", url, "-w", v.fifo, "-q"];
  // A Wireshark capture runs until the user stops it: a server that closes the stream (a restart,
  // a link that drops) is redialled like a failure, where `probe capture` alone would end.
  if (name === "probe-pcap-over-ip") args.push("--reconnect-after-close");
  const filter = v["extcap-capture-filter"]?.trim();
  if (filter) args.push("-f", filter);
  if (v["tls-ca"]) args.push("--tls-ca", v["tls-ca"]);
  return capture(args);
}
