/**
 * The simulated disk of one node: what a crash keeps and what it loses.
 *
 * Model (after a level/LSM write-ahead log): each Ready becomes one atomic batch. A batch is first
 * *in flight* (the node's driver awaits it; the core is frozen), then *written* (visible to reads:
 * the MemoryStorage mirror the core reads is updated at that moment), and *durable* once a synced
 * batch completes; a sync makes every earlier written batch durable too (the log is sequential).
 * A crash keeps the durable image, maybe the in-flight batch if its fsync had finished but the node
 * had not yet noticed (crash between fsync and send), and a random prefix of the written but unsynced
 * batches (the OS may have flushed some of them). Everything else is lost.
 *
 * The durable image is what a restart rebuilds the node from, and what the checkers read when they
 * ask "is this entry really on disk on a quorum?".
 */
import type { ConfState, Entry, HardState, Snapshot } from "../../src/raft/types.ts";
import type { Prng } from "../support/prng.ts";

/** What the state machine had applied when a batch was cut, persisted atomically with the batch. */
export interface ApplyState {
  readonly applied: number;
  /** Membership as of `applied`; a restart hands it to the core with config.applied. */
  readonly confState: ConfState;
}

export interface DiskBatch {
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  readonly applyState: ApplyState;
  readonly sync: boolean;
}

/** Invariant: entries are contiguous and entries[0].index === snapshot.metadata.index + 1. */
export interface DurableImage {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
  applyState: ApplyState;
}

/** Hooks the checkers use to watch every durable change. Throwing from a hook stops the run. */
export interface DiskObserver {
  /** `entries` just became durable on `node`; `prevTerm` is the durable term just before entries[0]. */
  durableAppend(node: string, entries: readonly Entry[], prevTerm: number): void;
  /** Durable entries of `node` at these indexes are being overwritten or discarded by a snapshot. */
  durableTruncate(node: string, removed: readonly Entry[]): void;
  durableSnapshot(node: string, snapshot: Snapshot): void;
  /** The batch breaks the disk contract (gap, overwrite below the snapshot, ...). */
  contractViolation(node: string, what: string): void;
  /** Something acknowledged to the core as durable did not survive a crash. */
  durabilityViolation(node: string, what: string): void;
}

export function emptySnapshot(confState: ConfState): Snapshot {
  return { metadata: { index: 0, term: 0, confState }, data: new Uint8Array(0) };
}

export function lastIndexOf(image: DurableImage): number {
  const last = image.entries[image.entries.length - 1];
  return last !== undefined ? last.index : image.snapshot.metadata.index;
}

/** Term at `index` in the image: the entry's, the snapshot's at its index, undefined otherwise. */
export function termAt(image: DurableImage, index: number): number | undefined {
  const snapIndex = image.snapshot.metadata.index;
  if (index === snapIndex) return image.snapshot.metadata.term;
  if (index < snapIndex) return undefined;
  return image.entries[index - snapIndex - 1]?.term;
}

export class SimDisk {
  durable: DurableImage;
  /** Written, visible, not yet durable; oldest first. */
  private unsynced: DiskBatch[] = [];
  /** Being written; the node is blocked on it. */
  inflight: DiskBatch | null = null;

  constructor(
    readonly node: string,
    initial: DurableImage,
    private readonly observer: DiskObserver,
    /** Mutant only (SimBugs.fsyncLies): synced writes are not made durable. */
    private readonly fsyncLies = false,
  ) {
    this.durable = initial;
  }

  beginWrite(batch: DiskBatch): void {
    if (this.inflight !== null) this.observer.contractViolation(this.node, "a second write began before the first completed");
    this.inflight = batch;
  }

  /** The in-flight write has finished (and was fsynced if batch.sync). */
  completeWrite(): DiskBatch {
    const batch = this.inflight;
    if (batch === null) throw new Error(`${this.node}: completeWrite without a write in flight`);
    this.inflight = null;
    this.unsynced.push(batch);
    if (batch.sync && !this.fsyncLies) this.flush();
    return batch;
  }

  /** fsync: everything written becomes durable. */
  flush(): void {
    for (const batch of this.unsynced) this.applyDurable(batch);
    this.unsynced = [];
  }

  /**
   * Power loss. Returns what survived and a word on what happened, for the fault counters.
   * The disk is empty of pending work afterwards.
   */
  crash(rng: Prng): "clean" | "inflight-landed" | "inflight-lost" | "unsynced-lost" {
    let outcome: "clean" | "inflight-landed" | "inflight-lost" | "unsynced-lost" = "clean";
    const inflight = this.inflight;
    this.inflight = null;
    if (inflight !== null && rng.chance(1 / 3)) {
      // Its fsync finished just before the crash: it and every earlier write are durable.
      this.unsynced.push(inflight);
      this.flush();
      return "inflight-landed";
    }
    if (inflight !== null) outcome = "inflight-lost";
    if (this.unsynced.length > 0) {
      const kept = rng.int(this.unsynced.length + 1);
      if (kept < this.unsynced.length && outcome === "clean") outcome = "unsynced-lost";
      for (const batch of this.unsynced.slice(0, kept)) this.applyDurable(batch);
    }
    this.unsynced = [];
    return outcome;
  }

  /**
   * The application took a snapshot at snapshot.metadata.index and compacted its log: written
   * atomically and synced (everything written before it becomes durable first).
   */
  installLocalSnapshot(snapshot: Snapshot): void {
    this.flush();
    const image = this.durable;
    if (snapshot.metadata.index <= image.snapshot.metadata.index) return;
    if (snapshot.metadata.index > lastIndexOf(image)) {
      this.observer.contractViolation(this.node, `local snapshot at ${snapshot.metadata.index} beyond durable last index ${lastIndexOf(image)}`);
    }
    const offset = snapshot.metadata.index - image.snapshot.metadata.index;
    image.entries = image.entries.slice(offset);
    image.snapshot = snapshot;
    this.observer.durableSnapshot(this.node, snapshot);
  }

  private applyDurable(batch: DiskBatch): void {
    const image = this.durable;
    if (batch.snapshot !== null) {
      // Entries up to the snapshot's index are covered by it; entries past it are discarded, which
      // is only legal when they were never committed (the log did not match at the snapshot index).
      const discarded = image.entries.filter((e) => e.index > batch.snapshot!.metadata.index);
      if (discarded.length > 0) this.observer.durableTruncate(this.node, discarded);
      image.snapshot = batch.snapshot;
      image.entries = [];
      this.observer.durableSnapshot(this.node, batch.snapshot);
    }
    const first = batch.entries[0];
    if (first !== undefined) {
      const snapIndex = image.snapshot.metadata.index;
      const last = lastIndexOf(image);
      if (first.index <= snapIndex) {
        this.observer.contractViolation(this.node, `append at ${first.index} overwrites the snapshot at ${snapIndex}`);
      }
      if (first.index > last + 1) {
        this.observer.contractViolation(this.node, `append at ${first.index} leaves a gap after ${last}`);
      }
      for (let i = 1; i < batch.entries.length; i++) {
        if (batch.entries[i]!.index !== first.index + i) {
          this.observer.contractViolation(this.node, `non-contiguous entries in one Ready at ${first.index + i}`);
        }
      }
      const keep = first.index - snapIndex - 1;
      if (keep < image.entries.length) this.observer.durableTruncate(this.node, image.entries.slice(keep));
      image.entries.length = Math.max(0, Math.min(keep, image.entries.length));
      const prevTerm = termAt(image, first.index - 1) ?? 0;
      for (const entry of batch.entries) image.entries.push(entry);
      this.observer.durableAppend(this.node, batch.entries, prevTerm);
    }
    if (batch.hardState !== null) image.hardState = batch.hardState;
    if (batch.applyState.applied >= image.applyState.applied) image.applyState = batch.applyState;
  }
}
