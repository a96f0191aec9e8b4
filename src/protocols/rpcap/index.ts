// RPCAP (libpcap's remote capture protocol, version 0): wire vocabulary, pure codecs for every
// message, and a streaming framer. No sockets here: src/daemon and the client bind them.
export * from "./wire.ts";
export * from "./codec.ts";
export { RpcapFramer } from "./framer.ts";
export { RpcapClient, RpcapServerError, RpcapTlsError, CLIENT_REPLY_TIMEOUT_MS, type StartCaptureOptions } from "./client.ts";
