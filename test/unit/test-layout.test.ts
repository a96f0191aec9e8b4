// The layout rule of test/README.md: unit/ runs src/ code in the test process (no child
// process), every helper lives in support/, fixtures/ holds data only, and no test name is in
// both unit/ and integration/.
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
