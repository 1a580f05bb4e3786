/**
 * Goal: the recovery episode rules of src/node/recovery.ts. A new, lost or torn store starts an episode
 * (durably, so a restart keeps it); the meta group recovers first and its commit index bounds the buckets
 * that can hold lost state; each bucket recovers on its own; a torn tail found when a group loads forces
 * that group in; the brand-new-cluster probe ends the episode only when every other member reports a
 * brand-new meta group, and stops at the first sign of history.
 * Method: NodeRecovery over MemoryLogStore (crash() = restart) and one real LevelDB store with a cut log;
 * a fake transport answers the probe.
 */
import { mkdtemp, readdir, rm, stat, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openLevelLogStore } from "../../src/node/log-store-level.ts";
import { MemoryLogStore } from "../../src/node/log-store-memory.ts";
import { silentLogger } from "../../src/node/logger.ts";
import { NodeRecovery, creationIndexOf } from "../../src/node/recovery.ts";
import type { PeerTransport } from "../../src/node/transport.ts";

const open = (store: MemoryLogStore | Awaited<ReturnType<typeof openLevelLogStore>>) => NodeRecovery.open(store, { nodeId: "n1", logger: silentLogger });

/** A store that held data before (so it opens as "existing"). */
async function existingStore(): Promise<MemoryLogStore> {
  const fresh = new MemoryLogStore();
  await fresh.setMeta("nodeId", new TextEncoder().encode("n1"));
  return fresh.crash();
}

/** A transport whose request() answers the probe with each peer's meta group (or fails). */
function probeTransport(answers: Record<string, { term: number; lastIndex: number } | "down">): PeerTransport & { asked: string[] } {
  const asked: string[] = [];
  const transport = {
    asked,
    async request(to: string) {
      asked.push(to);
      const a = answers[to];
      if (a === undefined || a === "down") throw new Error("unreachable");
      return { node: to, groups: [{ group: "meta", ...a }] };
    },
  };
  return transport as unknown as PeerTransport & { asked: string[] };
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(done()).toBe(true);
}

describe("recovery episodes", () => {
  it("an existing store without repairs has no episode: nothing recovers", async () => {
    const recovery = await open(await existingStore());
    expect(recovery.state.episode).toBeNull();
    expect(await recovery.recovering("meta")).toBe(false);
    expect(await recovery.recovering("b:x:5")).toBe(false);
  });

  it("an empty store starts one: meta recovers first, its commit index bounds the buckets, each bucket on its own; restarts keep it", async () => {
    const store = new MemoryLogStore();
    const recovery = await open(store);
    expect(recovery.state).toMatchObject({ reason: expect.stringMatching(/data directory is empty/), boundary: null });
    expect(await recovery.recovering("meta")).toBe(true);
    expect(await recovery.recovering("b:old:3")).toBe(true);
    expect(await recovery.recovering("b:later:50")).toBe(true); // boundary unknown yet

    recovery.onRecovered("meta", 40);
    await until(() => recovery.state.boundary === 40);
    expect(await recovery.recovering("meta")).toBe(false);
    expect(await recovery.recovering("b:old:3")).toBe(true);
    expect(await recovery.recovering("b:later:50")).toBe(false); // created after everything this node could have held
    expect(await recovery.recovering("weird-name")).toBe(true); // unknown creation index: stays safe

    recovery.onRecovered("b:old:3", 99);
    await new Promise((r) => setTimeout(r, 10));
    const restarted = await open(store.crash());
    expect(restarted.state).toMatchObject({ episode: recovery.state.episode, boundary: 40 });
    expect(await restarted.recovering("meta")).toBe(false);
    expect(await restarted.recovering("b:old:3")).toBe(false);
    expect(await restarted.recovering("b:other:7")).toBe(true);
  });

  it("a torn tail found when a group loads forces that group (alone) into recovery, durably", async () => {
    const seeded = new MemoryLogStore();
    const entries = [1, 2, 3].map((index) => ({ index, term: 1, type: "normal" as const, data: new Uint8Array(10) }));
    await seeded.write([{ group: "b:x:5", hardState: { term: 1, vote: null, commit: 1 }, entries, snapshot: null }], { sync: true });
    const store = seeded.crash();
    const recovery = await open(store);
    expect(recovery.state.episode).toBeNull();
    expect(store.corruptEntry("b:x:5", 3)).toBe(true);
    expect((await store.load("b:x:5")).entries.map((e) => e.index)).toEqual([1, 2]);
    expect(store.repairs).toEqual([expect.stringMatching(/^group b:x:5: truncated a torn tail/)]);
    expect(await recovery.recovering("b:x:5")).toBe(true);
    expect(recovery.state.episode).not.toBeNull();
    expect(await recovery.recovering("meta")).toBe(false);
    expect(await recovery.recovering("b:y:6")).toBe(false);
    const restarted = await open(store.crash());
    expect(await restarted.recovering("b:x:5")).toBe(true);
  });

  it("parses the creation index of bucket groups", () => {
    expect(creationIndexOf("b:orders:12")).toBe(12);
    expect(creationIndexOf("b:a:b:7")).toBe(7);
    expect(creationIndexOf("meta")).toBeNull();
    expect(creationIndexOf("b:orders:x")).toBeNull();
  });
});

describe("recovery: a torn LevelDB log tail", () => {
  const root = mkdtemp(join(tmpdir(), "cairn-recovery-"));
  afterAll(async () => rm(await root, { recursive: true, force: true }));

  it("starts an episode, and explains a missing snapshot file (the lost write replaced it) but no other damage", async () => {
    const dir = join(await root, "torn");
    const first = await openLevelLogStore({ dir, durability: "fsync" });
    for (let i = 1; i <= 3; i++) {
      await first.write([{ group: "meta", hardState: { term: 1, vote: "n1", commit: i - 1 }, entries: [{ index: i, term: 1, type: "normal", data: new Uint8Array(100) }], snapshot: null }], { sync: true });
    }
    await first.close();
    const log = (await readdir(join(dir, "level"))).find((n) => n.endsWith(".log"))!;
    const path = join(dir, "level", log);
    await truncate(path, (await stat(path)).size - 10);
    const store = await openLevelLogStore({ dir, durability: "fsync" });
    const recovery = await open(store);
    expect(recovery.state.reason).toMatch(/torn tail\(s\) truncated on open: LevelDB log .*torn tail of \d+ byte\(s\)/);
    expect(await recovery.recovering("meta")).toBe(true);
    expect(await recovery.lostOnLoad("b:x:5", new Error("group b:x:5: snapshot file b%3Ax%3A5-0000000000000007-3.snap (index 7) is missing"))).toBe(true);
    expect(await recovery.lostOnLoad("b:x:5", new Error("group b:x:5: entry 4 is damaged (checksum mismatch) but entry 5 after it is intact"))).toBe(false);
    await store.close();
    // Without a torn tail on open, a missing snapshot file is damage, never loss.
    const clean = await open(await existingStore());
    expect(await clean.lostOnLoad("meta", new Error("group meta: snapshot file x (index 7) is missing"))).toBe(false);
  });
});

describe("recovery: the brand-new-cluster probe", () => {
  const fresh = { metaStatus: () => ({ term: 0, lastIndex: 0 }) };

  it("ends the episode when every other member reports a brand-new meta group", async () => {
    const recovery = await open(new MemoryLogStore());
    const ended: string[] = [];
    const transport = probeTransport({ n2: { term: 0, lastIndex: 0 }, n3: { term: 0, lastIndex: 0 } });
    recovery.startProbe({ nodeId: "n1", members: ["n1", "n2", "n3"], transport, host: { ...fresh, endRecovery: (r) => ended.push(r) } });
    await until(() => ended.length === 1);
    expect(ended[0]).toMatch(/every other member \(n2, n3\) reports a brand-new meta group/);
    expect(recovery.state.episode).toBeNull();
    expect(await recovery.recovering("meta")).toBe(false);
    await recovery.close();
  });

  it("keeps asking while a member does not answer; a quorum of brand-new answers is not enough", async () => {
    const recovery = await open(new MemoryLogStore());
    const ended: string[] = [];
    const answers: Record<string, { term: number; lastIndex: number } | "down"> = { n2: { term: 0, lastIndex: 0 }, n3: "down" };
    const transport = probeTransport(answers);
    recovery.startProbe({ nodeId: "n1", members: ["n1", "n2", "n3"], transport, host: { ...fresh, endRecovery: (r) => ended.push(r) } });
    await until(() => transport.asked.filter((p) => p === "n3").length >= 3);
    expect(ended).toEqual([]);
    expect(recovery.state.episode).not.toBeNull();
    answers.n3 = { term: 0, lastIndex: 0 };
    await until(() => ended.length === 1);
    await recovery.close();
  });

  it("stops at the first member with history: the node recovers from a leader instead", async () => {
    const recovery = await open(new MemoryLogStore());
    const ended: string[] = [];
    const transport = probeTransport({ n2: { term: 0, lastIndex: 0 }, n3: { term: 4, lastIndex: 120 } });
    recovery.startProbe({ nodeId: "n1", members: ["n1", "n2", "n3"], transport, host: { ...fresh, endRecovery: (r) => ended.push(r) } });
    await recovery.close(); // waits for the probe, which has decided
    expect(ended).toEqual([]);
    expect(transport.asked.sort()).toEqual(["n2", "n3"]);
    expect(await recovery.recovering("meta")).toBe(true);
  });

  it("a single-node cluster ends the episode at once", async () => {
    const recovery = await open(new MemoryLogStore());
    const ended: string[] = [];
    recovery.startProbe({ nodeId: "n1", members: ["n1"], transport: probeTransport({}), host: { ...fresh, endRecovery: (r) => ended.push(r) } });
    await until(() => ended.length === 1);
    expect(ended[0]).toMatch(/single-node cluster/);
    await recovery.close();
  });
});
