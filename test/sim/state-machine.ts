/**
 * The simulator's replicated state machine: a map of registers (key -> last written value and the log
 * index that wrote it), plus a digest chained over every applied entry.
 *
 * Why the chain: two replicas that applied index i with equal digests applied the same entries 1..i,
 * snapshots included (the digest travels inside the snapshot), so comparing one number per index is
 * the whole "state machines agree" check.
 */
import type { Entry } from "../../src/raft/types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface PutCommand {
  readonly op: "put";
  readonly key: string;
  readonly value: string;
}

/** `put key=value`; keys and values are short tokens without spaces or "=". */
export function encodePut(key: string, value: string): Uint8Array {
  return encoder.encode(`put ${key}=${value}`);
}

export function decodeCommand(data: Uint8Array): PutCommand | null {
  if (data.length === 0) return null;
  const text = decoder.decode(data);
  const match = /^put ([^=\s]+)=(\S+)$/.exec(text);
  if (match === null) throw new Error(`undecodable command ${JSON.stringify(text)}`);
  return { op: "put", key: match[1]!, value: match[2]! };
}

export function describeData(entry: Entry): string {
  if (entry.type === "conf") return "conf";
  if (entry.data.length === 0) return "noop";
  return decoder.decode(entry.data);
}

export function fnv1aBytes(bytes: Uint8Array, hash: number): number {
  let h = hash >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function mixNumber(hash: number, n: number): number {
  // Two 32-bit words of n (entry indexes and terms stay far below 2^53).
  const low = Math.imul(hash ^ (n >>> 0), 0x01000193) >>> 0;
  return Math.imul(low ^ Math.floor(n / 0x100000000), 0x01000193) >>> 0;
}

/** Identity of an entry's content (term, type and data; the index is the position). */
export function entryFingerprint(entry: Entry): number {
  let h = mixNumber(0x811c9dc5, entry.term);
  h = mixNumber(h, entry.type === "conf" ? 1 : 0);
  return fnv1aBytes(entry.data, h);
}

export interface Register {
  readonly value: string;
  /** Log index of the put that wrote it. */
  readonly index: number;
}

interface SnapshotImage {
  applied: number;
  digest: number;
  registers: [string, string, number][];
}

export class RegisterMachine {
  private registers = new Map<string, Register>();
  /** Invariant: every entry 1..applied was applied exactly once, in order. */
  applied = 0;
  /** Chained over (index, fingerprint) of every applied entry; restored from snapshots. */
  digest = 0x811c9dc5;

  /** Applies the next entry; the caller guarantees entry.index === applied + 1. */
  apply(entry: Entry): PutCommand | null {
    if (entry.index !== this.applied + 1) {
      throw new Error(`state machine at ${this.applied} asked to apply ${entry.index}`);
    }
    this.applied = entry.index;
    this.digest = mixNumber(mixNumber(this.digest, entry.index), entryFingerprint(entry));
    if (entry.type !== "normal") return null;
    const command = decodeCommand(entry.data);
    if (command !== null) this.registers.set(command.key, { value: command.value, index: entry.index });
    return command;
  }

  get(key: string): Register | null {
    return this.registers.get(key) ?? null;
  }

  snapshot(): Uint8Array {
    const image: SnapshotImage = {
      applied: this.applied,
      digest: this.digest,
      registers: [...this.registers].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, r]) => [k, r.value, r.index]),
    };
    return encoder.encode(JSON.stringify(image));
  }

  restore(data: Uint8Array): void {
    const image = JSON.parse(decoder.decode(data)) as SnapshotImage;
    this.applied = image.applied;
    this.digest = image.digest;
    this.registers = new Map(image.registers.map(([k, value, index]) => [k, { value, index }]));
  }

  describe(): string {
    return [...this.registers]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, r]) => `${k}=${r.value}@${r.index}`)
      .join(" ");
  }
}
