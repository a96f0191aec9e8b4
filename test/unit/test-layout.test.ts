// The rules of test/README.md: unit/ runs src/ code in the test process (no child process),
// every helper lives in support/, fixtures/ holds data only, no test name is in both unit/ and
// integration/, and the two primitives once copied file to file (a random "free" port, a
// child's stderr reader) have one home each.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const TEST_ROOT = new URL("..", import.meta.url).pathname;
const UNIT = join(TEST_ROOT, "unit");
const INTEGRATION = join(TEST_ROOT, "integration");
/** This file names what it looks for. */
const THIS_FILE = "test-layout.test.ts";

/** What starts a child process (or probe) from a test file. */
const SPAWNS = /Bun\.spawn|node:child_process|\bspawnProbe\(|\brunProbe\(|\brunTool\(|\bstartProbe\(|\bprobeCommand\(/;

test("unit/ and integration/ hold test files only; unit/ files start no process", () => {
  for (const dir of [UNIT, INTEGRATION]) {
    expect(readdirSync(dir).filter((name) => !name.endsWith(".test.ts"))).toEqual([]);
  }
  const spawning = readdirSync(UNIT).filter((name) => name !== THIS_FILE && SPAWNS.test(readFileSync(join(UNIT, name), "utf8")));
  expect(spawning).toEqual([]);
});

test("no test name is in both unit/ and integration/", () => {
  const unit = new Set(readdirSync(UNIT));
  expect(readdirSync(INTEGRATION).filter((name) => unit.has(name))).toEqual([]);
});

test("fixtures/ holds data only: no code", () => {
  const code = readdirSync(join(TEST_ROOT, "fixtures"), { recursive: true, encoding: "utf8" }).filter((name) => /\.(ts|js|mjs|py)$/.test(name));
  expect(code).toEqual([]);
});

/** Every test and helper file, relative to test/. */
function testSources(): string[] {
  return readdirSync(TEST_ROOT, { recursive: true, encoding: "utf8" }).filter((name) => name.endsWith(".ts") && !name.endsWith(THIS_FILE));
}

test("ports come from port 0 (support/free-port.ts or probe's own log), never a random pick from a range", () => {
  const randomPort = /\d{4,5} \+ Math\.floor\(Math\.random\(\)/;
  expect(testSources().filter((name) => randomPort.test(readFileSync(join(TEST_ROOT, name), "utf8")))).toEqual([]);
});

test("a child's standard error is read in one place (support/probe-binary.ts collectStderr)", () => {
  const stderrReader = /for await \(const \w+ of [\w.!]+\.stderr\b|\.stderr\.getReader\(\)/;
  const readers = testSources().filter((name) => stderrReader.test(readFileSync(join(TEST_ROOT, name), "utf8")));
  expect(readers).toEqual(["support/probe-binary.ts"]);
});
