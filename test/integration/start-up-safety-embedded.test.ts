/**
 * Goal (issue 4, start-up safety): a node that lost its data never votes with it. A wiped follower
 * comes back in recovering mode, catches up from the leader and loses no acknowledged write; a wiped
 * node whose vote a stale candidate needs refuses it, so the group waits for the node that has the
 * data; the first start of a brand-new cluster still elects (every node reports a brand-new group). And
 * a node crashed in the middle of a burst rebuilds its state from snapshot + log: it ends equal to the
 * other replicas, record for record, and a watch served by it continues without a gap.
 * Method: startCluster in memory (MemoryLogStore crash = what was fsynced survives; wipe = a new empty
 * store) with the memory hub's partitions, the real client over loopback; waits are on conditions.
 */
import { mkdtemp, readdir, rm, stat, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection, type KV } from "../../src/client/index.ts";
import { startCluster, type InProcessCluster } from "../../src/node/embed.ts";
import type { PeerPayload } from "../../src/node/transport.ts";

const WAIT_MS = 20_000;

let cluster: InProcessCluster | null = null;
const conns: Connection[] = [];

afterEach(async () => {
  for (const c of conns.splice(0)) await c.close().catch(() => undefined);
  await cluster?.stop();
  cluster = null;
});

async function until(what: string, done: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function open(c: InProcessCluster, ids: readonly string[], bucket: string): Promise<KV> {
  const nc = await connect({ servers: ids.map((id) => c.urls[c.ids.indexOf(id)]!), timeoutMs: 10_000, discoverServers: false, noRandomize: true });
  conns.push(nc);
  return new Kvm(nc).open(bucket);
}

/** Every record a node's replica holds, read locally (stale) on that node only. */
async function records(c: InProcessCluster, id: string, bucket: string): Promise<string[]> {
  const kv = await open(c, [id], bucket);
  const out: string[] = [];
  for await (const e of kv.history({ consistency: "stale" })) out.push(`${e.revision} ${e.operation} ${e.key}=${e.string()}`);
  return out;
}

function groupsOf(c: InProcessCluster, id: string) {
  return [...c.nodes.get(id)!.node.host.allGroups()];
}

/** Counts the (pre)vote rejections a node sends, and the appends it sends in bucket groups (= it leads one). */
function spy(c: InProcessCluster, id: string): { rejectedVotes: number; appends: number } {
  const seen = { rejectedVotes: 0, appends: 0 };
  const transport = c.nodes.get(id)!.transport;
  const send = transport.send.bind(transport);
  transport.send = (to: string, payload: PeerPayload) => {
    if (payload.kind === "raft") {
      const m = payload.message;
      if ((m.type === "voteResp" || m.type === "preVoteResp") && m.reject) seen.rejectedVotes++;
      if (m.type === "app" && payload.group !== "meta") seen.appends++;
    }
    send(to, payload);
  };
  return seen;
}

describe("start-up safety: lost data", () => {
  it("a brand-new cluster elects; a wiped follower recovers from the leader without voting and loses no acknowledged write", async () => {
    cluster = await startCluster({ nodes: 3, inMemory: true });
    const c = cluster;
    // First start: every node found an empty store (an episode) and the probe proved the cluster new.
    await until("no node recovering", () => c.ids.every((id) => c.nodes.get(id)!.node.host.allGroups().next().value?.recovering === false));
    const admin = await connect({ servers: c.urls, timeoutMs: 10_000 });
    conns.push(admin);
    await new Kvm(admin).create("wiped", { replicas: 3, history: 3 });
    const kv = await open(c, c.ids, "wiped");
    const acked = new Map<string, number>();
    for (let i = 0; i < 40; i++) acked.set(`k.${i}`, await kv.put(`k.${i}`, `v${i}`));

    const leader = await c.waitForLeader("wiped");
    const victim = c.ids.find((id) => id !== leader)!;
    await c.kill(victim);
    await c.wipe(victim);
    for (let i = 40; i < 60; i++) acked.set(`k.${i}`, await kv.put(`k.${i}`, `v${i}`));
    await c.restart(victim);
    const back = c.nodes.get(victim)!;
    expect(back.recovery.state.episode).not.toBeNull();
    expect(back.recovery.state.reason).toMatch(/data directory is empty/);
    expect(back.node.host.group("meta")!.recovering).toBe(true);

    // It catches up (meta, then the bucket it hosts) and leaves recovering mode group by group.
    await until("victim recovered every group", () => {
      const groups = groupsOf(c, victim);
      return groups.length === 2 && groups.every((g) => !g.recovering);
    });
    expect(back.recovery.state.boundary).not.toBeNull();
    const expected = await records(c, leader, "wiped");
    await until("victim's replica equals the leader's", async () => (await records(c, victim, "wiped")).length === expected.length);
    expect(await records(c, victim, "wiped")).toEqual(expected);
    const local = await open(c, [victim], "wiped");
    for (const [key, revision] of acked) expect((await local.get(key, { consistency: "stale" }))?.revision, key).toBe(revision);
    // And it votes again: the group survives losing the leader with the recovered node in the majority.
    await c.kill(leader);
    const after = await open(c, c.ids.filter((id) => id !== leader), "wiped");
    expect(await after.put("after", "leader-killed", { timeoutMs: 15_000 })).toBeGreaterThan(Math.max(...acked.values()));
  });

  it("a wiped node refuses its vote to a stale candidate; the group waits for the node that has the data", async () => {
    cluster = await startCluster({ nodes: 3, inMemory: true });
    const c = cluster;
    const admin = await connect({ servers: c.urls, timeoutMs: 10_000 });
    conns.push(admin);
    await new Kvm(admin).create("stale", { replicas: 3 });
    const leader = await c.waitForLeader("stale");
    const [follower, stale] = c.ids.filter((id) => id !== leader) as [string, string];
    const kv = await open(c, [leader], "stale");
    for (let i = 0; i < 10; i++) await kv.put(`early.${i}`, "x");
    // `stale` misses the next writes: they are acknowledged by the leader and `follower` only.
    c.isolate(stale);
    const acked = new Map<string, number>();
    for (let i = 0; i < 10; i++) acked.set(`late.${i}`, await kv.put(`late.${i}`, "y"));
    // The leader dies and `follower` loses its disk: only the dead leader still has the late writes.
    await c.kill(leader);
    await c.kill(follower);
    await c.wipe(follower);
    await c.restart(follower);
    const votes = spy(c, follower);
    const staleLeads = spy(c, stale);
    c.heal();

    // `stale` campaigns again and again; `follower` rejects every (pre)vote; nobody leads the bucket.
    // (`stale` may still lead the meta group, whose log it has whole: then `follower` recovers meta from
    // it, opens the bucket group recovering, and refuses the bucket votes.)
    await until("the wiped node rejected 6 (pre)votes", () => votes.rejectedVotes >= 6);
    const isBucket = (g: { id: string }) => g.id !== "meta";
    expect(staleLeads.appends).toBe(0);
    expect(groupsOf(c, stale).filter(isBucket).every((g) => !g.isLeader())).toBe(true);
    expect(groupsOf(c, follower).filter(isBucket).every((g) => g.recovering && !g.isLeader())).toBe(true);

    // The node that has the data returns: the group elects, every acknowledged write is there, and
    // the wiped node recovers from the new leader.
    await c.restart(leader);
    const all = await open(c, c.ids, "stale");
    expect(await all.put("after", "z", { timeoutMs: 15_000 })).toBeGreaterThan(Math.max(...acked.values()));
    for (const [key, revision] of acked) expect((await all.get(key))?.revision, key).toBe(revision);
    await until("the wiped node recovered every group", () => {
      const groups = groupsOf(c, follower);
      return groups.length === 2 && groups.every((g) => !g.recovering);
    });
  });
});

describe("start-up safety: the only voter", () => {
  it("a single-node cluster whose newest LevelDB log lost its tail comes back with what it kept and serves", async () => {
    const root = await mkdtemp(join(tmpdir(), "cairn-single-"));
    try {
      cluster = await startCluster({ nodes: 1, dataDir: root });
      const c = cluster;
      const admin = await connect({ servers: c.urls, timeoutMs: 10_000 });
      conns.push(admin);
      await new Kvm(admin).create("solo", { replicas: 1 });
      const kv = await open(c, ["n1"], "solo");
      const revisions: number[] = [];
      for (let i = 0; i < 20; i++) revisions.push(await kv.put(`k.${i}`, `v${i}`));
      await c.kill("n1");
      const level = join(root, "n1", "level");
      const newest = (await readdir(level)).filter((n) => n.endsWith(".log")).sort().at(-1)!;
      const size = (await stat(join(level, newest))).size;
      expect(size).toBeGreaterThan(100);
      await truncate(join(level, newest), size - 30); // inside the last write: a torn tail
      await c.restart("n1");
      expect(c.nodes.get("n1")!.recovery.state.reason).toMatch(/torn tail/);
      const again = await open(c, ["n1"], "solo");
      // It kept a prefix of what it acknowledged (the cut write, at most, is gone) and serves again.
      const after = await again.put("after", "restart", { timeoutMs: 15_000 });
      const kept = revisions.filter((_, i) => i < 19);
      for (const [i, revision] of kept.entries()) expect((await again.get(`k.${i}`))?.revision, `k.${i}`).toBe(revision);
      expect(after).toBeGreaterThan(kept.at(-1)!);
    } finally {
      await cluster?.stop();
      cluster = null;
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("start-up safety: crash during apply", () => {
  it("a node crashed mid-burst is rebuilt from snapshot + log: equal to the others, its watch has no gap", async () => {
    // Small snapshot interval: the crashed node restarts from a snapshot plus a log tail.
    cluster = await startCluster({ nodes: 3, inMemory: true, limits: { snapshotEntries: 40, compactionKeepEntries: 10 } });
    const c = cluster;
    const admin = await connect({ servers: c.urls, timeoutMs: 10_000 });
    conns.push(admin);
    await new Kvm(admin).create("burst", { replicas: 3, history: 5 });
    const leader = await c.waitForLeader("burst");
    const victim = c.ids.find((id) => id !== leader)!;
    const writerIds = c.ids.filter((id) => id !== victim);

    // A watch served by the victim (its only server): it must resume there after the crash.
    const watchKv = await open(c, [victim], "burst");
    const watcher = await watchKv.watch({ include: "updates" });
    const revisions: number[] = [];
    const watching = (async () => {
      for await (const e of watcher) revisions.push(e.revision);
    })();

    const writer = await open(c, writerIds, "burst");
    const TOTAL = 400;
    const IN_FLIGHT = 32;
    let next = 0;
    let acks = 0;
    let killed = false;
    let restarted: Promise<void> | null = null;
    const worker = async () => {
      while (next < TOTAL) {
        const i = next++;
        await writer.put(`key.${i % 150}`, `value-${i}`, { timeoutMs: 15_000 });
        acks++;
        if (!killed && acks >= 120) {
          killed = true;
          await c.kill(victim); // mid-burst: whatever it had not fsynced is gone
        }
        if (killed && restarted === null && acks >= 260) restarted = c.restart(victim);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    await restarted;
    expect(acks).toBe(TOTAL);
    const last = await writer.put("last", "done");

    const reference = await records(c, leader, "burst");
    await until("the restarted node applied everything", async () => (await records(c, victim, "burst")).at(-1)?.startsWith(`${last} `) === true);
    expect(await records(c, victim, "burst")).toEqual(reference);
    expect(await records(c, writerIds.find((id) => id !== leader)!, "burst")).toEqual(reference);
    const snapshotted = c.nodes.get(victim)!.node.host.group([...c.nodes.get(victim)!.node.host.allGroups()].find((g) => g.id !== "meta")!.id)!;
    expect(snapshotted.snapshotIndex).toBeGreaterThan(0);

    await until("the watch reached the last revision", () => revisions.at(-1) === last);
    expect(revisions).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    await watcher.stop();
    await watching;
  });
});
