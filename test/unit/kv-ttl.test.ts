/**
 * Goal: the rules of KV-SEMANTICS.md "TTL and expiry markers": bucket ttl per record, silent without
 * markerTtl; with markerTtl the expiry of a key's latest record appends a PURGE marker (reason MaxAge)
 * that removes older records and is an event, and markers vanish silently after markerTtl; per-key TTL
 * on create/purge (and put/update, the "Better" option) requires markerTtl; expiry is decided from the
 * leader time in commands, clamped to be monotonic.
 * Method: commands through a state machine with a hand-advanced leader clock.
 */
import { describe, expect, it } from "vitest";
import { normalizeConfig } from "../../src/kv/index.ts";
import { brief, bytes, Harness, T0 } from "./kv-fixture.ts";

const expire = { type: "expire", bucket: "b" } as const;

describe("bucket ttl without markers", () => {
  it("expires each record at created + ttl, silently", () => {
    const h = new Harness();
    h.bucket("b", { ttlMs: 1000, history: 5 });
    h.put("b", "k", "1"); // created T0
    h.advance(400);
    h.put("b", "k", "2"); // created T0+400
    h.put("b", "j", "x"); // created T0+400
    expect(h.sm.nextExpiryAt("b")).toBe(T0 + 1000);
    h.advance(599); // T0+999: nothing due yet
    expect(h.apply(expire)).toMatchObject({ result: { ok: true, count: 0 }, events: [] });
    h.advance(1); // T0+1000
    expect(h.apply(expire)).toMatchObject({ result: { ok: true, count: 1 }, events: [] });
    expect(h.sm.history("b", ["k"]).records.map(brief)).toEqual(["2:PUT:k=2"]);
    expect(h.sm.nextExpiryAt("b")).toBe(T0 + 1400);
    h.advance(400);
    const { result, events } = h.apply(expire);
    expect(result).toEqual({ ok: true, count: 2 });
    expect(events).toEqual([]);
    expect(h.sm.get("b", "k")).toBeNull();
    expect(h.sm.keys("b", [">"]).keys).toEqual([]);
    expect(h.sm.status("b")).toMatchObject({ values: 0, keys: 0, revision: 3 });
    expect(h.sm.nextExpiryAt("b")).toBeNull();
  });

  it("without ttl nothing ever expires", () => {
    const h = new Harness();
    h.bucket("b");
    h.put("b", "k", "v");
    expect(h.sm.nextExpiryAt("b")).toBeNull();
    h.advance(10 * 365 * 24 * 3600_000);
    expect(h.apply(expire).result).toEqual({ ok: true, count: 0 });
    expect(h.sm.get("b", "k")).not.toBeNull();
  });

  it("a later command applies expiry that was due at its time before its own effect", () => {
    const h = new Harness();
    h.bucket("b", { ttlMs: 1000 });
    h.put("b", "k", "v");
    h.advance(1000);
    // k expired at T0+1000: create sees no key, no expire command needed.
    expect(h.ok({ type: "create", bucket: "b", key: "k", value: bytes("w") })).toEqual({ ok: true, revision: 2 });
  });

  it("lowering ttl with a config update expires what is now due", () => {
    const h = new Harness();
    h.bucket("b");
    h.put("b", "k", "v");
    h.advance(5000);
    h.put("b", "j", "v");
    h.ok({ type: "bucketUpdate", bucket: "b", config: normalizeConfig({ ttlMs: 1000 }) });
    expect(h.sm.keys("b", [">"]).keys).toEqual(["j"]);
  });
});

describe("expiry markers (markerTtl)", () => {
  it("expiry of the latest record appends a PURGE marker (MaxAge) that removes older records and is an event", () => {
    const h = new Harness();
    h.bucket("b", { ttlMs: 2000, markerTtlMs: 5000, history: 5 });
    h.put("b", "k", "1"); // 1, created T0
    h.advance(1000);
    h.put("b", "k", "2"); // 2, created T0+1000
    h.advance(1000); // T0+2000: record 1 expires, silently (not the latest)
    expect(h.apply(expire)).toMatchObject({ result: { count: 1 }, events: [] });
    h.advance(1000); // T0+3000: record 2, the latest, expires
    const { result, events } = h.apply(expire);
    expect(result).toEqual({ ok: true, count: 1 });
    const marker = { key: "k", value: new Uint8Array(0), revision: 3, created: T0 + 3000, operation: "PURGE", expiresAt: T0 + 3000 + 5000, reason: "MaxAge" };
    expect(events).toEqual([{ bucket: "b", record: marker }]);
    expect(h.sm.history("b", ["k"]).records).toEqual([marker]);
    expect(h.sm.get("b", "k")).toBeNull();
    expect(h.sm.get("b", "k", { includeDeleted: true })).toEqual(marker);
  });

  it("a marker vanishes silently after markerTtl (or the bucket ttl, if shorter)", () => {
    const h = new Harness();
    h.bucket("b", { ttlMs: 10_000, markerTtlMs: 3000 });
    h.put("b", "k", "1");
    h.advance(10_000);
    expect(h.apply(expire).events).toHaveLength(1);
    expect(h.sm.nextExpiryAt("b")).toBe(T0 + 13_000);
    h.advance(2999);
    expect(h.apply(expire).result).toEqual({ ok: true, count: 0 });
    h.advance(1);
    expect(h.apply(expire)).toMatchObject({ result: { count: 1 }, events: [] });
    expect(h.sm.status("b")).toMatchObject({ values: 0, keys: 0 });

    const short = new Harness();
    short.bucket("b", { ttlMs: 1000, markerTtlMs: 5000 });
    short.put("b", "k", "1");
    short.advance(1000);
    expect(short.apply(expire).events).toHaveLength(1);
    short.advance(1000); // the bucket ttl ends the marker first
    expect(short.apply(expire)).toMatchObject({ result: { count: 1 }, events: [] });
  });

  it("create succeeds on a key whose latest record is an expiry marker", () => {
    const h = new Harness();
    h.bucket("b", { ttlMs: 1000, markerTtlMs: 5000 });
    h.put("b", "k", "1");
    h.advance(1000);
    h.apply(expire);
    expect(h.ok({ type: "create", bucket: "b", key: "k", value: bytes("2") })).toEqual({ ok: true, revision: 3 });
  });

  it("a latest DEL or PURGE expires silently, with its key", () => {
    const h = new Harness();
    h.bucket("b", { ttlMs: 1000, markerTtlMs: 5000, history: 3 });
    h.put("b", "k", "1");
    h.ok({ type: "delete", bucket: "b", key: "k" });
    h.advance(1000);
    expect(h.apply(expire)).toMatchObject({ result: { count: 2 }, events: [] });
    expect(h.sm.status("b").values).toBe(0);
  });

  it("emits several markers in order of (due time, revision), in one expire command", () => {
    const h = new Harness();
    h.bucket("b", { ttlMs: 1000, markerTtlMs: 5000 });
    h.put("b", "z", "1");
    h.put("b", "a", "1");
    h.advance(100);
    h.put("b", "m", "1");
    h.advance(5000);
    const { events } = h.apply(expire);
    expect(events.map((e) => brief(e.record))).toEqual(["4:PURGE:z=", "5:PURGE:a=", "6:PURGE:m="]);
  });
});

describe("expiry order", () => {
  it("breaks ties of due time by revision, whichever limit made the record due", () => {
    const h = new Harness();
    h.bucket("b", { ttlMs: 2000, markerTtlMs: 1000 });
    h.put("b", "a", "1"); // 1: due at T0+2000 by the bucket ttl
    h.advance(1000);
    h.ok({ type: "put", bucket: "b", key: "c", value: bytes("1"), ttlMs: 1000 }); // 2: due at T0+2000 by its own TTL
    h.advance(1000);
    expect(h.apply(expire).events.map((e) => brief(e.record))).toEqual(["3:PURGE:a=", "4:PURGE:c="]);
  });
});

describe("per-key TTL", () => {
  function withMarkers(): Harness {
    const h = new Harness();
    h.bucket("b", { markerTtlMs: 2000, history: 5 });
    return h;
  }

  it("requires markerTtl: INVALID_OPTION otherwise, on create, put, update and purge", () => {
    const h = new Harness();
    h.bucket("b");
    const message = "per-key TTL is disabled: the bucket has no markerTtl";
    for (const command of [
      { type: "create", bucket: "b", key: "k", value: bytes("v"), ttlMs: 5000 },
      { type: "put", bucket: "b", key: "k", value: bytes("v"), ttlMs: 5000 },
      { type: "update", bucket: "b", key: "k", value: bytes("v"), revision: 0, ttlMs: 5000 },
      { type: "purge", bucket: "b", key: "k", ttlMs: 5000 },
    ] as const) {
      expect(h.apply(command).result).toEqual({ ok: false, code: "INVALID_OPTION", message });
    }
    expect(h.sm.status("b").revision).toBe(0);
  });

  it("must be a whole number of ms >= 1000 (INVALID_OPTION)", () => {
    const h = withMarkers();
    for (const ttlMs of [999, 0, -5, 1500.5]) {
      h.fail({ type: "create", bucket: "b", key: "k", value: bytes("v"), ttlMs }, "INVALID_OPTION");
    }
  });

  it("create with a TTL expires the key at created + ttl, leaving a marker event", () => {
    const h = withMarkers();
    h.put("b", "k", "old"); // 1
    h.ok({ type: "delete", bucket: "b", key: "k" }); // 2
    expect(h.ok({ type: "create", bucket: "b", key: "k", value: bytes("v"), ttlMs: 1000 })).toEqual({ ok: true, revision: 3 });
    expect(h.sm.get("b", "k")).toMatchObject({ revision: 3, expiresAt: T0 + 1000 });
    expect(h.sm.nextExpiryAt("b")).toBe(T0 + 1000);
    h.advance(1000);
    const { result, events } = h.apply(expire);
    expect(result).toEqual({ ok: true, count: 3 }); // 1, 2 and 3: no older value can resurface
    expect(events.map((e) => brief(e.record))).toEqual(["4:PURGE:k="]);
    expect(events[0]?.record).toMatchObject({ reason: "MaxAge", expiresAt: T0 + 1000 + 2000 });
    h.advance(2000);
    expect(h.apply(expire)).toMatchObject({ result: { count: 1 }, events: [] });
  });

  it("belongs to the record: a later write without TTL makes the key permanent", () => {
    const h = withMarkers();
    h.ok({ type: "create", bucket: "b", key: "k", value: bytes("1"), ttlMs: 1000 });
    h.put("b", "k", "2");
    h.advance(1000);
    expect(h.apply(expire)).toMatchObject({ result: { count: 1 }, events: [] }); // the old record, silently
    expect(brief(h.sm.get("b", "k"))).toBe("2:PUT:k=2");
    expect(h.sm.nextExpiryAt("b")).toBeNull();
  });

  it("works on put and update too (the 'Better' option)", () => {
    const h = withMarkers();
    h.ok({ type: "put", bucket: "b", key: "p", value: bytes("1"), ttlMs: 1000 });
    h.ok({ type: "update", bucket: "b", key: "p", value: bytes("2"), revision: 1, ttlMs: 3000 });
    h.advance(1000);
    expect(h.apply(expire)).toMatchObject({ result: { count: 1 }, events: [] });
    expect(brief(h.sm.get("b", "p"))).toBe("2:PUT:p=2");
    h.advance(2000);
    expect(h.apply(expire).events.map((e) => brief(e.record))).toEqual(["3:PURGE:p="]);
  });

  it("purge with a TTL gives the PURGE marker its own lifetime; then it vanishes silently", () => {
    const h = withMarkers();
    h.put("b", "k", "1");
    const { events } = h.apply({ type: "purge", bucket: "b", key: "k", ttlMs: 1500 });
    expect(events[0]?.record).toEqual({ key: "k", value: new Uint8Array(0), revision: 2, created: T0, operation: "PURGE", expiresAt: T0 + 1500 });
    h.advance(1500);
    expect(h.apply(expire)).toMatchObject({ result: { count: 1 }, events: [] });
    expect(h.sm.status("b").values).toBe(0);
  });

  it("a record never outlives the bucket ttl", () => {
    const h = new Harness();
    h.bucket("b", { ttlMs: 1000, markerTtlMs: 1000 });
    h.ok({ type: "create", bucket: "b", key: "k", value: bytes("v"), ttlMs: 60_000 });
    expect(h.sm.nextExpiryAt("b")).toBe(T0 + 1000);
    h.advance(1000);
    expect(h.apply(expire).events.map((e) => brief(e.record))).toEqual(["2:PURGE:k="]);
  });
});

describe("leader time", () => {
  it("is clamped to be monotonic: an older envelope time is replaced by the latest seen", () => {
    const h = new Harness();
    h.bucket("b");
    h.put("b", "a", "1");
    h.ok({ type: "put", bucket: "b", key: "b", value: bytes("1") }, { now: T0 - 50_000 });
    expect(h.sm.get("b", "b")?.created).toBe(T0);
    expect(h.sm.now).toBe(T0);
    h.ok({ type: "put", bucket: "b", key: "c", value: bytes("1") }, { now: Number.NaN });
    expect(h.sm.get("b", "c")?.created).toBe(T0);
  });

  it("decides expiry, not the replica's clock: two machines fed the same commands agree", () => {
    const run = (): string => {
      const h = new Harness();
      h.bucket("b", { ttlMs: 1000, markerTtlMs: 1000 });
      h.put("b", "k", "1");
      h.advance(1500);
      h.apply(expire);
      return Buffer.from(h.sm.snapshot()).toString("hex");
    };
    expect(run()).toBe(run());
  });
});
