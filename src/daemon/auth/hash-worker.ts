// The password-hashing worker: one check at a time, off the daemon's main thread. argon2 and
// bcrypt through Bun.password's synchronous verify, system hashes through libcrypt's crypt_r,
// so a flood of AUTH requests costs this thread's time, never the event loop's.
import { cryptHash } from "./libcrypt-ffi.ts";
import type { HashJob, HashJobResult } from "./hash-worker-pool.ts";

declare const self: Worker;

function run(job: HashJob): HashJobResult {
  switch (job.kind) {
    case "verify": {
      let matches: boolean;
      try {
        matches = Bun.password.verifySync(job.password, job.hash);
      } catch {
        // A hash Bun cannot read counts as a mismatch (users-file.ts says the same).
        matches = false;
      }
      return { id: job.id, kind: "verify", matches };
    }
    case "crypt":
      return { id: job.id, kind: "crypt", result: cryptHash(job.password, job.setting, job.libcryptPath) };
  }
}

self.onmessage = (event: MessageEvent<HashJob>) => {
  self.postMessage(run(event.data));
};
