// Run as its own process by test/integration/lazy-schemas.test.ts: how many zod schema objects exist
// after importing src/pipeline/spec.ts, after validating a capture spec (one interface input,
// one file output) and after validating a spec that holds every kind. Prints them as JSON.
//
// zod 4 gives every schema and check it builds one Set of its traits (`_zod.traits`), so the
// heap's Set count, less the count before, measures what was built (kindSchema() adds one more
// Set per kind, its discriminator value). A fresh process: another test's schemas would count.
import { heapStats } from "bun:jsc";

const [, , everyKindYamlPath] = process.argv;
const sets = () => {
  Bun.gc(true);
  return heapStats().objectTypeCounts.Set ?? 0;
};
const before = sets();
const { checkPipelineSpec } = await import("../../src/pipeline/spec.ts");
const afterImport = sets() - before;
const capture = checkPipelineSpec({ inputs: [{ kind: "interface", device: "lo" }], outputs: [{ kind: "file", path: "/dev/null" }] });
const afterCaptureSpec = sets() - before;
const { parsePipelineText } = await import("../../src/pipeline/pipeline-file.ts");
parsePipelineText("every-kind.yaml", await Bun.file(everyKindYamlPath!).text());
const afterEveryKind = sets() - before;
console.log(JSON.stringify({ accepted: "spec" in capture, afterImport, afterCaptureSpec, afterEveryKind }));
