/**
 * What the CLI touches outside itself, behind one interface so commands run in tests with captured
 * output: stdout/stderr, stdin, the environment, confirmation prompts and Ctrl-C.
 */
import { createInterface } from "node:readline/promises";

export interface CliIo {
  /** Writes text as is (callers add newlines). */
  out(text: string): void;
  /** Writes raw bytes to stdout (`kv get --raw`). */
  outBytes(bytes: Uint8Array): void;
  err(text: string): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdinIsTTY: boolean;
  /** All of stdin (for `kv put` without a value). */
  readStdin(): Promise<Uint8Array>;
  /** Asks a yes/no question on the terminal; null when there is no terminal to ask on. */
  confirm(question: string): Promise<boolean | null>;
  /** Resolves on Ctrl-C (SIGINT) or SIGTERM: long-running commands (watch) stop then. */
  readonly interrupted: Promise<void>;
}

/** The real process: stdio, process.env, SIGINT/SIGTERM. */
export function processIo(): CliIo {
  // Signal handlers are installed only when a command waits for them (watch), so Ctrl-C still ends any
  // other command at once; after the first signal they are removed again (a second Ctrl-C kills).
  let interrupted: Promise<void> | null = null;
  const onInterrupt = (): Promise<void> =>
    (interrupted ??= new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        resolve();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    }));
  return {
    out: (text) => process.stdout.write(text),
    outBytes: (bytes) => process.stdout.write(bytes),
    err: (text) => process.stderr.write(text),
    env: process.env,
    stdinIsTTY: process.stdin.isTTY === true,
    async readStdin() {
      const chunks: Uint8Array[] = [];
      for await (const chunk of process.stdin) chunks.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : (chunk as Uint8Array));
      const total = chunks.reduce((sum, c) => sum + c.length, 0);
      const out = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    },
    async confirm(question) {
      if (process.stdin.isTTY !== true) return null;
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        const answer = await rl.question(`? ${question} (y/N) `);
        return /^y(es)?$/i.test(answer.trim());
      } finally {
        rl.close();
      }
    },
    get interrupted() {
      return onInterrupt();
    },
  };
}
