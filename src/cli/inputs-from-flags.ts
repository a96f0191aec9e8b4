// The input flag group every capture-like command shares (capture, rt, pcap-over-ip, forward),
// as PROCESSING_CLI_OPTIONS is for stages: one option table, one help text, one parser. -i NAME
// (an interface, rpcap://..., a PCAP-over-IP stream tcp:// TCP@ tls://, or an RT server rt://)
// and -r FILE, each repeatable and mixed, in the order given; -f, -s and the capture settings
// apply to each. docs/flags.md lists the group.
import { parseRemoteSourceUrl } from "../capture/remote/index.ts";
import { parseRpcapUrl } from "../capture/remote/rpcap-source.ts";
import { MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";
import type { InputSpec } from "../pipeline/spec.ts";
import { inOrder, parseInteger } from "./parse-options.ts";
import { UsageError } from "./usage-error.ts";

/** parseArgs definitions of the group; spread them into a command's own options. */
export const INPUT_CLI_OPTIONS = {
  interface: { type: "string", short: "i", multiple: true },
  read: { type: "string", short: "r", multiple: true },
  filter: { type: "string", short: "f" },
  snaplen: { type: "string", short: "s" },
  count: { type: "string", short: "c" },
  "buffer-size": { type: "string", short: "B" },
  "no-promiscuous": { type: "boolean", short: "p" },
  direction: { type: "string", short: "Q" },
  immediate: { type: "boolean" },
  "capture-engine": { type: "string" },
  realtime: { type: "boolean" },
  reader: { type: "string" },
  "no-reconnect": { type: "boolean" },
  "reconnect-after-close": { type: "boolean" },
} as const;

/**
 * Client-side TLS for tls:// and rpcaps:// inputs. A separate table because pcap-over-ip's
 * --tls-cert/--tls-key are its listener's certificate (its tls:// inputs take --tls-ca and
 * --tls-insecure as its --from sources do).
 */
export const INPUT_TLS_CLI_OPTIONS = {
  "tls-ca": { type: "string" },
  "tls-insecure": { type: "boolean" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
} as const;

/** Largest -B, in KiB (4 GiB): the spec's bound; a kernel caps the buffer far lower anyway. */
const MAX_BUFFER_KIB = 4 * 1024 * 1024;

/** The group's lines for a command's --help (same column layout as PROCESSING_OPTIONS_HELP). */
export const INPUT_OPTIONS_HELP = `  -i, --interface NAME    capture on NAME (see 'probe list'); or on a remote interface
                          behind an RPCAP daemon: rpcap://[USER:PASS@]HOST[:PORT]/IFACE
                          (rpcaps:// for TLS; NULL authentication without USER); or read
                          a PCAP-over-IP stream: tcp://HOST:PORT, TCP@HOST:PORT, tls://HOST:PORT;
                          or a libtrace RT server: rt://HOST:PORT[?state=FILE] (acknowledges
                          only what is written; docs/rt.md)
  -r, --read FILE         read a pcap or pcapng file instead of capturing
  Both -i and -r may be repeated and mixed: the inputs are merged in timestamp order
  (files exactly as mergecap does; live inputs within a 1 s reordering window, later
  records counted). The settings below apply to every input they fit.
  -f, --filter EXPR       tcpdump filter expression; words after the options are
                          joined into the filter too, as with tcpdump
  -s, --snaplen N         bytes kept per packet (default 262144)
  -c, --count N           stop after N packets
  -B, --buffer-size KiB   kernel capture buffer in KiB, as tcpdump -B (default: libpcap's,
                          2 MiB); a plain number, no suffix
  -p, --no-promiscuous    do not put the interface into promiscuous mode
  -Q, --direction DIR     in, out or inout (default)
      --immediate         libpcap immediate mode (lowest latency, smaller bursts);
                          without it a capture that only writes files hands packets
                          over within 0.5 s (as tcpdump -w), a stream within 10 ms
      --capture-engine E  who reads -i INTERFACE: ring (default: Linux's packet ring
                          read directly, least CPU) or libpcap; ring falls back to
                          libpcap for 'any', non-Ethernet links and --immediate
      --realtime          replay -r FILE at the pace of its timestamps
      --reader R          who reads -r FILE: probe (default, streaming TypeScript
                          reader, strict checks) or libpcap (pcap_open_offline)
      --no-reconnect      tcp:// and tls://: end on a failure instead of redialling
                          (0.5 s doubling to 30 s); a clean close ends the input...
      --reconnect-after-close
                          ...unless this is given: redial after the server closed the
                          stream cleanly too (Wireshark's extcap path sets it)
`;

/** Help lines of INPUT_TLS_CLI_OPTIONS. */
export const INPUT_TLS_OPTIONS_HELP = `      --tls-ca FILE       tls:// and rpcaps://: trust this CA for the server certificate
                          (default: the built-in public CAs); always verified
      --tls-insecure      tls:// and rpcaps://: do not verify it (logged)
      --tls-cert FILE     tls://: client certificate for a server that requires one...
      --tls-key FILE      ...and its key
`;

type GroupValues = { [K in keyof typeof INPUT_CLI_OPTIONS]?: (typeof INPUT_CLI_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof INPUT_CLI_OPTIONS)[K]["type"] extends "boolean" ? boolean : string };
type TlsValues = { [K in keyof typeof INPUT_TLS_CLI_OPTIONS]?: (typeof INPUT_TLS_CLI_OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

export interface InputGroup {
  inputs: RawInput[];
  /** -c: the spec's stopAfterPackets. */
  stopAfterPackets?: number;
}

/**
 * The group's flags as the spec's inputs (in -i/-r order) and -c. `defaultInterface` is called
 * when neither -i nor -r is given (commands that serve a capture by default); without it that
 * is a usage error. `tls` is the client TLS for tls:// and rpcaps:// inputs. Every mistake is a
 * UsageError of one line naming the command and the flag.
 */
export function inputGroupFromFlags(
  command: string,
  values: GroupValues & TlsValues,
  parsed: { tokens: readonly { kind: string; name?: string; value?: string | undefined }[]; positionals: readonly string[] },
  options: { defaultInterface?: () => string; tls?: InputFlags["tls"] } = {},
): InputGroup {
  const v = values;
  if (v.filter !== undefined && parsed.positionals.length > 0) {
    throw new UsageError(`${command}: give the filter either with -f or as trailing words, not both`);
  }
  if (v.direction !== undefined && !["in", "out", "inout"].includes(v.direction)) throw new UsageError(`${command}: -Q is in, out or inout, not '${v.direction}'`);
  if (v.reader !== undefined && v.reader !== "probe" && v.reader !== "libpcap") throw new UsageError(`${command}: --reader is probe or libpcap, not '${v.reader}'`);
  const engine = v["capture-engine"];
  if (engine !== undefined && engine !== "ring" && engine !== "libpcap") throw new UsageError(`${command}: --capture-engine is ring or libpcap, not '${engine}'`);
  if (v["no-reconnect"] && v["reconnect-after-close"]) throw new UsageError(`${command}: --no-reconnect and --reconnect-after-close contradict each other`);
  let ordered = inOrder(parsed.tokens, ["interface", "read"]);
  if (ordered.length === 0) {
    if (!options.defaultInterface) throw new UsageError(`${command}: give -i INTERFACE or -r FILE (each may be repeated)`);
    ordered = [{ name: "interface", value: options.defaultInterface() }];
  }
  const count = parseInteger("-c", v.count, 1, Number.MAX_SAFE_INTEGER);
  const inputs = inputsFromFlags(ordered, {
    filter: v.filter ?? parsed.positionals.join(" "),
    snaplen: parseInteger("-s", v.snaplen, 1, MAXIMUM_SNAPLEN),
    promiscuous: !v["no-promiscuous"],
    bufferKiB: parseInteger("-B", v["buffer-size"], 0, MAX_BUFFER_KIB),
    immediate: v.immediate ?? false,
    direction: v.direction,
    realtime: v.realtime ?? false,
    reader: v.reader,
    engine,
    tls: options.tls,
    reconnect: !v["no-reconnect"],
    reconnectAfterClose: v["reconnect-after-close"] ?? false,
  });
  return { inputs, ...(count !== undefined ? { stopAfterPackets: count } : {}) };
}

/** --tls-* of INPUT_TLS_CLI_OPTIONS as inputsFromFlags' tls; --tls-cert and --tls-key go together. */
export function inputTlsFromFlags(command: string, v: TlsValues): NonNullable<InputFlags["tls"]> {
  if ((v["tls-cert"] === undefined) !== (v["tls-key"] === undefined)) throw new UsageError(`${command}: --tls-cert and --tls-key go together`);
  return { ca: v["tls-ca"], insecure: v["tls-insecure"], cert: v["tls-cert"], key: v["tls-key"] };
}

export interface InputFlags {
  filter: string;
  snaplen?: number | undefined;
  promiscuous?: boolean;
  bufferKiB?: number | undefined;
  immediate?: boolean;
  direction?: string | undefined;
  realtime?: boolean;
  reader?: string | undefined;
  /** --capture-engine for interfaces: ring or libpcap. */
  engine?: string | undefined;
  /** tls:// and rpcaps:// server verification; tls:// client certificate (mutual TLS). */
  tls?: { ca?: string | undefined; insecure?: boolean | undefined; cert?: string | undefined; key?: string | undefined };
  /** tcp:// and tls://: redial after a failure (default on). */
  reconnect?: boolean;
  /** tcp:// and tls://: redial after a clean close too (--reconnect-after-close). */
  reconnectAfterClose?: boolean;
}

export type RawInput = Record<string, unknown> & { kind: InputSpec["kind"] };

/** One input per -i/-r, in command-line order. */
export function inputsFromFlags(ordered: readonly { name: string; value: string }[], flags: InputFlags): RawInput[] {
  const common = { ...(flags.filter ? { filter: flags.filter } : {}), ...(flags.snaplen !== undefined ? { snaplen: flags.snaplen } : {}) };
  return ordered.map(({ name, value }) => {
    if (name === "read") {
      return { kind: "file", path: value, ...common, ...(flags.realtime ? { realtime: true } : {}), ...(flags.reader ? { reader: flags.reader } : {}) };
    }
    let rpcap;
    let stream;
    try {
      rpcap = parseRpcapUrl(value);
      stream = parseRemoteSourceUrl(value);
    } catch (error) {
      throw new UsageError(`-i: ${(error as Error).message}`);
    }
    const tls = flags.tls ?? {};
    if (stream?.kind === "rt") {
      return { kind: "rt", url: value, ...(flags.filter ? { filter: flags.filter } : {}), ...(flags.reconnect === false ? { reconnect: false } : {}) };
    }
    if (stream) {
      return {
        kind: "pcap-over-ip",
        url: value,
        ...(flags.filter ? { filter: flags.filter } : {}),
        ...(flags.reconnect === false ? { reconnect: false } : {}),
        ...(flags.reconnectAfterClose && flags.reconnect !== false ? { reconnectAfterCleanEnd: true } : {}),
        ...(tls.ca ? { tlsCa: tls.ca } : {}),
        ...(tls.cert ? { tlsCert: tls.cert } : {}),
        ...(tls.key ? { tlsKey: tls.key } : {}),
        ...(tls.insecure ? { insecure: true } : {}),
      };
    }
    if (rpcap) {
      return {
        kind: "rpcap",
        url: value,
        ...common,
        ...(flags.promiscuous === false ? { promiscuous: false } : {}),
        ...(tls.ca ? { tlsCa: tls.ca } : {}),
        ...(tls.insecure ? { insecure: true } : {}),
      };
    }
    return {
      kind: "interface",
      device: value,
      ...common,
      ...(flags.promiscuous === false ? { promiscuous: false } : {}),
      ...(flags.bufferKiB !== undefined ? { bufferKiB: flags.bufferKiB } : {}),
      ...(flags.immediate ? { immediate: true } : {}),
      ...(flags.direction !== undefined ? { direction: flags.direction } : {}),
      ...(flags.engine !== undefined ? { engine: flags.engine } : {}),
    };
  });
}
