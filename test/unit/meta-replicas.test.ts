/**
 * Goal: changing a bucket's replica count (bucket.update → meta `bucketReplicas`) follows the rules of
 * docs/membership.md: growing adds the members hosting fewest replicas (placement[0] kept); shrinking
 * keeps the proposer's preferred replicas (the leader first, as the new placement[0]), else the
 * placement's own order, and records the dropped nodes as left (they join blank if they come back);
 * the decision is deterministic (same commands, same bytes); it is a membership change (one at a
 * time, retryable refusal either way, the same change joins the wait, a count already as asked is a
 * no-op); errors have stable codes and NATS-like wording; removals and re-adds afterwards use the
 * new count; snapshots carry it and older images restore with the created count. The reconciliation
 * step shrinks by several voters without losing a quorum of reachable voters.
 * Method: MetaStateMachine driven directly with envelopes (two instances fed the same commands), and
 * nextChangeToward on hand-made configurations and leader progress.
 */
import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
import { normalizeConfig } from "../../src/kv/index.ts";
import { nextChangeToward } from "../../src/node/membership.ts";
import { bootstrapsAt, MetaStateMachine, type MetaCommand, type MetaResult } from "../../src/node/meta.ts";
import { applyChange } from "../../src/raft/conf-change.ts";
import type { ConfState, ProgressStatus } from "../../src/raft/types.ts";

const FIVE = ["n1", "n2", "n3", "n4", "n5"];

function machine(members: string[]) {
  const sm = new MetaStateMachine(members);
  let index = 0;
  const run = (command: MetaCommand, requestId?: string): MetaResult =>
    sm.apply(++index, { now: 1000 + index, command, ...(requestId ? { requestId } : {}) });
  const create = (bucket: string, replicas: number) => {
    expect(run({ type: "bucketCreate", bucket, config: normalizeConfig({ replicas }, members.length) })).toMatchObject({ ok: true });
    return sm.get(bucket)!;
  };
  const replicas = (bucket: string, n: number, prefer?: string[], requestId?: string) =>
    run({ type: "bucketReplicas", bucket, replicas: n, ...(prefer ? { prefer } : {}) }, requestId);
  const done = () => {
    const change = sm.membership().change;
    expect(change).not.toBe(null);
    run({ type: "membershipDone", seq: change!.seq });
    expect(sm.membership().change).toBe(null);
  };
  return { sm, run, create, replicas, done };
}

function hostedCounts(sm: MetaStateMachine): Map<string, number> {
  const counts = new Map<string, number>(sm.getMembers().map((m) => [m, 0]));
  for (const b of sm.list()) for (const m of b.placement) counts.set(m, counts.get(m)! + 1);
  return counts;
}

describe("meta replicas: grow", () => {
  it("adds the members hosting fewest replicas, keeps placement[0], and records a change", () => {
    const { sm, create, replicas, done } = machine(FIVE);
    // Load some members with other buckets so that "fewest first" decides.
    for (const name of ["x", "y", "z"]) create(name, 1);
    const b = create("b", 1);
    const before = hostedCounts(sm);
    const r = replicas("b", 3);
    expect(r).toMatchObject({ ok: true, existed: false, change: { seq: 1, type: "replicas", nodeId: "", bucket: "b", replicas: 3, buckets: ["b"] } });
    const grown = sm.get("b")!;
    expect(grown.replicas).toBe(3);
    expect(grown.placement).toHaveLength(3);
    expect(grown.placement[0]).toBe(b.placement[0]);
    expect(new Set(grown.placement).size).toBe(3);
    const added = grown.placement.slice(1);
    const spares = FIVE.filter((m) => m !== b.placement[0]);
    const least = Math.min(...spares.map((m) => before.get(m)!));
    // Every member left out hosts at least as many replicas as each member chosen.
    for (const m of spares.filter((s) => !added.includes(s))) for (const a of added) expect(before.get(m)!).toBeGreaterThanOrEqual(before.get(a)!);
    expect(Math.min(...added.map((m) => before.get(m)!))).toBe(least);
    // New replicas join blank (never part of the index-0 configuration).
    for (const m of added) expect(bootstrapsAt(grown, m)).toBe(false);
    expect(grown.initial).toEqual(b.initial);
    expect(createConfigOf(grown)).toBe(1);
    done();
    expect(replicas("b", 5)).toMatchObject({ ok: true, change: { seq: 2, replicas: 5 } });
    expect([...sm.get("b")!.placement].sort()).toEqual(FIVE);
    expect(sm.get("b")!.placement.slice(0, 3)).toEqual(grown.placement);
  });

  it("is deterministic: two machines fed the same commands agree byte for byte", () => {
    const feed = (m: ReturnType<typeof machine>) => {
      m.create("a", 1);
      m.create("b", 3);
      m.create("c", 1);
      m.replicas("a", 3);
      m.done();
      m.replicas("b", 1, ["n9", "n4"]);
      m.done();
      m.replicas("c", 5);
    };
    const x = machine(FIVE);
    const y = machine([...FIVE].reverse());
    feed(x);
    feed(y);
    expect(x.sm.list()).toEqual(y.sm.list());
    expect(Buffer.from(x.sm.snapshot()).equals(Buffer.from(y.sm.snapshot()))).toBe(true);
  });
});

function createConfigOf(b: { createConfig: { replicas: number } }): number {
  return b.createConfig.replicas;
}

describe("meta replicas: shrink", () => {
  it("keeps the preferred replicas (the leader first), drops the others into left", () => {
    const { sm, create, replicas, done } = machine(FIVE);
    const b = create("b", 5);
    const leader = b.placement[3]!;
    const next = b.placement[1]!;
    expect(replicas("b", 3, [leader, "n9", next, 42 as unknown as string])).toMatchObject({ ok: true, change: { replicas: 3 } });
    const shrunk = sm.get("b")!;
    // The leader, the next preferred, then the placement's own order (placement[0] first); the leader leads the list.
    expect(shrunk.placement).toEqual([leader, b.placement[0], next]);
    const dropped = b.placement.filter((m) => !shrunk.placement.includes(m));
    expect(shrunk.left).toEqual(dropped);
    for (const m of dropped) expect(bootstrapsAt(shrunk, m)).toBe(false);
    for (const m of shrunk.placement) expect(bootstrapsAt(shrunk, m)).toBe(true);
    done();
    // Without a hint: placement[0] stays, the last ones go.
    expect(replicas("b", 1)).toMatchObject({ ok: true });
    expect(sm.get("b")!.placement).toEqual([leader]);
    expect([...sm.get("b")!.left].sort()).toEqual(b.placement.filter((m) => m !== leader).sort());
    done();
    // Growing back: the dropped nodes come back blank (they are in left), fewest replicas first.
    replicas("b", 3);
    const regrown = sm.get("b")!;
    expect(regrown.placement[0]).toBe(leader);
    for (const m of regrown.placement.slice(1)) expect(bootstrapsAt(regrown, m)).toBe(false);
  });

  it("a removal and a re-add afterwards use the new count", () => {
    const { sm, run, create, replicas, done } = machine(["n1", "n2", "n3"]);
    create("b", 3);
    replicas("b", 1);
    done();
    const only = sm.get("b")!.placement[0]!;
    const other = ["n1", "n2", "n3"].find((m) => m !== only)!;
    // R1 now: removing its node moves it (a spare exists); nothing refuses a shrink below 2 of 3 any more.
    expect(run({ type: "nodeRemove", nodeId: only })).toMatchObject({ ok: true, change: { buckets: ["b"] } });
    expect(sm.get("b")!.placement).toHaveLength(1);
    done();
    // Re-adding fills buckets below their *configured* count only: b (R1) stays on one replica.
    expect(run({ type: "nodeAdd", nodeId: only })).toMatchObject({ ok: true, change: { buckets: [] } });
    done();
    expect(sm.get("b")!.placement).toHaveLength(1);
    // Back to R3, then a removal shrinks it to 2 of 3 and refuses 1 of 3.
    replicas("b", 3);
    done();
    expect(run({ type: "nodeRemove", nodeId: other })).toMatchObject({ ok: true });
    done();
    const third = sm.get("b")!.placement.find((m) => m !== other)!;
    expect(run({ type: "nodeRemove", nodeId: third })).toMatchObject({ ok: false, code: "MEMBERSHIP_CHANGE_REFUSED", message: expect.stringContaining("1 of its 3 replicas") });
  });
});

describe("meta replicas: errors and one change at a time", () => {
  it("refuses with stable codes and NATS-like wording; a count already as asked is a no-op", () => {
    const { sm, run, create, replicas, done } = machine(["n1", "n2", "n3"]);
    create("b", 1);
    expect(replicas("b", 5)).toEqual({ ok: false, code: "INVALID_CONFIG", message: "replicas 5 exceeds the cluster size 3" });
    expect(replicas("b", 0)).toMatchObject({ ok: false, code: "INVALID_CONFIG" });
    expect(replicas("b", 6)).toMatchObject({ ok: false, code: "INVALID_CONFIG" });
    expect(replicas("b", 2.5)).toMatchObject({ ok: false, code: "INVALID_CONFIG" });
    expect(replicas("nope", 3)).toMatchObject({ ok: false, code: "BUCKET_NOT_FOUND" });
    expect(replicas("b", 1)).toMatchObject({ ok: true, existed: true });
    expect(sm.membership().change).toBe(null);
    // The cluster size is the members', not the config's.
    run({ type: "nodeRemove", nodeId: "n3" });
    done();
    expect(replicas("b", 3)).toEqual({ ok: false, code: "INVALID_CONFIG", message: "replicas 3 exceeds the cluster size 2" });
    expect(sm.get("b")!.replicas).toBe(1);
  });

  it("is refused while another change is in progress, and refuses node changes meanwhile (retryable, not remembered)", () => {
    const { sm, run, create, replicas, done } = machine(FIVE);
    create("a", 1);
    create("b", 1);
    expect(run({ type: "nodeRemove", nodeId: "n5" })).toMatchObject({ ok: true });
    const refused = replicas("a", 3, undefined, "req-a");
    expect(refused).toMatchObject({ ok: false, code: "UNAVAILABLE", message: expect.stringContaining("a membership change is in progress (remove n5)") });
    expect(sm.get("a")!.replicas).toBe(1);
    done();
    // Retried with the same request id after completion: applied (the refusal was not remembered).
    const first = replicas("a", 3, undefined, "req-a");
    expect(first).toMatchObject({ ok: true, existed: false, change: { seq: 2, type: "replicas", bucket: "a" } });
    // The same change again joins the wait; a retried request id answers its first result.
    expect(replicas("a", 3)).toMatchObject({ ok: true, existed: true, change: { seq: 2 } });
    expect(replicas("a", 3, undefined, "req-a")).toEqual(first);
    // Another count, another bucket, or a node change: refused, naming the change in progress.
    const message = "a membership change is in progress (replicas of bucket a to 3)";
    expect(replicas("a", 5)).toMatchObject({ ok: false, code: "UNAVAILABLE", message: expect.stringContaining(message) });
    expect(replicas("b", 3)).toMatchObject({ ok: false, code: "UNAVAILABLE", message: expect.stringContaining(message) });
    expect(run({ type: "nodeAdd", nodeId: "n5" })).toMatchObject({ ok: false, code: "UNAVAILABLE", message: expect.stringContaining(message) });
    expect(sm.membership()).toMatchObject({ change: { seq: 2 }, completedSeq: 1 });
    done();
    expect(sm.membership()).toMatchObject({ change: null, completedSeq: 2 });
  });
});

describe("meta replicas: snapshots", () => {
  it("carry the configured count; a version-2 image restores with the created one", () => {
    const { sm, create, replicas } = machine(["n1", "n2", "n3"]);
    create("b", 1);
    replicas("b", 3);
    const z = new MetaStateMachine(["n1"]);
    z.restore(sm.snapshot());
    expect(z.list()).toEqual(sm.list());
    expect(z.membership()).toEqual(sm.membership());
    expect(Buffer.from(z.snapshot()).equals(Buffer.from(sm.snapshot()))).toBe(true);

    const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number", moreTypes: false, bundleStrings: false });
    const config = normalizeConfig({ replicas: 3 }, 3);
    const image = packr.pack({
      version: 2,
      appliedIndex: 9,
      members: ["n1", "n2"],
      removed: ["n3"],
      change: null,
      completedSeq: 1,
      buckets: [{ bucket: "old", group: "b:old:4", createConfig: config, placement: ["n2", "n1"], initial: ["n2", "n1", "n3"], left: ["n3"], createdAt: 5 }],
      seen: [],
    });
    const v2 = new MetaStateMachine(["n1", "n2", "n3"]);
    v2.restore(image);
    expect(v2.get("old")).toMatchObject({ replicas: 3, placement: ["n2", "n1"], left: ["n3"] });
  });
});

const active = (match: number): ProgressStatus => ({ match, next: match + 1, state: "replicate", recentActive: true, isLearner: false });
const silent = (match: number): ProgressStatus => ({ ...active(match), recentActive: false });
const conf = (voters: string[], learners: string[] = []): ConfState => ({ voters, learners });

describe("nextChangeToward: shrinking by several voters", () => {
  it("removes voters the leader knows inactive first, and none whose removal leaves no reachable quorum", () => {
    // R3 → R1 on the leader n1 while n3 is down: n3 goes first (n2 first would leave {n1, n3}: no quorum).
    const progress = { n1: active(10), n2: active(10), n3: silent(4) };
    expect(nextChangeToward(conf(["n1", "n2", "n3"]), ["n1"], 1, progress, 10, "n1", [])).toEqual({ type: "removeNode", nodeId: "n3" });
    // R5 → R3 keeping a down node (n4): fine, 2 of the 3 remaining voters are reachable.
    const five = { n1: active(10), n2: active(10), n3: active(10), n4: silent(2), n5: active(10) };
    expect(nextChangeToward(conf(["n1", "n2", "n3", "n4", "n5"]), ["n1", "n3", "n4"], 3, five, 10, "n1", [])).toEqual({ type: "removeNode", nodeId: "n2" });
    expect(nextChangeToward(conf(["n1", "n3", "n4", "n5"]), ["n1", "n3", "n4"], 3, five, 10, "n1", [])).toEqual({ type: "removeNode", nodeId: "n5" });
    // R3 → R1 onto a down node: any removal would leave 1 reachable voter of 2, so it waits.
    expect(nextChangeToward(conf(["n1", "n2", "n3"]), ["n3"], 1, progress, 10, "n1", [])).toBe(null);
    // R5 → R3 keeping two down nodes: removing a reachable voter would leave 2 of 4 reachable: it waits.
    const keepDown = { n1: active(10), n2: active(10), n3: silent(1), n4: silent(1), n5: active(10) };
    expect(nextChangeToward(conf(["n1", "n2", "n3", "n4", "n5"]), ["n1", "n3", "n4"], 3, keepDown, 10, "n1", [])).toBe(null);
    // Two down of five, both dropped: they go first, one at a time.
    const twoDown = { n1: active(10), n2: silent(1), n3: active(10), n4: silent(1), n5: active(10) };
    expect(nextChangeToward(conf(["n1", "n2", "n3", "n4", "n5"]), ["n1", "n3", "n5"], 3, twoDown, 10, "n1", [])).toEqual({ type: "removeNode", nodeId: "n2" });
    expect(nextChangeToward(conf(["n1", "n3", "n4", "n5"]), ["n1", "n3", "n5"], 3, twoDown, 10, "n1", [])).toEqual({ type: "removeNode", nodeId: "n4" });
  });

  it("R5 → R1 with every voter reachable converges one change at a time, the leader last", () => {
    const nodes = ["n1", "n2", "n3", "n4", "n5"];
    const progress = Object.fromEntries(nodes.map((n) => [n, active(10)]));
    let c = conf(nodes);
    const removed: string[] = [];
    for (let step = 0; step < 10; step++) {
      const change = nextChangeToward(c, ["n4"], 1, progress, 10, "n2", []);
      if (change === null) break;
      expect(change.type).toBe("removeNode");
      removed.push(change.nodeId);
      c = applyChange(c, change)!;
    }
    expect(c).toEqual(conf(["n4"]));
    expect(removed).toEqual(["n1", "n3", "n5", "n2"]);
  });
});
