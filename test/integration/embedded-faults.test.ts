/**
 * Goal: the in-process cluster and its fault API work as the README shows users (issue 6, "fault API
 * for users"): isolate the bucket leader, the majority elects another and keeps acknowledging
 * writes, the isolated node cannot serve a linearizable read; kill + restart loses nothing acked;
 * pause/resume behaves like SIGSTOP/SIGCONT.
 * Method: startCluster (in memory, memory hub transport), the real client over loopback sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";
import { startCluster, type InProcessCluster } from "../../src/node/embed.ts";

describe("startCluster fault API", () => {
  let cluster: InProcessCluster;
  const conns: Connection[] = [];
  const kvAt = async (ids: string[]) => {
    const nc = await connect({
      servers: ids.map((id) => cluster.urls[cluster.ids.indexOf(id)]!),
      timeoutMs: 8000,
      discoverServers: false,
      noRandomize: true,
    });
    conns.push(nc);
    return new Kvm(nc).open("faults");
  };

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3, inMemory: true });
    const nc = await connect({ servers: cluster.urls, timeoutMs: 8000 });
    conns.push(nc);
    await new Kvm(nc).create("faults", { replicas: 3 });
  });

  afterAll(async () => {
    for (const c of conns) await c.close().catch(() => undefined);
    await cluster?.stop();
  });

  it("isolating the leader moves leadership to the majority, which keeps serving", async () => {
    const oldLeader = await cluster.waitForLeader("faults");
    const others = cluster.ids.filter((id) => id !== oldLeader);
    const majority = await kvAt(others);
    // Opened before the fault: opening a handle reads the bucket status, which needs a leader.
    const isolated = await kvAt([oldLeader]);
    const before = await majority.put("k", "before");

    cluster.isolate(oldLeader);
    const during = await majority.put("k", "during", { timeoutMs: 8000 });
    expect(during).toBeGreaterThan(before);
    const newLeader = await cluster.waitForLeader("faults");
    expect(others).toContain(newLeader);

    // The isolated node cannot confirm leadership: a linearizable read there must not succeed.
    await expect(isolated.get("k", { timeoutMs: 1500 })).rejects.toMatchObject({ code: expect.stringMatching(/UNAVAILABLE|TIMEOUT/) });

    cluster.heal();
    const deadline = Date.now() + 8000;
    let seen: string | undefined;
    while (Date.now() < deadline) {
      seen = (await isolated.get("k", { timeoutMs: 2000 }).catch(() => null))?.string();
      if (seen === "during") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(seen).toBe("during");
  });

  it("kill and restart of a node loses no acknowledged write", async () => {
    const kv = await kvAt([...cluster.ids]);
    const acked: number[] = [];
    for (let i = 0; i < 20; i++) acked.push(await kv.put(`a.${i}`, `v${i}`));
    const victim = await cluster.waitForLeader("faults");
    await cluster.kill(victim);
    expect(cluster.nodes.has(victim)).toBe(false);
    const rev = await kv.put("after", "kill", { timeoutMs: 8000 });
    expect(rev).toBeGreaterThan(acked[acked.length - 1]!);
    await cluster.restart(victim);
    const back = await kvAt([victim]);
    for (let i = 0; i < 20; i++) expect((await back.get(`a.${i}`, { timeoutMs: 8000 }))?.revision).toBe(acked[i]);
    expect((await back.get("after", { timeoutMs: 8000 }))?.revision).toBe(rev);
  });

  it("a paused leader is replaced, and catches up after resume", async () => {
    const kv = await kvAt([...cluster.ids]);
    const leader = await cluster.waitForLeader("faults");
    cluster.pause(leader);
    const others = cluster.ids.filter((id) => id !== leader);
    const majority = await kvAt(others);
    const rev = await majority.put("paused", "yes", { timeoutMs: 8000 });
    cluster.resume(leader);
    const resumed = await kvAt([leader]);
    expect((await resumed.get("paused", { timeoutMs: 8000 }))?.revision).toBe(rev);
    void kv;
  });
});
