// The systemd units in packaging/ judged by systemd-analyze: `verify` must print nothing (it
// exits 0 even for unknown keys, so its output is what fails the test), and the service must
// run without root (capabilities only).
import { afterAll, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeBinary, repoRoot } from "../support/probe-binary.ts";

const packaging = join(repoRoot, "packaging");
const work = mkdtempSync(join(tmpdir(), "probe-units-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Copies the units with ExecStart pointing at this checkout's binary (verify checks that it exists). */
function stageUnits(): string[] {
  const units = readdirSync(packaging).filter((name) => /\.(service|socket)$/.test(name));
  for (const name of units) {
    cpSync(join(packaging, name), join(work, name));
    const text = readFileSync(join(work, name), "utf8").replaceAll("/usr/local/bin/probe", probeBinary);
    writeFileSync(join(work, name), text);
  }
  return units;
}

async function verify(units: string[]): Promise<{ code: number; output: string }> {
  const proc = Bun.spawn(["systemd-analyze", "verify", ...units], { cwd: work, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, output: (out + err).trim() };
}

test("systemd-analyze verify is clean on every unit in packaging/", async () => {
  const units = stageUnits();
  expect(units.sort()).toEqual(["probe-rpcapd.socket", "probe-rpcapd@.service", "probe.service"]);
  expect(await verify(units)).toEqual({ code: 0, output: "" });
});

test("a unit with a mistake is caught (the check can fail)", async () => {
  stageUnits();
  writeFileSync(join(work, "probe.service"), `${readFileSync(join(work, "probe.service"), "utf8")}\nExecStartt=/bin/true\n`);
  const result = await verify(["probe.service"]);
  expect(result.output).toContain("Unknown key");
});

test("the services run as a dynamic user with capture capabilities only", () => {
  for (const name of ["probe.service", "probe-rpcapd@.service"]) {
    const text = readFileSync(join(packaging, name), "utf8");
    expect(text).toMatch(/^DynamicUser=yes$/m);
    expect(text).toMatch(/^AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN$/m);
    expect(text).toMatch(/^CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN$/m);
    expect(text).toMatch(/^NoNewPrivileges=yes$/m);
    expect(text).not.toMatch(/^User=root$/m);
  }
});
