// The RPCAP daemon: per-connection session state machines, data channels (TCP, UDP, udpstr),
// the transport that accepts and dials connections, sampling, and authentication (auth/).
export { ListenError, RpcapDaemon, type DaemonAuthenticator, type InheritedConnection, type RpcapdOptions } from "./rpcapd.ts";
export { ActiveDialer, activeRetryDelayMs, ACTIVE_RETRY_MAX_FACTOR, ACTIVE_RETRY_JITTER_RATIO } from "./active-dialer.ts";
export { ownTrafficFilter, type OwnConnection } from "./own-traffic.ts";
export { SessionSlots, SLOT_PRESSURE_FRACTION, type SlotLimits } from "./session-slots.ts";
export { RpcapSession, type ControlChannel, type DataChannelRequest, type SessionAuthenticator, type SessionEnvironment } from "./session.ts";
export { openUdpDataChannel, connectToDataClient, listenForDataClient, DATA_ACCEPT_TIMEOUT_MS, type DataChannel } from "./data-channel.ts";
export { Sampler, type Sampling } from "./sampling.ts";
export { inetdPeerAddress, socketPeer } from "./inetd-peer.ts";
