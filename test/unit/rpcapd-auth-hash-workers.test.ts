// The password-hashing threads: argon2id and crypt_r answers match the main-thread functions, a
// check that hangs ends its thread at the deadline and fails (the next check gets a fresh thread),
// and idle threads are ended.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cryptHash, HashWorkerPool } from "../../src/daemon/auth/index.ts";

const dir = mkdtempSync(join(tmpdir(), "probe-hash-workers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("HashWorkerPool", () => {
  test("argon2id and bcrypt verify on a thread; wrong passwords and unreadable hashes are false", async () => {
    const pool = new HashWorkerPool({ workers: 2, jobTimeoutMs: 10_000, idleWorkerMs: 10_000 });
    const argon = await Bun.password.hash("s3cret", { algorithm: "argon2id", memoryCost: 256, timeCost: 1 });
    const bcrypt = await Bun.password.hash("s3cret", { algorithm: "bcrypt", cost: 4 });
    expect(await pool.verifyPassword("s3cret", argon)).toBe(true);
    expect(await pool.verifyPassword("guess", argon)).toBe(false);
    expect(await pool.verifyPassword("s3cret", bcrypt)).toBe(true);
    expect(await pool.verifyPassword("s3cret", "$argon2id$garbage")).toBe(false);
    expect(pool.workerCount).toBeGreaterThan(0);
    expect(pool.workerCount).toBeLessThanOrEqual(2);
    pool.close();
  });

  test("crypt_r on a thread gives the same hash as on the main thread; failures are values", async () => {
    const pool = new HashWorkerPool({ workers: 1, jobTimeoutMs: 10_000, idleWorkerMs: 10_000 });
    const setting = "$6$saltsalt$";
    expect(await pool.crypt("pw", setting, "libcrypt.so.1")).toEqual(cryptHash("pw", setting));
    const failed = await pool.crypt("pw", "$99$x$", "libcrypt.so.1");
    expect(failed.ok).toBe(false);
    pool.close();
  });

  test("a check that hangs past the deadline fails and its thread is replaced", async () => {
    const hung = join(dir, "hung-worker.ts");
    writeFileSync(hung, "self.onmessage = () => {};\n");
    let spawned = 0;
    const pool = new HashWorkerPool({
      workers: 1,
      jobTimeoutMs: 200,
      idleWorkerMs: 10_000,
      spawn: () => {
        spawned++;
        return new Worker(hung);
      },
    });
    await expect(pool.verifyPassword("pw", "$argon2id$x")).rejects.toThrow("longer than 200 ms");
    expect(pool.workerCount).toBe(0);
    await expect(pool.verifyPassword("pw", "$argon2id$x")).rejects.toThrow("longer than 200 ms");
    expect(spawned).toBe(2);
    pool.close();
  });

  test("idle threads are ended", async () => {
    const pool = new HashWorkerPool({ workers: 1, jobTimeoutMs: 10_000, idleWorkerMs: 100 });
    await pool.crypt("pw", "$6$saltsalt$", "libcrypt.so.1");
    expect(pool.workerCount).toBe(1);
    const deadline = Date.now() + 5_000;
    while (pool.workerCount > 0 && Date.now() < deadline) await Bun.sleep(50);
    expect(pool.workerCount).toBe(0);
    pool.close();
  });
});
