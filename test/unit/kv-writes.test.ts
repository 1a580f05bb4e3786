/**
 * Goal: the write rules of KV-SEMANTICS.md ("Data model", "Writes"): revisions, history depth, put,
 * atomic create, update with its revision 0 choice, delete/purge with and without an expected revision,
 * the exact failure codes and messages, and the watch events each write returns.
 * Method: commands through a state machine; state checked through get/history/status.
 */
import { describe, expect, it } from "vitest";
import { brief, bytes, Harness } from "./kv-fixture.ts";

function setup(history = 1): Harness {
  const h = new Harness();
  h.bucket("b", { history });
  return h;
}

describe("revisions", () => {
  it("are the bucket sequence: put a, b, a gives 1, 2, 3", () => {
    const h = setup();
    expect([h.put("b", "a", "1"), h.put("b", "b", "1"), h.put("b", "a", "2")]).toEqual([1, 2, 3]);
  });

  it("are per bucket", () => {
    const h = setup();
    h.bucket("c");
    expect([h.put("b", "a", "1"), h.put("c", "a", "1"), h.put("b", "a", "2")]).toEqual([1, 1, 2]);
  });

  it("are never reused: not after purge, purgeDeletes or purgeBucket", () => {
    const h = setup(5);
    h.put("b", "a", "1"); // 1
    h.ok({ type: "purge", bucket: "b", key: "a" }); // 2
    expect(h.put("b", "a", "2")).toBe(3);
    h.ok({ type: "delete", bucket: "b", key: "a" }); // 4
    h.ok({ type: "purgeDeletes", bucket: "b", olderThanMs: -1 });
    expect(h.put("b", "x", "1")).toBe(5);
    h.ok({ type: "purgeBucket", bucket: "b" });
    expect(h.sm.status("b")).toMatchObject({ values: 0, revision: 5 });
    expect(h.put("b", "x", "2")).toBe(6);
  });

  it("records carry key, value, revision, created (leader time) and operation", () => {
    const h = setup();
    h.put("b", "k", "v");
    expect(h.sm.get("b", "k")).toEqual({ key: "k", value: bytes("v"), revision: 1, created: h.now, operation: "PUT" });
  });

  it("values may be empty", () => {
    const h = setup();
    h.put("b", "k", "");
    expect(h.sm.get("b", "k")).toMatchObject({ operation: "PUT", value: new Uint8Array(0) });
  });
});

describe("put", () => {
  it("drops the oldest record when a key exceeds its history depth", () => {
    const h = setup(3);
    for (let i = 1; i <= 5; i++) h.put("b", "k", `v${i}`);
    expect(h.sm.history("b", ["k"]).records.map(brief)).toEqual(["3:PUT:k=v3", "4:PUT:k=v4", "5:PUT:k=v5"]);
    expect(h.sm.status("b").values).toBe(3);
  });

  it("history depth 1 keeps only the latest record", () => {
    const h = setup(1);
    h.put("b", "k", "a");
    h.put("b", "k", "b");
    expect(h.sm.history("b", [">"]).records.map(brief)).toEqual(["2:PUT:k=b"]);
  });

  it("returns one PUT event and no events for the record it trimmed", () => {
    const h = setup(1);
    h.put("b", "k", "a");
    const { result, events } = h.apply({ type: "put", bucket: "b", key: "k", value: bytes("b") });
    expect(result).toEqual({ ok: true, revision: 2 });
    expect(events).toEqual([{ bucket: "b", record: { key: "k", value: bytes("b"), revision: 2, created: h.now, operation: "PUT" } }]);
  });

  it("stores a copy: mutating the command's value afterwards changes nothing", () => {
    const h = setup();
    const value = bytes("abc");
    h.ok({ type: "put", bucket: "b", key: "k", value });
    value[0] = 120;
    expect(h.sm.get("b", "k")?.value).toEqual(bytes("abc"));
  });
});

describe("create", () => {
  it("succeeds on a key with no retained record", () => {
    const h = setup();
    expect(h.ok({ type: "create", bucket: "b", key: "k", value: bytes("v") })).toEqual({ ok: true, revision: 1 });
  });

  it("fails with KEY_EXISTS 'wrong last sequence: N: key exists' on a live key", () => {
    const h = setup();
    h.put("b", "other", "x");
    h.put("b", "k", "v");
    const result = h.fail({ type: "create", bucket: "b", key: "k", value: bytes("w") }, "KEY_EXISTS");
    expect(result).toEqual({ ok: false, code: "KEY_EXISTS", message: "wrong last sequence: 2: key exists", revision: 2 });
    expect(h.sm.get("b", "k")?.value).toEqual(bytes("v"));
    expect(h.sm.status("b").revision).toBe(2); // no revision used by the failure
  });

  it("succeeds on a deleted or purged key, atomically in one command", () => {
    const h = setup(5);
    h.put("b", "k", "v1");
    h.ok({ type: "delete", bucket: "b", key: "k" });
    expect(h.ok({ type: "create", bucket: "b", key: "k", value: bytes("v2") })).toEqual({ ok: true, revision: 3 });
    h.ok({ type: "purge", bucket: "b", key: "k" });
    expect(h.ok({ type: "create", bucket: "b", key: "k", value: bytes("v3") })).toEqual({ ok: true, revision: 5 });
    expect(h.sm.history("b", ["k"]).records.map(brief)).toEqual(["4:PURGE:k=", "5:PUT:k=v3"]);
  });

  it("of many creates of one key in a row exactly the first succeeds", () => {
    const h = setup();
    const results = Array.from({ length: 5 }, (_, i) => h.apply({ type: "create", bucket: "b", key: "k", value: bytes(`${i}`) }).result);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results[0]).toEqual({ ok: true, revision: 1 });
  });
});

describe("update", () => {
  it("succeeds when the expected revision is the key's last revision", () => {
    const h = setup();
    h.put("b", "k", "v1");
    h.put("b", "other", "x");
    expect(h.ok({ type: "update", bucket: "b", key: "k", value: bytes("v2"), revision: 1 })).toEqual({ ok: true, revision: 3 });
  });

  it("fails with WRONG_LAST_REVISION 'wrong last sequence: N' (N = actual)", () => {
    const h = setup();
    h.put("b", "k", "v1");
    h.put("b", "k", "v2");
    const result = h.fail({ type: "update", bucket: "b", key: "k", value: bytes("v3"), revision: 1 }, "WRONG_LAST_REVISION");
    expect(result).toEqual({ ok: false, code: "WRONG_LAST_REVISION", message: "wrong last sequence: 2", revision: 2 });
  });

  it("revision 0 means 'no retained record': succeeds on a missing key, fails on a deleted one", () => {
    const h = setup();
    expect(h.ok({ type: "update", bucket: "b", key: "k", value: bytes("v"), revision: 0 })).toEqual({ ok: true, revision: 1 });
    h.ok({ type: "delete", bucket: "b", key: "k" });
    const result = h.fail({ type: "update", bucket: "b", key: "k", value: bytes("v"), revision: 0 }, "WRONG_LAST_REVISION");
    expect(result.message).toBe("wrong last sequence: 2");
  });

  it("reports 0 as the actual revision of a key with no retained record", () => {
    const h = setup();
    const result = h.fail({ type: "update", bucket: "b", key: "k", value: bytes("v"), revision: 7 }, "WRONG_LAST_REVISION");
    expect(result).toMatchObject({ message: "wrong last sequence: 0", revision: 0 });
  });

  it("matches a DEL marker's revision", () => {
    const h = setup(3);
    h.put("b", "k", "v");
    h.ok({ type: "delete", bucket: "b", key: "k" });
    expect(h.ok({ type: "update", bucket: "b", key: "k", value: bytes("w"), revision: 2 })).toEqual({ ok: true, revision: 3 });
  });

  it("rejects a malformed expected revision as INVALID_REQUEST", () => {
    const h = setup();
    h.fail({ type: "update", bucket: "b", key: "k", value: bytes("w"), revision: -1 }, "INVALID_REQUEST");
    h.fail({ type: "update", bucket: "b", key: "k", value: bytes("w"), revision: 1.5 }, "INVALID_REQUEST");
  });
});

describe("delete and purge", () => {
  it("delete appends a DEL marker with an empty value and keeps history", () => {
    const h = setup(5);
    h.put("b", "k", "v1");
    h.put("b", "k", "v2");
    const { result, events } = h.apply({ type: "delete", bucket: "b", key: "k" });
    expect(result).toEqual({ ok: true, revision: 3 });
    expect(events.map((e) => brief(e.record))).toEqual(["3:DEL:k="]);
    expect(h.sm.history("b", ["k"]).records.map(brief)).toEqual(["1:PUT:k=v1", "2:PUT:k=v2", "3:DEL:k="]);
    expect(h.sm.get("b", "k")).toBeNull();
  });

  it("delete with history 1 leaves only the marker", () => {
    const h = setup(1);
    h.put("b", "k", "v1");
    h.ok({ type: "delete", bucket: "b", key: "k" });
    expect(h.sm.history("b", ["k"]).records.map(brief)).toEqual(["2:DEL:k="]);
  });

  it("purge appends a PURGE marker and removes all older records; one PURGE event", () => {
    const h = setup(5);
    h.put("b", "k", "v1");
    h.put("b", "k", "v2");
    h.put("b", "j", "x");
    const { result, events } = h.apply({ type: "purge", bucket: "b", key: "k" });
    expect(result).toEqual({ ok: true, revision: 4 });
    expect(events.map((e) => brief(e.record))).toEqual(["4:PURGE:k="]);
    expect(h.sm.history("b", [">"]).records.map(brief)).toEqual(["3:PUT:j=x", "4:PURGE:k="]);
  });

  it("both succeed on missing keys and still append a marker", () => {
    const h = setup();
    expect(h.ok({ type: "delete", bucket: "b", key: "a" })).toEqual({ ok: true, revision: 1 });
    expect(h.ok({ type: "purge", bucket: "b", key: "c" })).toEqual({ ok: true, revision: 2 });
    expect(h.sm.status("b").values).toBe(2);
    expect(h.sm.get("b", "a", { includeDeleted: true })?.operation).toBe("DEL");
  });

  it("with an expected revision succeed only when it matches", () => {
    const h = setup(5);
    h.put("b", "k", "v");
    expect(h.fail({ type: "delete", bucket: "b", key: "k", revision: 5 }, "WRONG_LAST_REVISION").message).toBe("wrong last sequence: 1");
    expect(h.fail({ type: "purge", bucket: "b", key: "k", revision: 0 }, "WRONG_LAST_REVISION").message).toBe("wrong last sequence: 1");
    expect(h.ok({ type: "delete", bucket: "b", key: "k", revision: 1 })).toEqual({ ok: true, revision: 2 });
    expect(h.ok({ type: "purge", bucket: "b", key: "k", revision: 2 })).toEqual({ ok: true, revision: 3 });
    expect(h.ok({ type: "delete", bucket: "b", key: "new", revision: 0 })).toEqual({ ok: true, revision: 4 });
  });
});

describe("malformed commands", () => {
  it("never throw: each comes back as INVALID_REQUEST and changes nothing", () => {
    const h = setup();
    const bad = [
      null,
      { type: "nope", bucket: "b" },
      { type: "put", bucket: "b", key: "k", value: "not bytes" },
      { type: "purgeDeletes", bucket: "b", olderThanMs: "x" },
    ];
    for (const command of bad) {
      const { result, events, duplicate } = h.apply(command as never);
      expect(result).toMatchObject({ ok: false, code: "INVALID_REQUEST" });
      expect(events).toEqual([]);
      expect(duplicate).toBe(false);
    }
    expect(h.sm.status("b").revision).toBe(0);
    const { result } = h.sm.apply(++h.index, null as never);
    expect(result).toMatchObject({ ok: false, code: "INVALID_REQUEST" });
  });

  it("read null optional fields (revision, ttlMs) as absent, as a codec may produce them", () => {
    const h = setup();
    h.put("b", "k", "v");
    expect(h.ok({ type: "delete", bucket: "b", key: "k", revision: null } as never)).toEqual({ ok: true, revision: 2 });
    expect(h.ok({ type: "put", bucket: "b", key: "k", value: bytes("w"), ttlMs: null } as never)).toEqual({ ok: true, revision: 3 });
    expect(h.sm.get("b", "k")?.expiresAt).toBeUndefined();
  });

  it("apply indexes must increase (an assertion: a driver bug, not bad input)", () => {
    const h = setup();
    expect(() => h.sm.apply(h.index, { now: h.now, command: { type: "expire", bucket: "b" } })).toThrow(/must exceed/);
    h.sm.apply(h.index + 10, { now: h.now, command: { type: "expire", bucket: "b" } }); // gaps are fine
    expect(h.sm.appliedIndex).toBe(h.index + 10);
  });
});
