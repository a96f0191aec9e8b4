// `probe passwd USER`: password from standard input (first line, newline stripped), one
// users-file line on standard output, usage errors with status 2. In-process with injected
// streams, and once as a real subprocess through the import.meta.main guard.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runPasswd, type PasswdIo } from "../../src/cli/commands/passwd.ts";
import { parseUsersFile, verifyUserPassword } from "../../src/daemon/auth/index.ts";

const BUN = process.execPath;
const PASSWD_TS = join(import.meta.dir, "../../src/cli/commands/passwd.ts");

/** Standard input delivered in the given chunks (to exercise line assembly across reads). */
function io(chunks: (string | Uint8Array)[], isTerminal = false) {
  const out: string[] = [];
  const err: string[] = [];
  const stdin = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
      controller.close();
    },
  });
  const streams: PasswdIo = { stdin, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), isTerminal };
  return { streams, stdout: () => out.join(""), stderr: () => err.join("") };
}

async function passwordIn(line: string, user: string, password: string): Promise<boolean> {
  return verifyUserPassword(parseUsersFile(line), user, password);
}

describe("runPasswd: good input", () => {
  const rows: [string, (string | Uint8Array)[], string][] = [
    ["line with LF", ["hunter2\n"], "hunter2"],
    ["line with CRLF", ["hunter2\r\n"], "hunter2"],
    ["no newline at all", ["hunter2"], "hunter2"],
    ["only the first line counts", ["hunter2\nsecond line\n"], "hunter2"],
    ["split across reads", ["hun", "ter", "2\n"], "hunter2"],
    ["inner spaces kept", ["  two words  \n"], "  two words  "],
    ["1024 bytes is the longest accepted", [`${"p".repeat(1024)}\n`], "p".repeat(1024)],
    ["UTF-8 split inside a character", [new Uint8Array([0x70, 0xc3]), new Uint8Array([0xa9, 0x0a])], "pé"],
  ];
  for (const [name, chunks, password] of rows) {
    test(name, async () => {
      const run = io(chunks);
      expect(await runPasswd(["alice"], run.streams)).toBe(0);
      const line = run.stdout();
      expect(line).toMatch(/^alice:\$argon2id\$[^\n]+\n$/);
      expect(await passwordIn(line, "alice", password)).toBe(true);
      expect(await passwordIn(line, "alice", `${password}x`)).toBe(false);
      expect(run.stderr()).toBe("");
    });
  }

  test("terminal: echo off, asked twice, echo back on; matching entries accepted", async () => {
    const run = io(["pw1\npw1\n"], true);
    const echo: boolean[] = [];
    run.streams.setEcho = (on) => (echo.push(on), true);
    expect(await runPasswd(["alice"], run.streams)).toBe(0);
    expect(echo).toEqual([false, true]);
    expect(run.stderr()).toContain("Password for alice:");
    expect(await passwordIn(run.stdout(), "alice", "pw1")).toBe(true);
  });

  test("--help prints usage and exits 0", async () => {
    const run = io([]);
    expect(await runPasswd(["--help"], run.streams)).toBe(0);
    expect(run.stdout()).toContain("Usage: probe passwd USER");
  });
});

describe("runPasswd: refused with status 2", () => {
  const rows: [string, string[], (string | Uint8Array)[], string, boolean?][] = [
    ["empty password", ["alice"], ["\n"], "the password is empty"],
    ["no input", ["alice"], [], "no password on standard input"],
    ["no user", [], ["pw\n"], "exactly one USER"],
    ["two users", ["a", "b"], ["pw\n"], "exactly one USER"],
    ["':' in user", ["a:b"], ["pw\n"], "contains ':'"],
    ["newline in user", ["a\nb"], ["pw\n"], "control character"],
    ["65-character user", ["u".repeat(65)], ["pw\n"], "longer than 64"],
    ["password over 1024 bytes", ["alice"], [`${"p".repeat(1025)}\n`], "longer than 1024 bytes"],
    ["invalid UTF-8", ["alice"], [new Uint8Array([0xff, 0x0a])], "not valid UTF-8"],
    ["unknown flag", ["--frobnicate", "alice"], ["pw\n"], "passwd:"],
    ["terminal entries differ", ["alice"], ["pw1\npw2\n"], "the passwords differ", true],
  ];
  for (const [name, argv, chunks, message, terminal] of rows) {
    test(name, async () => {
      const run = io(chunks, terminal ?? false);
      expect(await runPasswd(argv, run.streams)).toBe(2);
      expect(run.stdout()).toBe("");
      expect(run.stderr()).toContain(message);
    });
  }
});

describe("as a subprocess (import.meta.main guard)", () => {
  test("prints a line that verifies; exit 0", async () => {
    const child = Bun.spawn([BUN, PASSWD_TS, "bob"], { stdin: new TextEncoder().encode("correct horse\n"), stdout: "pipe", stderr: "pipe" });
    const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
    expect(code).toBe(0);
    expect(await passwordIn(stdout, "bob", "correct horse")).toBe(true);
  });

  test("empty password: exit 2, nothing on stdout", async () => {
    const child = Bun.spawn([BUN, PASSWD_TS, "bob"], { stdin: new TextEncoder().encode("\n"), stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("the password is empty");
  });
});
