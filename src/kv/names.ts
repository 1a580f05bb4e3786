/**
 * Names: bucket names, keys and key filters (KV-SEMANTICS.md, "Names"), and filter matching.
 *
 * Keys are NATS subjects restricted to `a-z A-Z 0-9 _ - / = .`: tokens separated by `.`, no empty token,
 * no leading or trailing `.`. Keys are ASCII, so a key's length in characters is its length in bytes.
 * Filters add `*` (exactly one token) and `>` (one or more trailing tokens, last token only).
 *
 * Validation and matching sit on the state machine's hot path (every write validates its key again at
 * apply time, every filtered scan matches keys), so they walk character codes instead of splitting.
 */
import { CairnError } from "../shared/errors.ts";
import { DEFAULT_KV_LIMITS, type KvLimits } from "./types.ts";

/** Bucket names: 1..BUCKET_NAME_LENGTH_MAX characters of `a-z A-Z 0-9 _ -`. */
export const BUCKET_NAME_LENGTH_MAX = 252;

const CHAR_DOT = 46; // .
const CHAR_STAR = 42; // *
const CHAR_GT = 62; // >

/** KEY_CHAR[c] = 1 for characters allowed in a key token (the `.` separator excluded). */
const KEY_CHAR = new Uint8Array(128);
/** BUCKET_CHAR[c] = 1 for characters allowed in a bucket name. */
const BUCKET_CHAR = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  if (alnum || c === 95 /* _ */ || c === 45 /* - */) BUCKET_CHAR[c] = 1;
  if (alnum || c === 95 || c === 45 || c === 47 /* / */ || c === 61 /* = */) KEY_CHAR[c] = 1;
}

export function isValidBucketName(name: unknown): name is string {
  if (typeof name !== "string") return false;
  const length = name.length;
  if (length === 0 || length > BUCKET_NAME_LENGTH_MAX) return false;
  for (let i = 0; i < length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || BUCKET_CHAR[c] === 0) return false;
  }
  return true;
}

/** A stored key: valid tokens separated by single dots, at most keyBytesMax bytes. */
export function isValidKey(key: unknown, keyBytesMax: number = DEFAULT_KV_LIMITS.keyBytesMax): key is string {
  if (typeof key !== "string") return false;
  const length = key.length;
  if (length === 0 || length > keyBytesMax) return false;
  let atTokenStart = true; // a `.` here would make an empty token (leading `.` or `..`)
  for (let i = 0; i < length; i++) {
    const c = key.charCodeAt(i);
    if (c === CHAR_DOT) {
      if (atTokenStart) return false;
      atTokenStart = true;
    } else if (c < 128 && KEY_CHAR[c] === 1) {
      atTokenStart = false;
    } else {
      return false;
    }
  }
  return !atTokenStart; // a trailing `.` leaves an empty last token
}

/** A filter: tokens are key tokens, `*`, or `>` as the last token. */
export function isValidFilter(filter: unknown, keyBytesMax: number = DEFAULT_KV_LIMITS.keyBytesMax): filter is string {
  if (typeof filter !== "string") return false;
  const length = filter.length;
  if (length === 0 || length > keyBytesMax) return false;
  let tokenStart = 0;
  for (let i = 0; i <= length; i++) {
    const c = i === length ? CHAR_DOT : filter.charCodeAt(i);
    if (c === CHAR_DOT) {
      const tokenLength = i - tokenStart;
      if (tokenLength === 0) return false;
      if (tokenLength === 1) {
        const t = filter.charCodeAt(tokenStart);
        if (t === CHAR_GT && i !== length) return false; // `>` only as the last token
      }
      tokenStart = i + 1;
    } else if (c === CHAR_STAR || c === CHAR_GT) {
      // A wildcard must be a whole token: alone between separators.
      const prev = i === tokenStart;
      const next = i + 1 === length || filter.charCodeAt(i + 1) === CHAR_DOT;
      if (!prev || !next) return false;
    } else if (c >= 128 || KEY_CHAR[c] === 0) {
      return false;
    }
  }
  return true;
}

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

/**
 * Does `key` match `filter`? Both must be valid. `a.*` matches `a.b` only; `a.>` matches `a.b` and
 * `a.b.c`, not `a`; `>` matches every key. Allocation-free: it walks both strings token by token.
 */
export function matchFilter(filter: string, key: string): boolean {
  const filterLength = filter.length;
  const keyLength = key.length;
  let f = 0; // start of the current filter token; > filterLength once the filter is consumed
  let k = 0; // start of the current key token; > keyLength once the key is consumed
  for (;;) {
    if (f > filterLength) return k > keyLength;
    if (k > keyLength) return false;
    let fEnd = filter.indexOf(".", f);
    if (fEnd === -1) fEnd = filterLength;
    let kEnd = key.indexOf(".", k);
    if (kEnd === -1) kEnd = keyLength;
    const tokenLength = fEnd - f;
    if (tokenLength === 1) {
      const c = filter.charCodeAt(f);
      if (c === CHAR_GT) return true; // the key still has at least this token
      if (c === CHAR_STAR) {
        f = fEnd + 1;
        k = kEnd + 1;
        continue;
      }
    }
    if (tokenLength !== kEnd - k) return false;
    for (let i = 0; i < tokenLength; i++) {
      if (filter.charCodeAt(f + i) !== key.charCodeAt(k + i)) return false;
    }
    f = fEnd + 1;
    k = kEnd + 1;
  }
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
