// PCAP-over-IP serving: listeners (TCP, TLS, mutual TLS), outbound --connect peers, one
// bounded queue and slow-consumer policy per consumer.
export { PcapOverIpServer, PCAP_OVER_IP_DEFAULT_PORT, CONNECT_BACKOFF_INITIAL_MS, CONNECT_BACKOFF_MAX_MS, formatHostPort, type PcapOverIpServerOptions, type TlsFiles } from "./pcap-over-ip-server.ts";
export { StreamConsumer, type SlowConsumerPolicy, type StreamConsumerOptions } from "./stream-consumer.ts";
