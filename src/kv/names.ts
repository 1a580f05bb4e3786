/**
 * Names as the state machine uses them: validation that returns the name or throws CairnError (the rules
 * themselves are the project's one copy in src/shared/names.ts), and filter matching for scans.
 *
 * Keys are NATS subjects restricted to `a-z A-Z 0-9 _ - / = .`: tokens separated by `.`, no empty token,
 * no leading or trailing `.`. Keys are ASCII, so a key's length in characters is its length in bytes.
 * Filters add `*` (exactly one token) and `>` (one or more trailing tokens, last token only).
 *
 * matchFilter (allocation-free, so a filtered log walk can match a million keys) is src/shared's one
 * copy, re-exported here.
 */
import { CairnError } from "../shared/errors.ts";
import { isValidBucketName, isValidFilter, isValidKey, matchFilter } from "../shared/names.ts";
import { DEFAULT_KV_LIMITS, type KvLimits } from "./types.ts";

export { BUCKET_NAME_LENGTH_MAX, isValidBucketName, isValidFilter, isValidKey, matchFilter } from "../shared/names.ts";

/** Throws CairnError INVALID_BUCKET_NAME (`invalid bucket name`). Returns the name. */
export function validateBucketName(name: unknown): string {
  if (!isValidBucketName(name)) throw new CairnError("INVALID_BUCKET_NAME", "invalid bucket name");
  return name;
}

/** Throws CairnError INVALID_KEY (`invalid key`). Returns the key. */
export function validateKey(key: unknown, limits: KvLimits = DEFAULT_KV_LIMITS): string {
  if (!isValidKey(key, limits.keyBytesMax)) throw new CairnError("INVALID_KEY", "invalid key");
  return key;
}

/** Throws CairnError INVALID_KEY (`invalid key`) for a bad filter. Returns the filter. */
export function validateFilter(filter: unknown, limits: KvLimits = DEFAULT_KV_LIMITS): string {
  if (!isValidFilter(filter, limits.keyBytesMax)) throw new CairnError("INVALID_KEY", "invalid key");
  return filter;
}

/** A validated filter, prepared for index lookups. */
export interface CompiledFilter {
  readonly filter: string;
  /** No wildcard: the filter is a single key. */
  readonly exact: boolean;
  /**
   * Every key the filter can match starts with this (the literal tokens before the first wildcard, with
   * their trailing `.`); "" when the first token is a wildcard (the filter may match any key).
   */
  readonly prefix: string;
  /** True for `>`: matches every key. */
  readonly all: boolean;
}

/** Prepares validated filters. Throws CairnError INVALID_KEY for an invalid one. */
export function compileFilters(filters: readonly string[], limits: KvLimits): CompiledFilter[] {
  const out: CompiledFilter[] = [];
  for (const filter of filters) {
    validateFilter(filter, limits);
    const tokens = filter.split(".");
    const wildcardAt = tokens.findIndex((t) => t === "*" || t === ">");
    if (wildcardAt === -1) {
      out.push({ filter, exact: true, prefix: filter, all: false });
    } else {
      const prefix = wildcardAt === 0 ? "" : tokens.slice(0, wildcardAt).join(".") + ".";
      out.push({ filter, exact: false, prefix, all: filter === ">" });
    }
  }
  return out;
}

/** Does the key match any of the compiled filters (a union)? */
export function matchAny(filters: readonly CompiledFilter[], key: string): boolean {
  for (const f of filters) {
    if (f.all) return true;
    if (f.exact ? f.filter === key : key.startsWith(f.prefix) && matchFilter(f.filter, key)) return true;
  }
  return false;
}
