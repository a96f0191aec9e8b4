// The TCP byte streams and UDP datagrams of a shared vector capture, as tshark reassembles
// them (payload per frame, retransmissions dropped by TCP sequence number).
import { runTool } from "./probe-binary.ts";

export const vectorsDir = new URL("../../../shared/vectors/", import.meta.url).pathname;

export interface TcpDirection {
  /** "srcport>dstport" */
  key: string;
  srcPort: number;
  dstPort: number;
  bytes: Uint8Array;
  /** Frame number where each payload segment starts, with its offset in `bytes`. */
  segments: { frame: number; offset: number }[];
}

export async function loadVectorTcp(fileName: string): Promise<Map<string, TcpDirection>> {
  const out = await runTool([
    "tshark", "-r", `${vectorsDir}${fileName}`, "-Y", "tcp.len > 0", "-T", "fields",
    "-e", "frame.number", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.seq_raw", "-e", "tcp.payload",
  ]);
  const directions = new Map<string, { dir: TcpDirection; parts: Uint8Array[]; seen: Set<string>; length: number }>();
  for (const line of out.trim().split("\n")) {
    const [frame, src, dst, seq, hex] = line.split("\t");
    const key = `${src}>${dst}`;
    let d = directions.get(key);
    if (!d) {
      d = { dir: { key, srcPort: Number(src), dstPort: Number(dst), bytes: new Uint8Array(), segments: [] }, parts: [], seen: new Set(), length: 0 };
      directions.set(key, d);
    }
    if (d.seen.has(seq!)) continue; // retransmission
    d.seen.add(seq!);
    const bytes = Buffer.from(hex!.replaceAll(":", ""), "hex");
    d.dir.segments.push({ frame: Number(frame), offset: d.length });
    d.parts.push(bytes);
    d.length += bytes.length;
  }
  const result = new Map<string, TcpDirection>();
  for (const [key, d] of directions) {
    d.dir.bytes = new Uint8Array(Buffer.concat(d.parts));
    result.set(key, d.dir);
  }
  return result;
}

/** Every UDP payload with its ports, in frame order. */
export async function loadVectorUdp(fileName: string): Promise<{ frame: number; srcPort: number; dstPort: number; payload: Uint8Array }[]> {
  const out = await runTool([
    "tshark", "-r", `${vectorsDir}${fileName}`, "-Y", "udp", "-T", "fields",
    "-e", "frame.number", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.payload",
  ]);
  return out.trim().split("\n").filter(Boolean).map((line) => {
    const [frame, src, dst, hex = ""] = line.split("\t");
    return { frame: Number(frame), srcPort: Number(src), dstPort: Number(dst), payload: new Uint8Array(Buffer.from(hex.replaceAll(":", ""), "hex")) };
  });
}
