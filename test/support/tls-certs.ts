// A throwaway certificate authority made with openssl for TLS client tests: a CA, and server
// certificates that are good (localhost, 127.0.0.1), for the wrong host, expired (notAfter
// before notBefore, in the past: OpenSSL 3.0's `x509 -days -1`), and self-signed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type ServerCertKind = "good" | "wrong-host" | "expired" | "self-signed";

export interface TestCertificates {
  dir: string;
  /** PEM of the CA that signed good, wrong-host and expired. */
  ca: string;
  /** Another CA, which signed none of them. */
  otherCa: string;
  server(kind: ServerCertKind): { cert: string; key: string };
  remove(): void;
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  const proc = Bun.spawn(["openssl", ...args], { cwd, stdout: "ignore", stderr: "pipe" });
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`openssl ${args.join(" ")} exited ${code}: ${err}`);
}

export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = mkdtempSync(join(tmpdir(), "probe-certs-"));
  for (const ca of ["ca", "other-ca"]) {
    await openssl(dir, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${ca}.key`, "-out", `${ca}.pem`, "-subj", `/CN=probe-test-${ca}`, "-days", "2"]);
  }
  const signed: [ServerCertKind, string, string, string][] = [
    ["good", "localhost", "DNS:localhost,IP:127.0.0.1", "1"],
    ["wrong-host", "elsewhere.invalid", "DNS:elsewhere.invalid", "1"],
    ["expired", "localhost", "DNS:localhost,IP:127.0.0.1", "-1"],
  ];
  for (const [kind, cn, san, days] of signed) {
    await openssl(dir, ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${kind}.key`, "-out", `${kind}.csr`, "-subj", `/CN=${cn}`]);
    await Bun.write(join(dir, `${kind}.ext`), `subjectAltName=${san}\n`);
    await openssl(dir, [
      "x509", "-req", "-in", `${kind}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
      "-out", `${kind}.pem`, "-days", days, "-extfile", `${kind}.ext`,
    ]);
  }
  await openssl(dir, [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self-signed.key", "-out", "self-signed.pem",
    "-subj", "/CN=localhost", "-days", "1", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ]);
  return {
    dir,
    ca: join(dir, "ca.pem"),
    otherCa: join(dir, "other-ca.pem"),
    server: (kind) => ({ cert: join(dir, `${kind}.pem`), key: join(dir, `${kind}.key`) }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The reason each refused kind must be named by (src/net/tls-client.ts describeCertificateError). */
export const REFUSAL_PATTERN: Record<Exclude<ServerCertKind, "good">, RegExp> = {
  "wrong-host": /not for '127\.0\.0\.1' \(wrong host\)/,
  expired: /has expired/,
  "self-signed": /self-signed/,
};
