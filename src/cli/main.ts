#!/usr/bin/env bun
// probe's entry point: picks the command, runs it, and turns failures into one clear line
// on standard error and the documented exit status.
import { asUserFacing, exitStatusOf } from "../packet/probe-error.ts";
import { ExitCode, UsageError } from "./usage-error.ts";
import { PROBE_VERSION } from "./version.ts";

export const MAIN_HELP = `Usage: probe [COMMAND] [OPTIONS]

probe captures packets and hands them to remote consumers: files, pipes, RPCAP clients,
PCAP-over-IP readers, udpstr collectors.

Commands:
  list                 list capture interfaces with their addresses (like tcpdump -D)
  capture              capture from an interface or a file into a pcap/pcapng file or stdout
  rpcapd               RPCAP daemon for tcpdump/Wireshark -i rpcap://host/iface (libpcap's flags)
  pcap-over-ip         serve a live capture to PCAP-over-IP readers (tshark -i TCP@host:57012)
  (none)               serve the default interface over PCAP-over-IP (127.0.0.1:57012) and
                       RPCAP (127.0.0.1:2002) at once; 'probe --help-serve' for options
  rt                   serve a capture over libtrace's RT protocol (tracepktdump rt:host:3435)
  forward              send packets as ExtraHop udpstr datagrams to a collector
  collect              receive udpstr, reassemble, account for every loss, write or serve
  hook test            run a packet hook (JavaScript, docs/hooks.md) over a capture file
  passwd USER          read a password on stdin, print a 'user:hash' line for rpcapd --users
  summary              live capture summary, one line a second
  run FILE             run a pipeline file (YAML/JSON); every command above that moves
                       packets prints its own with --print-pipeline

Run 'probe COMMAND --help' for a command's options.

Global options:
  -h, --help           this text
  -V, --version        probe's version and the libpcap it loaded

Environment:
  PROBE_LIBPCAP        path of the libpcap shared object (default libpcap.so.0.8, Debian
                       package libpcap0.8)
  PROBE_CAPTURE_THREAD who reads the ring engine: native (default: a native thread),
                       worker (a JavaScript Worker: more memory and CPU) or main (the
                       main thread: packets are lost while it is busy); docs/capture.md

Exit status: 0 success, 1 runtime failure (capture, file, network), 2 bad command line.
Capturing needs root or: setcap cap_net_raw,cap_net_admin=eip /path/to/probe
`;

type Command = (argv: string[]) => number | Promise<number>;

// Every command is imported when it is chosen, not before: the build splits the program into
// chunks (scripts/build.ts), so --help, --version and each command evaluate only the modules
// they use (docs/capture-history.md, "Memory: where it goes").
const runCapture = async (argv: string[]): Promise<number> => (await import("./commands/capture.ts")).runCapture(argv);

async function loadCommand(name: string): Promise<Command | undefined> {
  switch (name) {
    case "list":
      return (await import("./commands/list.ts")).runList;
    case "capture":
      return runCapture;
    case "pcap-over-ip":
      return (await import("./commands/pcap-over-ip.ts")).runPcapOverIp;
    case "rpcapd":
      return (await import("./commands/rpcapd.ts")).runRpcapd;
    case "forward":
      return (await import("./commands/forward.ts")).runForward;
    case "collect":
      return (await import("./commands/collect.ts")).runCollect;
    case "hook":
      return (await import("./commands/hook.ts")).runHook;
    case "passwd":
      return (await import("./commands/passwd.ts")).runPasswd;
    case "rt":
      return (await import("./commands/rt.ts")).runRt;
    case "summary":
      return (await import("./commands/summary.ts")).runSummary;
    case "run":
      return (await import("./commands/run.ts")).runRun;
    default:
      return undefined;
  }
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  // Wireshark runs extcap programs with --extcap-* flags and no command (docs/extcap.md).
  const extcap = await import("./commands/extcap.ts");
  if (extcap.isExtcapInvocation(argv)) return extcap.runExtcap(argv, runCapture);
  if (first === "--help-serve") {
    return (await import("./commands/serve.ts")).runServe(["--help"]);
  }
  if (first === "-h" || first === "--help" || first === "help") {
    process.stdout.write(MAIN_HELP);
    return ExitCode.OK;
  }
  if (first === "-V" || first === "--version") {
    let pcapVersion: string;
    try {
      pcapVersion = (await import("../capture/libpcap/compile-filter.ts")).libpcapVersion();
    } catch (error) {
      pcapVersion = `libpcap not loaded (${(error as Error).message})`;
    }
    process.stdout.write(`probe ${PROBE_VERSION}\n${pcapVersion}\n`);
    return ExitCode.OK;
  }
  if (first === undefined || first.startsWith("-")) {
    // No command: the default job, serving RPCAP and PCAP-over-IP.
    return (await import("./commands/serve.ts")).runServe(argv);
  }
  const command = await loadCommand(first);
  if (!command) throw new UsageError(`unknown command '${first}'`);
  return command(rest);
}

// The one place errors become exit statuses: a ProbeError (anything a user or a peer caused)
// is one line and its category's status; anything else is a bug and keeps its stack.
try {
  const status = await main(process.argv.slice(2));
  process.exit(status);
} catch (error) {
  const known = asUserFacing(error);
  if (known) {
    const hint = known.category === "usage" && known instanceof UsageError ? "\nTry 'probe --help'." : "";
    process.stderr.write(`probe: ${known.message}${hint}\n`);
    process.exit(exitStatusOf(known));
  }
  process.stderr.write(`probe: ${(error as Error).stack ?? error}\n`);
  process.exit(ExitCode.FAILURE);
}
