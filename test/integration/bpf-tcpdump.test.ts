// Interop: tcpdump (libpcap 1.10.x) is the judge. For each filter expression, the program
// `tcpdump -ddd` compiles must, run by our matcher over every packet of the real vectors plus a
// synthetic corpus, keep exactly the frames `tcpdump -r FILE -w - EXPR` keeps.
import { beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BpfFault,
  compileBpfMatcher,
  compileBpfRecordMatcher,
  formatBpfCStyle,
  formatBpfDecimal,
  parseBpfCStyle,
  parseBpfDecimal,
  validateBpfProgram,
} from "../../src/packet/bpf/index.ts";
import { ProtocolError } from "../../src/packet/protocol-error.ts";
import {
  VECTORS_DIR,
  buildPcap,
  readPcap,
  run,
  syntheticFrames,
  tcpdumpDecimal,
  tcpdumpKeptSeconds,
  tempDir,
  type PcapRecord,
} from "../support/bpf-helpers.ts";

const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;

const FILTERS = [
  "udp port 9999",
  "tcp",
  "ip6",
  "vlan and udp",
  "icmp",
  "udp[8:2] = 0x0102",
  "len > 100",
  "ip[2:2] > 200",
  "tcp[tcpflags] & tcp-syn != 0",
  "net 127.0.0.0/8",
  "portrange 9990-9999",
  "ether[0] & 1 = 0",
  "not udp",
  "udp port 9997",
  "tcp port 2002",
  "arp",
  "icmp6",
  "ip6 and udp port 9999",
  "vlan 100",
  "vlan and vlan",
  "ether broadcast",
  "ip multicast",
  "greater 1000",
  "less 60",
  "ip[6:2] & 0x1fff != 0",
  "ip[0] & 0xf > 5",
  "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
  "udp[4:2] = ip[2:2] - 20",
  "len % 7 = 3",
  "len * 3 > 300",
  "len / 3 < 30",
  "(len ^ 0x55) & 1 = 1",
  "len - 200 > 100",
  "(-len & 0xff) > 128",
  "(len << (ip[1] & 63)) > 1000",
  "(len >> (ether[20] & 63)) = 0",
  "len / ether[1] > 0",
  "len % ether[3] > 2",
  "(ip[8] | ip[9]) = 0x51",
  "tcp[13] = 0x12 or udp dst port 53",
  "udp and (udp[0:2] > udp[2:2])",
  "host 10.0.0.1 and not port 9999",
  "ip[12:4] = 0x7f000001",
  "ether[12:2] = 0x0800 and ether[14] = 0x45",
  "len + 5 > 100",
  "ip[2:2] - ip[0] > 50",
  "ip[2:2] * ip[8] > 5000",
  "(ip[2:2] | 3) > 0x57",
  "(ip[2:2] & ip[8]) != 0",
  "(len << 2) > 400",
  "(ip[2:2] ^ ip[8]) > 100",
  "ip[8] >= ip[9]",
  "ip[8] < ip[9]",
  "ip[8] & ip[9] != 0",
] as const;

let corpusFile = "";
let corpus: PcapRecord[] = [];

beforeAll(() => {
  const files = readdirSync(VECTORS_DIR).filter((name) => name.endsWith(".pcap")).sort();
  expect(files.length).toBeGreaterThan(10);
  const records: PcapRecord[] = [];
  for (const name of files) {
    const file = readPcap(join(VECTORS_DIR, name));
    expect(file.linktype).toBe(LINKTYPE_ETHERNET);
    records.push(...file.records);
  }
  records.push(...syntheticFrames());
  // ts_sec = position, so tcpdump's output names the frames it kept.
  corpus = records.map((r, index) => ({ ...r, tsSec: index, tsFrac: 0 }));
  corpusFile = join(tempDir("probe-bpf-"), "corpus.pcap");
  writeFileSync(corpusFile, buildPcap(LINKTYPE_ETHERNET, SNAPLEN, corpus));
});

describe("tcpdump as judge of the matcher", () => {
  // Each expression twice: as tcpdump optimizes it, and with -O (no optimizer), whose code uses
  // other opcodes (LD_IMM, LDX_MEM, X-operand ALU and jumps) for the same verdicts.
  test.each(FILTERS)("%s", (expression) => {
    const judged = tcpdumpKeptSeconds(corpusFile, expression);
    // Every row must discriminate, or it proves nothing.
    expect(judged.length).toBeGreaterThan(0);
    expect(judged.length).toBeLessThan(corpus.length);
    for (const flag of ["-ddd", "-Oddd"]) {
      const program = parseBpfDecimal(tcpdumpDecimal(expression, flag));
      validateBpfProgram(program);
      const match = compileBpfMatcher(program);
      const matchRecord = compileBpfRecordMatcher(program);
      const kept: number[] = [];
      for (const [index, record] of corpus.entries()) {
        const verdict = match(record.data, record.len);
        // The same packet inside a larger buffer at an odd offset: the record matcher must use
        // its offset and caplen, not the buffer's length.
        const padded = new Uint8Array(record.caplen + 5);
        padded.set(record.data, 3);
        expect(matchRecord(padded, 3, record.caplen, record.len)).toBe(verdict);
        if (verdict !== 0) {
          expect(verdict).toBe(SNAPLEN);
          kept.push(index);
        }
      }
      expect({ flag, kept }).toEqual({ flag, kept: judged });
    }
  });

  test("the file handle compiles the same program as -y EN10MB", () => {
    for (const expression of ["udp port 9999", "vlan and udp", "tcp[tcpflags] & tcp-syn != 0"]) {
      const fromFile = new TextDecoder().decode(run(["tcpdump", "-ddd", "-r", corpusFile, expression]));
      expect(fromFile).toBe(tcpdumpDecimal(expression));
    }
  });
});

describe("text formats against tcpdump", () => {
  test.each(FILTERS.slice(0, 12))("-ddd and -dd of %s parse and print back byte for byte", (expression) => {
    const decimal = tcpdumpDecimal(expression, "-ddd");
    const cStyle = tcpdumpDecimal(expression, "-dd");
    const program = parseBpfDecimal(decimal);
    expect(formatBpfDecimal(program)).toBe(decimal);
    expect(formatBpfCStyle(program)).toBe(cStyle);
    expect(parseBpfCStyle(cStyle)).toEqual(program);
  });
});

describe("real programs the validator must refuse", () => {
  test("'ip6 protochain 6' compiles to a backward ja (CVE-2026-6554: refused)", () => {
    const program = parseBpfDecimal(tcpdumpDecimal("ip6 protochain 6"));
    const backward = program.findIndex((insn) => insn.code === 0x05 && insn.k >= 0x80000000);
    expect(backward).toBeGreaterThan(0);
    let caught: unknown;
    try {
      validateBpfProgram(program);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ProtocolError);
    expect((caught as ProtocolError).code).toBe(BpfFault.backwardJump);
    expect((caught as ProtocolError).offset).toBe(backward);
  });
});
