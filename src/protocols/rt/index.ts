// libtrace's RT protocol: wire vocabulary, pure codec, a stream framer and the server-side
// session state machine. Sockets live in src/outputs/rt (server) and src/capture/remote (client).
export * from "./wire.ts";
export * from "./codec.ts";
export { RtFramer, type RtMessage } from "./framer.ts";
export { RtServerSession, type RtServerSessionState, type RtSessionAction } from "./session.ts";
