/**
 * Goal: the meta state machine's membership and placement rules are deterministic and match
 * docs/membership.md: removing a node moves each of its replicas to a member that does not host the
 * bucket (fewest replicas first) or shrinks the bucket while it keeps a majority of its configured
 * replicas; re-adding fills buckets below their replica count; one change at a time (retryable
 * refusal, never remembered by the request-id window); clear errors for unknown nodes, the last
 * member and nodes in the wrong state; snapshots carry all of it, and version-1 images still restore.
 * Method: MetaStateMachine driven directly with envelopes; two instances fed the same commands.
 */
import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
import { bootstrapsAt, MetaStateMachine, replicasNeeded, type MetaCommand, type MetaResult } from "../../src/node/meta.ts";
import { normalizeConfig } from "../../src/kv/index.ts";

function machine(members: string[]) {
  const sm = new MetaStateMachine(members);
  let index = 0;
  const run = (command: MetaCommand, requestId?: string): MetaResult =>
    sm.apply(++index, { now: 1000 + index, command, ...(requestId ? { requestId } : {}) });
  const create = (bucket: string, replicas: number) => {
    const r = run({ type: "bucketCreate", bucket, config: normalizeConfig({ replicas }, members.length) });
    expect(r.ok).toBe(true);
    return sm.get(bucket)!;
  };
  const done = () => {
    const change = sm.membership().change;
    expect(change).not.toBe(null);
    expect(run({ type: "membershipDone", seq: change!.seq })).toMatchObject({ ok: true });
    expect(sm.membership().change).toBe(null);
  };
  return { sm, run, create, done };
}

describe("meta membership: remove", () => {
  it("moves each replica of the removed node to a member that does not host the bucket", () => {
    const { sm, run, create } = machine(["n1", "n2", "n3", "n4", "n5"]);
    const buckets = ["a", "b", "c", "d"].map((name) => create(name, 3));
    const victim = "n2";
    const r = run({ type: "nodeRemove", nodeId: victim });
    expect(r).toMatchObject({ ok: true, existed: false, change: { seq: 1, type: "remove", nodeId: victim } });
    const affected = buckets.filter((b) => b.placement.includes(victim)).map((b) => b.bucket);
    expect(affected.length).toBeGreaterThan(0);
    expect((r as unknown as { change: { buckets: string[] } }).change.buckets).toEqual(affected);
    for (const before of buckets) {
      const after = sm.get(before.bucket)!;
      expect(after.placement).not.toContain(victim);
      expect(after.placement.length).toBe(3);
      expect(new Set(after.placement).size).toBe(3);
      expect(after.initial).toEqual(before.initial);
      if (before.placement.includes(victim)) {
        // Same position, other replicas untouched.
        const at = before.placement.indexOf(victim);
        expect(after.placement.filter((_, i) => i !== at)).toEqual(before.placement.filter((_, i) => i !== at));
        expect(after.left).toEqual([victim]);
        expect(bootstrapsAt(after, victim)).toBe(false);
      } else {
        expect(after).toEqual(before);
      }
    }
    expect(sm.membership()).toMatchObject({ members: ["n1", "n3", "n4", "n5"], removed: [victim], completedSeq: 0 });
    expect(sm.isRemovedAndDone(victim)).toBe(false);
  });

  it("spreads moved replicas over the members hosting fewest", () => {
    const { sm, run, create } = machine(["n1", "n2", "n3", "n4", "n5"]);
    for (const name of ["a", "b", "c", "d", "e", "f"]) create(name, 1);
    const onVictim = sm.list().filter((b) => b.placement[0] === "n1").map((b) => b.bucket);
    run({ type: "nodeRemove", nodeId: "n1" });
    const counts = new Map<string, number>();
    for (const b of sm.list()) counts.set(b.placement[0]!, (counts.get(b.placement[0]!) ?? 0) + 1);
    expect([...counts.keys()]).not.toContain("n1");
    // Six R1 buckets on four members: nobody hosts more than two.
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(2);
    expect(onVictim.every((name) => sm.get(name)!.placement.length === 1)).toBe(true);
  });

  it("shrinks a bucket when no member can take the replica, down to a majority of its replicas", () => {
    const { sm, run, create, done } = machine(["n1", "n2", "n3"]);
    create("r3", 3);
    expect(run({ type: "nodeRemove", nodeId: "n3" })).toMatchObject({ ok: true });
    expect(sm.get("r3")!.placement).toEqual(sm.get("r3")!.initial.filter((m) => m !== "n3"));
    done();
    expect(sm.isRemovedAndDone("n3")).toBe(true);
    // One more would leave 1 of 3: refused as a whole, nothing changes.
    const before = sm.snapshot();
    expect(run({ type: "nodeRemove", nodeId: "n2" })).toMatchObject({
      ok: false,
      code: "MEMBERSHIP_CHANGE_REFUSED",
      message: expect.stringContaining("bucket r3 with 1 of its 3 replicas"),
    });
    // (appliedIndex moved on; the rest is identical.)
    const strip = (image: Uint8Array) => ({ ...(new Packr({ useRecords: false, mapsAsObjects: true }).unpack(image) as object), appliedIndex: 0 });
    expect(strip(sm.snapshot())).toEqual(strip(before));
    expect(replicasNeeded(1)).toBe(1);
    expect(replicasNeeded(3)).toBe(2);
    expect(replicasNeeded(5)).toBe(3);
  });

  it("refuses unknown nodes and the last member with stable codes; a node already as asked is a no-op", () => {
    const { sm, run, done } = machine(["n1", "n2"]);
    expect(run({ type: "nodeRemove", nodeId: "n9" })).toMatchObject({ ok: false, code: "NODE_NOT_FOUND" });
    expect(run({ type: "nodeAdd", nodeId: "n9" })).toMatchObject({ ok: false, code: "NODE_NOT_FOUND" });
    // Idempotent, also across request ids: nothing changes, no change record.
    expect(run({ type: "nodeAdd", nodeId: "n1" })).toEqual({ ok: true, bucket: null, existed: true });
    expect(sm.membership().change).toBe(null);
    expect(run({ type: "nodeRemove", nodeId: "n2" })).toMatchObject({ ok: true });
    done();
    expect(run({ type: "nodeRemove", nodeId: "n2" })).toEqual({ ok: true, bucket: null, existed: true });
    expect(sm.membership()).toMatchObject({ members: ["n1"], removed: ["n2"], change: null, completedSeq: 1 });
    expect(run({ type: "nodeRemove", nodeId: "n1" })).toMatchObject({ ok: false, code: "MEMBERSHIP_CHANGE_REFUSED", message: expect.stringContaining("last member") });
  });

  it("new buckets are placed on members only, and need enough members", () => {
    const { sm, run, create, done } = machine(["n1", "n2", "n3"]);
    run({ type: "nodeRemove", nodeId: "n1" });
    done();
    const b = create("after", 2);
    expect([...b.placement].sort()).toEqual(["n2", "n3"]);
    expect(b.initial).toEqual(b.placement);
    expect(run({ type: "bucketCreate", bucket: "big", config: normalizeConfig({ replicas: 3 }, 3) })).toMatchObject({ ok: false, code: "INVALID_CONFIG" });
    expect(sm.get("big")).toBe(undefined);
  });
});

describe("meta membership: one change at a time", () => {
  it("refuses another change while one is in progress (retryable, not remembered) and lets the same change wait", () => {
    const { sm, run, done } = machine(["n1", "n2", "n3"]);
    const first = run({ type: "nodeRemove", nodeId: "n3" }, "req-1");
    expect(first).toMatchObject({ ok: true, existed: false, change: { seq: 1 } });
    // The same removal again: joins the wait (same change).
    expect(run({ type: "nodeRemove", nodeId: "n3" })).toMatchObject({ ok: true, existed: true, change: { seq: 1 } });
    // A different change: UNAVAILABLE, retried by callers with the same request id...
    expect(run({ type: "nodeAdd", nodeId: "n3" }, "req-2")).toMatchObject({ ok: false, code: "UNAVAILABLE" });
    expect(run({ type: "nodeRemove", nodeId: "n2" }, "req-3")).toMatchObject({ ok: false, code: "UNAVAILABLE" });
    // A stale done (wrong seq) changes nothing.
    run({ type: "membershipDone", seq: 7 });
    expect(sm.membership().change).toMatchObject({ seq: 1 });
    done();
    expect(sm.membership().completedSeq).toBe(1);
    // ...so the retry after completion is applied, not answered from the window.
    expect(run({ type: "nodeAdd", nodeId: "n3" }, "req-2")).toMatchObject({ ok: true, change: { seq: 2, type: "add" } });
    // A retried request id still answers with its first result.
    expect(run({ type: "nodeRemove", nodeId: "n3" }, "req-1")).toEqual(first);
  });
});

describe("meta membership: re-add", () => {
  it("a re-added node gets back the replicas of buckets below their replica count, joining blank", () => {
    const { sm, run, create, done } = machine(["n1", "n2", "n3"]);
    const r3 = create("r3", 3);
    const r1 = create("r1", 1);
    run({ type: "nodeRemove", nodeId: "n2" });
    done();
    expect(sm.get("r3")!.placement).toHaveLength(2);
    const r = run({ type: "nodeAdd", nodeId: "n2" });
    expect(r).toMatchObject({ ok: true, change: { type: "add", nodeId: "n2", buckets: ["r3"] } });
    expect(sm.get("r3")!.placement).toEqual([...r3.placement.filter((m) => m !== "n2"), "n2"]);
    expect(bootstrapsAt(sm.get("r3")!, "n2")).toBe(false);
    expect(bootstrapsAt(sm.get("r3")!, r3.initial.find((m) => m !== "n2")!)).toBe(true);
    // A full R1 bucket stays where it is (moved off n2 if it was there).
    expect(sm.get("r1")!.placement).toHaveLength(1);
    expect(sm.get("r1")!.placement).not.toContain("n2");
    expect(r1.placement).toHaveLength(1);
    expect(sm.membership()).toMatchObject({ members: ["n1", "n2", "n3"], removed: [] });
    done();
  });
});

describe("meta membership: snapshots", () => {
  it("two machines fed the same commands agree byte for byte, and restore round-trips", () => {
    const feed = (m: ReturnType<typeof machine>) => {
      m.create("a", 3);
      m.create("b", 1);
      m.run({ type: "nodeRemove", nodeId: "n4" });
      m.done();
      m.run({ type: "nodeAdd", nodeId: "n4" });
    };
    const x = machine(["n1", "n2", "n3", "n4"]);
    const y = machine(["n4", "n3", "n2", "n1"]);
    feed(x);
    feed(y);
    expect(Buffer.from(x.sm.snapshot()).equals(Buffer.from(y.sm.snapshot()))).toBe(true);
    const z = new MetaStateMachine(["n1"]);
    z.restore(x.sm.snapshot());
    expect(z.membership()).toEqual(x.sm.membership());
    expect(z.list()).toEqual(x.sm.list());
    expect(Buffer.from(z.snapshot()).equals(Buffer.from(x.sm.snapshot()))).toBe(true);
  });

  it("restores a version-1 image (before membership changes): initial = placement, nobody left", () => {
    const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number", moreTypes: false, bundleStrings: false });
    const config = normalizeConfig({ replicas: 3 }, 3);
    const image = packr.pack({
      version: 1,
      appliedIndex: 9,
      members: ["n1", "n2", "n3"],
      buckets: [{ bucket: "old", group: "b:old:4", createConfig: config, placement: ["n2", "n1", "n3"], createdAt: 5 }],
      seen: [],
    });
    const sm = new MetaStateMachine(["n1", "n2", "n3"]);
    sm.restore(image);
    expect(sm.get("old")).toMatchObject({ placement: ["n2", "n1", "n3"], initial: ["n2", "n1", "n3"], left: [] });
    expect(sm.membership()).toEqual({ members: ["n1", "n2", "n3"], removed: [], change: null, completedSeq: 0 });
  });
});
