// Hooks on the command line, run as operators run them (dist/probe, or the sources with
// PROBE_TEST_SOURCE=1): `probe hook test`, and `probe capture --hook` on files and on a live
// loopback capture with SIGHUP and file-change reload; tshark judges the files written.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { probeCommand, repoRoot, runProbe, runTool, spawnProbeLoggingToFile, waitFor } from "../support/probe-binary.ts";
import { VECTORS_DIR } from "../support/fixtures.ts";

const vectors = `${VECTORS_DIR}/`;
const VECTOR = `${vectors}rpcap-passive-udp.pcap`;
const EXAMPLES = `${repoRoot}examples/hooks/`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "probe-hooks-cli-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function hookFile(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

/** tshark -T fields over a file, one array of values per frame. */
async function fields(file: string, names: string[], extra: string[] = []): Promise<string[][]> {
  const out = await runTool(["tshark", "-r", file, ...extra, "-T", "fields", ...names.flatMap((n) => ["-e", n])]);
  // A frame whose fields are all empty is an empty line: keep it; only the final newline goes.
  if (out === "") return [];
  return out.replace(/\n$/, "").split("\n").map((line) => line.split("\t"));
}

/** What tag.js gives each frame of the vector, derived by tshark from the original file. */
async function expectedTagsOfVector(): Promise<string[]> {
  const rows = await fields(VECTOR, ["tcp.port", "udp.port", "icmp.type"]);
  return rows.map(([tcpPorts = "", , icmp = ""]) => {
    if (icmp !== "") return "icmp";
    return tcpPorts.split(",").includes("2002") ? "rpcap" : "";
  });
}

describe("probe hook test", () => {
  test("-v prints one line per packet and the totals; tags match what tshark says of the packets", async () => {
    const result = await runProbe(["hook", "test", `${EXAMPLES}tag.js`, "-r", VECTOR, "-v"]);
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trim().split("\n");
    const expected = await expectedTagsOfVector();
    const rpcap = expected.filter((t) => t === "rpcap").length;
    expect(rpcap).toBeGreaterThan(0);
    const perPacket = lines.filter((line) => line.startsWith("#"));
    expect(perPacket.length).toBe(expected.length);
    perPacket.forEach((line, i) => {
      expect(line).toBe(`#${i + 1} pass${expected[i] ? ` tags=${expected[i]}` : ""}`);
    });
    expect(lines).toContain(`${expected.length} packets: ${expected.length} passed, 0 dropped, 0 modified, 0 failed (hookFail=pass)`);
    expect(lines).toContain(`tags: rpcap=${rpcap}`);
  });

  test("without -v only the totals; -vv adds decoded layers", async () => {
    const quiet = await runProbe(["hook", "test", `${EXAMPLES}redact.js`, "-r", VECTOR]);
    expect(quiet.exitCode).toBe(0);
    expect(quiet.stdout).toBe("73 packets: 0 passed, 0 dropped, 73 modified, 0 failed (hookFail=pass)\n");
    const layers = await runProbe(["hook", "test", `${EXAMPLES}redact.js`, "-r", VECTOR, "-vv"]);
    expect(layers.stdout).toContain("#1 modified | len=74 caplen=74 IPv4 TCP 127.0.0.1:");
  });

  test("-w out.pcapng writes the hook's output with its tags as frame comments", async () => {
    const out = join(dir, "hook-test.pcapng");
    const result = await runProbe(["hook", "test", `${EXAMPLES}tag.js`, "-r", VECTOR, "-w", out]);
    expect(result.exitCode).toBe(0);
    const comments = (await fields(out, ["frame.comment"])).map(([c = ""]) => c);
    expect(comments).toEqual(await expectedTagsOfVector());
    expect(await runTool(["capinfos", "-t", out])).toMatch(/pcapng/);
  });

  test("-w - streams the output on standard output and moves the report to standard error", async () => {
    const probe = probeCommand().join(" ");
    const pipeline = Bun.spawn(["sh", "-c", `${probe} hook test ${EXAMPLES}tag.js -r ${VECTOR} -F pcapng -w - 2>${dir}/report.txt | tshark -r - -T fields -e frame.comment`], {
      stdout: "pipe",
      stderr: "ignore",
    });
    const out = await new Response(pipeline.stdout).text();
    expect(await pipeline.exited).toBe(0);
    expect(out.replace(/\n$/, "").split("\n")).toEqual(await expectedTagsOfVector());
    expect(await Bun.file(`${dir}/report.txt`).text()).toBe("73 packets: 73 passed, 0 dropped, 0 modified, 0 failed (hookFail=pass)\ntags: rpcap=33\n");
  });

  test("a hook that does not compile: exit 1, the file and the reason on stderr", async () => {
    const bad = hookFile("syntax.js", "export default function (pkt {\n");
    const result = await runProbe(["hook", "test", bad, "-r", VECTOR]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toStartWith(`probe: hook ${bad} does not compile (syntax): SyntaxError: `);
    expect(result.stderr.trimEnd().split("\n").length).toBe(1);
  });

  test("no subcommand is a usage error (exit 2)", async () => {
    const result = await runProbe(["hook"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("probe hook test FILE.js -r IN.pcap");
  });
});

describe("probe capture --hook, from a file", () => {
  test("redact.js: every TCP/UDP payload byte is zero, addresses keep their /24, checksums are valid per tshark", async () => {
    const out = join(dir, "redacted.pcapng");
    const result = await runProbe(["capture", "-r", VECTOR, "--hook", `${EXAMPLES}redact.js`, "-F", "pcapng", "-w", out]);
    expect(result.exitCode).toBe(0);
    const original = await fields(VECTOR, ["frame.len", "udp.length", "tcp.len"]);
    const checks = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"];
    const rows = await fields(out, ["frame.len", "ip.src", "ip.dst", "udp.payload", "tcp.payload", "ip.checksum.status", "udp.checksum.status", "tcp.checksum.status"], checks);
    expect(rows.length).toBe(original.length);
    let payloadBytes = 0;
    rows.forEach(([len, src, dst, udpPayload = "", tcpPayload = "", ipStatus, udpStatus = "", tcpStatus = ""], i) => {
      expect(Number(len)).toBe(Number(original[i]![0]));
      // tshark decodes RPCAP data datagrams' inner packets too: check the outer layer only.
      expect(src!.split(",")[0]).toBe("127.0.0.0");
      expect(dst!.split(",")[0]).toBe("127.0.0.0");
      const payload = (udpPayload.split(",")[0] ?? "") + tcpPayload;
      expect(payload).toMatch(/^(00)*$/);
      payloadBytes += payload.length / 2;
      expect(ipStatus!.split(",")[0]).toBe("1"); // 1 = good
      expect((udpStatus || tcpStatus).split(",")[0]).toBe("1");
    });
    expect(payloadBytes).toBeGreaterThan(1000);
    expect(result.stderr).toContain("hook redact.js: 73 packets, 0 passed, 0 dropped, 73 modified; checksums fixed 146;");
  });

  test("tag.js: tags become frame comments with -F pcapng", async () => {
    const out = join(dir, "tagged.pcapng");
    const result = await runProbe(["capture", "-q", "-r", VECTOR, "--hook", `${EXAMPLES}tag.js`, "-F", "pcapng", "-w", out]);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe("");
    const comments = (await fields(out, ["frame.comment"])).map(([c = ""]) => c);
    expect(comments).toEqual(await expectedTagsOfVector());
  });

  test("two hooks run in the order given: a drop hook first, then tag.js sees only the survivors", async () => {
    const dropUdp = hookFile("drop-udp.js", "export default (pkt) => pkt.protocol !== 17;\n");
    const mark = hookFile("mark.js", 'export default (pkt, ctx) => { ctx.tag("seen"); };\n');
    const out = join(dir, "chain.pcapng");
    const result = await runProbe(["capture", "-r", VECTOR, "--hook", dropUdp, "--hook", `${EXAMPLES}tag.js`, "--hook", mark, "-F", "pcapng", "-w", out]);
    expect(result.exitCode).toBe(0);
    const rows = await fields(out, ["ip.proto", "frame.comment"]);
    expect(rows.length).toBe(33);
    for (const [proto, comment] of rows) {
      expect(proto).toBe("6");
      expect(comment).toBe("rpcap,seen");
    }
    const lines = result.stderr.split("\n");
    const hookLines = lines.filter((line) => line.startsWith("hook "));
    expect(hookLines[0]).toStartWith("hook drop-udp.js: 73 packets, 33 passed, 40 dropped, 0 modified;");
    expect(hookLines[1]).toStartWith("hook tag.js: 33 packets, 33 passed, 0 dropped, 0 modified; tags rpcap=33;");
    expect(hookLines[2]).toStartWith("hook mark.js: 33 packets, 33 passed, 0 dropped, 0 modified; tags seen=33;");
    expect(lines).toContain("33 packets written after hooks (40 dropped by hooks)");
  });

  test("a hook with a syntax error stops capture before it starts: exit 1, clear message, no output file", async () => {
    const bad = hookFile("broken.js", "export default function () { return ; }}\n");
    const out = join(dir, "never.pcap");
    const result = await runProbe(["capture", "-r", VECTOR, "--hook", `${EXAMPLES}tag.js`, "--hook", bad, "-w", out]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toStartWith(`probe: hook ${bad} does not compile (syntax): SyntaxError: `);
    expect(result.stderr.split("\n").length).toBe(2);
    expect(existsSync(out)).toBe(false);
  });

  test("a missing hook file: exit 1 naming it", async () => {
    const result = await runProbe(["capture", "-r", VECTOR, "--hook", join(dir, "absent.js"), "-w", join(dir, "x.pcap")]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`probe: hook ${join(dir, "absent.js")}: cannot read it: ENOENT`);
  });

  test("--hook-fail drop with a hook that throws drops every packet, and the counters say why", async () => {
    const thrower = hookFile("throws.js", 'export default () => { throw new Error("nope"); };\n');
    const out = join(dir, "dropped.pcap");
    const result = await runProbe(["capture", "-r", VECTOR, "--hook", thrower, "--hook-fail", "drop", "-w", out]);
    expect(result.exitCode).toBe(0);
    expect(await fields(out, ["frame.number"])).toEqual([]);
    expect(result.stderr).toContain("0 packets written after hooks (73 dropped by hooks)");
    expect(result.stderr).toContain("hook throws.js: 73 packets, 0 passed, 73 dropped, 0 modified; failures threw=73 (hookFail=drop);");
  });

  test("--hook-fail pass (the default) with the same hook keeps every packet unchanged", async () => {
    const thrower = hookFile("throws-too.js", 'export default () => { throw new Error("nope"); };\n');
    const out = join(dir, "kept.pcap");
    const result = await runProbe(["capture", "-r", VECTOR, "--hook", thrower, "-w", out]);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain("failures threw=73 (hookFail=pass)");
    expect(await runTool(["tcpdump", "-r", out, "-nn", "-tt", "-x"])).toBe(await runTool(["tcpdump", "-r", VECTOR, "-nn", "-tt", "-x"]));
  });

  test("bad hook flags are usage errors (exit 2)", async () => {
    const result = await runProbe(["capture", "-r", VECTOR, "--hook", `${EXAMPLES}tag.js`, "--hook-fail", "maybe", "-w", join(dir, "y.pcap")]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("--hook-fail");
  });
});

/**
 * Starts probe with its standard error in a file (see spawnProbeLoggingToFile: a pipe's
 * stream can stall), so a test can wait for a log line; `done` once the process has gone.
 */
function spawnLogged(args: string[], name: string) {
  const { proc, stderr } = spawnProbeLoggingToFile(args, join(dir, `${name}.stderr`));
  return { proc, stderr: { text: stderr, done: proc.exited.then(() => undefined) } };
}

describe("probe capture -i lo --hook, live", () => {
  test("SIGHUP reloads the hook: packets before carry the old tag, after the new one; a broken version is refused and the last good one keeps running", async () => {
    // The hook path is a symlink into another directory, and the edits go to its target: the
    // directory watch does not see them, so only SIGHUP can cause these reloads.
    const real = join(dir, "sighup-real");
    const watched = join(dir, "sighup-watched");
    mkdirSync(real);
    mkdirSync(watched);
    const target = join(real, "hook.js");
    writeFileSync(target, 'export default (pkt, ctx) => { ctx.tag("first"); };\n');
    const hookPath = join(watched, "hook.js");
    symlinkSync(target, hookPath);
    const flow = await openLoopbackFlow();
    const out = join(dir, "sighup.pcapng");
    const { proc, stderr } = spawnLogged(["capture", "-i", "lo", "-F", "pcapng", "-w", out, "--hook", hookPath, `udp dst port ${flow.port}`], "live-1");
    try {
      await waitFor(() => stderr.text().includes("listening on lo"), 10_000, "capture to start");
      await flow.send([10, 20, 30], { gapMs: 2 });
      // Through the hook and written before the edit: the file's headers alone (written at
      // start) do not say so, and a packet still queued would meet the reloaded version.
      await waitFor(async () => (await fields(out, ["frame.number"]).catch(() => [])).length === 3, 10_000, "three packets written");

      writeFileSync(target, 'export default (pkt, ctx) => { ctx.tag("second"); };\n');
      proc.kill("SIGHUP");
      await waitFor(() => stderr.text().includes("hook hook.js: reloaded"), 10_000, "reload log line");
      expect(stderr.text()).toContain("SIGHUP: reloading 1 hook(s)");
      await flow.send([40, 50], { gapMs: 2 });

      writeFileSync(target, "export default (pkt, ctx => {\n");
      proc.kill("SIGHUP");
      await waitFor(() => stderr.text().includes("reload failed"), 10_000, "failed reload log line");
      await flow.send([60], { gapMs: 2 });
      // The capture writes each batch as it comes: wait for all six before stopping.
      await waitFor(async () => (await fields(out, ["frame.number"]).catch(() => [])).length === 6, 10_000, "six packets written");
    } finally {
      proc.kill("SIGINT");
      flow.close();
    }
    expect(await proc.exited).toBe(0);
    await stderr.done;
    const rows = await fields(out, ["udp.length", "frame.comment"]);
    expect(rows).toEqual([
      ["18", "first"],
      ["28", "first"],
      ["38", "first"],
      ["48", "second"],
      ["58", "second"],
      ["68", "second"],
    ]);
    expect(stderr.text()).toMatch(/hook hook\.js: reload failed \(syntax: SyntaxError: [^)]*\); the previous version keeps running/);
    expect(stderr.text()).toContain("hook hook.js: 6 packets, 6 passed, 0 dropped, 0 modified; tags first=3 second=3; reloaded 1x, failed reloads 1;");
  });

  test("saving the hook file reloads it without a signal", async () => {
    const hookPath = hookFile("watched.js", "export default () => true;\n");
    const flow = await openLoopbackFlow();
    const out = join(dir, "watched.pcap");
    const { proc, stderr } = spawnLogged(["capture", "-i", "lo", "-w", out, "--hook", hookPath, `udp dst port ${flow.port}`], "live-2");
    try {
      await waitFor(() => stderr.text().includes("listening on lo"), 10_000, "capture to start");
      await flow.send([10, 20], { gapMs: 2 });
      await waitFor(async () => (await fields(out, ["frame.number"]).catch(() => [])).length === 2, 10_000, "two packets written");
      // The new version drops small packets; the big last one shows when the others went by.
      writeFileSync(hookPath, "export default (pkt) => pkt.len > 1000;\n");
      await waitFor(() => stderr.text().includes("hook watched.js: reloaded"), 10_000, "reload after the save");
      await flow.send([30, 40, 50, 1200], { gapMs: 2 });
      await waitFor(async () => (await fields(out, ["frame.number"]).catch(() => [])).length === 3, 10_000, "the big packet written");
    } finally {
      proc.kill("SIGINT");
      flow.close();
    }
    expect(await proc.exited).toBe(0);
    await stderr.done;
    expect((await fields(out, ["udp.length"])).map(([l]) => l)).toEqual(["18", "28", "1208"]);
    expect(stderr.text()).toContain("6 packets captured");
    expect(stderr.text()).toContain("3 packets written after hooks (3 dropped by hooks)");
  });

  test("a hook that never returns cannot stall a live capture: every batch times out, the policy passes the packets, SIGINT ends it cleanly", async () => {
    const loop = hookFile("loop.js", "export default () => { for (;;) {} };\n");
    const flow = await openLoopbackFlow();
    const out = join(dir, "loop.pcap");
    const { proc, stderr } = spawnLogged(["capture", "-i", "lo", "-w", out, "--hook", loop, "--hook-budget-ms", "5", `udp dst port ${flow.port}`], "live-3");
    try {
      await waitFor(() => stderr.text().includes("listening on lo"), 10_000, "capture to start");
      await flow.send(Array(20).fill(100), { gapMs: 1 });
      await waitFor(async () => (await fields(out, ["frame.number"]).catch(() => [])).length === 20, 10_000, "twenty packets written");
    } finally {
      proc.kill("SIGINT");
      flow.close();
    }
    expect(await proc.exited).toBe(0);
    await stderr.done;
    const hookLine = stderr.text().split("\n").find((line) => line.startsWith("hook loop.js:"))!;
    expect(hookLine).toStartWith("hook loop.js: 20 packets, 20 passed, 0 dropped, 0 modified; failures timeout=");
    // Each batch's first packet times out; the rest of that batch are skipped (docs/hooks.md).
    const timeouts = Number(/timeout=(\d+)/.exec(hookLine)![1]);
    const skipped = Number(/skipped=(\d+)/.exec(hookLine)?.[1] ?? 0);
    expect(timeouts + skipped).toBe(20);
    expect(timeouts).toBeGreaterThan(0);
  });
});

describe("hostile text from a hook (issue 21)", () => {
  // Tags and a log line with a newline, ESC sequences, NUL and a lone surrogate, and an error
  // message with a NUL: every one arrives, escaped wherever a person reads it, and as data
  // (valid UTF-8, control characters kept, NUL as U+FFFD since readers cut comments at NUL) in
  // the pcapng comments.
  const HOSTILE = `export default function (pkt, ctx) {
    const n = (ctx.state.n = (ctx.state.n ?? 0) + 1);
    ctx.tag("ok");
    if (n === 1) { ctx.tag("a\\nb\\x1b[31m"); ctx.tag("\\u00e9\\ud800"); ctx.tag("a\\0b"); }
    if (n === 2) ctx.log("line\\x1b]0;x\\x07\\0after");
    if (n === 3) throw new Error("a\\0b");
  }
`;
  /** Any control character but the line ends between lines. */
  const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f]/;

  /** What tshark reads as each frame's comments. */
  async function commentsOf(file: string): Promise<string[][]> {
    const frames = JSON.parse(await runTool(["tshark", "-r", file, "-T", "json", "-e", "frame.comment"])) as { _source: { layers: { "frame.comment"?: string[] } } }[];
    return frames.map((f) => f._source.layers["frame.comment"] ?? []);
  }
  const FIRST_COMMENTS = ["ok", "a\nb\x1b[31m", "\u00e9\ufffd", "a\ufffdb"];

  test("probe hook test -v -w: per-packet tags, totals and log lines escaped; nothing lost", async () => {
    const hook = hookFile("hostile.js", HOSTILE);
    const out = join(dir, "hostile-test.pcapng");
    const result = await runProbe(["hook", "test", hook, "-r", VECTOR, "-v", "-w", out]);
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines.slice(0, 4)).toEqual(['#1 pass tags=ok,"a\\nb\\x1b[31m","\u00e9\ufffd","a\\x00b"', "#2 pass tags=ok", "#3 pass (threw; hookFail=pass)", "#4 pass tags=ok"]);
    expect(lines).toContain('tags: ok=72 "a\\nb\\x1b[31m"=1 "\u00e9\ufffd"=1 "a\\x00b"=1');
    expect(lines).toContain("73 packets: 73 passed, 0 dropped, 0 modified, 1 failed (hookFail=pass)");
    expect(result.stdout).not.toMatch(RAW_CONTROL);
    const stderr = result.stderr.trim().split("\n");
    expect(stderr.length).toBe(2);
    expect(stderr[0]).toEndWith(' info: hook hostile.js: "line\\x1b]0;x\\x07\\x00after"');
    expect(stderr[1]).toEndWith(' warn: hook hostile.js: 1 packet(s) failed in a batch; first: "Error: a\\x00b"');
    expect(result.stderr).not.toMatch(RAW_CONTROL);
    const comments = await commentsOf(out);
    expect(comments.length).toBe(73);
    expect(comments[0]).toEqual(FIRST_COMMENTS);
  });

  test("probe capture --hook: the counters line is escaped; the pcapng comments keep the tags as data", async () => {
    const hook = hookFile("hostile-capture.js", HOSTILE);
    const out = join(dir, "hostile.pcapng");
    const result = await runProbe(["capture", "-r", VECTOR, "--hook", hook, "-F", "pcapng", "-w", out]);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('hook hostile-capture.js: 73 packets, 73 passed, 0 dropped, 0 modified; tags ok=72 "a\\nb\\x1b[31m"=1 "\u00e9\ufffd"=1 "a\\x00b"=1; failures threw=1 (hookFail=pass);');
    expect(result.stderr).not.toMatch(RAW_CONTROL);
    // tshark as the judge of the file: its JSON holds each comment of each frame, decoded.
    const comments = await commentsOf(out);
    expect(comments.length).toBe(73);
    expect(comments[0]).toEqual(FIRST_COMMENTS);
    expect(comments[2]).toEqual([]);
    expect(comments.filter((c) => c.length === 1 && c[0] === "ok").length).toBe(71);
  });
});
