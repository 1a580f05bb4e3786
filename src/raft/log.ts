/**
 * RaftLog: the core's view of the whole log, the durable part (RaftLogReader, usually the node's
 * MemoryStorage mirror) followed by the unstable part (etcd log.go).
 *
 * Invariants: firstIndex - 1 <= applied <= applying <= committed <= lastIndex.
 */
import { assert } from "../shared/assert.ts";
import { violated } from "./invariant.ts";
import { Unstable } from "./log-unstable.ts";
import type { Entry, RaftLogReader, Snapshot } from "./types.ts";

export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be committed (durable on a quorum). */
  committed: number;
  /** Highest index handed to the application in a Ready (being applied). */
  applying: number;
  /** Highest index the application acknowledged as applied (advance). */
  applied: number;

  constructor(
    readonly storage: RaftLogReader,
    committed: number,
    applied: number,
  ) {
    const lastIndex = storage.lastIndex();
    this.unstable = new Unstable(lastIndex + 1);
    this.committed = committed;
    this.applied = applied;
    this.applying = applied;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /**
   * Last index that is durable locally: everything before the unstable part. 0 while an incoming
   * snapshot is not yet durable (then nothing local can be counted on).
   */
  stableLastIndex(): number {
    if (this.unstable.snapshot !== null) return 0;
    return this.unstable.offset - 1;
  }

  /** Term of the entry at `index`, or -1 if it is compacted or beyond the last index. */
  term(index: number): number {
    const t = this.unstable.maybeTerm(index);
    if (t !== -1) return t;
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return -1;
    return this.storage.term(index);
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== -1, "log: last term unavailable");
    return t;
  }

  matchTerm(index: number, term: number): boolean {
    const t = this.term(index);
    return t !== -1 && t === term;
  }

  /** Raft §5.4.1: a candidate's log at (lastIndex, lastTerm) is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Index of the first entry of `entries` that conflicts with the log (same index, different term)
   * or is new (beyond the last index); 0 if every entry is already present.
   */
  findConflict(entries: readonly Entry[]): number {
    const last = this.lastIndex();
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.index > last) return entry.index;
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with its term: the fast-backtracking hint
   * (etcd findConflictByTerm). Stops at the first index whose term is unknown (compacted).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      const t = this.term(index);
      if (t === -1) return { index, term: 0 };
      if (t <= term) return { index, term: t };
    }
    return { index: 0, term: 0 };
  }

  /**
   * Follower append (etcd maybeAppend): if the log matches at (prevIndex, prevTerm), appends the
   * entries that are new or conflicting (never truncating on a stale, shorter request), commits up
   * to min(leaderCommit, last new index) and returns that last new index; otherwise -1. The caller
   * answers requests below the commit index without calling this, so a conflict at or below the
   * commit index cannot happen (asserted).
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[]): number {
    if (!this.matchTerm(prevIndex, prevTerm)) return -1;
    const lastNewIndex = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      this.appendFrom(entries, conflict - prevIndex - 1);
    }
    this.commitTo(Math.min(leaderCommit, lastNewIndex));
    return lastNewIndex;
  }

  private appendFrom(entries: readonly Entry[], from: number): void {
    const firstIndex = entries[from]!.index;
    if (!(firstIndex > this.committed)) violated(`log: append at ${firstIndex} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries, from);
  }

  /** The leader's append of one new entry at lastIndex + 1. */
  appendOne(entry: Entry): void {
    this.unstable.appendOne(entry);
  }

  commitTo(index: number): void {
    if (index > this.committed) {
      if (!(index <= this.lastIndex())) violated(`log: commit ${index} beyond last index ${this.lastIndex()}`);
      this.committed = index;
    }
  }

  /** Highest index that may be handed to the application: committed and durable here. */
  private maxApplicableIndex(): number {
    const stable = this.stableLastIndex();
    return this.committed < stable ? this.committed : stable;
  }

  hasNextCommittedEntries(): boolean {
    if (this.unstable.snapshot !== null) return false;
    return this.applying < this.maxApplicableIndex();
  }

  /** Committed, durable entries not yet handed to the application, up to `bytesMax` (at least one). */
  nextCommittedEntries(bytesMax: number): readonly Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const hi = this.maxApplicableIndex() + 1;
    return this.slice(lo, hi, bytesMax);
  }

  acceptApplying(index: number): void {
    if (index > this.applying) this.applying = index;
  }

  appliedTo(index: number): void {
    if (!(index <= this.committed)) violated(`log: applied ${index} beyond committed ${this.committed}`);
    if (index > this.applied) this.applied = index;
    if (this.applying < this.applied) this.applying = this.applied;
  }

  /** Entries in [lo, hi) up to `bytesMax` (at least one), from storage and/or the unstable part. */
  slice(lo: number, hi: number, bytesMax: number): readonly Entry[] {
    if (lo >= hi) return [];
    if (!(lo >= this.firstIndex() && hi <= this.lastIndex() + 1)) violated(`log: slice [${lo}, ${hi}) out of bounds`);
    const offset = this.unstable.offset;
    if (lo >= offset) return this.unstable.slice(lo, limitEnd(this.unstable.entries, lo - offset, hi - offset, bytesMax) + offset);
    const stored = this.storage.entries(lo, Math.min(hi, offset), bytesMax);
    if (hi <= offset || stored.length < Math.min(hi, offset) - lo) return stored;
    // Spans both parts: top up from the unstable entries within the byte budget.
    let bytes = 0;
    for (let i = 0; i < stored.length; i++) bytes += stored[i]!.data.byteLength;
    const out = stored.slice();
    for (let index = offset; index < hi; index++) {
      const entry = this.unstable.entries[index - offset]!;
      bytes += entry.data.byteLength;
      if (bytes > bytesMax) break;
      out.push(entry);
    }
    return out;
  }

  /** Replaces the log with a snapshot (the caller checked it is newer than commit and does not match). */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  /** The snapshot a lagging follower needs: the pending one if any, else the storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }
}

/** End (exclusive) of the longest run entries[lo..] under `bytesMax` bytes, at least one entry. */
function limitEnd(entries: readonly Entry[], lo: number, hi: number, bytesMax: number): number {
  let bytes = 0;
  for (let i = lo; i < hi; i++) {
    bytes += entries[i]!.data.byteLength;
    if (i > lo && bytes > bytesMax) return i;
  }
  return hi;
}
