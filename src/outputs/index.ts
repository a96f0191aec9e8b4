// Outputs: sinks that bind the pure codecs to files and sockets — capture files, rotating files, PCAP-over-IP
// servers — and the socket writers that respect each peer's back-pressure.
export { SocketWriter } from "./socket-writer.ts";
export { OrderedSocketWriter } from "./ordered-socket-writer.ts";
export * from "./capture-file/index.ts";
export * from "./pcap-over-ip/index.ts";
export * from "./rotating-file/index.ts";
