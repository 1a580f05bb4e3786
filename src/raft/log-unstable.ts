/**
 * The unstable part of the log (etcd log_unstable.go): entries and at most one incoming snapshot
 * that the core has produced or accepted but the node has not yet acknowledged as durable.
 *
 * Entries move through three stages: new (not yet handed out in a Ready), in progress (handed out,
 * the node is writing them), stable (acknowledged by advance(); removed from here, read from
 * storage from then on).
 *
 * Invariants: entries[i].index === offset + i; offset <= offsetInProgress <= offset + entries.length;
 * when `snapshot` is set, offset === snapshot index + 1.
 */
import { assert } from "../shared/assert.ts";
import { violated } from "./invariant.ts";
import type { Entry, Snapshot } from "./types.ts";

export class Unstable {
  snapshot: Snapshot | null = null;
  /** Owned by this class: never handed out (readers get copies), so it can be mutated in place. */
  entries: Entry[] = [];
  offset: number;
  /** Entries with index < offsetInProgress were handed out in a Ready and are being persisted. */
  offsetInProgress: number;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** First index if a snapshot is pending, else undefined (the storage knows). */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === null ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot !== null) return this.snapshot.metadata.index;
    return undefined;
  }

  /** Term of `index` if this part of the log knows it, else -1. */
  maybeTerm(index: number): number {
    if (index < this.offset) {
      if (this.snapshot !== null && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return -1;
    }
    const i = index - this.offset;
    if (i >= this.entries.length) return -1;
    return this.entries[i]!.term;
  }

  hasNextEntries(): boolean {
    return this.offsetInProgress < this.offset + this.entries.length;
  }

  /** Entries not yet handed out (a copy). */
  nextEntries(): Entry[] {
    const start = this.offsetInProgress - this.offset;
    return start === 0 ? this.entries.slice() : this.entries.slice(start);
  }

  hasNextSnapshot(): boolean {
    return this.snapshot !== null && !this.snapshotInProgress;
  }

  /** Marks everything currently unstable as handed out in a Ready. */
  acceptInProgress(): void {
    this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot !== null) this.snapshotInProgress = true;
  }

  /**
   * The node made entries up to (index, term) durable. Checks the term too (the ABA race): if the
   * entry at `index` was replaced since it was handed out, nothing becomes stable. Returns whether
   * entries were marked stable.
   */
  stableTo(index: number, term: number): boolean {
    const currentTerm = this.maybeTerm(index);
    if (currentTerm === -1 || index < this.offset) return false;
    if (currentTerm !== term) return false;
    const count = index + 1 - this.offset;
    // The array is never shared, so dropping the common "everything stable" case costs nothing.
    this.entries = count === this.entries.length ? [] : this.entries.slice(count);
    this.offset = index + 1;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
    return true;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== null && this.snapshot.metadata.index === index) {
      this.snapshot = null;
      this.snapshotInProgress = false;
    }
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = snapshot;
    this.snapshotInProgress = false;
  }

  /** Appends one entry at offset + entries.length (the leader's hot path). */
  appendOne(entry: Entry): void {
    assert(entry.index === this.offset + this.entries.length, "unstable: appendOne out of order");
    this.entries.push(entry);
  }

  /** Appends entries[from..], truncating any unstable suffix they overwrite. */
  truncateAndAppend(entries: readonly Entry[], from: number): void {
    if (from >= entries.length) return;
    const firstIndex = entries[from]!.index;
    const end = this.offset + this.entries.length;
    if (firstIndex === end) {
      // Plain append.
    } else if (firstIndex <= this.offset) {
      // Replaces everything unstable (and possibly part of the stable log, which the node truncates).
      this.offset = firstIndex;
      this.offsetInProgress = firstIndex;
      this.entries = [];
    } else {
      if (!(firstIndex < end)) violated(`unstable: append at ${firstIndex} leaves a gap after ${end - 1}`);
      this.entries.length = firstIndex - this.offset;
      if (this.offsetInProgress > firstIndex) this.offsetInProgress = firstIndex;
    }
    for (let i = from; i < entries.length; i++) this.entries.push(entries[i]!);
  }

  /** Entries in [lo, hi) (a copy); caller checks the range lies within the unstable entries. */
  slice(lo: number, hi: number): Entry[] {
    if (!(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi)) violated(`unstable: slice [${lo}, ${hi}) out of bounds`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
