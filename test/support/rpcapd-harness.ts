// Starts an in-process RpcapDaemon on 127.0.0.1:0 with a simple authenticator, for session
// tests on real loopback sockets; the CLI-level tests run dist/probe rpcapd instead.
import { RpcapDaemon, type RpcapdOptions } from "../../src/daemon/rpcapd.ts";
import type { SessionAuthenticator } from "../../src/daemon/session.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { CaptureHub } from "../../src/pipeline/capture-hub.ts";
import { RpcapAuthType } from "../../src/protocols/rpcap/index.ts";

/** Null auth allowed, and one password account test:secret. Failures pause 200 ms. */
export const testAuthenticator: SessionAuthenticator = {
  async authenticate({ authType, username, password }) {
    if (authType === RpcapAuthType.NULL) return { ok: true, user: "(null)" };
    if (username === "test" && password === "secret") return { ok: true, user: "test" };
    return { ok: false, publicMessage: "Authentication failed", logDetail: `bad password for ${username}`, pauseMs: 200 };
  },
};

export async function startTestDaemon(overrides: Partial<RpcapdOptions> = {}) {
  const log = memoryLogger();
  const hub = new CaptureHub();
  const daemon = new RpcapDaemon({
    listen: { host: "127.0.0.1", port: 0, ipv4Only: true },
    active: [],
    authenticator: testAuthenticator,
    udpstrMtu: 0,
    dataPort: 0,
    authTimeoutMs: 90_000,
    idleTimeoutMs: 180_000,
    activeRetryMs: 200,
    dataQueueBytes: 4 * 1024 * 1024,
    maxControlPlen: 128 * 1024,
    maxSessions: 64,
    hub,
    log,
    ...overrides,
  });
  await daemon.start();
  return {
    daemon,
    hub,
    log,
    port: daemon.port!,
    async stop() {
      await daemon.stop();
      await hub.close();
    },
  };
}
