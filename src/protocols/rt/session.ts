// The server's view of one RT client as a state machine: messages in, actions out; no sockets.
//
//   awaiting-start --START--> streaming --CLOSE--> closed
//        |  CLOSE / bad message               | bad message
//        v                                    v
//      closed                               closed
//
// libtrace's client sends START (empty body) right after it reads HELLO, ACK after every data
// message when HELLO said reliable, and CLOSE when it finishes (format_rt.c). Anything else from
// a client is a protocol error that closes that client alone.
import { ProtocolError } from "../../packet/protocol-error.ts";
import { decodeAck, decodeStart, type ProbeStart } from "./codec.ts";
import type { RtMessage } from "./framer.ts";
import { RtType, rtTypeName } from "./wire.ts";

export type RtServerSessionState =
  | { readonly kind: "awaiting-start" }
  | { readonly kind: "streaming"; readonly probe: ProbeStart | undefined }
  | { readonly kind: "closed"; readonly reason: string };

export type RtSessionAction =
  | { readonly kind: "start"; readonly probe: ProbeStart | undefined }
  | { readonly kind: "ack"; readonly sequence: number }
  | { readonly kind: "close"; readonly reason: string; readonly error?: ProtocolError };

export class RtServerSession {
  state: RtServerSessionState = { kind: "awaiting-start" };

  /** One message in; the action it asks for (none for a message that needs nothing). */
  handle(message: RtMessage): RtSessionAction | undefined {
    if (this.state.kind === "closed") return undefined;
    switch (message.type) {
      case RtType.START:
        return this.handleStart(message);
      case RtType.ACK:
        return this.handleAck(message);
      case RtType.CLOSE:
        return this.close("client sent CLOSE");
      default:
        return this.fail(new ProtocolError("unexpected-type", `a client may not send ${rtTypeName(message.type)}`, message.streamOffset));
    }
  }

  /** The transport failed to frame the stream (garbage header, length over the cap). */
  fail(error: ProtocolError): RtSessionAction {
    this.state = { kind: "closed", reason: error.code };
    return { kind: "close", reason: error.code, error };
  }

  close(reason: string): RtSessionAction {
    this.state = { kind: "closed", reason };
    return { kind: "close", reason };
  }

  private handleStart(message: RtMessage): RtSessionAction {
    if (this.state.kind !== "awaiting-start") {
      return this.fail(new ProtocolError("start-twice", "START after the stream started", message.streamOffset));
    }
    const probe = decodeStart(message.body);
    this.state = { kind: "streaming", probe };
    return { kind: "start", probe };
  }

  private handleAck(message: RtMessage): RtSessionAction {
    if (this.state.kind !== "streaming") {
      return this.fail(new ProtocolError("ack-before-start", "ACK before START", message.streamOffset));
    }
    try {
      return { kind: "ack", sequence: decodeAck(message.body, message.streamOffset) };
    } catch (error) {
      return this.fail(error as ProtocolError);
    }
  }
}
