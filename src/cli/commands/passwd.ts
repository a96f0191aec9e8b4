// `probe passwd USER`: reads a password from standard input and prints the users-file line
// `USER:$argon2id$...` for `probe rpcapd --users FILE` (the hash comes from Bun.password).
import { DEFAULT_MAX_PASSWORD_BYTES, hashPasswordLine, usernameProblem } from "../../daemon/auth/index.ts";
import { parseCommandLine } from "../parse-options.ts";
import { ExitCode, UsageError } from "../usage-error.ts";

export const PASSWD_HELP = `Usage: probe passwd USER

Reads a password from standard input (the first line; its newline is not part of it) and
prints one line for the file given to 'probe rpcapd --users FILE':

  USER:$argon2id$v=19$m=65536,t=2,p=1$...

On a terminal the password is asked for twice without echo. USER is 1 to 64 characters
without ':' or control characters; the password may not be empty or longer than
${DEFAULT_MAX_PASSWORD_BYTES} bytes.

Options:
  -h, --help    this text

Example:
  printf '%s\\n' "$PASSWORD" | probe passwd alice >> /etc/probe/users
`;

/**
 * Most bytes read from standard input while looking for the end of the line: the longest password
 * the daemon accepts plus a CRLF, so a file piped in by mistake is not read whole.
 */
const MAX_INPUT_LINE_BYTES = DEFAULT_MAX_PASSWORD_BYTES + 2;

/** Where `probe passwd` reads and writes; the process's own by default, injected by tests. */
export interface PasswdIo {
  stdin: ReadableStream<Uint8Array>;
  stdout(text: string): void;
  stderr(text: string): void;
  /** True when stdin is a terminal: then prompt, switch echo off and ask twice. */
  isTerminal: boolean;
  /** Switches terminal echo; returns false when it could not. Absent: echo is left alone. */
  setEcho?: (on: boolean) => boolean;
}

function processIo(): PasswdIo {
  return {
    stdin: Bun.stdin.stream(),
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    isTerminal: Boolean(process.stdin.isTTY),
    setEcho,
  };
}

/** Reads lines from a byte stream, keeping what follows a newline for the next call. */
class LineReader {
  private buffered = new Uint8Array(0);
  private ended = false;
  private readonly reader: { read(): Promise<{ done: boolean; value?: Uint8Array }>; releaseLock(): void };

  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.getReader();
  }

  /** The next line without its "\n" or "\r\n"; undefined at end of input with nothing read. */
  async readLine(maxBytes: number): Promise<string | undefined> {
    for (;;) {
      const newline = this.buffered.indexOf(0x0a);
      if (newline >= 0 || this.ended || this.buffered.byteLength > maxBytes) {
        if (newline < 0 && this.buffered.byteLength > maxBytes) throw new UsageError(`passwd: the password line is longer than ${maxBytes - 2} bytes`);
        if (newline < 0 && this.buffered.byteLength === 0) return undefined;
        const end = newline >= 0 ? newline : this.buffered.byteLength;
        let line = this.buffered.subarray(0, end);
        this.buffered = this.buffered.slice(newline >= 0 ? newline + 1 : end);
        if (line.at(-1) === 0x0d) line = line.subarray(0, -1);
        return new TextDecoder("utf-8", { fatal: true }).decode(line);
      }
      const { value, done } = await this.reader.read();
      if (done || !value) {
        this.ended = true;
        continue;
      }
      const joined = new Uint8Array(this.buffered.byteLength + value.byteLength);
      joined.set(this.buffered);
      joined.set(value, this.buffered.byteLength);
      this.buffered = joined;
    }
  }

  release(): void {
    this.reader.releaseLock();
  }
}

/** Turns terminal echo on or off with stty(1); false when that is not possible. */
function setEcho(on: boolean): boolean {
  try {
    return Bun.spawnSync(["stty", on ? "echo" : "-echo"], { stdin: "inherit", stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  } catch {
    return false;
  }
}

async function readPassword(io: PasswdIo, user: string): Promise<string> {
  const lines = new LineReader(io.stdin);
  try {
    if (!io.isTerminal) {
      const line = await lines.readLine(MAX_INPUT_LINE_BYTES);
      if (line === undefined) throw new UsageError("passwd: no password on standard input");
      return line;
    }
    const echoOff = io.setEcho?.(false) ?? false;
    try {
      io.stderr(`Password for ${user}: `);
      const first = await lines.readLine(MAX_INPUT_LINE_BYTES);
      io.stderr("\nAgain: ");
      const second = await lines.readLine(MAX_INPUT_LINE_BYTES);
      io.stderr("\n");
      if (first !== second) throw new UsageError("passwd: the passwords differ");
      return first ?? "";
    } finally {
      if (echoOff) io.setEcho?.(true);
    }
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError("passwd: the password is not valid UTF-8");
    throw error;
  } finally {
    lines.release();
  }
}

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const PASSWD_OPTIONS = { help: { type: "boolean", short: "h" } } as const;

/** `probe passwd USER`: prints `USER:hash`; 0 on success, 2 on bad usage or input. */
export async function runPasswd(argv: string[], io: PasswdIo = processIo()): Promise<number> {
  try {
    const { values, positionals } = parseCommandLine("passwd", argv, PASSWD_OPTIONS);
    if (values.help) {
      io.stdout(PASSWD_HELP);
      return ExitCode.OK;
    }
    if (positionals.length !== 1) throw new UsageError("passwd: give exactly one USER");
    const user = positionals[0] ?? "";
    const problem = usernameProblem(user);
    if (problem) throw new UsageError(`passwd: ${problem}`);
    const password = await readPassword(io, user);
    if (password.length === 0) throw new UsageError("passwd: the password is empty");
    if (Buffer.byteLength(password) > DEFAULT_MAX_PASSWORD_BYTES) {
      throw new UsageError(`passwd: the password is longer than ${DEFAULT_MAX_PASSWORD_BYTES} bytes, which rpcapd would refuse`);
    }
    io.stdout(`${await hashPasswordLine(user, password)}\n`);
    return ExitCode.OK;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`probe: ${error.message}\nTry 'probe passwd --help'.\n`);
    return ExitCode.USAGE;
  }
}

if (import.meta.main) process.exit(await runPasswd(process.argv.slice(2)));
