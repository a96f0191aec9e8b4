// Capture files as an output: classic pcap or pcapng (with per-packet comments), to a path or
// standard output, flushed per batch so a pipe reader sees packets live.
export { CaptureFileWriter, type CaptureFileFormat, type CaptureFileOptions } from "./capture-file-writer.ts";
export { openCaptureTarget, CaptureTargetError, type CaptureTarget } from "./open-capture-target.ts";
