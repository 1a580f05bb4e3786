/**
 * Goal: MemoryStorage (the node's in-memory mirror of its durable log) and the unstable log behave
 * like etcd's: appends truncate a conflicting suffix, compaction keeps the term of the compaction
 * point, snapshots replace the log, reads honour byte limits, and stableTo checks (index, term).
 * Method: direct calls, no cores.
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage, RaftLogUnavailable } from "../../src/raft/index.ts";
import { Unstable } from "../../src/raft/log-unstable.ts";
import { entriesOf } from "../support/raft-network.ts";

const conf = { voters: ["n1"], learners: [] };

describe("raft storage: MemoryStorage", () => {
  it("starts empty with an index-0 snapshot carrying the bootstrap membership", () => {
    const storage = new MemoryStorage({ confState: conf });
    expect(storage.firstIndex()).toBe(1);
    expect(storage.lastIndex()).toBe(0);
    expect(storage.term(0)).toBe(0);
    expect(storage.snapshot().metadata).toEqual({ index: 0, term: 0, confState: conf });
    expect(storage.initialState()).toEqual({ hardState: { term: 0, vote: null, commit: 0 }, confState: conf });
    const blank = new MemoryStorage();
    expect(blank.initialState().confState).toEqual({ voters: [], learners: [] });
  });

  it("appends, truncates a conflicting suffix, and reads within byte limits", () => {
    const storage = new MemoryStorage({ confState: conf });
    storage.append(entriesOf([1, 1, 1, 1]));
    storage.append(entriesOf([2, 2], 3));
    expect(storage.lastIndex()).toBe(4);
    expect([1, 2, 3, 4].map((i) => storage.term(i))).toEqual([1, 1, 2, 2]);
    storage.append(entriesOf([3], 2));
    expect(storage.lastIndex()).toBe(2);
    expect(() => storage.append(entriesOf([3], 9))).toThrow(/gap/);
    storage.append(entriesOf([3, 3, 3], 3));
    // "e3".."e5" are 2 bytes each: a 5-byte budget returns two entries; at least one always.
    expect(storage.entries(3, 6, 5).map((e) => e.index)).toEqual([3, 4]);
    expect(storage.entries(3, 6, 0).map((e) => e.index)).toEqual([3]);
    expect(storage.entries(3, 6, Infinity).map((e) => e.index)).toEqual([3, 4, 5]);
    expect(() => storage.term(6)).toThrow(RaftLogUnavailable);
  });

  it("compacts up to the snapshot, keeping the compaction point's term", () => {
    const storage = new MemoryStorage({ confState: conf });
    storage.append(entriesOf([1, 1, 2, 2, 3]));
    expect(() => storage.compact(3)).toThrow(/snapshot/);
    const snapshot = storage.createSnapshot(4, conf, new Uint8Array([7]));
    expect(snapshot.metadata).toEqual({ index: 4, term: 2, confState: conf });
    storage.compact(3);
    expect(storage.firstIndex()).toBe(4);
    expect(storage.term(3)).toBe(2);
    expect(() => storage.term(2)).toThrow(expect.objectContaining({ reason: "compacted" }));
    expect(() => storage.entries(3, 5, Infinity)).toThrow(RaftLogUnavailable);
    expect(storage.entries(4, 6, Infinity).map((e) => e.index)).toEqual([4, 5]);
    storage.compact(2); // older than the current point: no-op
    expect(storage.firstIndex()).toBe(4);
    // Appends that overlap the compacted prefix skip it.
    storage.append(entriesOf([1, 2, 2, 4], 2));
    expect([3, 4, 5].map((i) => storage.term(i))).toEqual([2, 2, 4]);
  });

  it("compacts a long log in amortized O(1) without losing entries", () => {
    const storage = new MemoryStorage({ confState: conf });
    const n = 20_000;
    for (let i = 1; i <= n; i += 100) storage.append(entriesOf(Array(100).fill(1), i));
    for (let i = 100; i <= n - 100; i += 100) {
      storage.createSnapshot(i, conf, new Uint8Array(0));
      storage.compact(i);
      expect(storage.firstIndex()).toBe(i + 1);
      expect(storage.entries(i + 1, i + 3, Infinity).map((e) => e.index)).toEqual([i + 1, i + 2]);
    }
    expect(storage.lastIndex()).toBe(n);
  });

  it("applySnapshot replaces the log and the membership", () => {
    const storage = new MemoryStorage({ confState: conf });
    storage.append(entriesOf([1, 1, 1]));
    const membership = { voters: ["n1", "n2"], learners: ["n3"] };
    storage.applySnapshot({ metadata: { index: 10, term: 4, confState: membership }, data: new Uint8Array(0) });
    expect(storage.firstIndex()).toBe(11);
    expect(storage.lastIndex()).toBe(10);
    expect(storage.term(10)).toBe(4);
    expect(storage.initialState().confState).toEqual(membership);
    expect(() => storage.applySnapshot({ metadata: { index: 5, term: 4, confState: membership }, data: new Uint8Array(0) })).toThrow(/older/);
  });

  it("restarts from a snapshot and the entries after it", () => {
    const snapshot = { metadata: { index: 5, term: 2, confState: conf }, data: new Uint8Array(0) };
    const storage = new MemoryStorage({ snapshot, entries: entriesOf([2, 3], 6), hardState: { term: 3, vote: "n1", commit: 6 } });
    expect(storage.firstIndex()).toBe(6);
    expect(storage.lastIndex()).toBe(7);
    expect(storage.term(5)).toBe(2);
    expect(storage.initialState().hardState).toEqual({ term: 3, vote: "n1", commit: 6 });
  });
});

describe("raft storage: the unstable log", () => {
  it("tracks entries handed out and acknowledges them only by (index, term)", () => {
    const u = new Unstable(1);
    u.truncateAndAppend(entriesOf([1, 1, 1]), 0);
    expect(u.hasNextEntries()).toBe(true);
    expect(u.nextEntries().map((e) => e.index)).toEqual([1, 2, 3]);
    u.acceptInProgress();
    expect(u.hasNextEntries()).toBe(false);
    u.truncateAndAppend(entriesOf([1], 4), 0);
    expect(u.nextEntries().map((e) => e.index)).toEqual([4]);
    // Wrong term at 2: nothing becomes stable.
    expect(u.stableTo(2, 9)).toBe(false);
    expect(u.offset).toBe(1);
    expect(u.stableTo(2, 1)).toBe(true);
    expect(u.offset).toBe(3);
    expect(u.entries.map((e) => e.index)).toEqual([3, 4]);
    // A conflict below the in-progress mark pulls it back: the replacement must be written.
    u.truncateAndAppend(entriesOf([2], 3), 0);
    expect(u.nextEntries().map((e) => [e.index, e.term])).toEqual([[3, 2]]);
    expect(u.stableTo(3, 1)).toBe(false);
    expect(u.stableTo(3, 2)).toBe(true);
    expect(u.entries).toEqual([]);
  });

  it("a pending snapshot resets the entries and is acknowledged by index", () => {
    const u = new Unstable(5);
    u.truncateAndAppend(entriesOf([1, 1], 5), 0);
    u.restore({ metadata: { index: 9, term: 2, confState: conf }, data: new Uint8Array(0) });
    expect(u.maybeFirstIndex()).toBe(10);
    expect(u.maybeLastIndex()).toBe(9);
    expect(u.maybeTerm(9)).toBe(2);
    expect(u.maybeTerm(6)).toBe(-1);
    expect(u.hasNextSnapshot()).toBe(true);
    u.acceptInProgress();
    expect(u.hasNextSnapshot()).toBe(false);
    u.stableSnapTo(8);
    expect(u.snapshot).not.toBe(null);
    u.stableSnapTo(9);
    expect(u.snapshot).toBe(null);
  });
});
