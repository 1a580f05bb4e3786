/**
 * Goal: the cluster works as separate processes on loopback (issue 4): writes through a follower,
 * reads everywhere, kill -9 of the leader loses no acknowledged write and a new leader serves, a
 * restarted node catches up through a snapshot after compaction, garbage on both sockets is refused.
 * Method: real node processes from a generated config (test/support/process-cluster.ts), the real
 * client, and kill -9 by the pids this test started.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connect, Kvm } from "../../src/client/index.ts";
import type { Connection } from "../../src/client/index.ts";
import { ProcessCluster } from "../support/process-cluster.ts";

const text = (s: string) => new TextEncoder().encode(s);

describe("3-node multi-process cluster", () => {
  let cluster: ProcessCluster;
  const connections: Connection[] = [];
  const open = async (urls: string[]) => {
    const nc = await connect({ servers: urls, timeoutMs: 15_000, noRandomize: true, discoverServers: false });
    connections.push(nc);
    return nc;
  };

  beforeAll(async () => {
    // Small snapshot interval so a node that was down must catch up through a snapshot.
    cluster = await ProcessCluster.start({ nodes: 3, limits: { snapshotEntries: 300, compactionKeepEntries: 50 } });
  });

  afterAll(async () => {
    for (const nc of connections) await nc.close().catch(() => undefined);
    await cluster?.stop();
  });

  it("writes through a follower, reads everywhere, survives kill -9 of the leader, catches up a restarted node", async () => {
    const all = await open(cluster.urls);
    const kvm = new Kvm(all);
    const kv = await kvm.create("orders", { history: 3, replicas: 3 });
    const status = await kv.status();
    expect(status.replicas).toBe(3);
    const leader = status.leader;
    expect(leader).toMatch(/^n[123]$/);

    // Write through a follower: a connection to one follower only.
    const followerId = ["n1", "n2", "n3"].find((id) => id !== leader)!;
    const viaFollower = new Kvm(await open([cluster.node(followerId).clientUrl]));
    const fkv = await viaFollower.open("orders");
    const acked = new Map<string, number>();
    for (let i = 0; i < 50; i++) acked.set(`k.${i}`, await fkv.put(`k.${i}`, `v${i}`));
    const revisions = [...acked.values()];
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));

    // Read everywhere: linearizable reads from every node see every acknowledged write.
    for (const id of ["n1", "n2", "n3"]) {
      const kvAt = await new Kvm(await open([cluster.node(id).clientUrl])).open("orders");
      const e = await kvAt.get("k.49");
      expect(e?.string()).toBe("v49");
      expect(e?.revision).toBe(acked.get("k.49"));
    }

    // kill -9 the leader; a new leader serves writes; nothing acknowledged is missing.
    const survivors = ["n1", "n2", "n3"].filter((id) => id !== leader);
    const afterKill = await new Kvm(await open(survivors.map((id) => cluster.node(id).clientUrl))).open("orders");
    const t0 = Date.now();
    await cluster.kill9(leader!);
    const rev = await afterKill.put("after.kill", "yes", { timeoutMs: 15_000 });
    const failoverMs = Date.now() - t0;
    expect(rev).toBeGreaterThan(revisions[revisions.length - 1]!);
    const newStatus = await afterKill.status();
    expect(newStatus.leader).not.toBe(leader);
    for (const [key, revision] of acked) {
      const e = await afterKill.get(key);
      expect(e?.revision, key).toBe(revision);
    }
    console.log(`failover: kill -9 of the bucket leader ${leader} to first acknowledged write: ${failoverMs} ms`);

    // While the old leader is down, write enough to force snapshots + compaction on the others.
    for (let i = 0; i < 400; i++) await afterKill.put(`bulk.${i % 100}`, `b${i}`);
    const lastRev = await afterKill.put("last", "1");

    // Restart it: it catches up (through a snapshot: its log position was compacted away).
    await cluster.restart(leader!);
    const kvRestarted = await new Kvm(await open([cluster.node(leader!).clientUrl])).open("orders");
    const deadline = Date.now() + 30_000;
    let seen: number | undefined;
    while (Date.now() < deadline) {
      const e = await kvRestarted.get("last", { consistency: "stale" }).catch(() => null);
      seen = e?.revision;
      if (seen === lastRev) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toBe(lastRev);
    expect((await kvRestarted.get("k.0", { consistency: "stale" }))?.string()).toBe("v0");
    expect(cluster.node(leader!).log.join("\n")).not.toMatch(/AssertionError/);
  });

  it("refuses garbage on the client socket and the peer socket and keeps serving", async () => {
    const n1 = cluster.node("n1");
    for (const url of [n1.clientUrl, `ws://127.0.0.1:${n1.peerPort}`]) {
      const closed = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(url);
        const timer = setTimeout(() => reject(new Error(`${url} did not close a garbage connection`)), 10_000);
        ws.on("open", () => ws.send(Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37])));
        ws.on("close", (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        ws.on("error", () => undefined);
      });
      expect(closed).not.toBe(1000);
    }
    const kv = await new Kvm(await open([n1.clientUrl])).open("orders");
    expect(typeof (await kv.put("still.alive", "1"))).toBe("number");
  });
});

describe("5-node multi-process cluster", () => {
  let cluster: ProcessCluster;
  let nc: Connection | null = null;
  beforeAll(async () => {
    cluster = await ProcessCluster.start({ nodes: 5 });
  });
  afterAll(async () => {
    await nc?.close().catch(() => undefined);
    await cluster?.stop();
  });

  it("hosts buckets of 1, 3 and 5 replicas, each readable and watchable from every node", async () => {
    nc = await connect({ servers: cluster.urls, timeoutMs: 15_000 });
    const kvm = new Kvm(nc);
    for (const replicas of [1, 3, 5]) {
      const kv = await kvm.create(`r${replicas}`, { replicas });
      const s = await kv.status();
      expect(s.replicas).toBe(replicas);
      expect(s.replicasInfo.length).toBe(replicas);
      await kv.put("x", `replicas ${replicas}`);
    }
    for (const id of ["n1", "n2", "n3", "n4", "n5"]) {
      const one = await connect({ servers: [cluster.node(id).clientUrl], timeoutMs: 15_000, discoverServers: false });
      try {
        for (const replicas of [1, 3, 5]) {
          const kv = await new Kvm(one).open(`r${replicas}`);
          expect((await kv.get("x"))?.string(), `node ${id} bucket r${replicas}`).toBe(`replicas ${replicas}`);
          // Watchable from every node too: served locally, or relayed from a replica (watch proxy).
          const watcher = await kv.watch({ key: "x" });
          const first = await watcher[Symbol.asyncIterator]().next();
          expect(first.value?.string(), `watch via node ${id}, bucket r${replicas}`).toBe(`replicas ${replicas}`);
          await watcher.stop();
        }
      } finally {
        await one.close();
      }
    }
    void text;
  });
});
