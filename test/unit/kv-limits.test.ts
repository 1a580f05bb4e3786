/**
 * Goal: the limits of KV-SEMANTICS.md ("Writes", limits): maxValueSize counts the value's bytes only,
 * maxBytes is checked at apply time against what the write would leave (its own history trim included),
 * DEL/PURGE markers are always accepted so a full bucket can be repaired. Exact codes and messages.
 * Method: commands through a state machine on buckets with small limits.
 */
import { describe, expect, it } from "vitest";
import { normalizeConfig } from "../../src/kv/index.ts";
import { bytes, Harness } from "./kv-fixture.ts";

describe("maxValueSize", () => {
  it("refuses a larger value with VALUE_TOO_LARGE 'message size exceeds maximum allowed'", () => {
    const h = new Harness();
    h.bucket("b", { maxValueSize: 4 });
    for (const type of ["put", "create"] as const) {
      const { result, events } = h.apply({ type, bucket: "b", key: "k", value: bytes("12345") });
      expect(result).toEqual({ ok: false, code: "VALUE_TOO_LARGE", message: "message size exceeds maximum allowed" });
      expect(events).toEqual([]);
    }
    h.fail({ type: "update", bucket: "b", key: "k", value: bytes("12345"), revision: 0 }, "VALUE_TOO_LARGE");
    expect(h.sm.status("b").revision).toBe(0);
  });

  it("counts the value's bytes only: a long key or a CAS write of a value that fits is accepted", () => {
    const h = new Harness();
    h.bucket("b", { maxValueSize: 4 });
    const key = "k".repeat(500);
    expect(h.put("b", key, "1234")).toBe(1);
    expect(h.ok({ type: "update", bucket: "b", key, value: bytes("abcd"), revision: 1 })).toEqual({ ok: true, revision: 2 });
    expect(h.ok({ type: "delete", bucket: "b", key, revision: 2 })).toEqual({ ok: true, revision: 3 });
    expect(h.ok({ type: "create", bucket: "b", key, value: bytes("wxyz") })).toEqual({ ok: true, revision: 4 });
    expect(h.ok({ type: "purge", bucket: "b", key })).toEqual({ ok: true, revision: 5 });
  });
});

describe("maxBytes", () => {
  it("refuses a write that would leave the bucket above maxBytes with BUCKET_FULL 'maximum bytes exceeded'", () => {
    const h = new Harness();
    h.bucket("b", { maxBytes: 10, history: 5 });
    h.put("b", "a", "1234"); // 5 bytes
    h.put("b", "b", "123"); // 9 bytes
    const { result, events } = h.apply({ type: "put", bucket: "b", key: "c", value: bytes("1") }); // would be 11
    expect(result).toEqual({ ok: false, code: "BUCKET_FULL", message: "maximum bytes exceeded" });
    expect(events).toEqual([]);
    h.fail({ type: "create", bucket: "b", key: "c", value: bytes("1") }, "BUCKET_FULL");
    h.fail({ type: "update", bucket: "b", key: "b", value: bytes("12"), revision: 2 }, "BUCKET_FULL"); // history 5 keeps the old
    expect(h.sm.status("b")).toMatchObject({ bytes: 9, revision: 2 });
    expect(h.put("b", "c", "")).toBe(3); // exactly 10 is fine
  });

  it("counts the record the write's own history trim removes", () => {
    const h = new Harness();
    h.bucket("b", { maxBytes: 10, history: 1 });
    h.put("b", "a", "123456789"); // 10 bytes, full
    expect(h.put("b", "a", "987654321")).toBe(2); // replaces: still 10
    h.fail({ type: "put", bucket: "b", key: "a", value: bytes("1234567890") }, "BUCKET_FULL"); // 11
  });

  it("always accepts DEL and PURGE markers, so a full bucket can be repaired", () => {
    const h = new Harness();
    h.bucket("b", { maxBytes: 6, history: 5 });
    h.put("b", "a", "12345"); // 6 bytes: full
    expect(h.ok({ type: "delete", bucket: "b", key: "a" })).toEqual({ ok: true, revision: 2 }); // 7 bytes now
    expect(h.ok({ type: "delete", bucket: "b", key: "zz" })).toEqual({ ok: true, revision: 3 });
    expect(h.sm.status("b").bytes).toBe(9);
    h.fail({ type: "put", bucket: "b", key: "x", value: bytes("") }, "BUCKET_FULL");
    expect(h.ok({ type: "purge", bucket: "b", key: "a" })).toEqual({ ok: true, revision: 4 }); // frees "a"'s records
    expect(h.sm.status("b").bytes).toBe(3); // the PURGE of "a" and the DEL of "zz"
    h.fail({ type: "put", bucket: "b", key: "x", value: bytes("12345") }, "BUCKET_FULL");
    expect(h.ok({ type: "purgeDeletes", bucket: "b", olderThanMs: -1 })).toEqual({ ok: true, count: 2 });
    expect(h.put("b", "x", "1234")).toBe(5);
  });

  it("keeps existing data when maxBytes is lowered below the current size; writes must leave it within", () => {
    const h = new Harness();
    h.bucket("b", { history: 1 });
    h.put("b", "a", "123456789");
    h.ok({ type: "bucketUpdate", bucket: "b", config: normalizeConfig({ history: 1, maxBytes: 5 }) });
    expect(h.sm.status("b").bytes).toBe(10);
    h.fail({ type: "put", bucket: "b", key: "b", value: bytes("") }, "BUCKET_FULL"); // 12: above
    h.fail({ type: "put", bucket: "b", key: "a", value: bytes("12345") }, "BUCKET_FULL"); // 6 after the trim: above
    expect(h.put("b", "a", "1234")).toBe(2); // 5 after the trim: within
  });
});
