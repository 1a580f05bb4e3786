/**
 * MemoryLogStore's own features: crash simulation (what a crash keeps and loses) and fault injection,
 * and through it the load() rules shared with the Level store: a damaged tail is truncated and reported,
 * damage elsewhere is CORRUPT_DATA naming the group, the index and what is damaged.
 *
 * Method: write a known log, crash or damage it through the test hooks, reload, compare with exact states.
 */

import { describe, expect, it } from "vitest";
import type { Entry, HardState, Snapshot } from "../../src/raft/types.ts";
import { CairnError } from "../../src/shared/errors.ts";
import { MemoryLogStore } from "../../src/node/log-store-memory.ts";
import type { GroupWrite, LoadedGroup } from "../../src/node/log-store.ts";

function entry(index: number, term: number): Entry {
  return { index, term, type: "normal", data: new TextEncoder().encode(`entry ${index} of term ${term}`) };
}

function range(from: number, to: number, term: number): Entry[] {
  return Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term));
}

function hs(term: number, commit: number): HardState {
  return { term, vote: null, commit };
}

function w(group: string, hardState: HardState | null, entries: Entry[], snapshot: Snapshot | null = null): GroupWrite {
  return { group, hardState, entries, snapshot };
}

const snap = (index: number, term: number): Snapshot => ({
  metadata: { index, term, confState: { voters: ["n1"], learners: [] } },
  data: new Uint8Array([index, term, 42]),
});

function shape(loaded: LoadedGroup): { hardState: HardState; snapshotIndex: number | null; indexes: number[]; terms: number[] } {
  return {
    hardState: loaded.hardState,
    snapshotIndex: loaded.snapshot?.metadata.index ?? null,
    indexes: loaded.entries.map((e) => e.index),
    terms: loaded.entries.map((e) => e.term),
  };
}

async function corruptError(promise: Promise<unknown>): Promise<CairnError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CairnError);
  expect((error as CairnError).code).toBe("CORRUPT_DATA");
  return error as CairnError;
}

describe("MemoryLogStore crash simulation", () => {
  it("keeps synced writes and loses the unsynced ones after the last sync", async () => {
    const store = new MemoryLogStore();
    await store.write([w("g", hs(1, 0), range(1, 3, 1))], { sync: true });
    await store.write([w("g", null, range(4, 5, 1))], { sync: false });
    await store.write([w("g", hs(1, 2), [])], { sync: false });
    expect(store.unsyncedWrites).toBe(2);
    expect(shape(await store.load("g")).indexes).toEqual([1, 2, 3, 4, 5]);
    const after = store.crash();
    expect(shape(await after.load("g"))).toEqual({ hardState: hs(1, 0), snapshotIndex: null, indexes: [1, 2, 3], terms: [1, 1, 1] });
    await expect(store.load("g")).rejects.toMatchObject({ code: "INTERNAL" });
  });

  it("a synced write makes every earlier unsynced write durable too", async () => {
    const store = new MemoryLogStore();
    await store.write([w("g", hs(1, 0), range(1, 2, 1))], { sync: false });
    await store.write([w("h", hs(1, 0), range(1, 1, 1))], { sync: false });
    await store.write([w("g", null, range(3, 3, 1))], { sync: true });
    expect(store.unsyncedWrites).toBe(0);
    const after = store.crash();
    expect(shape(await after.load("g")).indexes).toEqual([1, 2, 3]);
    expect(shape(await after.load("h")).indexes).toEqual([1]);
  });

  it("unsyncedWritesKept keeps a prefix of whole writes, never part of one", async () => {
    const store = new MemoryLogStore();
    await store.write([w("g", hs(1, 0), range(1, 1, 1))], { sync: true });
    await store.write([w("g", null, range(2, 3, 1)), w("h", hs(2, 0), range(1, 2, 2))], { sync: false });
    await store.write([w("g", hs(3, 0), range(4, 4, 3))], { sync: false });
    const one = store.crash({ unsyncedWritesKept: 1 });
    expect(shape(await one.load("g"))).toEqual({ hardState: hs(1, 0), snapshotIndex: null, indexes: [1, 2, 3], terms: [1, 1, 1] });
    expect(shape(await one.load("h")).indexes).toEqual([1, 2]);
    expect(await one.listGroups()).toEqual(["g", "h"]);
  });

  it("durability 'none' loses everything a crash can lose (negative control)", async () => {
    const store = new MemoryLogStore({ durability: "none" });
    await store.write([w("g", hs(1, 0), range(1, 3, 1))], { sync: true });
    await store.setMeta("nodeId", new Uint8Array([1]));
    const after = store.crash();
    expect(await after.listGroups()).toEqual([]);
    expect(shape(await after.load("g")).indexes).toEqual([]);
    expect(await after.getMeta("nodeId")).toBeNull();
  });

  it("a crash between a snapshot file and its batch cannot happen half-way: compaction is all or nothing", async () => {
    const store = new MemoryLogStore({ durability: "none" });
    await store.write([w("g", hs(1, 5), range(1, 8, 1))], { sync: false });
    await store.saveSnapshot("g", snap(5, 1));
    // The compaction is three unsynced writes: the file, the batch, the old-file cleanup (none here).
    for (let kept = 0; kept <= store.unsyncedWrites; kept++) {
      const loaded = shape(await store.crash({ unsyncedWritesKept: kept }).load("g"));
      expect([
        { hardState: hs(0, 0), snapshotIndex: null, indexes: [], terms: [] },
        { hardState: hs(1, 5), snapshotIndex: null, indexes: [1, 2, 3, 4, 5, 6, 7, 8], terms: Array(8).fill(1) },
        { hardState: hs(1, 5), snapshotIndex: 5, indexes: [6, 7, 8], terms: [1, 1, 1] },
      ]).toContainEqual(loaded);
    }
  });

  it("removes unreferenced snapshot files on open after a crash", async () => {
    const store = new MemoryLogStore();
    await store.write([w("g", hs(1, 5), range(1, 8, 1))], { sync: true });
    await store.saveSnapshot("g", snap(3, 1));
    await store.saveSnapshot("g", snap(5, 1));
    expect(store.snapshotFileNames()).toHaveLength(1);
    // An unsynced compaction that lost its batch in the crash leaves its file behind.
    const lossy = new MemoryLogStore({ durability: "none" });
    await lossy.write([w("g", hs(1, 5), range(1, 8, 1))], { sync: false });
    await lossy.saveSnapshot("g", snap(5, 1));
    expect(lossy.snapshotFileNames()).toHaveLength(1);
    const after = lossy.crash({ unsyncedWritesKept: 2 }); // the first write and the file, not the batch
    expect(shape(await after.load("g")).snapshotIndex).toBeNull();
    expect(after.snapshotFileNames()).toEqual([]);
    const again = store.crash();
    expect((await again.load("g")).snapshot?.data).toEqual(new Uint8Array([5, 1, 42]));
    expect(again.snapshotFileNames()).toHaveLength(1);
  });
});

describe("MemoryLogStore write failures", () => {
  it("a failed write rejects with INTERNAL and the store refuses everything after it; a restart recovers", async () => {
    const store = new MemoryLogStore();
    await store.write([w("g", hs(1, 0), range(1, 2, 1))], { sync: true });
    store.failNextWrite();
    const error = await store.write([w("g", null, range(3, 3, 1))], { sync: true }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "INTERNAL", message: expect.stringMatching(/log store failed while writing .*restart the node: EIO/) });
    await expect(store.load("g")).rejects.toBe(error);
    await expect(store.setMeta("k", new Uint8Array([1]))).rejects.toBe(error);
    const after = store.crash();
    expect(shape(await after.load("g")).indexes).toEqual([1, 2]);
  });

  it("a failed snapshot file write rejects and changes nothing", async () => {
    const store = new MemoryLogStore();
    await store.write([w("g", hs(1, 3), range(1, 4, 1))], { sync: true });
    store.failNextWrite();
    await expect(store.saveSnapshot("g", snap(3, 1))).rejects.toMatchObject({ code: "INTERNAL" });
    expect(shape(await store.load("g"))).toMatchObject({ snapshotIndex: null, indexes: [1, 2, 3, 4] });
    await store.saveSnapshot("g", snap(3, 1));
    expect(shape(await store.load("g"))).toMatchObject({ snapshotIndex: 3, indexes: [4] });
  });
});

describe("MemoryLogStore fault injection and load() verification", () => {
  async function seeded(): Promise<MemoryLogStore> {
    const store = new MemoryLogStore();
    await store.write([w("b:x", hs(2, 4), [...range(1, 5, 1), ...range(6, 8, 2)])], { sync: true });
    return store;
  }

  it("truncates a damaged tail above the commit index, reports it, and the repair is durable", async () => {
    const store = await seeded();
    expect(store.corruptEntry("b:x", 8)).toBe(true);
    expect(store.corruptEntry("b:x", 7, { byteOffset: 9 })).toBe(true);
    expect(shape(await store.load("b:x"))).toEqual({ hardState: hs(2, 4), snapshotIndex: null, indexes: [1, 2, 3, 4, 5, 6], terms: [1, 1, 1, 1, 1, 2] });
    expect(store.repairs).toHaveLength(1);
    expect(store.repairs[0]).toMatch(/group b:x: truncated a torn tail of 2 record\(s\) from entry 7 .*checksum mismatch.*last index 8 -> 6/);
    const after = store.crash();
    expect(shape(await after.load("b:x")).indexes).toEqual([1, 2, 3, 4, 5, 6]);
    expect(after.repairs).toEqual([]);
    await after.write([w("b:x", null, range(7, 7, 2))], { sync: true });
    expect(shape(await after.load("b:x")).indexes).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("a damaged entry followed by an intact one is corruption, named by group and index", async () => {
    const store = await seeded();
    store.corruptEntry("b:x", 6);
    const error = await corruptError(store.load("b:x"));
    expect(error.message).toMatch(/group b:x: entry 6 is damaged \(.*checksum mismatch.*\) but entry 7 after it is intact/);
  });

  it("refuses to truncate a damaged tail that holds committed entries", async () => {
    const store = await seeded();
    store.corruptEntry("b:x", 4);
    store.corruptEntry("b:x", 5);
    store.corruptEntry("b:x", 6);
    store.corruptEntry("b:x", 7);
    store.corruptEntry("b:x", 8);
    const error = await corruptError(store.load("b:x"));
    expect(error.message).toMatch(/group b:x: entry 4 is damaged .* committed \(commit 4\)/);
  });

  it("a missing entry in the middle is a gap; a missing last entry is corruption too", async () => {
    const store = await seeded();
    store.removeEntry("b:x", 3);
    expect((await corruptError(store.load("b:x"))).message).toMatch(/group b:x: entries 3\.\.3 are missing/);
    const other = await seeded();
    other.removeEntry("b:x", 8);
    expect((await corruptError(other.load("b:x"))).message).toMatch(/group b:x: entries 8\.\.8 are missing/);
  });

  it("a damaged hard state is corruption; the group stays listed and refuses writes after a restart", async () => {
    const store = await seeded();
    store.corruptHardState("b:x", { byteOffset: 0 });
    expect((await corruptError(store.load("b:x"))).message).toMatch(/group b:x: hard state record damaged: checksum mismatch/);
    const after = store.crash();
    expect(await after.listGroups()).toEqual(["b:x"]);
    await corruptError(after.write([w("b:x", hs(3, 4), [])], { sync: true }));
    await corruptError(after.load("b:x"));
  });

  it("a damaged or missing snapshot file is corruption naming the group and the file", async () => {
    const store = await seeded();
    await store.saveSnapshot("b:x", snap(4, 1));
    store.corruptSnapshot("b:x", { byteOffset: 40 });
    expect((await corruptError(store.load("b:x"))).message).toMatch(/group b:x: snapshot file b%3Ax-0000000000000004-\d+\.snap \(index 4\) damaged: body checksum mismatch/);
    const other = await seeded();
    await other.saveSnapshot("b:x", snap(4, 1));
    other.corruptSnapshot("b:x", { remove: true });
    expect((await corruptError(other.load("b:x"))).message).toMatch(/snapshot file .* is missing/);
  });

  it("a damaged meta value is corruption naming the key", async () => {
    const store = new MemoryLogStore();
    await store.setMeta("clusterId", new Uint8Array([7, 7]));
    expect(Array.from((await store.getMeta("clusterId")) ?? [])).toEqual([7, 7]);
    expect(store.corruptMeta("clusterId")).toBe(true);
    expect((await corruptError(store.getMeta("clusterId"))).message).toMatch(/node metadata "clusterId" damaged: checksum mismatch/);
  });
});
