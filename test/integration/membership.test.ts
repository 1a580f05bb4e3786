/**
 * Goal: cluster membership changes in the node layer (docs/membership.md) do what an etcd/NATS user
 * expects: `cluster.removeNode` / `cluster.addNode` answer when the change is complete; a removed
 * follower or a removed leader (of meta and of a bucket) leaves every group while writes go on, and
 * no acknowledged write is lost; a removed node deletes its replicas, forwards its clients, and a
 * node removed while it was down learns it when it comes back, stays out without disturbing the
 * groups, and gets its data back when re-added; in a 5-node cluster replicas move to a spare node;
 * a change waits for a dead replica and refuses a second change meanwhile; errors have stable codes.
 * Method: startCluster (in memory) with the real client over loopback sockets; conditions are waited
 * for (never fixed sleeps); the final state is compared replica by replica with stale reads.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection, type KV } from "../../src/client/index.ts";
import { startCluster, type InProcessCluster } from "../../src/node/embed.ts";
import { CairnError } from "../../src/shared/errors.ts";
import { expectSameHistories } from "../support/replica-state.ts";
import type { WireMembership } from "../../src/shared/protocol.ts";

const CHANGE_TIMEOUT_MS = 20_000;

let cluster: InProcessCluster | null = null;
const conns: Connection[] = [];

afterEach(async () => {
  for (const c of conns.splice(0)) await c.close().catch(() => undefined);
  await cluster?.stop();
  cluster = null;
});

async function start(nodes: number): Promise<InProcessCluster> {
  cluster = await startCluster({ nodes, inMemory: true });
  return cluster;
}

async function connectTo(c: InProcessCluster, ids: readonly string[]): Promise<Connection> {
  const nc = await connect({ servers: ids.map((id) => c.urls[c.ids.indexOf(id)]!), timeoutMs: 10_000, discoverServers: false, noRandomize: true });
  conns.push(nc);
  return nc;
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function remove(nc: Connection, nodeId: string): Promise<WireMembership> {
  return nc.request("cluster.removeNode", { nodeId }, { timeoutMs: CHANGE_TIMEOUT_MS });
}

function add(nc: Connection, nodeId: string): Promise<WireMembership> {
  return nc.request("cluster.addNode", { nodeId }, { timeoutMs: CHANGE_TIMEOUT_MS });
}

function groupOf(c: InProcessCluster, bucket: string): string {
  for (const n of c.nodes.values()) {
    const b = n.node.meta.get(bucket);
    if (b) return b.group;
  }
  throw new Error(`no bucket ${bucket}`);
}

/** The bucket group's configuration as its leader applied it. */
function leaderConf(c: InProcessCluster, bucket: string): { voters: string[]; learners: string[] } | null {
  const leader = c.leaderOf(bucket);
  if (!leader) return null;
  const conf = c.nodes.get(leader)!.node.host.group(groupOf(c, bucket))!.confState;
  return { voters: [...conf.voters].sort(), learners: [...conf.learners].sort() };
}

/** Writers on several connections: unique keys (appends) and a few overwritten keys, paced, bounded in count. */
function startWriters(kvs: KV[], opsMax = 3000) {
  const acked = new Map<string, { value: string; revision: number }>();
  let stop = false;
  let ops = 0;
  let failures = 0;
  const loops = kvs.map(async (kv, w) => {
    for (let i = 0; !stop && ops < opsMax; i++) {
      ops++;
      const key = i % 4 === 3 ? `reg.${w}` : `app.${w}.${i}`;
      const value = `w${w}-${i}`;
      try {
        const revision = await kv.put(key, value, { timeoutMs: 8000 });
        const prior = acked.get(key);
        if (!prior || prior.revision < revision) acked.set(key, { value, revision });
      } catch {
        failures++; // outcome unknown or refused: not counted as acknowledged
      }
      await new Promise((r) => setTimeout(r, 2)); // pacing: a workload, not a wait for a condition
    }
  });
  return {
    acked,
    count: () => ops,
    async stop() {
      stop = true;
      await Promise.all(loops);
      return { failures };
    },
  };
}

/** Every member replica holds exactly the same history, and every acknowledged write. */
async function expectSameState(c: InProcessCluster, bucket: string, acked: Map<string, { value: string; revision: number }>): Promise<void> {
  const group = groupOf(c, bucket);
  const placement = [...c.nodes.values()][0]!.node.meta.get(bucket)!.placement;
  await waitFor("every replica applied the same index", () => {
    const applied = placement.map((id) => c.nodes.get(id)?.node.host.group(group)?.applied ?? -1);
    return applied.every((a) => a > 0 && a === applied[0]);
  });
  await expectSameHistories(placement, async (id) => new Kvm(await connectTo(c, [id])).open(bucket), acked);
}

describe("membership: 3 nodes", () => {
  it("removes a follower and re-adds it while writes run; nothing acknowledged is lost", async () => {
    const c = await start(3);
    const nc = await connectTo(c, c.ids);
    await new Kvm(nc).create("w", { replicas: 3, history: 5 });
    const metaLeader = await c.waitForLeader("meta");
    const bucketLeader = await c.waitForLeader("w");
    const victim = c.ids.find((id) => id !== metaLeader && id !== bucketLeader) ?? c.ids.find((id) => id !== metaLeader)!;
    const others = c.ids.filter((id) => id !== victim);
    // One writer goes through the victim: a removed node forwards its clients to members.
    const kvs = [await new Kvm(await connectTo(c, others)).open("w"), await new Kvm(await connectTo(c, [victim])).open("w")];
    const writers = startWriters(kvs);
    await waitFor("some writes", () => writers.acked.size >= 20);

    const removed = await remove(await connectTo(c, others), victim);
    expect(removed).toEqual({ members: others, removed: [victim], change: null });
    expect(leaderConf(c, "w")).toEqual({ voters: others, learners: [] });
    expect(c.nodes.get(c.leaderOf("meta")!)!.node.host.group("meta")!.confState.voters).not.toContain(victim);
    const v = c.nodes.get(victim)!;
    expect(v.node.membership.isRemoved()).toBe(true);
    // The removed node deletes its replica (once no leader talks to it), marking that it left.
    const group = groupOf(c, "w");
    const leftMark = async () => (await v.store.getMeta(`left:${group}`))?.[0];
    await waitFor("the removed node dropped its replica", () => v.node.host.group(group) === undefined);
    await waitFor("its data deleted", async () => {
      const stored = await v.store.load(group);
      return stored.entries.length === 0 && stored.snapshot === null && stored.hardState.term === 0;
    });
    expect(await leftMark()).toBe(1);
    const midway = writers.count();
    await waitFor("writes go on without it (some through it)", () => writers.count() >= midway + 20);

    const status = (await nc.request("cluster.status", {})) as { membership: WireMembership; nodes: { id: string; member: boolean }[] };
    expect(status.membership.removed).toEqual([victim]);
    expect(status.nodes.find((n) => n.id === victim)?.member).toBe(false);

    const added = await add(nc, victim);
    expect(added).toEqual({ members: [...c.ids].sort(), removed: [], change: null });
    expect(leaderConf(c, "w")).toEqual({ voters: [...c.ids].sort(), learners: [] });
    expect(v.node.membership.isRemoved()).toBe(false);
    // It came back blank and recovering (no votes until caught up with the leader); then the mark goes.
    await waitFor("it recovered", async () => v.node.host.group(group)?.core.status().recovering === false && (await leftMark()) === 0);
    const again = writers.count();
    await waitFor("writes after the re-add", () => writers.count() >= again + 10);
    await writers.stop();
    await expectSameState(c, "w", writers.acked);
  });

  it("removes the node that leads both meta and the bucket; the others take over", async () => {
    const c = await start(3);
    const nc = await connectTo(c, c.ids);
    const kv = await new Kvm(nc).create("lead", { replicas: 3 });
    const before = await kv.put("k", "before");
    // One node leads both: hand meta to the bucket's leader (again, should a transfer lapse).
    let polls = 0;
    await waitFor("one node leads meta and the bucket", () => {
      const bucketLeader = c.leaderOf("lead");
      const metaLeader = c.leaderOf("meta");
      if (bucketLeader !== null && bucketLeader === metaLeader) return true;
      if (bucketLeader !== null && metaLeader !== null && polls++ % 25 === 0) c.nodes.get(metaLeader)!.node.host.transferLeader("meta", bucketLeader);
      return false;
    });
    const leader = c.leaderOf("lead")!;
    const others = c.ids.filter((id) => id !== leader);
    const writers = startWriters([await new Kvm(await connectTo(c, others)).open("lead")], 200);
    const result = await remove(await connectTo(c, [leader]), leader);
    expect(result.removed).toEqual([leader]);
    expect(others).toContain(await c.waitForLeader("meta"));
    expect(others).toContain(await c.waitForLeader("lead"));
    expect(leaderConf(c, "lead")).toEqual({ voters: others, learners: [] });
    await waitFor("writes after the removal", () => writers.count() >= 30);
    await writers.stop();
    const kvOthers = await new Kvm(await connectTo(c, others)).open("lead");
    expect((await kvOthers.get("k"))?.revision).toBe(before);
    await expectSameState(c, "lead", writers.acked);
  });

  it("a node removed while it was down stays out after a restart, without disturbing, until re-added", async () => {
    const c = await start(3);
    const nc = await connectTo(c, c.ids);
    const kv = await new Kvm(nc).create("down", { replicas: 3 });
    await kv.put("a", "1");
    const leader = await c.waitForLeader("down");
    const victim = c.ids.find((id) => id !== leader && id !== c.leaderOf("meta"))!;
    const others = c.ids.filter((id) => id !== victim);
    await c.kill(victim);
    const ncOthers = await connectTo(c, others);
    expect((await remove(ncOthers, victim)).removed).toEqual([victim]);
    const kvOthers = await new Kvm(ncOthers).open("down");
    const whileOut = await kvOthers.put("b", "written while removed");

    const group = groupOf(c, "down");
    const terms = () => others.map((id) => [c.nodes.get(id)!.node.host.group("meta")!.core.status().term, c.nodes.get(id)!.node.host.group(group)!.core.status().term]);
    const termsBefore = JSON.stringify(terms());
    await c.restart(victim);
    const v = c.nodes.get(victim)!;
    // Its own log still says it is a member: it learns otherwise from a member (after a read barrier).
    await waitFor("the restarted node learns it was removed", () => v.node.membership.isRemoved());
    await waitFor("it holds no replica", () => v.node.host.group(group) === undefined);
    // Its elections (pre-votes) are dropped: the members' terms did not move.
    expect(JSON.stringify(terms())).toBe(termsBefore);
    // Its clients still work (forwarded to members).
    const viaVictim = await new Kvm(await connectTo(c, [victim])).open("down");
    expect((await viaVictim.get("b"))?.revision).toBe(whileOut);

    await add(ncOthers, victim);
    await waitFor("its replica is back", () => v.node.host.group(group)?.confState.voters.includes(victim) === true);
    const direct = await new Kvm(await connectTo(c, [victim])).open("down");
    await waitFor("it caught up", async () => (await direct.get("b", { consistency: "stale" }))?.revision === whileOut);
    expect((await direct.get("a", { consistency: "stale" }))?.string()).toBe("1");
  });

  it("refuses with stable codes (unknown node, bad id, too few replicas left); a node already as asked is a no-op", async () => {
    const c = await start(3);
    const nc = await connectTo(c, c.ids);
    await new Kvm(nc).create("r3", { replicas: 3 });
    await expect(remove(nc, "n9")).rejects.toMatchObject({ code: "NODE_NOT_FOUND" });
    await expect(nc.request("cluster.removeNode", { nodeId: 42 as unknown as string })).rejects.toMatchObject({ code: "INVALID_OPTION" });
    expect(await add(nc, "n1")).toEqual({ members: ["n1", "n2", "n3"], removed: [], change: null });
    await remove(nc, "n3");
    // Retried with another request id (e.g. after a lost answer): answered as done, not refused.
    expect(await remove(nc, "n3")).toEqual({ members: ["n1", "n2"], removed: ["n3"], change: null });
    // r3 runs on 2 of its 3 replicas, and its status says so.
    const status = await (await new Kvm(nc).open("r3")).status();
    expect(status.replicas).toBe(3);
    expect(status.replicasInfo.map((r) => r.node).sort()).toEqual(["n1", "n2"]);
    // One more removal would leave 1, fewer than it needs.
    await expect(remove(nc, "n2")).rejects.toMatchObject({ code: "MEMBERSHIP_CHANGE_REFUSED", message: expect.stringContaining("bucket r3") });
    expect(leaderConf(c, "r3")?.voters).toHaveLength(2);
  });
});

describe("membership: 5 nodes", () => {
  it("moves an R3 bucket's replica off the removed node; a change waits for a dead replica and refuses another meanwhile", async () => {
    const c = await start(5);
    const nc = await connectTo(c, c.ids);
    const kvm = new Kvm(nc);
    const r3 = await kvm.create("r3", { replicas: 3 });
    const r1 = await kvm.create("r1", { replicas: 1 });
    for (let i = 0; i < 20; i++) await r3.put(`k.${i}`, `v${i}`);
    await r1.put("only", "here");
    const meta = () => c.nodes.get(c.ids[0]!)!.node.meta;
    const before = meta().get("r3")!.placement;
    const r1Node = meta().get("r1")!.placement[0]!;
    const victim = before.find((id) => id !== r1Node)!;
    const result = await remove(nc, victim);
    expect(result.removed).toEqual([victim]);
    const after = meta().get("r3")!.placement;
    const spare = after.find((id) => !before.includes(id))!;
    expect(after).toHaveLength(3);
    expect(after).not.toContain(victim);
    expect(spare).toBeDefined();
    // The removed node may have led r3 and handed it off: wait until a leader is known, then judge its configuration.
    await waitFor("a leader of r3", () => leaderConf(c, "r3") !== null);
    expect(leaderConf(c, "r3")).toEqual({ voters: [...after].sort(), learners: [] });
    // The spare holds the data (it caught up from the leader), the victim no longer.
    const onSpare = await new Kvm(await connectTo(c, [spare])).open("r3");
    expect((await onSpare.get("k.19", { consistency: "stale" }))?.string()).toBe("v19");
    await waitFor("the victim dropped its replica", () => c.nodes.get(victim)!.node.host.group(groupOf(c, "r3")) === undefined);

    // The R1 bucket's only replica is on a node that is down: its removal waits for it...
    const ncMembers = await connectTo(c, c.ids.filter((id) => id !== victim && id !== r1Node));
    await c.kill(r1Node);
    const removal = remove(ncMembers, r1Node);
    const third = c.ids.find((id) => id !== victim && id !== r1Node)!;
    // ...and meanwhile another change is refused (retryable: UNAVAILABLE, nothing started). The client
    // retries it until its deadline; should the deadline fall during an attempt, it reports TIMEOUT
    // with the server's refusal as the cause.
    const error = (await ncMembers.request("cluster.removeNode", { nodeId: third }, { timeoutMs: 2000 }).catch((e: unknown) => e)) as CairnError;
    expect(error).toBeInstanceOf(CairnError);
    const refusal = error.code === "TIMEOUT" ? (error.cause as CairnError) : error;
    expect(refusal).toMatchObject({ code: "UNAVAILABLE", message: expect.stringContaining(`membership change is in progress (remove ${r1Node})`) });
    await c.restart(r1Node);
    expect((await removal).removed).toEqual([victim, r1Node].sort());
    expect(meta().get("r1")!.placement).not.toContain(r1Node);
    const kvR1 = await new Kvm(ncMembers).open("r1");
    expect((await kvR1.get("only"))?.string()).toBe("here");
  });
});
