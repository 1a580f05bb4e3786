/**
 * Goal: the state-machine side of watch (KV-SEMANTICS.md "Watch"): the initial part (include last /
 * history / updates, resumeFromRevision overriding include) in ascending revision order across keys,
 * the revision live events continue from, and the events writes return: one per write in revision order,
 * one PURGE event for a purge, none for limit removals, none for duplicates.
 * Method: commands through a state machine, then watchInitial; events collected from apply().
 */
import { describe, expect, it } from "vitest";
import type { WatchEvent } from "../../src/kv/index.ts";
import { brief, bytes, Harness } from "./kv-fixture.ts";

function scenario(): Harness {
  const h = new Harness();
  h.bucket("b", { history: 3 });
  h.put("b", "a.1", "x"); // 1
  h.put("b", "b.1", "y"); // 2
  h.put("b", "a.2", "z"); // 3
  h.put("b", "a.1", "x2"); // 4
  h.ok({ type: "delete", bucket: "b", key: "a.2" }); // 5
  h.put("b", "c", "w"); // 6
  return h;
}

describe("watchInitial", () => {
  it("include last: the latest record of each matching key (markers too), ascending revision", () => {
    const h = scenario();
    const initial = h.sm.watchInitial("b", [">"], { include: "last" });
    expect(initial.records.map(brief)).toEqual(["2:PUT:b.1=y", "4:PUT:a.1=x2", "5:DEL:a.2=", "6:PUT:c=w"]);
    expect(initial.revision).toBe(6);
    expect(h.sm.watchInitial("b", ["a.>"], { include: "last" }).records.map(brief)).toEqual(["4:PUT:a.1=x2", "5:DEL:a.2="]);
  });

  it("include history: every retained record of the matching keys, ascending revision", () => {
    const h = scenario();
    expect(h.sm.watchInitial("b", ["a.*"], { include: "history" }).records.map((r) => r.revision)).toEqual([1, 3, 4, 5]);
    expect(h.sm.watchInitial("b", [">"], { include: "history" }).records).toHaveLength(6);
  });

  it("include updates: nothing, only the revision to continue from", () => {
    const h = scenario();
    expect(h.sm.watchInitial("b", [">"], { include: "updates" })).toEqual({ records: [], revision: 6, firstRevision: 1 });
  });

  it("resumeFromRevision n: every retained matching record with revision >= n, overriding include", () => {
    const h = scenario();
    for (const include of ["last", "history", "updates"] as const) {
      expect(h.sm.watchInitial("b", [">"], { include, resumeFromRevision: 4 }).records.map((r) => r.revision)).toEqual([4, 5, 6]);
    }
    expect(h.sm.watchInitial("b", ["a.>"], { include: "last", resumeFromRevision: 2 }).records.map((r) => r.revision)).toEqual([3, 4, 5]);
    expect(h.sm.watchInitial("b", [">"], { include: "last", resumeFromRevision: 7 }).records).toEqual([]);
    expect(h.sm.watchInitial("b", [">"], { include: "updates", resumeFromRevision: 0 }).records).toHaveLength(6); // 0 acts as 1
    expect(() => h.sm.watchInitial("b", [">"], { include: "last", resumeFromRevision: -1 })).toThrow(TypeError);
  });

  it("reports the oldest retained revision, so a resume can tell which range it skipped", () => {
    const h = new Harness();
    h.bucket("b");
    for (let i = 0; i < 5; i++) h.put("b", "k", `${i}`); // history 1: only 5 is retained
    expect(h.sm.watchInitial("b", [">"], { include: "last", resumeFromRevision: 2 })).toMatchObject({ revision: 5, firstRevision: 5 });
  });

  it("is empty for an empty bucket (the watcher still signals the end of the initial part)", () => {
    const h = new Harness();
    h.bucket("b");
    expect(h.sm.watchInitial("b", [">"], { include: "last" })).toEqual({ records: [], revision: 0, firstRevision: 0 });
  });

  it("refuses an unknown include as TypeError", () => {
    const h = scenario();
    expect(() => h.sm.watchInitial("b", [">"], { include: "all" as never })).toThrow(TypeError);
  });
});

describe("events of writes", () => {
  it("initial part plus live events give every record exactly once, in revision order, no gaps", () => {
    const h = scenario();
    const initial = h.sm.watchInitial("b", [">"], { include: "history" });
    const live: WatchEvent[] = [];
    live.push(...h.apply({ type: "put", bucket: "b", key: "d", value: bytes("1") }).events);
    live.push(...h.apply({ type: "purge", bucket: "b", key: "a.1" }).events);
    live.push(...h.apply({ type: "create", bucket: "b", key: "c", value: bytes("1") }).events); // fails: no event
    live.push(...h.apply({ type: "delete", bucket: "b", key: "c" }).events);
    const revisions = [...initial.records.map((r) => r.revision), ...live.map((e) => e.record.revision)];
    expect(revisions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(live.map((e) => brief(e.record))).toEqual(["7:PUT:d=1", "8:PURGE:a.1=", "9:DEL:c="]);
    expect(live.every((e) => e.bucket === "b")).toBe(true);
  });

  it("limit removals (history trim, purgeDeletes, purgeBucket, silent ttl) produce no events", () => {
    const h = new Harness();
    h.bucket("b", { history: 1, ttlMs: 1000 });
    h.put("b", "k", "1");
    expect(h.apply({ type: "put", bucket: "b", key: "k", value: bytes("2") }).events).toHaveLength(1); // trims 1: one event only
    h.ok({ type: "delete", bucket: "b", key: "j" });
    expect(h.apply({ type: "purgeDeletes", bucket: "b", olderThanMs: -1 }).events).toEqual([]);
    h.advance(1000);
    expect(h.apply({ type: "expire", bucket: "b" }).events).toEqual([]);
    h.put("b", "x", "1");
    expect(h.apply({ type: "purgeBucket", bucket: "b" }).events).toEqual([]);
  });

  it("failed writes and bucket commands that change no records return no events", () => {
    const h = scenario();
    expect(h.apply({ type: "update", bucket: "b", key: "c", value: bytes("1"), revision: 1 }).events).toEqual([]);
    expect(h.apply({ type: "bucketCreate", bucket: "z", config: h.sm.bucketConfig("b") }).events).toEqual([]);
  });
});
