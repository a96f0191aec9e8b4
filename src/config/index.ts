// Configuration: settings merged once at the edge into frozen, zod-validated objects — rpcapd's
// flags and config file, hook and log settings, the rotating file and RT outputs' settings.
// (Pipeline files are read beside their schema, src/pipeline; addresses and CIDR: src/net.)
export * from "./hook-config.ts";
export * from "./rpcapd-config.ts";
export * from "./log-config.ts";
