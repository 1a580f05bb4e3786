/**
 * The request-id window: a write retried with the same request id returns its first result instead of
 * applying twice. Bounded by leader time (entries older than windowMs go) and by count (the oldest go
 * first). Entries are kept in insertion order, which is also time order because the state machine's
 * clock never runs back, so both evictions pop from the front. Part of the replicated state: it is in
 * snapshots, and every replica evicts at the same applied commands.
 */
import type { KvResult } from "./types.ts";

export interface DedupeEntry {
  readonly requestId: string;
  /** Leader time (clamped) of the command that first carried the id. */
  readonly time: number;
  readonly result: KvResult;
}

export class DedupeWindow {
  private readonly entries = new Map<string, DedupeEntry>();
  private readonly windowMs: number;
  private readonly entriesMax: number;

  constructor(windowMs: number, entriesMax: number) {
    this.windowMs = windowMs;
    this.entriesMax = entriesMax;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Forgets entries that are windowMs old or older at `now`. */
  evict(now: number): void {
    if (this.entries.size === 0) return;
    for (const entry of this.entries.values()) {
      if (now - entry.time < this.windowMs) break;
      this.entries.delete(entry.requestId);
    }
  }

  get(requestId: string): KvResult | undefined {
    return this.entries.get(requestId)?.result;
  }

  add(requestId: string, time: number, result: KvResult): void {
    this.entries.set(requestId, { requestId, time, result });
    if (this.entries.size > this.entriesMax) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  /** Entries, oldest first. */
  list(): DedupeEntry[] {
    return [...this.entries.values()];
  }

  /** Replaces the contents with `entries` (oldest first), as read from a snapshot. */
  load(entries: readonly DedupeEntry[]): void {
    this.entries.clear();
    for (const entry of entries) this.entries.set(entry.requestId, entry);
  }
}
