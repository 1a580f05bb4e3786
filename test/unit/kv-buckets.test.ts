/**
 * Goal: bucket config and bucket commands (KV-SEMANTICS.md, "Bucket config"): defaults, every limit of
 * the config table with its error, idempotent create, `bucket name already in use`, `bucket not found`,
 * update rules (lowering history trims every key; storage cannot change), delete, list and status.
 * Method: normalizeConfig directly, then commands through a state machine.
 */
import { describe, expect, it } from "vitest";
import { CairnError } from "../../src/shared/errors.ts";
import { configUpdateAllowed, normalizeConfig, type BucketConfig } from "../../src/kv/index.ts";
import { bytes, Harness } from "./kv-fixture.ts";

function configError(input: Record<string, unknown>, clusterSize?: number): string {
  try {
    normalizeConfig(input as Partial<BucketConfig>, clusterSize);
  } catch (error) {
    expect(error).toBeInstanceOf(CairnError);
    expect((error as CairnError).code).toBe("INVALID_CONFIG");
    return (error as CairnError).message;
  }
  throw new Error("expected INVALID_CONFIG");
}

describe("normalizeConfig", () => {
  it("fills the defaults of the config table", () => {
    expect(normalizeConfig(undefined, 5)).toEqual({
      description: "",
      history: 1,
      ttlMs: 0,
      maxBytes: -1,
      maxValueSize: -1,
      replicas: 3,
      storage: "file",
      markerTtlMs: 0,
      metadata: {},
      compression: false,
    });
  });

  it("defaults replicas to min(3, cluster size), and to 1 when the cluster size is unknown", () => {
    expect(normalizeConfig({}, 1).replicas).toBe(1);
    expect(normalizeConfig({}, 2).replicas).toBe(2);
    expect(normalizeConfig({}, 7).replicas).toBe(3);
    expect(normalizeConfig({}).replicas).toBe(1);
  });

  it("keeps every valid value", () => {
    const config = {
      description: "d",
      history: 64,
      ttlMs: 100,
      maxBytes: 10,
      maxValueSize: 5,
      replicas: 5,
      storage: "memory",
      markerTtlMs: 1000,
      metadata: { b: "2", a: "1" },
      compression: true,
    } as const;
    const normalized = normalizeConfig(config, 5);
    expect(normalized).toEqual(config);
    expect(Object.keys(normalized.metadata)).toEqual(["a", "b"]); // canonical order
  });

  it("maps 0 to the default where nats.go does (history, maxBytes, maxValueSize, replicas)", () => {
    const c = normalizeConfig({ history: 0, maxBytes: 0, maxValueSize: 0, replicas: 0 }, 3);
    expect([c.history, c.maxBytes, c.maxValueSize, c.replicas]).toEqual([1, -1, -1, 3]);
  });

  it("limits history to 64 with the NATS message", () => {
    expect(configError({ history: 65 })).toBe("history limited to a max of 64");
    expect(configError({ history: -1 })).toBe("history must be at least 1");
    expect(configError({ history: 1.5 })).toBe("history must be an integer");
  });

  it("requires ttl >= 100 ms when set", () => {
    expect(configError({ ttlMs: 99 })).toBe("max age needs to be >= 100ms");
    expect(configError({ ttlMs: -5 })).toBe("ttl must not be negative");
    expect(normalizeConfig({ ttlMs: 100 }).ttlMs).toBe(100);
  });

  it("requires markerTtl >= 1000 ms when set", () => {
    expect(configError({ markerTtlMs: 999 })).toBe("marker ttl must be at least 1s");
    expect(normalizeConfig({ markerTtlMs: 1000 }).markerTtlMs).toBe(1000);
  });

  it("checks replicas 1..5 and against the cluster size", () => {
    expect(configError({ replicas: 6 })).toBe("replicas must be between 1 and 5");
    expect(configError({ replicas: 3 }, 2)).toBe("replicas (3) exceed the cluster size (2)");
    expect(normalizeConfig({ replicas: 5 }).replicas).toBe(5);
  });

  it("checks sizes, storage, description, metadata, compression and unknown fields", () => {
    expect(configError({ maxBytes: -2 })).toMatch(/maxBytes/);
    expect(configError({ maxValueSize: -7 })).toMatch(/maxValueSize/);
    expect(configError({ storage: "disk" })).toBe("storage must be file or memory");
    expect(configError({ description: "x".repeat(4097) })).toBe("description is limited to 4096 bytes");
    expect(normalizeConfig({ description: "x".repeat(4096) }).description).toHaveLength(4096);
    expect(configError({ description: "é".repeat(2049) })).toBe("description is limited to 4096 bytes");
    expect(configError({ metadata: { a: "x".repeat(128 * 1024) } })).toBe("metadata is limited to 128KiB");
    expect(configError({ metadata: { a: 1 } })).toBe("metadata must be a map of strings");
    expect(configError({ compression: "yes" })).toBe("compression must be a boolean");
    expect(configError({ maxAge: 5 })).toBe("unknown bucket config field: maxAge");
  });

  it("is idempotent", () => {
    const once = normalizeConfig({ history: 3, metadata: { z: "1", a: "2" } }, 3);
    expect(normalizeConfig(once, 3)).toEqual(once);
  });
});

describe("configUpdateAllowed", () => {
  const base = normalizeConfig({}, 3);

  it("allows history, ttl, limits, description, metadata, replicas and compression to change", () => {
    const next = normalizeConfig(
      { history: 5, ttlMs: 1000, maxBytes: 10, maxValueSize: 3, description: "x", metadata: { a: "b" }, replicas: 1, compression: true, markerTtlMs: 2000 },
      3,
    );
    expect(() => configUpdateAllowed(base, next)).not.toThrow();
  });

  it("refuses a storage change and switching markerTtl off again", () => {
    expect(() => configUpdateAllowed(base, { ...base, storage: "memory" })).toThrow("storage can not be changed");
    const withMarkers = { ...base, markerTtlMs: 1000 };
    expect(() => configUpdateAllowed(withMarkers, base)).toThrow("markerTtl can not be disabled once enabled");
  });
});

describe("bucket commands", () => {
  it("creates idempotently with an identical config, refuses a different one", () => {
    const h = new Harness();
    h.bucket("b", { history: 3 });
    h.bucket("b", { history: 3 });
    const { result } = h.apply({ type: "bucketCreate", bucket: "b", config: normalizeConfig({ history: 4 }) });
    expect(result).toEqual({ ok: false, code: "BUCKET_EXISTS", message: "bucket name already in use" });
    expect(h.sm.bucketConfig("b").history).toBe(3);
  });

  it("rejects an invalid config in a command with INVALID_CONFIG", () => {
    const h = new Harness();
    const { result } = h.apply({ type: "bucketCreate", bucket: "b", config: { history: 65 } as BucketConfig });
    expect(result).toEqual({ ok: false, code: "INVALID_CONFIG", message: "history limited to a max of 64" });
    expect(h.sm.hasBucket("b")).toBe(false);
  });

  it("reports bucket not found for every command and query on a missing bucket", () => {
    const h = new Harness();
    const v = bytes("v");
    for (const command of [
      { type: "bucketUpdate", bucket: "x", config: normalizeConfig({}) },
      { type: "bucketDelete", bucket: "x" },
      { type: "put", bucket: "x", key: "k", value: v },
      { type: "create", bucket: "x", key: "k", value: v },
      { type: "update", bucket: "x", key: "k", value: v, revision: 0 },
      { type: "delete", bucket: "x", key: "k" },
      { type: "purge", bucket: "x", key: "k" },
      { type: "purgeDeletes", bucket: "x", olderThanMs: 0 },
      { type: "purgeBucket", bucket: "x" },
      { type: "expire", bucket: "x" },
    ] as const) {
      expect(h.apply(command).result).toEqual({ ok: false, code: "BUCKET_NOT_FOUND", message: "bucket not found" });
    }
    for (const query of [
      () => h.sm.bucketConfig("x"),
      () => h.sm.status("x"),
      () => h.sm.get("x", "k"),
      () => h.sm.keys("x", [">"]),
      () => h.sm.history("x", [">"]),
      () => h.sm.watchInitial("x", [">"], { include: "last" }),
      () => h.sm.nextExpiryAt("x"),
    ]) {
      expect(query).toThrow(expect.objectContaining({ code: "BUCKET_NOT_FOUND", message: "bucket not found" }));
    }
  });

  it("deletes a bucket with all its data; deleting twice is bucket not found", () => {
    const h = new Harness();
    h.bucket("b");
    h.put("b", "k", "v");
    h.ok({ type: "bucketDelete", bucket: "b" });
    expect(h.sm.hasBucket("b")).toBe(false);
    h.fail({ type: "bucketDelete", bucket: "b" }, "BUCKET_NOT_FOUND");
    // A recreated bucket starts fresh, at revision 1.
    h.bucket("b");
    expect(h.sm.get("b", "k")).toBeNull();
    expect(h.put("b", "k", "v")).toBe(1);
  });

  it("lists buckets sorted by name", () => {
    const h = new Harness();
    for (const name of ["c", "a", "b"]) h.bucket(name);
    expect(h.sm.listBuckets()).toEqual(["a", "b", "c"]);
  });

  it("updates history, ttl, limits, description and metadata; lowering history trims every key", () => {
    const h = new Harness();
    h.bucket("b", { history: 5 });
    for (let i = 1; i <= 4; i++) {
      h.put("b", "x", `x${i}`);
      h.put("b", "y", `y${i}`);
    }
    expect(h.sm.status("b").values).toBe(8);
    const next = normalizeConfig({ history: 2, description: "d", metadata: { k: "v" }, maxBytes: 1000, maxValueSize: 100 });
    const { result, events } = h.apply({ type: "bucketUpdate", bucket: "b", config: next });
    expect(result).toEqual({ ok: true });
    expect(events).toEqual([]); // trims are limit removals: no events
    expect(h.sm.bucketConfig("b")).toEqual(next);
    expect(h.sm.history("b", ["x"]).records.map((r) => r.revision)).toEqual([5, 7]);
    expect(h.sm.history("b", ["y"]).records.map((r) => r.revision)).toEqual([6, 8]);
    expect(h.sm.status("b").values).toBe(4);
  });

  it("refuses a storage change on update", () => {
    const h = new Harness();
    h.bucket("b");
    const { result } = h.apply({ type: "bucketUpdate", bucket: "b", config: normalizeConfig({ storage: "memory" }) });
    expect(result).toEqual({ ok: false, code: "INVALID_CONFIG", message: "storage can not be changed" });
    expect(h.sm.bucketConfig("b").storage).toBe("file");
  });

  it("status counts records (markers included), bytes of keys and values, revisions and keys", () => {
    const h = new Harness();
    h.bucket("b", { history: 3 });
    expect(h.sm.status("b")).toMatchObject({ bucket: "b", values: 0, bytes: 0, revision: 0, firstRevision: 0, keys: 0 });
    h.put("b", "ab", "123");
    h.put("b", "ab", "45");
    h.ok({ type: "delete", bucket: "b", key: "cd" });
    expect(h.sm.status("b")).toMatchObject({ values: 3, bytes: 2 + 3 + 2 + 2 + 2, revision: 3, firstRevision: 1, keys: 2 });
    expect(h.sm.status("b").config).toEqual(h.sm.bucketConfig("b"));
  });
});
