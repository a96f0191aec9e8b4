// The folders of src/ import downward only, in the order README.md's "How it is built" writes
// down: a file of one folder may import from its own folder or from one below it, never from one
// above. So no two folders import each other (a cycle always has an upward import). The order is
// read from README, so the document and the rule cannot drift apart.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

const repoRoot = normalize(join(import.meta.dir, "../.."));
const srcRoot = join(repoRoot, "src");

/** The order line of README: "Folders import downward only, in this order (lowest first): `a, b, …`". */
function documentedOrder(): string[] {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const match = /Folders import downward only, in this order \(lowest first\): `([^`]+)`/.exec(readme.replace(/\n/g, " "));
  if (!match) throw new Error("README.md has no 'Folders import downward only' line");
  return match[1]!.split(",").map((name) => name.trim());
}

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(entry.name) ? [path] : [];
  });
}

/** Relative specifiers a file imports: static `from "./x"`, `import "./x"`, dynamic `import("./x")`. */
function relativeImports(text: string): string[] {
  const specifiers: string[] = [];
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) specifiers.push(match[1]!);
  return specifiers;
}

/** The top folder of src/ a path is in ("" for a file directly in src/, or outside it). */
function folderOf(path: string): string {
  const inside = relative(srcRoot, path);
  if (inside.startsWith("..")) return "";
  const parts = inside.split("/");
  return parts.length > 1 ? parts[0]! : "";
}

interface Edge {
  from: string;
  to: string;
  file: string;
  target: string;
}

function folderImports(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(srcRoot)) {
    for (const specifier of relativeImports(readFileSync(file, "utf8"))) {
      const target = normalize(join(dirname(file), specifier));
      const from = folderOf(file);
      const to = folderOf(target);
      if (from && to && from !== to) edges.push({ from, to, file: relative(repoRoot, file), target: relative(repoRoot, target) });
    }
  }
  return edges;
}

describe("folders of src/ import downward only", () => {
  test("README's order names every folder of src/ once", () => {
    const order = documentedOrder();
    const folders = readdirSync(srcRoot, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    expect([...order].sort()).toEqual(folders);
    expect(new Set(order).size).toBe(order.length);
  });

  test("no import runs upward (and so no two folders import each other)", () => {
    const order = documentedOrder();
    const rank = new Map(order.map((name, index) => [name, index]));
    const upward = folderImports()
      .filter((edge) => rank.get(edge.to)! > rank.get(edge.from)!)
      .map((edge) => `${edge.file} (${edge.from}) imports ${edge.target} (${edge.to})`);
    expect(upward).toEqual([]);
  });

  test("the check sees imports at all (each folder above packet imports something below it)", () => {
    const edges = folderImports();
    // Guards the parser: with no edges found the test above would pass for nothing.
    expect(edges.length).toBeGreaterThan(100);
    expect(edges.some((edge) => edge.from === "cli" && edge.to === "pipeline")).toBe(true);
    expect(edges.some((edge) => edge.from === "outputs" && edge.to === "daemon")).toBe(true);
  });
});
