/**
 * Goal: the read rules of KV-SEMANTICS.md ("Reads"): get (latest, by revision, includeDeleted), history
 * and keys with filters (ascending revision, paged), purgeDeletes with its threshold, bucket-wide purge.
 * Method: commands through a state machine, then the query methods. Large cases cover both query
 * plans (sorted key index and log walk) with the same expectations.
 */
import { describe, expect, it } from "vitest";
import { brief, bytes, Harness } from "./kv-fixture.ts";

function setup(history = 5): Harness {
  const h = new Harness();
  h.bucket("b", { history });
  return h;
}

describe("get", () => {
  it("returns the latest record, null for a missing key", () => {
    const h = setup();
    h.put("b", "k", "1");
    h.put("b", "k", "2");
    expect(brief(h.sm.get("b", "k"))).toBe("2:PUT:k=2");
    expect(h.sm.get("b", "missing")).toBeNull();
  });

  it("returns null for a deleted or purged key; includeDeleted returns the marker", () => {
    const h = setup();
    h.put("b", "d", "1");
    h.ok({ type: "delete", bucket: "b", key: "d" });
    h.put("b", "p", "1");
    h.ok({ type: "purge", bucket: "b", key: "p" });
    expect(h.sm.get("b", "d")).toBeNull();
    expect(h.sm.get("b", "p")).toBeNull();
    expect(brief(h.sm.get("b", "d", { includeDeleted: true }))).toBe("2:DEL:d=");
    expect(brief(h.sm.get("b", "p", { includeDeleted: true }))).toBe("4:PURGE:p=");
  });

  it("with a revision returns that record if it belongs to the key and is retained, else null", () => {
    const h = setup(2);
    h.put("b", "k", "1"); // 1
    h.put("b", "o", "x"); // 2
    h.put("b", "k", "2"); // 3
    h.put("b", "k", "3"); // 4 (trims 1)
    expect(brief(h.sm.get("b", "k", { revision: 3 }))).toBe("3:PUT:k=2");
    expect(h.sm.get("b", "k", { revision: 1 })).toBeNull(); // trimmed
    expect(h.sm.get("b", "k", { revision: 2 })).toBeNull(); // another key's
    expect(h.sm.get("b", "k", { revision: 99 })).toBeNull();
    h.ok({ type: "delete", bucket: "b", key: "k" }); // 5
    expect(h.sm.get("b", "k", { revision: 5 })).toBeNull();
    expect(brief(h.sm.get("b", "k", { revision: 5, includeDeleted: true }))).toBe("5:DEL:k=");
  });

  it("returns delta-free records equal across calls (values are stable views)", () => {
    const h = setup();
    h.put("b", "k", "v");
    const first = h.sm.get("b", "k");
    h.put("b", "k", "w");
    expect(first?.value).toEqual(bytes("v"));
  });
});

describe("history", () => {
  it("returns every retained record of the matching keys, oldest first, markers included", () => {
    const h = setup();
    h.put("b", "a.1", "x"); // 1
    h.put("b", "b.1", "y"); // 2
    h.put("b", "a.2", "z"); // 3
    h.ok({ type: "delete", bucket: "b", key: "a.1" }); // 4
    expect(h.sm.history("b", ["a.>"]).records.map(brief)).toEqual(["1:PUT:a.1=x", "3:PUT:a.2=z", "4:DEL:a.1="]);
    expect(h.sm.history("b", ["a.1"]).records.map(brief)).toEqual(["1:PUT:a.1=x", "4:DEL:a.1="]);
    expect(h.sm.history("b", [">"]).records).toHaveLength(4);
  });

  it("takes several filters as a union, each record once", () => {
    const h = setup();
    h.put("b", "a.1", "x");
    h.put("b", "b.1", "y");
    h.put("b", "c.1", "z");
    expect(h.sm.history("b", ["a.>", "a.1", "c.*"]).records.map((r) => r.revision)).toEqual([1, 3]);
  });

  it("is empty for an empty bucket or no match", () => {
    const h = setup();
    expect(h.sm.history("b", [">"])).toEqual({ records: [], lastRevision: 0, done: true });
    h.put("b", "a", "1");
    expect(h.sm.history("b", ["zzz"]).records).toEqual([]);
    expect(h.sm.history("b", []).records).toEqual([]);
  });

  it("pages by revision", () => {
    const h = setup();
    for (let i = 0; i < 10; i++) h.put("b", `k.${i % 3}`, `${i}`);
    const first = h.sm.history("b", ["k.>"], { limit: 4 });
    expect(first.records.map((r) => r.revision)).toEqual([1, 2, 3, 4]);
    expect(first).toMatchObject({ lastRevision: 4, done: false });
    const second = h.sm.history("b", ["k.>"], { afterRevision: first.lastRevision, limit: 4 });
    expect(second.records.map((r) => r.revision)).toEqual([5, 6, 7, 8]);
    const third = h.sm.history("b", ["k.>"], { afterRevision: second.lastRevision, limit: 4 });
    expect(third.records.map((r) => r.revision)).toEqual([9, 10]);
    expect(third).toMatchObject({ lastRevision: 10, done: true });
  });

  it("rejects bad paging options as TypeError", () => {
    const h = setup();
    expect(() => h.sm.history("b", [">"], { limit: 0 })).toThrow(TypeError);
    expect(() => h.sm.history("b", [">"], { afterRevision: -1 })).toThrow(TypeError);
  });
});

describe("keys", () => {
  it("lists keys whose latest record is a PUT, each once, ordered by that revision", () => {
    const h = setup();
    h.put("b", "a", "1"); // 1
    h.put("b", "b", "1"); // 2
    h.put("b", "c", "1"); // 3
    h.put("b", "a", "2"); // 4
    h.ok({ type: "delete", bucket: "b", key: "b" }); // 5
    h.ok({ type: "purge", bucket: "b", key: "c" }); // 6
    h.put("b", "d", "1"); // 7
    expect(h.sm.keys("b", [">"])).toEqual({ keys: ["a", "d"], lastRevision: 7, done: true });
  });

  it("filters by subject", () => {
    const h = setup();
    for (const key of ["a", "a.b", "a.b.c", "a.c", "b.a", "x.b"]) h.put("b", key, "v");
    expect(h.sm.keys("b", ["a.>"]).keys).toEqual(["a.b", "a.b.c", "a.c"]);
    expect(h.sm.keys("b", ["a.*"]).keys).toEqual(["a.b", "a.c"]);
    expect(h.sm.keys("b", ["*.b"]).keys).toEqual(["a.b", "x.b"]);
    expect(h.sm.keys("b", ["a"]).keys).toEqual(["a"]);
    expect(h.sm.keys("b", ["*"]).keys).toEqual(["a"]);
  });

  it("is empty for an empty bucket", () => {
    const h = setup();
    expect(h.sm.keys("b", [">"])).toEqual({ keys: [], lastRevision: 0, done: true });
  });

  it("pages", () => {
    const h = setup();
    for (let i = 0; i < 5; i++) h.put("b", `k${i}`, "v");
    const page = h.sm.keys("b", [">"], { limit: 2 });
    expect(page).toEqual({ keys: ["k0", "k1"], lastRevision: 2, done: false });
    expect(h.sm.keys("b", [">"], { afterRevision: 2, limit: 3 })).toEqual({ keys: ["k2", "k3", "k4"], lastRevision: 5, done: true });
  });

  it("gives the same answers on both query plans (many keys, narrow and broad prefixes)", () => {
    const h = setup(1);
    const expected: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const key = `p${i % 2}.${i}`;
      h.put("b", key, "v");
      if (i % 2 === 1 && i % 7 !== 0) expected.push(key);
    }
    for (let i = 0; i < 5000; i += 7) h.ok({ type: "delete", bucket: "b", key: `p${i % 2}.${i}` });
    // p1.> covers half the bucket: too broad for the index plan, so it walks the log.
    const all = h.sm.keys("b", ["p1.>"]).keys;
    expect(all).toEqual(expected);
    const paged: string[] = [];
    let after = 0;
    for (;;) {
      const page = h.sm.keys("b", ["p1.>"], { afterRevision: after, limit: 100 });
      paged.push(...page.keys);
      after = page.lastRevision;
      if (page.done) break;
    }
    expect(paged).toEqual(expected);
    // A narrow prefix uses the index plan.
    expect(h.sm.keys("b", ["p1.4999"]).keys).toEqual(["p1.4999"]);
    expect(h.sm.keys("b", ["p1.*", "p1.4999"]).keys).toEqual(expected);
  });
});

describe("purgeDeletes", () => {
  it("removes markers older than the threshold with their key; keeps younger markers alone", () => {
    const h = setup();
    h.put("b", "old", "1"); // 1
    h.put("b", "old", "2"); // 2
    h.ok({ type: "delete", bucket: "b", key: "old" }); // 3, created T0
    h.advance(60_000);
    h.put("b", "young", "1"); // 4
    h.ok({ type: "purge", bucket: "b", key: "young" }); // 5 (removes 4)
    h.put("b", "young", "2"); // 6
    h.ok({ type: "delete", bucket: "b", key: "young" }); // 7, created T0+60s
    h.put("b", "live", "1"); // 8
    h.advance(10_000);
    const { result, events } = h.apply({ type: "purgeDeletes", bucket: "b", olderThanMs: 30_000 });
    // old: 3 records go; young: marker 7 kept, 5 and 6 go.
    expect(result).toEqual({ ok: true, count: 5 });
    expect(events).toEqual([]);
    expect(h.sm.history("b", [">"]).records.map(brief)).toEqual(["7:DEL:young=", "8:PUT:live=1"]);
  });

  it("keeps a marker only if it is younger than the threshold: exactly as old goes", () => {
    const h = setup();
    h.ok({ type: "delete", bucket: "b", key: "edge" }); // created T0
    h.advance(1);
    h.ok({ type: "delete", bucket: "b", key: "young" }); // created T0+1
    h.advance(29_999); // now = T0 + 30000
    expect(h.ok({ type: "purgeDeletes", bucket: "b", olderThanMs: 30_000 })).toEqual({ ok: true, count: 1 });
    expect(h.sm.history("b", [">"]).records.map(brief)).toEqual(["2:DEL:young="]);
  });

  it("with a negative threshold (and 0) removes every marker and its key", () => {
    for (const olderThanMs of [-1, 0]) {
      const h = setup();
      h.put("b", "a", "1");
      h.ok({ type: "delete", bucket: "b", key: "a" });
      h.ok({ type: "purge", bucket: "b", key: "c" });
      h.put("b", "live", "1");
      expect(h.ok({ type: "purgeDeletes", bucket: "b", olderThanMs })).toEqual({ ok: true, count: 3 });
      expect(h.sm.history("b", [">"]).records.map(brief)).toEqual(["4:PUT:live=1"]);
    }
  });
});

describe("purgeBucket", () => {
  it("removes every record, emits no events, and revisions continue", () => {
    const h = setup();
    h.put("b", "a", "1");
    h.put("b", "b", "1");
    const { result, events } = h.apply({ type: "purgeBucket", bucket: "b" });
    expect(result).toEqual({ ok: true });
    expect(events).toEqual([]);
    expect(h.sm.status("b")).toMatchObject({ values: 0, bytes: 0, keys: 0, revision: 2, firstRevision: 0 });
    expect(h.sm.keys("b", [">"]).keys).toEqual([]);
    expect(h.put("b", "a", "2")).toBe(3);
    expect(h.sm.bucketConfig("b").history).toBe(5);
  });
});
