// The input flag group (src/cli/inputs-from-flags.ts) through dist/probe: capture, rt,
// pcap-over-ip, forward and the serve mode take the same -i/-r/-f/-s/-c/-B/-p/-Q/--immediate/--capture-engine/
// --realtime/--reader flags and turn them into the same spec inputs (--print-pipeline, exact
// fields); each --help shows the group once, in the same words; and byte sizes mean one thing
// on every command (docs/flags.md).
import { describe, expect, test } from "bun:test";
import { INPUT_OPTIONS_HELP } from "../../src/cli/inputs-from-flags.ts";
import { runProbe } from "../support/probe-binary.ts";

/** argv that makes each command print its pipeline, before the group flags. */
const COMMANDS: Record<string, string[]> = {
  capture: ["capture", "-w", "/tmp/never-written.pcap"],
  rt: ["rt", "--listen", "127.0.0.1:0"],
  "pcap-over-ip": ["pcap-over-ip", "--listen", "127.0.0.1:0"],
  forward: ["forward", "--udpstr", "127.0.0.1:2000"],
  // The serve mode has no command word; its errors name "probe".
  probe: ["--pcap-over-ip", "127.0.0.1:0", "--rpcap", "127.0.0.1:0"],
};

/** argv that prints each command's --help (main.ts takes the serve mode's --help itself). */
const HELP: Record<string, string[]> = { capture: ["capture", "--help"], rt: ["rt", "--help"], "pcap-over-ip": ["pcap-over-ip", "--help"], forward: ["forward", "--help"], probe: ["--help-serve"] };

async function printed(argv: string[]): Promise<Record<string, unknown>> {
  const r = await runProbe([...argv, "--print-pipeline"]);
  if (r.exitCode !== 0) throw new Error(`probe ${argv.join(" ")}: exit ${r.exitCode}: ${r.stderr}`);
  return Bun.YAML.parse(r.stdout) as Record<string, unknown>;
}

describe("one input flag group", () => {
  const group = ["-i", "lo", "-p", "-Q", "in", "--immediate", "--capture-engine", "libpcap", "-s", "128", "-B", "4096", "-c", "7", "-r", "/tmp/a.pcap", "--reader", "libpcap", "--realtime", "udp", "port", "9"];
  const expectedInputs = [
    { kind: "interface", filter: "udp port 9", snaplen: 128, device: "lo", promiscuous: false, bufferKiB: 4096, immediate: true, direction: "in", engine: "libpcap" },
    { kind: "file", filter: "udp port 9", snaplen: 128, path: "/tmp/a.pcap", realtime: true, reader: "libpcap" },
  ];

  test.each(Object.keys(COMMANDS))("%s: the group's flags make exactly these inputs and stopAfterPackets 7", async (command) => {
    const spec = await printed([...COMMANDS[command]!, ...group]);
    expect(spec.inputs).toEqual(expectedInputs);
    expect(spec.stopAfterPackets).toBe(7);
  });

  test("pcap-over-ip -p -Q in (it lacked both): the interface input says so", async () => {
    const spec = await printed(["pcap-over-ip", "-p", "-Q", "in", "-i", "lo", "--listen", "127.0.0.1:0"]);
    expect(spec.inputs).toEqual([
      { kind: "interface", filter: "", snaplen: 262144, device: "lo", promiscuous: false, bufferKiB: 0, immediate: false, direction: "in", engine: "ring" },
    ]);
  });

  test("rt --capture-engine libpcap (it lacked it): the interface input says so", async () => {
    const spec = await printed(["rt", "--capture-engine", "libpcap", "-i", "lo", "--listen", "127.0.0.1:0"]);
    expect(spec.inputs).toEqual([
      { kind: "interface", filter: "", snaplen: 262144, device: "lo", promiscuous: true, bufferKiB: 0, immediate: false, direction: "inout", engine: "libpcap" },
    ]);
  });

  test.each(Object.keys(COMMANDS))("%s: a bad group flag is the same one line, naming the command", async (command) => {
    const r = await runProbe([...COMMANDS[command]!, "-i", "lo", "--capture-engine", "dpdk"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe(`probe: ${command}: --capture-engine is ring or libpcap, not 'dpdk'`);
    const both = await runProbe([...COMMANDS[command]!, "-i", "lo", "-f", "udp", "tcp"]);
    expect(both.exitCode).toBe(2);
    expect(both.stderr.split("\n")[0]).toBe(`probe: ${command}: give the filter either with -f or as trailing words, not both`);
  });

  test.each(Object.keys(COMMANDS))("%s --help shows the group once, in the same words", async (command) => {
    const r = await runProbe(HELP[command]!);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split(INPUT_OPTIONS_HELP).length - 1).toBe(1);
    expect(r.stdout.split("-p, --no-promiscuous").length - 1).toBe(1);
  });
});

describe("one size meaning on every command", () => {
  test("rt --spool-max-bytes 1G is 10^9 bytes (it was 2^30), 1GiB is 2^30, --queue-bytes takes suffixes on rt and pcap-over-ip alike", async () => {
    const decimal = await printed(["rt", "-r", "/tmp/a.pcap", "--reliable", "--spool-max-bytes", "1G", "--queue-bytes", "16M"]);
    expect(decimal.outputs).toMatchObject([{ kind: "rt", spoolMaxBytes: 1_000_000_000, queueBytes: 16_000_000 }]);
    const binary = await printed(["rt", "-r", "/tmp/a.pcap", "--reliable", "--spool-max-bytes", "1GiB", "--queue-bytes", "16MiB"]);
    expect(binary.outputs).toMatchObject([{ kind: "rt", spoolMaxBytes: 1_073_741_824, queueBytes: 16_777_216 }]);
    const poip = await printed(["pcap-over-ip", "-r", "/tmp/a.pcap", "--queue-bytes", "16M"]);
    expect(poip.outputs).toMatchObject([{ kind: "pcap-over-ip", queueBytes: 16_000_000 }]);
    const capture = await printed(["capture", "-r", "/tmp/a.pcap", "-w", "/tmp/x-%N.pcap", "--retain-bytes", "1G", "--retain-min-free", "1GiB", "-C", "2"]);
    expect(capture.outputs).toMatchObject([{ kind: "rotating-file", triggers: { maxBytes: 2_000_000 }, retention: { bytes: 1_000_000_000, minFreeBytes: 1_073_741_824 } }]);
  });

  test("a bad size is one line naming the flag, exit 2", async () => {
    const r = await runProbe(["pcap-over-ip", "-r", "/tmp/a.pcap", "--queue-bytes", "16Q"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe("probe: --queue-bytes wants a size such as 65536, 500K, 256M, 2G or 1GiB, not '16Q'");
    const big = await runProbe(["rt", "-r", "/tmp/a.pcap", "--reliable", "--spool-max-bytes", "9PiB"]);
    expect(big.stderr.split("\n")[0]).toBe("probe: --spool-max-bytes wants a size such as 65536, 500K, 256M, 2G or 1GiB, not '9PiB'");
    const over = await runProbe(["rt", "-r", "/tmp/a.pcap", "--reliable", "--spool-max-bytes", "8192TiB"]);
    expect(over.stderr.split("\n")[0]).toBe("probe: --spool-max-bytes 8192TiB is too large (at most 9007199254740991 bytes)");
  });
});
