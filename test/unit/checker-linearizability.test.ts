/**
 * Goal: the linearizability checker accepts every history a correct KV could produce and catches the
 * anomalies jepsen-lite exists to find (stale read, lost update, double create, phantom read,
 * revisions going backwards, a CAS that should have failed, a refused write that took effect).
 * Method: small hand-written histories (HistoryBuilder), each with the verdict a person can check
 * by drawing the operations on a timeline; failures are also checked for the explanation they give.
 */
import { describe, expect, it } from "vitest";
import { HistoryBuilder } from "../jepsen-lite/checker/builder.ts";
import { checkKey, checkLinearizability, type KeyResult } from "../jepsen-lite/checker/linearizability.ts";
import type { Op } from "../jepsen-lite/checker/history.ts";

function verdictOf(ops: readonly Op[]): string {
  return checkLinearizability(ops).verdict;
}

function failureOf(ops: readonly Op[]): NonNullable<KeyResult["failure"]> {
  const result = checkLinearizability(ops);
  expect(result.verdict).toBe("fail");
  const failing = result.keys.find((k) => k.verdict === "fail");
  expect(failing?.failure).toBeDefined();
  return failing!.failure!;
}

const ids = (ops: readonly Op[]): number[] => ops.map((op) => op.id).sort((a, b) => a - b);

describe("linearizability: known-good histories", () => {
  it("accepts an empty history and a history of reads of a missing key", () => {
    expect(verdictOf([])).toBe("ok");
    const b = new HistoryBuilder();
    b.get(1, [0, 1], null);
    b.get(2, [0, 5], null);
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts a sequential history of every operation type", () => {
    const b = new HistoryBuilder();
    b.create(1, [0, 1], "a", { revision: 1 });
    b.get(1, [2, 3], "a", { revision: 1 });
    b.put(1, [4, 5], "b", { revision: 4 }); // revisions 2 and 3 went to other keys
    b.update(1, [6, 7], "c", 4, { revision: 5 });
    b.update(1, [8, 9], "x", 4, { fail: "WRONG_LAST_REVISION", actualRevision: 5 });
    b.create(1, [10, 11], "y", { fail: "KEY_EXISTS", actualRevision: 5 });
    b.delete(1, [12, 13], { revision: 6 });
    b.get(1, [14, 15], null);
    b.create(1, [16, 17], "d", { revision: 7 }); // create on a deleted key
    b.purge(1, [18, 19], { expectedRevision: 7, revision: 8 });
    b.update(1, [20, 21], "e", 8, { revision: 9 }); // the PURGE marker is the last record
    b.get(1, [22, 23], "e", { revision: 9 });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts update with expected revision 0 on a key that never had a record", () => {
    const b = new HistoryBuilder();
    b.update(1, [0, 1], "a", 0, { revision: 1 });
    b.update(1, [2, 3], "b", 0, { fail: "WRONG_LAST_REVISION", actualRevision: 1 });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts overlapping writes read in either order while they overlap", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 10], "a", { revision: 2 });
    b.put(2, [0, 10], "b", { revision: 1 }); // b took effect first
    b.get(3, [1, 4], "b", { revision: 1 });
    b.get(4, [5, 9], "a", { revision: 2 });
    b.get(5, [11, 12], "a", { revision: 2 });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts a read that overlaps a write and sees the old value", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(2, [2, 10], "b", { revision: 2 });
    b.get(3, [3, 4], "a", { revision: 1 });
    b.get(4, [5, 6], "b", { revision: 2 });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("treats operations that touch at one instant as concurrent", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 5], "a", { revision: 2 });
    b.get(2, [5, 6], null); // invoked the ms the put returned: may precede it
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts exactly one winner among concurrent creates, the others KEY_EXISTS", () => {
    const b = new HistoryBuilder();
    b.create(1, [0, 10], "a", { fail: "KEY_EXISTS", actualRevision: 3 });
    b.create(2, [0, 10], "b", { revision: 3 });
    b.create(3, [0, 10], "c", { fail: "KEY_EXISTS" });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts an unknown write that took effect (a later read sees it)", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(2, [2, null], "b");
    b.get(3, [50, 51], "b", { revision: 2 });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts an unknown write that never took effect", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(2, [2, null], "b");
    b.get(3, [50, 51], "a", { revision: 1 });
    b.get(3, [52, 53], "a", { revision: 1 });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts an unknown write that took effect long after its client gave up", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(2, [2, null], "b");
    b.get(3, [50, 51], "a", { revision: 1 });
    b.get(3, [60, 61], "b", { revision: 7 });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts an unknown create revealed only through a KEY_EXISTS revision and a CAS", () => {
    const b = new HistoryBuilder();
    b.create(1, [0, null], "a");
    b.create(2, [10, 11], "b", { fail: "KEY_EXISTS", actualRevision: 4 });
    b.update(2, [12, 13], "c", 4, { revision: 5 });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts an unknown delete that explains a later null read", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.delete(2, [2, null]);
    b.get(3, [10, 11], null);
    b.create(3, [12, 13], "b", { revision: 9 });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("accepts a chain of unknown operations (delete then create) that a read needs", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.delete(2, [2, null]);
    b.create(3, [3, null], "b");
    b.get(4, [10, 11], "b", { revision: 3 });
    expect(verdictOf(b.ops)).toBe("ok");
  });

  it("treats a TIMEOUT failure as unknown and drops refusals and unknown reads", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(2, [2, 3], "b", { fail: "TIMEOUT" }); // happened after all
    b.put(3, [4, 5], "c", { fail: "UNAVAILABLE" }); // refused: did not happen
    b.get(4, [6, null], null); // unknown read: says nothing
    b.get(5, [10, 11], "b", { revision: 2 });
    const result = checkLinearizability(b.ops);
    expect(result.verdict).toBe("ok");
    expect(result.keys[0]).toMatchObject({ definiteOps: 2, unknownOps: 1, droppedOps: 2 });
  });

  it("checks each key on its own and returns a witness order", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 10], "a", { key: "x", revision: 1 });
    b.put(2, [0, 10], "b", { key: "y", revision: 2 });
    b.get(3, [11, 12], "a", { key: "x", revision: 1 });
    b.get(3, [13, 14], "b", { key: "y", revision: 2 });
    const result = checkLinearizability(b.ops);
    expect(result.verdict).toBe("ok");
    expect(result.keys.map((k) => [k.key, k.verdict, k.linearization])).toEqual([
      ["x", "ok", [0, 2]],
      ["y", "ok", [1, 3]],
    ]);
  });
});

describe("linearizability: known-bad histories", () => {
  it("catches a stale read, without a search when revisions show it", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    const newer = b.put(1, [2, 3], "b", { revision: 2 });
    const stale = b.get(2, [4, 5], "a", { revision: 1 });
    const result = checkLinearizability(b.ops);
    expect(result.keys[0]!.exploredStates).toBe(0);
    const failure = failureOf(b.ops);
    expect(failure.blockedBy.id).toBe(stale.id);
    expect(ids(failure.unlinearizable)).toEqual([stale.id]);
    expect(failure.witnesses).toEqual([newer]);
    expect(failure.reason).toMatch(/read revision 1 is stale: revision 2 of this key had returned before it began/);
  });

  it("catches a stale read by search when there are no revisions, with the longest prefix", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a");
    b.put(1, [2, 3], "b");
    const stale = b.get(2, [4, 5], "a");
    const failure = failureOf(b.ops);
    expect(failure.blockedBy.id).toBe(stale.id);
    expect(ids(failure.unlinearizable)).toEqual([stale.id]);
    expect(failure.linearizedPrefix.map((op) => op.id)).toEqual([0, 1]);
    expect(failure.stateAfterPrefix).toEqual({ value: "b", lastRevision: 2, revisionExact: false });
    expect(failure.reason).toMatch(/no order of the operations is legal/);
  });

  it("catches a stale read even when the value repeats (revisions tell)", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(1, [2, 3], "a", { revision: 2 });
    b.get(2, [4, 5], "a", { revision: 1 });
    expect(verdictOf(b.ops)).toBe("fail");
  });

  it("catches a lost update: two CAS updates from the same revision both succeed", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.update(2, [2, 10], "b", 1, { revision: 2 });
    b.update(3, [2, 10], "c", 1, { revision: 3 });
    const failure = failureOf(b.ops);
    expect(failure.key).toBe("k");
    expect(ids(failure.unlinearizable)).toContain(2);
  });

  it("catches a lost acknowledged write: a later read sees the value before it", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(2, [2, 3], "b", { revision: 2 });
    b.get(3, [10, 11], "a", { revision: 1 });
    b.get(3, [12, 13], "a", { revision: 1 });
    expect(verdictOf(b.ops)).toBe("fail");
  });

  it("catches two successful creates of one key", () => {
    const b = new HistoryBuilder();
    b.create(1, [0, 10], "a", { revision: 1 });
    b.create(2, [0, 10], "b", { revision: 2 });
    const failure = failureOf(b.ops);
    expect(ids(failure.unlinearizable)).toEqual([1]);
  });

  it("catches a read of a value never written", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    const phantom = b.get(2, [2, 3], "zzz", { revision: 1 });
    expect(failureOf(b.ops).blockedBy.id).toBe(phantom.id);
  });

  it("catches a read of a value never written, with no revision reported", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(3, [0, null], "b");
    b.get(2, [2, 3], "zzz");
    expect(verdictOf(b.ops)).toBe("fail");
  });

  it("catches a revision going backwards", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 5 });
    const backwards = b.put(2, [2, 3], "b", { revision: 3 });
    expect(failureOf(b.ops).blockedBy.id).toBe(backwards.id);
  });

  it("catches a read reporting the wrong revision for the right value", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 5 });
    b.get(2, [2, 3], "a", { revision: 4 });
    expect(verdictOf(b.ops)).toBe("fail");
  });

  it("catches an update with a stale expected revision that succeeded", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(1, [2, 3], "b", { revision: 2 });
    const cas = b.update(2, [4, 5], "c", 1, { revision: 3 });
    expect(failureOf(b.ops).blockedBy.id).toBe(cas.id);
  });

  it("catches a read of a revision whose write began after the read returned", () => {
    const b = new HistoryBuilder();
    const early = b.get(1, [0, 1], "a", { revision: 1 });
    b.put(2, [5, 6], "a", { revision: 1 });
    const failure = failureOf(b.ops);
    expect(failure.blockedBy.id).toBe(early.id);
    expect(failure.reason).toMatch(/written by a write that began after it returned/);
  });

  it("catches a CAS conflict reporting a revision older than one already returned", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(1, [2, 3], "b", { revision: 2 });
    b.update(2, [4, 5], "c", 7, { fail: "WRONG_LAST_REVISION", actualRevision: 1 });
    expect(failureOf(b.ops).reason).toMatch(/actual revision 1 is stale/);
  });

  it("catches a CAS failure that should have succeeded", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.update(2, [2, 3], "b", 1, { fail: "WRONG_LAST_REVISION" });
    expect(verdictOf(b.ops)).toBe("fail");
  });

  it("catches a KEY_EXISTS on a missing key and on a deleted key", () => {
    const missing = new HistoryBuilder();
    missing.create(1, [0, 1], "a", { fail: "KEY_EXISTS" });
    expect(verdictOf(missing.ops)).toBe("fail");
    const deleted = new HistoryBuilder();
    deleted.put(1, [0, 1], "a", { revision: 1 });
    deleted.delete(1, [2, 3], { revision: 2 });
    deleted.create(2, [4, 5], "b", { fail: "KEY_EXISTS", actualRevision: 2 });
    expect(verdictOf(deleted.ops)).toBe("fail");
  });

  it("catches an update with expected revision 0 that succeeded on a deleted key", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.delete(1, [2, 3], { revision: 2 }); // the DEL marker is a record: revision 0 must not match
    b.update(2, [4, 5], "b", 0, { revision: 3 });
    expect(verdictOf(b.ops)).toBe("fail");
  });

  it("catches a write refused with UNAVAILABLE that took effect anyway", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(2, [2, 3], "b", { fail: "UNAVAILABLE" });
    b.get(3, [4, 5], "b", { revision: 2 });
    expect(verdictOf(b.ops)).toBe("fail");
  });

  it("catches a read of a deleted value", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.delete(1, [2, 3], { revision: 2 });
    b.get(2, [4, 5], "a", { revision: 1 });
    expect(verdictOf(b.ops)).toBe("fail");
  });

  it("does not let an unknown write explain a revision that another write reported", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { key: "k", revision: 1 });
    b.put(2, [2, null], "b", { key: "k" });
    b.put(3, [0, 1], "x", { key: "other", revision: 2 });
    b.get(4, [10, 11], "b", { key: "k", revision: 2 }); // revision 2 belongs to key "other"
    const result = checkLinearizability(b.ops);
    expect(result.verdict).toBe("fail");
    expect(result.keys.map((k) => [k.key, k.verdict])).toEqual([
      ["k", "fail"],
      ["other", "ok"],
    ]);
  });

  it("reports the longest prefix and the failing key among several keys", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { key: "good", revision: 1 });
    b.put(1, [2, 3], "a", { key: "bad", revision: 2 });
    b.put(1, [4, 5], "b", { key: "bad", revision: 3 });
    b.get(2, [6, 7], "b", { key: "bad" }); // no revisions: only the search can tell
    b.get(2, [8, 9], "a", { key: "bad" });
    const result = checkLinearizability(b.ops);
    const bad = result.keys.find((k) => k.key === "bad")!;
    expect(bad.verdict).toBe("fail");
    expect(bad.failure!.linearizedPrefix.map((op) => op.id)).toEqual([1, 2, 3]);
    expect(bad.failure!.blockedBy.id).toBe(4);
    expect(result.keys.find((k) => k.key === "good")!.verdict).toBe("ok");
  });
});

describe("linearizability: bounds and inputs", () => {
  it("gives up with verdict unknown when the state limit is reached", () => {
    const b = new HistoryBuilder();
    for (let p = 0; p < 8; p++) b.put(p, [0, 100], `v${String(p)}`, { revision: p + 1 });
    b.get(9, [101, 102], "v7", { revision: 8 });
    const limited = checkKey("k", b.ops, { maxStatesPerKey: 3 });
    expect(limited.verdict).toBe("unknown");
    expect(limited.reason).toMatch(/maxStatesPerKey/);
    expect(checkKey("k", b.ops).verdict).toBe("ok");
  });

  it("points at the deepest dead end when it gives up", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a");
    b.put(1, [2, 10], "b");
    b.put(2, [2, 10], "c");
    const stale = b.get(3, [11, 12], "a");
    expect(checkKey("k", b.ops).verdict).toBe("fail");
    const result = checkKey("k", b.ops, { maxStatesPerKey: 3 });
    expect(result.verdict).toBe("unknown");
    expect(result.failure).toBeUndefined();
    expect(result.deepest?.linearizedPrefix.map((op) => op.id)).toEqual([0, 1, 2]);
    expect(result.deepest?.unlinearizable).toEqual([stale]);
    expect(result.deepest?.reason).toMatch(/gave up/);
  });

  it("gives up with verdict unknown when its time budget is spent (here: before it starts)", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.get(2, [2, 3], "a", { revision: 1 });
    const result = checkKey("k", b.ops, { maxSearchMsPerKey: -1 });
    expect(result.verdict).toBe("unknown");
    expect(result.reason).toMatch(/maxSearchMsPerKey/);
  });

  it("honours a custom set of ambiguous error codes", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.put(2, [2, 3], "b", { fail: "NOT_LEADER" });
    b.get(3, [4, 5], "b", { revision: 2 });
    expect(verdictOf(b.ops)).toBe("fail");
    const lenient = checkLinearizability(b.ops, { ambiguousErrorCodes: new Set(["NOT_LEADER"]) });
    expect(lenient.verdict).toBe("ok");
  });

  it("starts from a given initial state", () => {
    const b = new HistoryBuilder();
    b.get(1, [0, 1], "seed", { revision: 3 });
    expect(verdictOf(b.ops)).toBe("fail");
    const result = checkLinearizability(b.ops, { initialState: { value: "seed", lastRevision: 3, revisionExact: true } });
    expect(result.verdict).toBe("ok");
  });

  it("refuses a malformed history instead of judging it", () => {
    const b = new HistoryBuilder();
    b.put(1, [5, 1], "a", { revision: 1 }); // completes before it starts
    expect(() => checkLinearizability(b.ops)).toThrow(/completeMs < invokeMs/);
  });
});
