/**
 * MemoryStorage: the in-memory mirror of one group's durable log (etcd MemoryStorage). The node keeps
 * one per group and updates it from each Ready after the write is durable; the core reads it through
 * RaftLogReader. Entries are held in one array with a moving head so that appends and compaction are
 * amortized O(1) (no O(n) copy per call).
 */
import { assert } from "../shared/assert.ts";
import { violated } from "./invariant.ts";
import type { ConfState, Entry, HardState, RaftLogReader, Snapshot } from "./types.ts";

/** Thrown by RaftLogReader when an index is compacted away or not yet in the log (like etcd ErrCompacted / ErrUnavailable). */
export class RaftLogUnavailable extends Error {
  override readonly name = "RaftLogUnavailable";
  constructor(
    readonly reason: "compacted" | "unavailable",
    readonly index: number,
  ) {
    super(`raft log: index ${index} ${reason}`);
  }
}

export const EMPTY_CONF_STATE: ConfState = Object.freeze({ voters: Object.freeze([]), learners: Object.freeze([]) });
export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: null, commit: 0 });
const EMPTY_DATA = new Uint8Array(0);

/** Sum of payload bytes of `entries`, the unit of every byte limit in the core. */
export function entriesBytes(entries: readonly Entry[]): number {
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) bytes += entries[i]!.data.byteLength;
  return bytes;
}

/** Compact the backing array once this many dead slots precede the head (and they are the majority). */
const HEAD_SLACK_MAX = 4096;

export class MemoryStorage implements RaftLogReader {
  private hardState: HardState;
  private confState: ConfState;
  private snap: Snapshot;
  /** Index and term of the entry just before the first retained one (the compaction point). */
  private prevIndex: number;
  private prevTerm: number;
  /** Retained entries live in ents[head..]; ents[head] has index prevIndex + 1. */
  private ents: Entry[] = [];
  private head = 0;

  /**
   * `confState` bootstraps a new group (its voters); a joining node passes nothing and waits for
   * the leader. Without `snapshot` the log starts with an index-0 snapshot that carries `confState`
   * and empty data: the leader sends it to joining nodes, so the state machine must restore empty
   * data as its initial state. On restart pass the persisted snapshot, hard state, entries after
   * the snapshot, and the confState as of the applied index (RaftConfig.applied).
   */
  constructor(init: { confState?: ConfState; hardState?: HardState; snapshot?: Snapshot; entries?: readonly Entry[] } = {}) {
    const confState = init.confState ?? init.snapshot?.metadata.confState ?? EMPTY_CONF_STATE;
    this.confState = copyConfState(confState);
    this.snap = init.snapshot ?? { metadata: { index: 0, term: 0, confState: this.confState }, data: EMPTY_DATA };
    this.hardState = init.hardState ?? EMPTY_HARD_STATE;
    this.prevIndex = this.snap.metadata.index;
    this.prevTerm = this.snap.metadata.term;
    if (init.entries !== undefined && init.entries.length > 0) {
      const first = init.entries[0]!;
      if (!(first.index <= this.prevIndex + 1)) violated(`storage: entries start at ${first.index}, after a gap from snapshot ${this.prevIndex}`);
      this.append(init.entries);
    }
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.confState };
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /** Records the membership in effect after applying a conf entry (what initialState() returns on restart). */
  setConfState(confState: ConfState): void {
    this.confState = copyConfState(confState);
  }

  firstIndex(): number {
    return this.prevIndex + 1;
  }

  lastIndex(): number {
    return this.prevIndex + this.ents.length - this.head;
  }

  term(index: number): number {
    if (index === this.prevIndex) return this.prevTerm;
    if (index < this.prevIndex) throw new RaftLogUnavailable("compacted", index);
    if (index > this.lastIndex()) throw new RaftLogUnavailable("unavailable", index);
    return this.ents[this.head + index - this.prevIndex - 1]!.term;
  }

  entries(indexLow: number, indexHigh: number, sizeBytesMax: number): readonly Entry[] {
    if (indexLow <= this.prevIndex) throw new RaftLogUnavailable("compacted", indexLow);
    if (!(indexHigh <= this.lastIndex() + 1)) violated(`storage: entries [${indexLow}, ${indexHigh}) beyond last index ${this.lastIndex()}`);
    const out: Entry[] = [];
    let bytes = 0;
    const base = this.head - this.prevIndex - 1;
    for (let index = indexLow; index < indexHigh; index++) {
      const entry = this.ents[base + index]!;
      bytes += entry.data.byteLength;
      if (out.length > 0 && bytes > sizeBytesMax) break;
      out.push(entry);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Appends `entries` (contiguous), first truncating any existing suffix from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    const last = this.lastIndex();
    if (!(first <= last + 1)) violated(`storage: append at ${first} leaves a gap after ${last}`);
    let skip = 0;
    if (first <= this.prevIndex) {
      // Entries already covered by the snapshot/compaction point are ignored.
      skip = this.prevIndex + 1 - first;
      if (skip >= entries.length) return;
    }
    const from = first + skip;
    if (from <= last) this.ents.length = this.head + (from - this.prevIndex - 1);
    for (let i = skip; i < entries.length; i++) {
      const entry = entries[i]!;
      assert(entry.index === from + i - skip, "storage: appended entries must be contiguous");
      this.ents.push(entry);
    }
  }

  /** Replaces the log with `snapshot` (every entry is dropped, as in etcd MemoryStorage.ApplySnapshot). */
  applySnapshot(snapshot: Snapshot): void {
    assert(
      snapshot.metadata.index >= this.snap.metadata.index,
      `storage: snapshot ${snapshot.metadata.index} older than ${this.snap.metadata.index}`,
    );
    this.snap = snapshot;
    this.confState = copyConfState(snapshot.metadata.confState);
    this.prevIndex = snapshot.metadata.index;
    this.prevTerm = snapshot.metadata.term;
    this.ents = [];
    this.head = 0;
  }

  /**
   * Records a snapshot of the state machine as of `index` (which must be in the log and not older
   * than the current snapshot) and returns it. Compact separately (compact(index) or earlier).
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (!(index >= this.snap.metadata.index)) violated(`storage: snapshot ${index} older than ${this.snap.metadata.index}`);
    if (!(index <= this.lastIndex())) violated(`storage: snapshot ${index} beyond last index ${this.lastIndex()}`);
    const term = this.term(index);
    this.snap = { metadata: { index, term, confState: copyConfState(confState) }, data };
    return this.snap;
  }

  /**
   * Drops entries <= index. `index` must not pass the latest snapshot: a follower that needs a
   * dropped entry gets the snapshot, so it must cover everything compacted.
   */
  compact(index: number): void {
    if (index <= this.prevIndex) return;
    if (!(index <= this.lastIndex())) violated(`storage: compact ${index} beyond last index ${this.lastIndex()}`);
    if (!(index <= this.snap.metadata.index)) violated(`storage: compact ${index} beyond snapshot ${this.snap.metadata.index}`);
    const term = this.term(index);
    this.head += index - this.prevIndex;
    this.prevIndex = index;
    this.prevTerm = term;
    if (this.head > HEAD_SLACK_MAX && this.head * 2 > this.ents.length) {
      this.ents = this.ents.slice(this.head);
      this.head = 0;
    }
  }
}

function copyConfState(confState: ConfState): ConfState {
  return { voters: [...confState.voters], learners: [...confState.learners] };
}
