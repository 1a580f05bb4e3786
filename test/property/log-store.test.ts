/**
 * The log store conformance suite, run against every implementation (the abstract-level pattern):
 * MemoryLogStore and LevelLogStore must behave identically through the LogStore interface.
 *
 * Method: example tests pin each rule of the contract (append/truncate, hard state, snapshot install with
 * Raft §7's keep-if-matching rule, compaction, multi-group batches, reload, deleteGroup, listGroups, meta,
 * argument validation), then a fast-check property drives random but Raft-legal operation sequences
 * (appends that truncate above the commit index, hard state changes, installs, compactions, deletes,
 * reopen) against a plain in-memory model and compares every group after every step.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Entry, HardState, Snapshot } from "../../src/raft/types.ts";
import { AssertionError } from "../../src/shared/assert.ts";
import { openLevelLogStore } from "../../src/node/log-store-level.ts";
import { MemoryLogStore } from "../../src/node/log-store-memory.ts";
import type { GroupWrite, LoadedGroup, LogStore } from "../../src/node/log-store.ts";
import { LOG_STORE_LIMITS } from "../../src/node/log-store-codec.ts";

// ---------------------------------------------------------------------------------------------------
// Harnesses

export interface StoreHarness {
  /** Opens the store over this harness's (initially empty) data. */
  open(): Promise<LogStore>;
  /** A clean restart: everything written so far survives. Returns the new store. */
  reopen(store: LogStore): Promise<LogStore>;
  cleanup(): Promise<void>;
}

export type StoreFactory = () => Promise<StoreHarness>;

export const memoryFactory: StoreFactory = async () => ({
  open: async () => new MemoryLogStore(),
  reopen: async (store) => (store as MemoryLogStore).crash({ unsyncedWritesKept: Number.MAX_SAFE_INTEGER }),
  cleanup: async () => undefined,
});

export function levelFactory(durability: "fsync" | "none"): StoreFactory {
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), "cairn-log-store-"));
    let last: LogStore | null = null;
    return {
      open: async () => (last = await openLevelLogStore({ dir, durability })),
      reopen: async (store) => {
        await store.close();
        return (last = await openLevelLogStore({ dir, durability }));
      },
      cleanup: async () => {
        await last?.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  };
}

// ---------------------------------------------------------------------------------------------------
// Helpers

const CONF = { voters: ["n1", "n2", "n3"], learners: [] } as const;

function entry(index: number, term: number, text = `e${index}t${term}`): Entry {
  return { index, term, type: index % 5 === 0 ? "conf" : "normal", data: new TextEncoder().encode(text) };
}

function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

function snapshot(index: number, term: number, bytes = 16): Snapshot {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (index * 31 + i) & 0xff;
  return { metadata: { index, term, confState: CONF }, data };
}

function hs(term: number, commit: number, vote: string | null = null): HardState {
  return { term, vote, commit };
}

function w(group: string, parts: Partial<Omit<GroupWrite, "group">>): GroupWrite {
  return { group, hardState: parts.hardState ?? null, entries: parts.entries ?? [], snapshot: parts.snapshot ?? null };
}

/** Plain data, so Buffers and Uint8Arrays compare equal by content. */
function plain(loaded: LoadedGroup): unknown {
  return {
    hardState: loaded.hardState,
    snapshot:
      loaded.snapshot === null
        ? null
        : {
            metadata: {
              index: loaded.snapshot.metadata.index,
              term: loaded.snapshot.metadata.term,
              confState: {
                voters: [...loaded.snapshot.metadata.confState.voters],
                learners: [...loaded.snapshot.metadata.confState.learners],
              },
            },
            data: Buffer.from(loaded.snapshot.data).toString("hex"),
          },
    entries: loaded.entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Buffer.from(e.data).toString("hex") })),
  };
}

function expected(hardState: HardState, snap: Snapshot | null, log: readonly Entry[]): unknown {
  return plain({ hardState, snapshot: snap, entries: [...log] });
}

// ---------------------------------------------------------------------------------------------------
// The suite

export function logStoreSuite(name: string, factory: StoreFactory, propertyRuns: number): void {
  describe(`LogStore conformance: ${name}`, () => {
    let harness: StoreHarness;
    let store: LogStore;

    beforeEach(async () => {
      harness = await factory();
      store = await harness.open();
    });
    afterEach(async () => {
      await harness.cleanup();
    });

    const reopen = async (): Promise<void> => {
      store = await harness.reopen(store);
    };

    it("loads a group that was never written as empty", async () => {
      expect(plain(await store.load("meta"))).toEqual(expected(hs(0, 0), null, []));
      expect(await store.listGroups()).toEqual([]);
    });

    it("appends entries with a hard state and reloads them after a restart", async () => {
      await store.write([w("meta", { hardState: hs(1, 2, "n1"), entries: entries(1, 5, 1) })], { sync: true });
      const want = expected(hs(1, 2, "n1"), null, entries(1, 5, 1));
      expect(plain(await store.load("meta"))).toEqual(want);
      await reopen();
      expect(plain(await store.load("meta"))).toEqual(want);
    });

    it("truncates the stored suffix from entries[0].index on", async () => {
      await store.write([w("g", { hardState: hs(1, 1), entries: entries(1, 5, 1) })], { sync: true });
      await store.write([w("g", { hardState: hs(2, 1), entries: entries(3, 4, 2) })], { sync: true });
      const want = expected(hs(2, 1), null, [...entries(1, 2, 1), ...entries(3, 4, 2)]);
      expect(plain(await store.load("g"))).toEqual(want);
      await store.write([w("g", { entries: entries(5, 6, 2) })], { sync: false });
      await reopen();
      expect(plain(await store.load("g"))).toEqual(
        expected(hs(2, 1), null, [...entries(1, 2, 1), ...entries(3, 6, 2)]),
      );
    });

    it("truncating to a single rewritten entry drops every later one", async () => {
      await store.write([w("g", { hardState: hs(1, 0), entries: entries(1, 9, 1) })], { sync: true });
      await store.write([w("g", { hardState: hs(3, 0), entries: [entry(1, 3)] })], { sync: true });
      await reopen();
      expect(plain(await store.load("g"))).toEqual(expected(hs(3, 0), null, [entry(1, 3)]));
    });

    it("keeps the hard state when a write has none, and stores a hard-state-only write", async () => {
      await store.write([w("g", { hardState: hs(4, 0, "n2") })], { sync: true });
      expect(plain(await store.load("g"))).toEqual(expected(hs(4, 0, "n2"), null, []));
      await store.write([w("g", { entries: entries(1, 2, 4) })], { sync: true });
      await store.write([w("g", { hardState: hs(4, 2, "n2") })], { sync: true });
      await reopen();
      expect(plain(await store.load("g"))).toEqual(expected(hs(4, 2, "n2"), null, entries(1, 2, 4)));
    });

    it("writes several groups in one batch, and one group twice in a batch, in order", async () => {
      await store.write(
        [
          w("meta", { hardState: hs(1, 1), entries: entries(1, 3, 1) }),
          w("b:orders", { hardState: hs(2, 0), entries: entries(1, 1, 2) }),
          w("b:ünïcode/x", { hardState: hs(1, 0), entries: entries(1, 2, 1) }),
          w("meta", { hardState: hs(2, 1), entries: entries(3, 4, 2) }),
        ],
        { sync: true },
      );
      await reopen();
      expect(await store.listGroups()).toEqual(["b:orders", "b:ünïcode/x", "meta"]);
      expect(plain(await store.load("meta"))).toEqual(expected(hs(2, 1), null, [...entries(1, 2, 1), ...entries(3, 4, 2)]));
      expect(plain(await store.load("b:orders"))).toEqual(expected(hs(2, 0), null, entries(1, 1, 2)));
      expect(plain(await store.load("b:ünïcode/x"))).toEqual(expected(hs(1, 0), null, entries(1, 2, 1)));
    });

    it("ignores empty group writes: they create no group", async () => {
      await store.write([w("ghost", {})], { sync: true });
      expect(await store.listGroups()).toEqual([]);
    });

    it("installs a snapshot whose last entry matches the log and keeps the later stored entries (Raft §7)", async () => {
      await store.write([w("g", { hardState: hs(1, 3), entries: entries(1, 10, 1) })], { sync: true });
      await store.write([w("g", { hardState: hs(1, 5), snapshot: snapshot(5, 1) })], { sync: true });
      const want = expected(hs(1, 5), snapshot(5, 1), entries(6, 10, 1));
      expect(plain(await store.load("g"))).toEqual(want);
      await reopen();
      expect(plain(await store.load("g"))).toEqual(want);
    });

    it("installs a conflicting snapshot: discards the whole log, keeps entries of the same write after it", async () => {
      await store.write([w("g", { hardState: hs(1, 3), entries: entries(1, 10, 1) })], { sync: true });
      await store.write(
        [w("g", { hardState: hs(2, 7), snapshot: snapshot(7, 2), entries: entries(8, 9, 2) })],
        { sync: true },
      );
      await store.write([w("h", { hardState: hs(1, 3), entries: entries(1, 10, 1) })], { sync: true });
      await store.write([w("h", { hardState: hs(2, 7), snapshot: snapshot(7, 2) })], { sync: true });
      await reopen();
      expect(plain(await store.load("g"))).toEqual(expected(hs(2, 7), snapshot(7, 2), entries(8, 9, 2)));
      expect(plain(await store.load("h"))).toEqual(expected(hs(2, 7), snapshot(7, 2), []));
    });

    it("installs a snapshot beyond the last index, into a new group, and skips covered entries of the write", async () => {
      await store.write([w("a", { hardState: hs(1, 1), entries: entries(1, 3, 1) })], { sync: true });
      await store.write(
        [
          w("a", { hardState: hs(3, 20), snapshot: snapshot(20, 3), entries: entries(19, 22, 3) }),
          w("fresh", { hardState: hs(5, 40), snapshot: snapshot(40, 5, 4096) }),
        ],
        { sync: true },
      );
      await reopen();
      expect(plain(await store.load("a"))).toEqual(expected(hs(3, 20), snapshot(20, 3), entries(21, 22, 3)));
      expect(plain(await store.load("fresh"))).toEqual(expected(hs(5, 40), snapshot(40, 5, 4096), []));
      await store.write([w("fresh", { entries: entries(41, 42, 5) })], { sync: true });
      expect(plain(await store.load("fresh"))).toEqual(expected(hs(5, 40), snapshot(40, 5, 4096), entries(41, 42, 5)));
    });

    it("installs the empty index-0 bootstrap snapshot a joining node receives (it carries the membership)", async () => {
      const bootstrap: Snapshot = { metadata: { index: 0, term: 0, confState: CONF }, data: new Uint8Array(0) };
      await store.write([w("b:join", { hardState: hs(3, 0), snapshot: bootstrap, entries: entries(1, 2, 3) })], { sync: true });
      await reopen();
      expect(plain(await store.load("b:join"))).toEqual(expected(hs(3, 0), bootstrap, entries(1, 2, 3)));
    });

    it("compacts with saveSnapshot: drops entries up to the index, later appends continue", async () => {
      await store.write([w("g", { hardState: hs(1, 8), entries: entries(1, 10, 1) })], { sync: true });
      await store.saveSnapshot("g", snapshot(6, 1));
      expect(plain(await store.load("g"))).toEqual(expected(hs(1, 8), snapshot(6, 1), entries(7, 10, 1)));
      await store.write([w("g", { hardState: hs(2, 8), entries: entries(11, 12, 2) })], { sync: true });
      await store.saveSnapshot("g", snapshot(9, 1, 100_000));
      await reopen();
      expect(plain(await store.load("g"))).toEqual(
        expected(hs(2, 8), snapshot(9, 1, 100_000), [entry(10, 1), ...entries(11, 12, 2)]),
      );
    });

    it("compacts the whole log when the snapshot is at the last index", async () => {
      await store.write([w("g", { hardState: hs(1, 4), entries: entries(1, 4, 1) })], { sync: true });
      await store.saveSnapshot("g", snapshot(4, 1));
      await reopen();
      expect(plain(await store.load("g"))).toEqual(expected(hs(1, 4), snapshot(4, 1), []));
      await store.write([w("g", { entries: entries(5, 5, 1) })], { sync: true });
      expect(plain(await store.load("g"))).toEqual(expected(hs(1, 4), snapshot(4, 1), [entry(5, 1)]));
    });

    it("ignores a saveSnapshot at or below the current snapshot index", async () => {
      await store.write([w("g", { hardState: hs(1, 8), entries: entries(1, 10, 1) })], { sync: true });
      await store.saveSnapshot("g", snapshot(6, 1));
      await store.saveSnapshot("g", snapshot(4, 1));
      await store.saveSnapshot("g", snapshot(6, 1, 3));
      expect(plain(await store.load("g"))).toEqual(expected(hs(1, 8), snapshot(6, 1), entries(7, 10, 1)));
    });

    it("round-trips snapshot metadata and a large payload", async () => {
      const big: Snapshot = {
        metadata: { index: 3, term: 2, confState: { voters: ["n1", "n5"], learners: ["n9"] } },
        data: new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) & 0xff),
      };
      await store.write([w("g", { hardState: hs(2, 3), snapshot: big })], { sync: true });
      await reopen();
      expect(plain(await store.load("g"))).toEqual(expected(hs(2, 3), big, []));
    });

    it("deleteGroup removes one group, keeps the others, and the name can start afresh", async () => {
      await store.write(
        [
          w("a", { hardState: hs(1, 2), entries: entries(1, 5, 1) }),
          w("b", { hardState: hs(1, 1), entries: entries(1, 2, 1) }),
        ],
        { sync: true },
      );
      await store.saveSnapshot("a", snapshot(2, 1));
      await store.deleteGroup("a");
      await store.deleteGroup("never-existed");
      expect(await store.listGroups()).toEqual(["b"]);
      expect(plain(await store.load("a"))).toEqual(expected(hs(0, 0), null, []));
      await reopen();
      expect(await store.listGroups()).toEqual(["b"]);
      expect(plain(await store.load("a"))).toEqual(expected(hs(0, 0), null, []));
      await store.write([w("a", { hardState: hs(7, 0), entries: entries(1, 1, 7) })], { sync: true });
      expect(plain(await store.load("a"))).toEqual(expected(hs(7, 0), null, entries(1, 1, 7)));
      expect(plain(await store.load("b"))).toEqual(expected(hs(1, 1), null, entries(1, 2, 1)));
    });

    it("handles the longest group names, with snapshots and deletion", async () => {
      const chars = LOG_STORE_LIMITS.groupNameBytesMax / 2; // "ü" is 2 UTF-8 bytes
      const long = "ü".repeat(chars); // exactly the limit
      const similar = "ü".repeat(chars - 1) + "x";
      await store.write(
        [
          w(long, { hardState: hs(1, 3), entries: entries(1, 4, 1) }),
          w(similar, { hardState: hs(1, 2), entries: entries(1, 2, 1) }),
        ],
        { sync: true },
      );
      await store.saveSnapshot(long, snapshot(3, 1));
      await store.saveSnapshot(similar, snapshot(2, 1));
      await store.deleteGroup(similar);
      await reopen();
      expect(await store.listGroups()).toEqual([long]);
      expect(plain(await store.load(long))).toEqual(expected(hs(1, 3), snapshot(3, 1), [entry(4, 1)]));
      await expect(store.load("ü".repeat(chars + 1))).rejects.toBeInstanceOf(TypeError);
    });

    it("stores node metadata durably", async () => {
      expect(await store.getMeta("nodeId")).toBeNull();
      await store.setMeta("nodeId", new TextEncoder().encode("n1"));
      await store.setMeta("clusterId", new Uint8Array([1, 2, 3]));
      await store.setMeta("clusterId", new Uint8Array([4]));
      await reopen();
      expect(Array.from((await store.getMeta("nodeId")) ?? [])).toEqual(Array.from(new TextEncoder().encode("n1")));
      expect(Array.from((await store.getMeta("clusterId")) ?? [])).toEqual([4]);
      expect(await store.listGroups()).toEqual([]);
    });

    it("rejects caller mistakes with TypeError and Raft contract breaches with AssertionError", async () => {
      await expect(store.load("")).rejects.toBeInstanceOf(TypeError);
      await expect(store.load("a\u0000b")).rejects.toBeInstanceOf(TypeError);
      await expect(store.write([w("g", { entries: [entry(1, 1), entry(3, 1)] })], { sync: true })).rejects.toBeInstanceOf(TypeError);
      await expect(store.write([w("g", { entries: [{ ...entry(1, 1), index: 1.5 }] })], { sync: true })).rejects.toBeInstanceOf(TypeError);
      await expect(store.setMeta("k", "v" as unknown as Uint8Array)).rejects.toBeInstanceOf(TypeError);
      await expect(store.write([w("g", { hardState: hs(1, 0), entries: entries(3, 4, 1) })], { sync: true })).rejects.toBeInstanceOf(AssertionError);
      await store.write([w("g", { hardState: hs(1, 0), entries: entries(1, 2, 1) })], { sync: true });
      await expect(store.saveSnapshot("g", snapshot(5, 1))).rejects.toBeInstanceOf(AssertionError);
      await expect(store.saveSnapshot("g", snapshot(2, 9))).rejects.toBeInstanceOf(AssertionError);
      // Rejected calls change nothing.
      expect(plain(await store.load("g"))).toEqual(expected(hs(1, 0), null, entries(1, 2, 1)));
    });

    it("rejects every call after close", async () => {
      await store.close();
      await expect(store.load("g")).rejects.toMatchObject({ code: "INTERNAL" });
      await expect(store.write([], { sync: true })).rejects.toMatchObject({ code: "INTERNAL" });
    });

    it("matches a model under random Raft-legal operation sequences", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(operationArbitrary, { minLength: 1, maxLength: 30 }), async (operations) => {
          const local = await factory();
          let s = await local.open();
          try {
            const model = new Model();
            for (const operation of operations) {
              s = await applyOperation(operation, model, s, local);
              await checkAgainstModel(s, model);
            }
          } finally {
            await local.cleanup();
          }
        }),
        { numRuns: propertyRuns },
      );
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Model-based property

const GROUPS = ["meta", "b:alpha", "b:β/2"] as const;

interface ModelGroup {
  hardState: HardState;
  snapshot: Snapshot | null;
  log: Entry[]; // after the snapshot
}

class Model {
  readonly groups = new Map<string, ModelGroup>();

  get(group: string): ModelGroup {
    return this.groups.get(group) ?? { hardState: hs(0, 0), snapshot: null, log: [] };
  }
}

function snapIndexOf(g: ModelGroup): number {
  return g.snapshot?.metadata.index ?? 0;
}
function lastIndexOf(g: ModelGroup): number {
  return g.log[g.log.length - 1]?.index ?? snapIndexOf(g);
}
function termAtModel(g: ModelGroup, index: number): number | undefined {
  if (index === snapIndexOf(g)) return g.snapshot?.metadata.term ?? 0;
  return g.log.find((e) => e.index === index)?.term;
}
function maxTermOf(g: ModelGroup): number {
  return Math.max(g.hardState.term, g.log[g.log.length - 1]?.term ?? 0, g.snapshot?.metadata.term ?? 0);
}

interface Operation {
  readonly kind: number;
  readonly group: number;
  readonly a: number;
  readonly b: number;
  readonly flag: boolean;
}

const operationArbitrary: fc.Arbitrary<Operation> = fc.record({
  kind: fc.integer({ min: 0, max: 8 }),
  group: fc.integer({ min: 0, max: GROUPS.length - 1 }),
  a: fc.nat({ max: 1000 }),
  b: fc.nat({ max: 1000 }),
  flag: fc.boolean(),
});

/** A Raft-legal append for `group`: truncates only above commit, terms never decrease. */
function planAppend(model: Model, group: string, op: Operation): { write: GroupWrite; next: ModelGroup } {
  const g = model.get(group);
  const commit = g.hardState.commit;
  const last = lastIndexOf(g);
  const from = commit + 1 + (op.a % (last + 1 - commit));
  const count = 1 + (op.b % 4);
  const term = maxTermOf(g) + (op.flag ? 1 : 0) || 1;
  const added = entries(from, from + count - 1, term).map((e) => ({ ...e, data: new TextEncoder().encode(`${op.a}.${e.index}`) }));
  const newLast = from + count - 1;
  const newCommit = Math.min(newLast, commit + (op.b % 3));
  const hardState = term > g.hardState.term || newCommit !== commit ? hs(Math.max(term, g.hardState.term), newCommit, g.hardState.vote) : null;
  const log = [...g.log.filter((e) => e.index < from), ...added];
  return {
    write: w(group, { entries: added, ...(hardState ? { hardState } : {}) }),
    next: { hardState: hardState ?? g.hardState, snapshot: g.snapshot, log },
  };
}

async function applyOperation(op: Operation, model: Model, store: LogStore, harness: StoreHarness): Promise<LogStore> {
  const group = GROUPS[op.group]!;
  const g = model.get(group);
  const sync = op.b % 2 === 0;
  switch (op.kind) {
    case 0:
    case 1: {
      const { write, next } = planAppend(model, group, op);
      await store.write([write], { sync });
      model.groups.set(group, next);
      return store;
    }
    case 2: {
      const last = lastIndexOf(g);
      const commit = g.hardState.commit + (op.a % (last - g.hardState.commit + 1));
      const hardState = hs(g.hardState.term + (op.flag ? 1 : 0), commit, op.flag ? `n${op.b % 5}` : g.hardState.vote);
      await store.write([w(group, { hardState })], { sync });
      model.groups.set(group, { ...g, hardState });
      return store;
    }
    case 3: {
      // Install from a leader: newer than commit; matching (keep the log) or not (discard it).
      const last = lastIndexOf(g);
      const commit = g.hardState.commit;
      const index = commit + 1 + (op.a % (last - commit + 3));
      const matchingTerm = termAtModel(g, index);
      const keep = op.flag && index <= last && matchingTerm !== undefined;
      const snapTerm = keep ? matchingTerm : maxTermOf(g) + 1;
      const snap = snapshot(index, snapTerm, op.b % 64);
      const after = keep ? [] : entries(index + 1, index + (op.b % 3), snapTerm);
      const hardState = hs(Math.max(g.hardState.term, snapTerm), index, g.hardState.vote);
      await store.write([w(group, { hardState, snapshot: snap, entries: after })], { sync });
      const kept = keep ? g.log.filter((e) => e.index > index) : [];
      model.groups.set(group, { hardState, snapshot: snap, log: [...kept, ...after] });
      return store;
    }
    case 4: {
      // Application compaction at or below commit.
      const snapIndex = snapIndexOf(g);
      if (!model.groups.has(group) || g.hardState.commit <= snapIndex) return store;
      const index = snapIndex + 1 + (op.a % (g.hardState.commit - snapIndex));
      const snap = snapshot(index, termAtModel(g, index)!, op.b % 64);
      await store.saveSnapshot(group, snap);
      model.groups.set(group, { ...g, snapshot: snap, log: g.log.filter((e) => e.index > index) });
      return store;
    }
    case 5: {
      await store.deleteGroup(group);
      model.groups.delete(group);
      return store;
    }
    case 6:
      return harness.reopen(store);
    default: {
      // Group commit: appends for two groups in one batch.
      const other = GROUPS[(op.group + 1) % GROUPS.length]!;
      const first = planAppend(model, group, op);
      const second = planAppend(model, other, { ...op, a: op.b, b: op.a });
      await store.write([first.write, second.write], { sync });
      model.groups.set(group, first.next);
      model.groups.set(other, second.next);
      return store;
    }
  }
}

async function checkAgainstModel(store: LogStore, model: Model): Promise<void> {
  expect(await store.listGroups()).toEqual([...model.groups.keys()].sort());
  for (const group of GROUPS) {
    const g = model.get(group);
    expect(plain(await store.load(group))).toEqual(expected(g.hardState, g.snapshot, g.log));
  }
  expect(store.repairs).toEqual([]);
}

logStoreSuite("MemoryLogStore", memoryFactory, 300);
logStoreSuite("LevelLogStore (fsync)", levelFactory("fsync"), 40);
logStoreSuite("LevelLogStore (durability none)", levelFactory("none"), 15);
