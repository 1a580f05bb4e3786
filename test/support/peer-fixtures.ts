/** Builders shared by the peer codec and transport tests. */
import type { Entry, Message, Snapshot } from "../../src/raft/types.ts";

export function entry(index: number, data: Uint8Array = new Uint8Array([index & 0xff]), term = 1): Entry {
  return { term, index, type: "normal", data };
}

export function message(overrides: Partial<Message> = {}): Message {
  return {
    type: "app",
    from: "n1",
    to: "n2",
    term: 1,
    logTerm: 1,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...overrides,
  };
}

export function snapshot(data: Uint8Array, index = 10, term = 2): Snapshot {
  return { metadata: { index, term, confState: { voters: ["n1", "n2", "n3"], learners: [] } }, data };
}

/** Collects log lines so a test can assert that an error was logged. */
export function recordingLogger(): {
  lines: { level: string; msg: string; fields?: object }[];
  logger: (level: "debug" | "info" | "warn" | "error", msg: string, fields?: object) => void;
} {
  const lines: { level: string; msg: string; fields?: object }[] = [];
  return {
    lines,
    logger: (level, msg, fields) => {
      lines.push(fields === undefined ? { level, msg } : { level, msg, fields });
    },
  };
}

/** Resolves once `predicate` holds, polling every few ms; rejects after `timeoutMs` (a bound, not a timed assertion). */
export async function waitFor(predicate: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function bytesOf(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}
