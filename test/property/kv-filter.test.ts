/**
 * Goal: filter matching and the index lookups built on it agree with a naive reading of the spec.
 * matchFilter (allocation-free) vs a split-based matcher; key/filter validity vs token regexes; the
 * literal prefix compileFilters derives is a true prefix of every matching key (so prefix scans miss
 * nothing); and keys()/history() through the sorted index equal a brute-force filter over all keys.
 * Method: fast-check over keys and filters drawn from a small token alphabet (so matches are common),
 * plus arbitrary strings for validity.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_KV_LIMITS, isValidFilter, isValidKey, KvStateMachine, matchFilter, normalizeConfig } from "../../src/kv/index.ts";
import { compileFilters, matchAny } from "../../src/kv/names.ts";
import { naiveMatch, naiveValidFilter, naiveValidKey } from "./kv-reference.ts";

const token = fc.constantFrom("a", "b", "ab", "c-d", "x/y", "=");
const key = fc.array(token, { minLength: 1, maxLength: 5 }).map((t) => t.join("."));
const filter = fc
  .tuple(fc.array(fc.oneof(token, fc.constant("*")), { minLength: 0, maxLength: 4 }), fc.boolean())
  .filter(([tokens, gt]) => tokens.length > 0 || gt)
  .map(([tokens, gt]) => [...tokens, ...(gt ? [">"] : [])].join("."));
const anyText = fc.string({ unit: fc.constantFrom("a", "b", ".", "*", ">", " ", "-", "/", "=", "_", "!", "ä"), maxLength: 8 });

describe("filters, property-based", () => {
  it("matchFilter agrees with a naive split-based matcher", () => {
    fc.assert(
      fc.property(filter, key, (f, k) => {
        expect(matchFilter(f, k)).toBe(naiveMatch(f, k));
      }),
      { numRuns: 20_000 },
    );
  });

  it("a filter without wildcards matches exactly the equal key", () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(matchFilter(a, b)).toBe(a === b);
        expect(matchFilter(a, a)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it("key and filter validity agree with the token rules", () => {
    fc.assert(
      fc.property(anyText, (text) => {
        expect(isValidKey(text)).toBe(naiveValidKey(text, 1024));
        expect(isValidFilter(text)).toBe(naiveValidFilter(text, 1024));
      }),
      { numRuns: 20_000 },
    );
  });

  it("every key a filter matches starts with the filter's literal prefix", () => {
    fc.assert(
      fc.property(filter, key, (f, k) => {
        const [compiled] = compileFilters([f], DEFAULT_KV_LIMITS);
        if (matchFilter(f, k)) expect(k.startsWith(compiled!.prefix)).toBe(true);
        expect(matchAny([compiled!], k)).toBe(naiveMatch(f, k));
      }),
      { numRuns: 20_000 },
    );
  });

  it("keys() and history() with filters equal a brute-force scan, on both query plans", () => {
    fc.assert(
      fc.property(fc.uniqueArray(key, { minLength: 1, maxLength: 1500 }), fc.array(filter, { minLength: 1, maxLength: 3 }), (keys, filters) => {
        const sm = new KvStateMachine();
        let index = 0;
        const latest = new Map<string, number>(); // key -> latest revision
        const apply = (k: string, value: number): void => {
          const { result } = sm.apply(++index, { now: 1, command: { type: "put", bucket: "b", key: k, value: new Uint8Array([value]) } });
          latest.set(k, (result as { revision: number }).revision);
        };
        sm.apply(++index, { now: 1, command: { type: "bucketCreate", bucket: "b", config: normalizeConfig({ history: 2 }) } });
        for (const k of keys) apply(k, 1);
        for (const k of keys.slice(0, Math.floor(keys.length / 3))) apply(k, 2); // rewritten keys move to the end
        const matching = keys.filter((k) => filters.some((f) => naiveMatch(f, k)));
        const byRevision = [...matching].sort((x, y) => latest.get(x)! - latest.get(y)!);
        expect(sm.keys("b", filters).keys).toEqual(byRevision);
        const history = sm.history("b", filters).records;
        const expectedCount = matching.reduce((n, k) => n + (latest.get(k)! > keys.length ? 2 : 1), 0);
        expect(history.length).toBe(expectedCount);
        expect(history.every((r) => filters.some((f) => naiveMatch(f, r.key)))).toBe(true);
        expect(history.every((r, i) => i === 0 || history[i - 1]!.revision < r.revision)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
