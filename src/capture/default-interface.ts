// Choosing an interface when the operator names none, the way tcpdump does: the first one
// that is up and running and not loopback, preferring one with an IP address; lo otherwise.
import type { CaptureInterface } from "./libpcap/devices.ts";

/** Pseudo-devices that are never a sensible default. */
const PSEUDO_DEVICES = /^(any|nflog|nfqueue|dbus-|bluetooth|usbmon|ifb)/;

export function chooseDefaultInterface(devices: readonly CaptureInterface[]): string {
  const candidates = devices.filter((d) => d.up && d.running && !d.loopback && !PSEUDO_DEVICES.test(d.name));
  const withAddress = candidates.find((d) => d.addresses.length > 0);
  const chosen = withAddress ?? candidates[0] ?? devices.find((d) => d.loopback);
  if (!chosen) throw new Error("no capture interface found ('probe list' shows what libpcap sees)");
  return chosen.name;
}
