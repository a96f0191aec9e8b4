// libpcap through bun:ffi: the only place (with libc's poll/memcpy/setsockopt) that touches
// native code for capture. Handles live in the capture worker; these are the safe entry points.
export { listInterfaces, type CaptureInterface, type InterfaceAddress } from "./devices.ts";
export { compileFilter, libpcapVersion, linktypeText } from "./compile-filter.ts";
export { libpcapPath, LIBPCAP_PATH_ENV, DEFAULT_LIBPCAP_SONAME, LIBPCAP_DEBIAN_PACKAGE, setSocketBuffer } from "./ffi.ts";
export type { CaptureDirection, HandleInfo, KernelStats, LiveOpenOptions } from "./pcap-handle.ts";
export * from "./constants.ts";
export { connectUnixDatagram, type UnixDatagramSender } from "../../sys/unix-datagram.ts";
