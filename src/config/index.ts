// Configuration: settings merged once at the edge into frozen, zod-validated objects — pipeline
// files (YAML/JSON, src/pipeline/spec.ts's schema), rpcapd's flags and config file, hook
// settings, and the address/CIDR forms operators type.
export * from "./addresses.ts";
export * from "./hook-config.ts";
export * from "./pipeline-file.ts";
export * from "./rpcapd-config.ts";
export * from "./log-config.ts";
export * from "./tls-client.ts";
export * from "./keepalive.ts";
export * from "./reconnect-backoff.ts";
