// Remote capture sources: packets read from another machine instead of a local interface.
// Exported here: PCAP-over-IP (tcp://, TCP@, tls://) as a CaptureSource with optional reconnect,
// libtrace RT (rt://) with acknowledgement of what the consumer wrote, and active-mode RPCAP
// probes (one CaptureSource per probe that dials in, or all of them as one).
export {
  DEFAULT_HEADER_TIMEOUT_MS,
  KEEPALIVE_INITIAL_DELAY_MS,
  PcapOverIpSource,
  RECONNECT_INITIAL_DELAY_MS,
  RECONNECT_MAX_DELAY_MS,
  type PcapOverIpSourceCounters,
  type PcapOverIpSourceOptions,
  type ReconnectOptions,
} from "./pcap-over-ip-source.ts";
export { RemoteSourceError, RemoteSourceErrorCode, type RemoteSourceErrorCodeName } from "./remote-source-error.ts";
export {
  formatRemoteSourceUrl,
  parseRemoteSourceUrl,
  type RemoteSourceAddress,
  type RemoteSourceKind,
} from "./remote-source-url.ts";
export {
  ACTIVE_PROBE_SETUP_TIMEOUT_MS,
  MAX_ACTIVE_CONNECTIONS_PER_ADDRESS,
  MAX_ACTIVE_PROBES,
  MAX_PENDING_ACTIVE_CONNECTIONS,
  RpcapActiveInputSource,
  RpcapActiveListener,
  RpcapActivePeerSource,
  type ActiveCaptureSettings,
  type RpcapActiveInputOptions,
  type RpcapActiveListenerOptions,
} from "./rpcap-active-source.ts";
export { RtSource, RT_HELLO_TIMEOUT_MS, type RtSourceCounters, type RtSourceOptions } from "./rt-source.ts";
