/**
 * Goal: changing a bucket's replica count with `kvm.update` (`cairn kv edit --replicas`) does what a
 * NATS user expects of `nats kv edit --replicas`, with cairn's answer-when-done: the update answers
 * once the bucket's group runs on exactly its new placement; growing adds replicas that catch up,
 * shrinking drops replicas (which then delete their data) and keeps the leader; writes run
 * throughout and no acknowledged write is lost; every replica ends with the same history; the status
 * shows the configured count and the count running (and which replica is still joining); a replicas
 * change is refused (retryable) while another membership change is in progress; a count beyond the
 * members is INVALID_CONFIG.
 * Method: startCluster (in memory) with the real client over loopback sockets; conditions are waited
 * for (never fixed sleeps); replicas are compared one by one with stale reads.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection, type KV, type KvStatus } from "../../src/client/index.ts";
import { startCluster, type InProcessCluster } from "../../src/node/embed.ts";
import { CairnError } from "../../src/shared/errors.ts";
import { expectSameHistories } from "../support/replica-state.ts";

const CHANGE_TIMEOUT_MS = 20_000;

let cluster: InProcessCluster | null = null;
const conns: Connection[] = [];

afterEach(async () => {
  for (const c of conns.splice(0)) await c.close().catch(() => undefined);
  await cluster?.stop();
  cluster = null;
});

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

function metaOf(c: InProcessCluster, bucket: string) {
  for (const n of c.nodes.values()) {
    const b = n.node.meta.get(bucket);
    if (b) return b;
  }
  throw new Error(`no bucket ${bucket}`);
}

/** The bucket group's configuration as its leader applied it. */
function leaderConf(c: InProcessCluster, bucket: string): { voters: string[]; learners: string[] } | null {
  const leader = c.leaderOf(bucket);
  if (!leader) return null;
  const conf = c.nodes.get(leader)!.node.host.group(metaOf(c, bucket).group)!.confState;
  return { voters: [...conf.voters].sort(), learners: [...conf.learners].sort() };
}

type Acked = Map<string, { value: string; revision: number }>;

/** Writers on several connections: unique keys (appends) and a few overwritten keys, paced, bounded in count. */
function startWriters(kvs: KV[], acked: Acked, opsMax = 3000) {
  let stop = false;
  let ops = 0;
  const loops = kvs.map(async (kv, w) => {
    for (let i = 0; !stop && ops < opsMax; i++) {
      ops++;
      const key = i % 4 === 3 ? `reg.${w}` : `app.${w}.${i}.${acked.size}`;
      const value = `w${w}-${i}-${ops}`;
      try {
        const revision = await kv.put(key, value, { timeoutMs: 8000 });
        const prior = acked.get(key);
        if (!prior || prior.revision < revision) acked.set(key, { value, revision });
      } catch {
        // outcome unknown or refused: not counted as acknowledged
      }
      await new Promise((r) => setTimeout(r, 2)); // pacing: a workload, not a wait for a condition
    }
  });
  return {
    count: () => ops,
    async stop() {
      stop = true;
      await Promise.all(loops);
    },
  };
}

/** Every replica of the placement holds exactly the same history, and every acknowledged write. */
async function expectSameState(c: InProcessCluster, bucket: string, acked: Acked): Promise<void> {
  const meta = metaOf(c, bucket);
  await waitFor("every replica applied the same index", () => {
    const applied = meta.placement.map((id) => c.nodes.get(id)?.node.host.group(meta.group)?.applied ?? -1);
    return applied.every((a) => a > 0 && a === applied[0]);
  });
  await expectSameHistories(meta.placement, async (id) => new Kvm(await connectTo(c, [id])).open(bucket), acked);
}

/** The update answered when done: status, meta placement and the leader's configuration all agree. */
function expectRunningOn(c: InProcessCluster, bucket: string, status: KvStatus, replicas: number): void {
  const placement = [...metaOf(c, bucket).placement].sort();
  expect(status.replicas).toBe(replicas);
  expect(status.replicasRunning).toBe(replicas);
  expect(status.replicasInfo.map((r) => r.node).sort()).toEqual(placement);
  expect(status.replicasInfo.every((r) => r.voter === true)).toBe(true);
  expect(placement).toHaveLength(replicas);
  expect(leaderConf(c, bucket)).toEqual({ voters: placement, learners: [] });
}

/** Nodes that left the bucket delete their replica (once no leader talks to them), marking that they left. */
async function expectDropped(c: InProcessCluster, bucket: string, nodes: readonly string[]): Promise<void> {
  const group = metaOf(c, bucket).group;
  for (const id of nodes) {
    const n = c.nodes.get(id)!;
    await waitFor(`${id} dropped its replica`, () => n.node.host.group(group) === undefined);
    await waitFor(`${id} marked that it left`, async () => (await n.store.getMeta(`left:${group}`))?.[0] === 1);
  }
}

describe("bucket replicas: 5 nodes", () => {
  it("R1 → R3 → R5 → R3 → R1 while writes run: nothing acknowledged is lost, replicas agree, status follows", async () => {
    const c = (cluster = await startCluster({ nodes: 5, inMemory: true }));
    const nc = await connectTo(c, c.ids);
    const kvm = new Kvm(nc);
    const created = await kvm.create("grow", { replicas: 1, history: 3 });
    expect((await created.status()).replicas).toBe(1);
    const acked: Acked = new Map();
    const kvs = [await kvm.open("grow"), await new Kvm(await connectTo(c, [...c.ids].reverse())).open("grow")];
    let writers = startWriters(kvs, acked);
    await waitFor("some writes", () => acked.size >= 20);

    for (const replicas of [3, 5]) {
      const before = metaOf(c, "grow").placement;
      const status = await kvm.update("grow", { replicas }, { timeoutMs: CHANGE_TIMEOUT_MS });
      expectRunningOn(c, "grow", status, replicas);
      // Grown: the old replicas stay (placement[0] first), new ones were added.
      expect(metaOf(c, "grow").placement.slice(0, before.length)).toEqual(before);
      const midway = writers.count();
      await waitFor("writes go on", () => writers.count() >= midway + 10);
    }
    await writers.stop();
    await expectSameState(c, "grow", acked);

    writers = startWriters(kvs, acked);
    for (const replicas of [3, 1]) {
      const before = metaOf(c, "grow").placement;
      const leader = c.leaderOf("grow");
      const status = await kvm.update("grow", { replicas }, { timeoutMs: CHANGE_TIMEOUT_MS });
      expectRunningOn(c, "grow", status, replicas);
      const after = metaOf(c, "grow").placement;
      // Shrunk: the leader (as the update saw it) stays, first; the others dropped delete their data.
      if (leader !== null && before.includes(leader)) expect(after[0]).toBe(leader);
      await expectDropped(
        c,
        "grow",
        before.filter((id) => !after.includes(id)),
      );
      const midway = writers.count();
      await waitFor("writes go on", () => writers.count() >= midway + 10);
    }
    await writers.stop();
    // Other configuration fields kept their values.
    const final = await (await kvm.open("grow")).status();
    expect(final).toMatchObject({ replicas: 1, replicasRunning: 1, history: 3 });
    await expectSameState(c, "grow", acked);
    expect(acked.size).toBeGreaterThan(40);
  });
});

describe("bucket replicas: 3 nodes", () => {
  it("R3 → R1 → R3: the dropped replicas come back blank and catch up; other fields change alongside", async () => {
    const c = (cluster = await startCluster({ nodes: 3, inMemory: true }));
    const nc = await connectTo(c, c.ids);
    const kvm = new Kvm(nc);
    await kvm.create("shrink", { replicas: 3 });
    const acked: Acked = new Map();
    const writers = startWriters([await kvm.open("shrink")], acked);
    await waitFor("some writes", () => acked.size >= 20);

    const one = await kvm.update("shrink", { replicas: 1, description: "one" }, { timeoutMs: CHANGE_TIMEOUT_MS });
    expectRunningOn(c, "shrink", one, 1);
    expect(one.description).toBe("one");
    const only = metaOf(c, "shrink").placement[0]!;
    const dropped = c.ids.filter((id) => id !== only);
    await expectDropped(c, "shrink", dropped);
    const midway = writers.count();
    await waitFor("writes on one replica", () => writers.count() >= midway + 20);

    const three = await kvm.update("shrink", { replicas: 3, history: 4 }, { timeoutMs: CHANGE_TIMEOUT_MS });
    expectRunningOn(c, "shrink", three, 3);
    expect(three).toMatchObject({ description: "one", history: 4 });
    // They came back blank and recovering (no votes until caught up); then their marks go.
    const group = metaOf(c, "shrink").group;
    for (const id of dropped) {
      const n = c.nodes.get(id)!;
      await waitFor(`${id} recovered`, async () => n.node.host.group(group)?.core.status().recovering === false && (await n.store.getMeta(`left:${group}`))?.[0] === 0);
    }
    const again = writers.count();
    await waitFor("writes on three replicas", () => writers.count() >= again + 10);
    await writers.stop();
    await expectSameState(c, "shrink", acked);
  });

  it("refuses a change while another is in progress (retryable), and a count beyond the members", async () => {
    const c = (cluster = await startCluster({ nodes: 3, inMemory: true }));
    const nc = await connectTo(c, c.ids);
    const kvm = new Kvm(nc);
    const kv = await kvm.create("slow", { replicas: 1 });
    await kv.put("k", "v");
    await kvm.create("other", { replicas: 1 });
    await expect(kvm.update("slow", { replicas: 5 })).rejects.toMatchObject({ code: "INVALID_CONFIG", message: expect.stringContaining("exceed") });

    // A spare of "slow" is down: growing to R3 waits for it (it cannot catch up), and the status says so.
    const home = metaOf(c, "slow").placement[0]!;
    const hosts = [home, metaOf(c, "other").placement[0]!];
    const down = c.ids.find((id) => !hosts.includes(id)) ?? c.ids.find((id) => id !== home && id !== c.leaderOf("meta"))!;
    await c.kill(down);
    const ncUp = await connectTo(c, c.ids.filter((id) => id !== down));
    const kvmUp = new Kvm(ncUp);
    const growing = kvmUp.update("slow", { replicas: 3 }, { timeoutMs: CHANGE_TIMEOUT_MS });
    await waitFor("the change started", () => c.nodes.get(home)!.node.meta.membership().change?.bucket === "slow");
    const during = await kvmUp.status("slow");
    expect(during.replicas).toBe(3);
    expect(during.replicasRunning).toBeLessThan(3);
    expect(during.replicasInfo.find((r) => r.node === down)?.voter).toBe(false);

    // Meanwhile another replicas change (or a node change) is refused: UNAVAILABLE, nothing started. The
    // client retries it until its deadline; should the deadline fall during an attempt, it reports
    // TIMEOUT with the server's refusal as the cause.
    const error = (await kvmUp.update("other", { replicas: 3 }, { timeoutMs: 1500 }).catch((e: unknown) => e)) as CairnError;
    expect(error).toBeInstanceOf(CairnError);
    const refusal = error.code === "TIMEOUT" ? (error.cause as CairnError) : error;
    expect(refusal).toMatchObject({ code: "UNAVAILABLE", message: expect.stringContaining("membership change is in progress (replicas of bucket slow to 3)") });
    expect(metaOf(c, "other").replicas).toBe(1);

    await c.restart(down);
    expectRunningOn(c, "slow", await growing, 3);
    const onDown = await new Kvm(await connectTo(c, [down])).open("slow");
    await waitFor("the restarted replica caught up", async () => (await onDown.get("k", { consistency: "stale" }))?.string() === "v");
    // Now the other bucket's change goes through.
    expectRunningOn(c, "other", await kvm.update("other", { replicas: 3 }, { timeoutMs: CHANGE_TIMEOUT_MS }), 3);
  });
});
