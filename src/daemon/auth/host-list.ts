// rpcapd's allowed-host list (-l, and the config file's PassiveClient lines): names or
// addresses resolved once at load, then peers matched by address before AUTH is read.
import { lookup as dnsLookup } from "node:dns/promises";
import { existsSync, readFileSync, statSync } from "node:fs";
import { peerAddressBytes } from "../../net/ip-address.ts";

/**
 * Separators between hosts: rpcap-protocol.h's RPCAP_HOSTLIST_SEP (" ,;\n\r") plus tab, so a
 * file may list one host a line or several on a line, as rpcapd's `-l` string and fileconf.c do.
 */
const HOST_SEPARATORS = /[ ,;\n\r\t]+/;

/**
 * Most entries accepted in a host list. rpcapd keeps the list in a 64000-byte buffer
 * (MAX_HOST_LIST, rpcapd/config_params.h); 4096 names is far beyond any real list and bounds
 * the DNS lookups made at load.
 */
export const MAX_HOST_LIST_ENTRIES = 4_096;

/** Resolves a name to addresses; node:dns's lookup by default, injected by tests. */
export type HostLookup = (host: string) => Promise<string[]>;

const defaultLookup: HostLookup = async (host) => (await dnsLookup(host, { all: true })).map((a) => a.address);

/**
 * Splits host-list text into entries: '#' starts a comment to the end of its line; entries are
 * separated by white space, ',' or ';'. Throws when there are more than
 * {@link MAX_HOST_LIST_ENTRIES}.
 */
export function parseHostList(text: string): string[] {
  const hosts: string[] = [];
  for (const line of text.split("\n")) {
    const content = line.replace(/#.*/, "");
    for (const host of content.split(HOST_SEPARATORS)) if (host) hosts.push(host);
  }
  if (hosts.length > MAX_HOST_LIST_ENTRIES) {
    throw new Error(`host list has ${hosts.length} entries; at most ${MAX_HOST_LIST_ENTRIES} are accepted`);
  }
  return hosts;
}

/**
 * A canonical key for an address, or undefined when the text is not an IP address. IPv4 and
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, what a dual-stack listener reports for IPv4 peers) give the
 * same key; IPv6 is written as 32 hex digits; a zone ("%eth0") is dropped, as rpcapd's
 * sock_cmpaddr compares sin6_addr only.
 */
export function canonicalAddress(text: string): string | undefined {
  const bytes = peerAddressBytes(text);
  if (!bytes) return undefined;
  if (bytes.byteLength === 4) return bytes.join(".");
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A loaded host list: the addresses it allows, and what could not be resolved (for the log). */
export interface HostList {
  /** True when `peerAddress` (as a socket reports it) is one of the listed hosts' addresses. */
  allows(peerAddress: string): boolean;
  /** Canonical keys of every allowed address (see {@link canonicalAddress}). */
  readonly addresses: ReadonlySet<string>;
  /** Entries whose lookup failed, with the error; they allow nobody. */
  readonly unresolved: readonly { host: string; reason: string }[];
}

/**
 * Resolves every entry once (addresses are taken as they are; names through DNS or /etc/hosts).
 * rpcapd resolved on every connection; resolving at load keeps DNS out of the accept path, and
 * SIGHUP reloads pick up changes. A name that fails to resolve is reported, not fatal: the list
 * stays closed to everyone else, so a DNS outage at start cannot open the daemon.
 */
export async function resolveHostList(hosts: readonly string[], lookup: HostLookup = defaultLookup): Promise<HostList> {
  if (hosts.length > MAX_HOST_LIST_ENTRIES) {
    throw new Error(`host list has ${hosts.length} entries; at most ${MAX_HOST_LIST_ENTRIES} are accepted`);
  }
  const addresses = new Set<string>();
  const unresolved: { host: string; reason: string }[] = [];
  await Promise.all(
    hosts.map(async (host) => {
      const literal = canonicalAddress(host);
      if (literal) {
        addresses.add(literal);
        return;
      }
      try {
        const found = await lookup(host);
        if (found.length === 0) unresolved.push({ host, reason: "no addresses" });
        for (const address of found) {
          const key = canonicalAddress(address);
          if (key) addresses.add(key);
        }
      } catch (error) {
        unresolved.push({ host, reason: (error as Error).message });
      }
    }),
  );
  const frozen: ReadonlySet<string> = addresses;
  return Object.freeze({
    addresses: frozen,
    unresolved: Object.freeze(unresolved),
    allows(peerAddress: string): boolean {
      const key = canonicalAddress(peerAddress);
      return key !== undefined && frozen.has(key);
    },
  });
}

/** Options of {@link loadHostList} and {@link loadHostListFile}. */
export interface LoadHostListOptions {
  lookup?: HostLookup;
  /** Told about each entry that did not resolve. */
  warn?: (message: string) => void;
}

/**
 * The daemon's `isHostAllowed` predicate for these entries (e.g. the -l file's and the config
 * file's PassiveClient hosts), resolved once now.
 */
export async function loadHostList(hosts: readonly string[], options: LoadHostListOptions = {}): Promise<(peerAddress: string) => boolean> {
  const list = await resolveHostList(hosts, options.lookup);
  for (const { host, reason } of list.unresolved) options.warn?.(`host list: cannot resolve '${host}': ${reason}; it will not be allowed`);
  return (peerAddress) => list.allows(peerAddress);
}

/** Reads a host-list file ({@link parseHostList}'s format) and resolves it. */
export async function loadHostListFile(path: string, options: LoadHostListOptions = {}): Promise<(peerAddress: string) => boolean> {
  return loadHostList(parseHostList(readFileSync(path, "utf8")), options);
}

/** Where `-l`'s hosts came from, for the log and error messages. */
export type HostListArgument = { source: "file"; path: string; hosts: string[] } | { source: "list"; hosts: string[] };

/**
 * Reads rpcapd's `-l` argument. libpcap's rpcapd takes the argument as the list itself (hosts
 * separated by RPCAP_HOSTLIST_SEP, e.g. `-l host1,host2`) although its help calls it a file;
 * probe took only a file. Both are accepted: an argument that names an existing file is read
 * as one; otherwise it must look like a list. Something that looks like a path (has a '/') but
 * does not exist is an error naming the flag, not a host called "/etc/hosts.allow".
 * Throws a plain Error with the message for the user.
 */
export function readHostListArgument(argument: string, flag = "-l"): HostListArgument {
  if (existsSync(argument)) {
    if (!statSync(argument).isFile()) throw new Error(`${flag} ${argument}: not a regular file`);
    return { source: "file", path: argument, hosts: parseHostList(readFileSync(argument, "utf8")) };
  }
  if (argument.includes("/")) throw new Error(`${flag} ${argument}: no such file (give a file, or hosts separated by commas)`);
  const hosts = parseHostList(argument);
  if (hosts.length === 0) throw new Error(`${flag}: the host list is empty`);
  return { source: "list", hosts };
}
