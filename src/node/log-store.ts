/**
 * The durable per-node storage of every Raft group a node hosts (the "Storage" part of issue 4).
 *
 * One store per node holds many groups ("meta", "b:<bucket>", ...). For each group it keeps the hard
 * state, the latest snapshot and the log entries after it. Everything one driver loop turn produces, for
 * every group, goes into ONE atomic write (group commit), fsynced when asked.
 *
 * Implementations (both pass test/property/log-store.test.ts, the shared conformance suite):
 *   - LevelLogStore (log-store-level.ts, `openLevelLogStore`): one `level` database per node plus a
 *     snapshots/ directory of checksummed files. The production store.
 *   - MemoryLogStore (log-store-memory.ts): the in-memory twin for the simulator and tests, with crash
 *     simulation (unsynced writes are lost) and fault injection (flip bytes of a stored record).
 *
 * Integrity (RAFT-CHECKLIST items 12 and 13): every entry, hard state and snapshot is checksummed (CRC32C).
 * load() verifies what it returns. A torn tail (the LAST entries of a group unreadable) is truncated and
 * reported in `repairs`; damage anywhere else throws CairnError("CORRUPT_DATA") naming the group, the index
 * and what is damaged, so a damaged node refuses to start instead of campaigning with a damaged log.
 */

import type { Entry, HardState, Snapshot } from "../raft/types.ts";

export { openLevelLogStore } from "./log-store-level.ts";

/** What the driver persists for one group in one loop turn: a group's share of a Raft `Ready`. */
export interface GroupWrite {
  /** The group's name, e.g. "meta" or "b:<bucket>". 1..LOG_STORE_LIMITS.groupNameBytesMax UTF-8 bytes, no NUL. */
  readonly group: string;
  /** The new hard state; null = unchanged. */
  readonly hardState: HardState | null;
  /**
   * Append, first truncating any stored suffix from entries[0].index on. Ascending and contiguous;
   * entries[0].index <= lastIndex + 1. Entries at or below the group's snapshot index are skipped (they are
   * covered by the snapshot, as etcd's MemoryStorage.Append does).
   */
  readonly entries: readonly Entry[];
  /**
   * Install a snapshot (sent by a leader). Replaces the log up to snapshot.metadata.index. Stored entries
   * after it are kept only if the stored entry at that index has the snapshot's term (Raft §7: the log then
   * agrees with the snapshot); otherwise the whole log is discarded. Entries of this same write that follow
   * the snapshot are appended after it. Must not be older than the group's current snapshot.
   */
  readonly snapshot: Snapshot | null;
}

/** A group as it was persisted. A group never written loads as the empty state. */
export interface LoadedGroup {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** The entries after the snapshot (or from index 1): ascending, contiguous. */
  entries: Entry[];
}

export type LogStoreOrigin = "new" | "existing" | "lost";

/** `fsync`: a write with sync=true is on disk when its promise resolves. `none`: UNSAFE, acknowledged from memory, written lazily, never fsynced. */
export type LogStoreDurability = "fsync" | "none";

export interface LogStore {
  /**
   * One atomic write for several groups (group commit: the driver batches every group's Ready of one loop
   * turn). Either all of it survives a crash or none of it. sync=true ⇒ fsynced before the promise resolves
   * (unless the store was opened with durability "none"). Several writes for the same group in one call
   * are applied in order. Writes, snapshots and loads are serialized by the store.
   */
  write(writes: readonly GroupWrite[], options: { sync: boolean }): Promise<void>;
  /**
   * Application-initiated compaction: durably store `snapshot` for the group and drop log entries <= its
   * index. Crash-atomic: after a crash, load() returns either the old or the new state, never a mix.
   * snapshot.metadata.index must be <= the group's last index and its term must match the entry there.
   * A snapshot at or below the group's current snapshot index is ignored (a benign race with an install).
   */
  saveSnapshot(group: string, snapshot: Snapshot): Promise<void>;
  /**
   * Loads and verifies a group. A torn tail (the last entries fail their checksum, none of them committed)
   * is truncated, durably, and reported in `repairs`; corruption anywhere else throws
   * CairnError("CORRUPT_DATA", message naming group, index and what is damaged).
   */
  load(group: string): Promise<LoadedGroup>;
  /** The groups that have stored state, sorted. */
  listGroups(): Promise<string[]>;
  /** Removes the group's hard state, log and snapshot files. Atomic: the group is gone or still whole. */
  deleteGroup(group: string): Promise<void>;
  /** Small node-level metadata (node id, cluster id), e.g. to detect a wiped or foreign data dir. */
  getMeta(key: string): Promise<Uint8Array | null>;
  /** Stored durably (fsynced unless durability "none") before the promise resolves. */
  setMeta(key: string, value: Uint8Array): Promise<void>;
  /** Human-readable notes of what opening the store and load() repaired (torn tails), oldest first. */
  readonly repairs: readonly string[];
  /**
   * What opening found (valid once any operation has resolved): "new" = nothing was stored here before;
   * "existing" = a store was found; "lost" = the directory held a store whose data is gone (opened with
   * lostStore "recover": it starts empty and the node must treat every group as possibly lost).
   */
  readonly origin: LogStoreOrigin;
  /** Waits for pending operations, then releases the store. Any later call throws. */
  close(): Promise<void>;
}

export interface LevelLogStoreOptions {
  /** The node's data directory: LevelDB lives in <dir>/level, snapshot files in <dir>/snapshots. */
  readonly dir: string;
  /**
   * "none" is UNSAFE: writes are acknowledged from memory, written to LevelDB lazily (write-behind) and never
   * fsynced; a process crash loses up to flushIntervalMs of them. Only for benchmarks and negative-control
   * fault tests.
   */
  readonly durability: LogStoreDurability;
  /** durability "none": longest time a write stays in memory only (default 1000 ms). */
  readonly flushIntervalMs?: number;
  /** durability "none": buffered bytes at which a write waits for a flush (default 16 MiB). */
  readonly writeBehindBytesMax?: number;
  /**
   * The marker file says a store lived here but LevelDB holds none of it (wiped under a running config,
   * or a log truncated before its first record): "refuse" (default) throws CORRUPT_DATA; "recover"
   * starts empty with origin "lost" and a note in `repairs`, for a node that then recovers from its peers
   * without voting until it has caught up (src/node/recovery.ts).
   */
  readonly lostStore?: "refuse" | "recover";
}
