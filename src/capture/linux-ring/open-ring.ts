// Opens a ring capture from the options a live capture carries: the checks that send a capture to
// libpcap instead (RingUnsupported), the filter attached before the socket is bound, and clean-up
// on failure. Shared by the capture worker and the main-thread reader (main-thread-ring.ts).
import { needsLibpcapVlanHandling, RingSocket, RingUnsupported } from "./ring-socket.ts";
import type { LiveOpenOptions } from "../libpcap/pcap-handle.ts";
import type { WorkerFilter } from "../libpcap/worker-protocol.ts";

export interface RingCaptureRequest {
  options: LiveOpenOptions;
  filter?: WorkerFilter;
  batchBytes: number;
  /** The kernel retires a block that is not full after this long (tp_retire_blk_tov). */
  retireBlockMs: number;
  fanoutGroup?: number;
}

/** Compiles (if an expression) and attaches a filter to an open ring. */
export function applyRingFilter(ring: RingSocket, filter: WorkerFilter): void {
  if (filter.kind === "expression") ring.setFilterExpression(filter.expression);
  else ring.setFilterProgram(filter.instructions);
}

/** A started ring, or RingUnsupported when libpcap must serve this capture. */
export function openRingCapture(request: RingCaptureRequest): RingSocket {
  const o = request.options;
  if (o.immediate) throw new RingUnsupported("immediate mode needs libpcap's TPACKET_V2 ring");
  if (request.filter?.kind === "expression" && needsLibpcapVlanHandling(request.filter.expression)) {
    throw new RingUnsupported("'vlan' filters need libpcap's in-kernel VLAN tag tests");
  }
  const ring = RingSocket.open({
    interface: o.interface,
    snaplen: o.snaplen,
    promiscuous: o.promiscuous,
    bufferBytes: o.bufferBytes,
    precision: o.precision,
    direction: o.direction,
    retireBlockMs: request.retireBlockMs,
    batchBytes: request.batchBytes,
    ...(request.fanoutGroup !== undefined ? { fanoutGroup: request.fanoutGroup } : {}),
  });
  try {
    if (request.filter) applyRingFilter(ring, request.filter);
    ring.start();
  } catch (error) {
    ring.close();
    throw error;
  }
  return ring;
}
