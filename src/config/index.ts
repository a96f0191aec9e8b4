// Configuration: each command's settings as a zod schema (flags and files merged once into a
// frozen object), named limits and timeouts, and the address/CIDR forms operators type.
export * from "./addresses.ts";
export * from "./capture-config.ts";
export * from "./hook-config.ts";
export * from "./pcap-over-ip-config.ts";
export * from "./rpcapd-config.ts";
export * from "./tls-client.ts";
export * from "./keepalive.ts";
