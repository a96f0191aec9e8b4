// Outputs: sinks that bind the pure codecs to files and sockets — capture files, rotating files, PCAP-over-IP
// servers.
export * from "./capture-file/index.ts";
export * from "./pcap-over-ip/index.ts";
export * from "./rotating-file/index.ts";
