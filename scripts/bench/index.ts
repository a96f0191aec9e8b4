// npm run bench [-- NAME...]: runs the named benchmarks (default: all) and prints their tables.
import { benchCapture } from "./capture.ts";
import { benchRpcap } from "./rpcap.ts";
import { benchUdpstr } from "./udpstr.ts";
import { benchPcapOverIp } from "./pcap-over-ip.ts";
import { benchServe } from "./serve.ts";
import { benchRobustness } from "./robustness.ts";
import { benchRobustnessFiles } from "./robustness-files.ts";
import { benchRobustnessHooks } from "./robustness-hooks.ts";
import { benchRobustnessLockouts } from "./robustness-lockouts.ts";
import { benchRobustnessMisc } from "./robustness-misc.ts";
import { benchRobustnessSpec } from "./robustness-spec.ts";
import { benchRobustnessSpool } from "./robustness-spool.ts";
import { benchRobustnessUdpstr } from "./robustness-udpstr.ts";
import { benchStages } from "./stages.ts";
import { benchRotation } from "./rotation.ts";
import { benchRt } from "./rt.ts";
import { benchRingWalk } from "./ring-walk.ts";
import { benchStall } from "./stall.ts";

const ROBUSTNESS_PARTS = [
  benchRobustness,
  benchRobustnessLockouts,
  benchRobustnessSpool,
  benchRobustnessFiles,
  benchRobustnessSpec,
  benchRobustnessUdpstr,
  benchRobustnessHooks,
  benchRobustnessMisc,
];

const benches: Record<string, () => Promise<void>> = {
  capture: benchCapture,
  rpcap: benchRpcap,
  udpstr: benchUdpstr,
  "pcap-over-ip": benchPcapOverIp,
  serve: () => benchServe(),
  // The red team: the RPCAP fuzz and AUTH flood, then each attack of issue 21 (also runnable
  // alone as robustness-NAME).
  robustness: async () => {
    for (const part of ROBUSTNESS_PARTS) await part();
  },
  "robustness-rpcapd": benchRobustness,
  "robustness-files": benchRobustnessFiles,
  "robustness-hooks": benchRobustnessHooks,
  "robustness-lockouts": benchRobustnessLockouts,
  "robustness-misc": benchRobustnessMisc,
  "robustness-spec": benchRobustnessSpec,
  "robustness-spool": benchRobustnessSpool,
  "robustness-udpstr": benchRobustnessUdpstr,
  stages: () => benchStages(),
  rotation: benchRotation,
  rt: benchRt,
  "ring-walk": benchRingWalk,
  stall: benchStall,
  // hooks.ts runs at its top level; start it as its own process.
  hooks: async () => {
    const proc = Bun.spawn([process.execPath, new URL("./hooks.ts", import.meta.url).pathname], { stdout: "inherit", stderr: "inherit" });
    await proc.exited;
  },
};

const wanted = process.argv.slice(2);
// The default runs everything once: robustness-NAME parts run inside robustness.
const everything = Object.keys(benches).filter((name) => !name.startsWith("robustness-"));
for (const name of wanted.length ? wanted : everything) {
  const run = benches[name];
  if (!run) {
    console.error(`unknown benchmark '${name}'; known: ${Object.keys(benches).join(", ")}`);
    process.exit(2);
  }
  await run();
}
