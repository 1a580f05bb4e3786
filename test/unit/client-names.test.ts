/**
 * Goal: src/shared/names.ts (the name rules every layer shares, used by the client before sending)
 * accepts exactly what KV-SEMANTICS.md allows and matches filters as NATS subjects do.
 * Method: the examples of KV-SEMANTICS.md, then fast-check against a naive oracle (regular expressions
 * for validity, token-by-token comparison for matching) over strings drawn from a small alphabet that
 * hits every edge (dots, wildcards, forbidden characters).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  BUCKET_NAME_LENGTH_MAX,
  isValidBucketName,
  isValidFilter,
  isValidKey,
  matchAnyFilter,
  matchFilter,
  validateBucketName,
  validateFilter,
  validateKey,
} from "../../src/shared/names.ts";
import { CairnError } from "../../src/shared/errors.ts";

const TOKEN = "[a-zA-Z0-9_\\-/=]+";
const KEY_ORACLE = new RegExp(`^${TOKEN}(\\.${TOKEN})*$`);
const FILTER_TOKEN = `(?:${TOKEN}|\\*)`;
const FILTER_ORACLE = new RegExp(`^(?:${FILTER_TOKEN}(?:\\.${FILTER_TOKEN})*(?:\\.>)?|>)$`);
const BUCKET_ORACLE = /^[a-zA-Z0-9_-]{1,252}$/;

function matchOracle(filter: string, key: string): boolean {
  const f = filter.split(".");
  const k = key.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return k.length > i;
    if (i >= k.length) return false;
    if (f[i] !== "*" && f[i] !== k[i]) return false;
  }
  return f.length === k.length;
}

const alphabet = fc.constantFrom("a", "b", "Z", "0", "_", "-", "/", "=", ".", "*", ">", " ", "!", "$", "ü");
const text = fc.array(alphabet, { maxLength: 12 }).map((chars) => chars.join(""));
const keyish = fc.array(fc.constantFrom("a", "b", "c"), { minLength: 1, maxLength: 3 }).map((tokens) => tokens.join("."));
const filterish = fc.array(fc.constantFrom("a", "b", "c", "*", ">"), { minLength: 1, maxLength: 4 }).map((tokens) => tokens.join("."));

describe("names", () => {
  it("accepts and rejects the keys KV-SEMANTICS.md lists", () => {
    for (const key of ["foo", "_foo", "-foo", "123", "a/b/c", "a.b.c"]) expect(isValidKey(key), key).toBe(true);
    for (const key of [" x y", "x ", "x!", "xx$", "*", ">", "x.>", "x.*", ".", ".x", "x.", ""]) expect(isValidKey(key), key).toBe(false);
    expect(isValidKey("k".repeat(1024))).toBe(true);
    expect(isValidKey("k".repeat(1025))).toBe(false);
    expect(isValidKey("k".repeat(11), 10)).toBe(false);
  });

  it("bucket names: 1..252 of a-z A-Z 0-9 _ -", () => {
    expect(isValidBucketName("my-kv_1")).toBe(true);
    expect(isValidBucketName("x".repeat(BUCKET_NAME_LENGTH_MAX))).toBe(true);
    for (const name of ["", "a.b", "a b", "x".repeat(253), "a>", 5]) expect(isValidBucketName(name)).toBe(false);
  });

  it("filters: key tokens, * for one token, > last", () => {
    for (const f of [">", "a.>", "a.*", "*.b", "*", "a.*.>", "a"]) expect(isValidFilter(f), f).toBe(true);
    for (const f of ["", ">.a", "a.>.b", "a*", "*a", "a.", ".a", "a..b", "a b"]) expect(isValidFilter(f), f).toBe(false);
  });

  it("matching: a.> matches a.b and a.b.c, not a; a.* one token; > everything", () => {
    expect(matchFilter("a.>", "a.b")).toBe(true);
    expect(matchFilter("a.>", "a.b.c")).toBe(true);
    expect(matchFilter("a.>", "a")).toBe(false);
    expect(matchFilter("a.*", "a.b")).toBe(true);
    expect(matchFilter("a.*", "a.b.c")).toBe(false);
    expect(matchFilter(">", "anything.at.all")).toBe(true);
    expect(matchAnyFilter(["x", "a.*"], "a.q")).toBe(true);
    expect(matchAnyFilter([], "a")).toBe(false);
  });

  it("agrees with the regular-expression oracle on keys, filters and bucket names", () => {
    fc.assert(
      fc.property(text, (s) => {
        expect(isValidKey(s)).toBe(KEY_ORACLE.test(s));
        expect(isValidFilter(s)).toBe(FILTER_ORACLE.test(s));
        expect(isValidBucketName(s)).toBe(BUCKET_ORACLE.test(s));
      }),
      { numRuns: 5000 },
    );
  });

  it("agrees with the token-by-token oracle on matching", () => {
    fc.assert(
      fc.property(filterish.filter((f) => isValidFilter(f)), keyish, (filter, key) => {
        expect(matchFilter(filter, key)).toBe(matchOracle(filter, key));
      }),
      { numRuns: 5000 },
    );
  });

  it("validators throw CairnError with NATS wording, also for non-strings", () => {
    expect(() => validateKey("a.*")).toThrow(new CairnError("INVALID_KEY", "invalid key"));
    expect(() => validateFilter("a.>.b")).toThrow("invalid key");
    expect(() => validateBucketName("a.b")).toThrow("invalid bucket name");
    expect(() => validateKey(3)).toThrow(CairnError);
    expect(validateKey("a.b")).toBe("a.b");
  });
});
