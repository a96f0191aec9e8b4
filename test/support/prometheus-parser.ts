// Debian's python3-prometheus-client as the judge of probe's metrics text: parses exposition
// text with prometheus_client.parser and returns every sample as plain JSON.

export interface ParsedSample {
  family: string;
  type: string;
  name: string;
  labels: Record<string, string>;
  value: number;
}

const PARSER = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
`;

/** Parses with Debian's /usr/bin/python3 prometheus_client; throws with the parser's message on bad text. */
export async function parsePrometheusText(text: string): Promise<ParsedSample[]> {
  const proc = Bun.spawn(["/usr/bin/python3", "-c", PARSER], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`prometheus_client rejected the text: ${stderr.trim().split("\n").pop()}`);
  return JSON.parse(stdout) as ParsedSample[];
}
