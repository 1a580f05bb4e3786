/**
 * Goal: membership changes work on real node processes with level storage (docs/membership.md):
 * a follower is removed and re-added while writes run (some of them through the removed node, which
 * forwards), it deletes its replica on disk, a kill -9 and restart while removed keeps it out, the
 * re-added replica catches up through a snapshot (the log was compacted meanwhile), and at the end every
 * replica holds the same history with every acknowledged write.
 * Method: test/support/process-cluster.ts (one process per node, free loopback ports), the real client;
 * waits on conditions observed through cluster.status and stale reads, never on fixed sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection, type KV } from "../../src/client/index.ts";
import type { WireClusterStatus, WireMembership } from "../../src/shared/protocol.ts";
import { ProcessCluster } from "../support/process-cluster.ts";

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("membership on node processes", () => {
  let cluster: ProcessCluster;
  const connections: Connection[] = [];
  const open = async (ids: string[]) => {
    const nc = await connect({ servers: ids.map((id) => cluster.node(id).clientUrl), timeoutMs: 15_000, noRandomize: true, discoverServers: false });
    connections.push(nc);
    return nc;
  };

  beforeAll(async () => {
    // Compaction while the node is out, so its return needs a snapshot.
    cluster = await ProcessCluster.start({ nodes: 3, limits: { snapshotEntries: 150, compactionKeepEntries: 20 } });
  });

  afterAll(async () => {
    for (const nc of connections) await nc.close().catch(() => undefined);
    await cluster?.stop();
  });

  it("removes a follower and re-adds it while writes run; nothing acknowledged is lost", async () => {
    const ids = ["n1", "n2", "n3"];
    const admin = await open(ids);
    const kv = await new Kvm(admin).create("orders", { replicas: 3, history: 2 });
    const leader = (await kv.status()).leader!;
    const victim = ids.find((id) => id !== leader)!;
    const others = ids.filter((id) => id !== victim);

    const acked = new Map<string, { value: string; revision: number }>();
    let stop = false;
    let ops = 0;
    const OPS_MAX = 4000;
    const write = async (w: number, target: KV) => {
      for (let i = 0; !stop && ops < OPS_MAX; i++) {
        ops++;
        const key = i % 3 === 2 ? `reg.${w}` : `app.${w}.${i}`;
        const value = `w${w}-${i}`;
        try {
          const revision = await target.put(key, value, { timeoutMs: 10_000 });
          const prior = acked.get(key);
          if (!prior || prior.revision < revision) acked.set(key, { value, revision });
        } catch {
          /* outcome unknown or refused: not acknowledged */
        }
      }
    };
    const writers = [
      write(0, await new Kvm(await open(others)).open("orders")),
      write(1, await new Kvm(await open([victim])).open("orders")), // through the node that gets removed
    ];
    const opsAfter = async (n: number) => {
      const target = ops + n;
      await waitFor(`${n} more writes`, async () => ops >= target);
    };
    await opsAfter(30);

    const removed = (await admin.request("cluster.removeNode", { nodeId: victim }, { timeoutMs: 60_000 })) as WireMembership;
    expect(removed).toEqual({ members: others, removed: [victim], change: null });
    const statusOf = async (id: string) => (await (await open([id])).request("cluster.status", {}, { timeoutMs: 10_000 })) as WireClusterStatus;
    // The removed node deletes its replica (its status lists only the meta group for it).
    await waitFor("the removed node holds no replica", async () => {
      const s = await statusOf(others[0]!);
      const orders = s.groups.find((g) => g.group === "orders");
      return orders !== undefined && orders.members.every((m) => m.node !== victim);
    });
    expect((await statusOf(others[0]!)).nodes.find((n) => n.id === victim)?.member).toBe(false);
    await opsAfter(200); // past a compaction: the return needs a snapshot

    // Crash and restart while removed: it stays out (level store reopened, blank replica state).
    await cluster.kill9(victim);
    cluster.spawn(victim);
    await cluster.waitListening(victim);
    const viaVictim = await statusOf(victim);
    expect(viaVictim.membership?.removed).toEqual([victim]);
    // Its meta log replay may reopen the replica, blank (no configuration, never campaigns): it is
    // deleted again once silent.
    await waitFor("the restarted removed node holds no replica", async () => {
      const orders = (await statusOf(victim)).groups.find((g) => g.group === "orders");
      return orders !== undefined && orders.members.every((m) => m.node !== victim || (m.role === "follower" && m.applied === 0));
    });
    await waitFor("and deletes it", async () => (await statusOf(victim)).groups.find((g) => g.group === "orders")?.members.every((m) => m.node !== victim) === true);
    await opsAfter(30);

    const added = (await admin.request("cluster.addNode", { nodeId: victim }, { timeoutMs: 60_000 })) as WireMembership;
    expect(added).toEqual({ members: ids, removed: [], change: null });
    // It came back blank and caught up through the leader's snapshot of the compacted log.
    const orderGroup = /"group":"b:orders:\d+"/;
    await waitFor("the snapshot was installed", async () => cluster.node(victim).log.some((l) => l.includes("snapshot installed") && orderGroup.test(l)));
    await opsAfter(30);
    stop = true;
    await Promise.all(writers);
    expect(acked.size).toBeGreaterThan(100);

    // Every replica converges on the same history, holding every acknowledged write.
    const leaderKv = await new Kvm(await open(others)).open("orders");
    const finalRevision = (await leaderKv.status()).revision;
    let reference: string | null = null;
    for (const id of ids) {
      const local = await new Kvm(await open([id])).open("orders");
      await waitFor(`${id} applied everything`, async () => (await local.status()).revision === finalRevision && (await local.get("none", { consistency: "stale" })) === null);
      await waitFor(`${id} caught up locally`, async () => {
        let last = 0;
        for await (const e of local.history({ key: ">", consistency: "stale" })) last = Math.max(last, e.revision);
        return last === finalRevision;
      });
      const lines: string[] = [];
      const latest = new Map<string, { revision: number; value: string }>();
      for await (const e of local.history({ key: ">", consistency: "stale" })) {
        lines.push(`${e.revision} ${e.key} ${e.string()}`);
        latest.set(e.key, { revision: e.revision, value: e.string() });
      }
      if (reference === null) reference = lines.join("\n");
      else expect(lines.join("\n"), `history on ${id}`).toBe(reference);
      for (const [key, { value, revision }] of acked) {
        const e = latest.get(key);
        expect(e?.revision, `${key} on ${id}`).toBeGreaterThanOrEqual(revision);
        if (e?.revision === revision) expect(e.value).toBe(value);
      }
    }
  });
});
