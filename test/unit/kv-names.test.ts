/**
 * Goal: the name rules of KV-SEMANTICS.md ("Names") as src/kv applies them: bucket names, keys, filters,
 * filter matching, the error codes and messages, and that commands with bad names never change state.
 * Method: the examples of the spec, one assertion each, plus commands through a state machine.
 */
import { describe, expect, it } from "vitest";
import { CairnError } from "../../src/shared/errors.ts";
import { KEY_BYTES_MAX } from "../../src/shared/names.ts";
import {
  DEFAULT_KV_LIMITS,
  isValidFilter,
  isValidKey,
  matchFilter,
  validateBucketName,
  validateFilter,
  validateKey,
} from "../../src/kv/index.ts";
import { bytes, Harness } from "./kv-fixture.ts";

function thrown(fn: () => unknown): CairnError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CairnError);
    return error as CairnError;
  }
  throw new Error("expected a throw");
}

describe("bucket names", () => {
  it.each(["a", "A-b_c", "0", "x".repeat(252), "KV_bucket-1"])("accepts %s", (name) => {
    expect(validateBucketName(name)).toBe(name);
  });

  it.each(["", "x".repeat(253), "a.b", "a b", "a*", "a>", "ä", "a/b", "a=b"])("rejects %j with INVALID_BUCKET_NAME", (name) => {
    const error = thrown(() => validateBucketName(name));
    expect(error.code).toBe("INVALID_BUCKET_NAME");
    expect(error.message).toBe("invalid bucket name");
  });

  it("rejects non-strings with INVALID_BUCKET_NAME", () => {
    expect(thrown(() => validateBucketName(42)).code).toBe("INVALID_BUCKET_NAME");
  });

  it("bucketCreate with a bad name fails without creating anything", () => {
    const h = new Harness();
    const { result } = h.apply({ type: "bucketCreate", bucket: "bad name", config: {} as never });
    expect(result).toEqual({ ok: false, code: "INVALID_BUCKET_NAME", message: "invalid bucket name" });
    expect(h.sm.listBuckets()).toEqual([]);
  });
});

describe("keys", () => {
  it.each(["foo", "_foo", "-foo", "123", "a/b/c", "a.b.c", "a=b", "A.Z.0.9", "x".repeat(1024)])("accepts %s", (key) => {
    expect(validateKey(key)).toBe(key);
  });

  it.each([" x y", "x ", "x!", "xx$", "*", ">", "x.>", "x.*", ".", ".x", "x.", "a..b", "", "ä", "x".repeat(1025)])(
    "rejects %j with INVALID_KEY 'invalid key'",
    (key) => {
      const error = thrown(() => validateKey(key));
      expect(error.code).toBe("INVALID_KEY");
      expect(error.message).toBe("invalid key");
    },
  );

  it("rejects non-strings", () => {
    expect(thrown(() => validateKey(undefined)).code).toBe("INVALID_KEY");
  });

  it("has a documented key length limit of 1024 bytes, the same as src/shared's", () => {
    expect(DEFAULT_KV_LIMITS.keyBytesMax).toBe(1024);
    expect(KEY_BYTES_MAX).toBe(DEFAULT_KV_LIMITS.keyBytesMax);
  });

  it("honours a configured key length limit", () => {
    const limits = { ...DEFAULT_KV_LIMITS, keyBytesMax: 4 };
    expect(validateKey("abcd", limits)).toBe("abcd");
    expect(thrown(() => validateKey("abcde", limits)).code).toBe("INVALID_KEY");
    const h = new Harness(limits);
    h.bucket("b");
    h.fail({ type: "put", bucket: "b", key: "abcde", value: bytes("v") }, "INVALID_KEY");
  });

  it("rejects wildcards in put, create, update, delete and purge with INVALID_KEY, changing nothing", () => {
    const h = new Harness();
    h.bucket("b");
    for (const key of ["a.*", "a.>", ">", "*", "a..b", ".a"]) {
      h.fail({ type: "put", bucket: "b", key, value: bytes("v") }, "INVALID_KEY");
      h.fail({ type: "create", bucket: "b", key, value: bytes("v") }, "INVALID_KEY");
      h.fail({ type: "update", bucket: "b", key, value: bytes("v"), revision: 0 }, "INVALID_KEY");
      h.fail({ type: "delete", bucket: "b", key }, "INVALID_KEY");
      h.fail({ type: "purge", bucket: "b", key }, "INVALID_KEY");
    }
    expect(h.sm.status("b").revision).toBe(0);
    expect(h.sm.status("b").values).toBe(0);
  });
});

describe("filters", () => {
  it.each(["a", "a.b", "*", ">", "a.*", "a.>", "*.b", "a.*.c", "*.*", "a.*.>"])("accepts %s", (filter) => {
    expect(validateFilter(filter)).toBe(filter);
    expect(isValidFilter(filter)).toBe(true);
  });

  it.each(["", "a.>.b", ">.a", "a*", "a.b*", "*a", "a.>>", ".a", "a.", "a..b", "a b"])("rejects %j with INVALID_KEY", (filter) => {
    const error = thrown(() => validateFilter(filter));
    expect(error.code).toBe("INVALID_KEY");
    expect(error.message).toBe("invalid key");
  });

  it("keys are filters without wildcards", () => {
    expect(isValidKey("a.b")).toBe(true);
    expect(isValidKey("a.*")).toBe(false);
  });

  it.each([
    ["a.>", "a.b", true],
    ["a.>", "a.b.c", true],
    ["a.>", "a", false],
    ["a.>", "b.a", false],
    [">", "a", true],
    [">", "a.b.c", true],
    ["*", "a", true],
    ["*", "a.b", false],
    ["a.*", "a.b", true],
    ["a.*", "a.b.c", false],
    ["a.*", "a", false],
    ["*.b", "a.b", true],
    ["*.b", "a.c", false],
    ["a.*.c", "a.x.c", true],
    ["a.*.c", "a.x.d", false],
    ["a.*.>", "a.x.y", true],
    ["a.*.>", "a.x", false],
    ["a.b", "a.b", true],
    ["a.b", "a.bc", false],
    ["ab", "a", false],
    ["a", "ab", false],
  ] as const)("matchFilter(%s, %s) = %s", (filter, key, expected) => {
    expect(matchFilter(filter, key)).toBe(expected);
  });

  it("queries reject invalid filters with INVALID_KEY", () => {
    const h = new Harness();
    h.bucket("b");
    expect(thrown(() => h.sm.keys("b", ["a.>.b"])).code).toBe("INVALID_KEY");
    expect(thrown(() => h.sm.history("b", [""])).code).toBe("INVALID_KEY");
    expect(thrown(() => h.sm.watchInitial("b", ["a*"], { include: "last" })).code).toBe("INVALID_KEY");
  });
});
