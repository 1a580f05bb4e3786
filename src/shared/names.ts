/**
 * The canonical rules for bucket names, keys and key filters (KV-SEMANTICS.md, "Names"), shared by every
 * layer: src/kv validates commands with them, src/client rejects bad arguments before anything is sent,
 * src/cli goes through the client. Pure, no imports beyond src/shared.
 *
 * Keys are NATS subjects restricted to `a-z A-Z 0-9 _ - / = .`: tokens separated by `.`, no empty token,
 * no leading or trailing `.`. Keys are ASCII, so a key's length in characters is its length in bytes.
 * Filters add `*` (exactly one token) and `>` (one or more trailing tokens, last token only).
 * As regular expressions (the oracle test/unit/client-names.test.ts checks these functions against):
 *   bucket: ^[a-zA-Z0-9_-]{1,252}$
 *   key:    ^T(\.T)*$ with T = [a-zA-Z0-9_\-/=]+
 *   filter: tokens are T or `*`, and the last may be `>`
 *
 * Validation and matching sit on the state machine's hot path (every write validates its key, every
 * filtered scan matches keys), so they walk character codes instead of splitting strings (the
 * algorithm of src/kv/names.ts, moved here so both layers share one copy).
 */
import { CairnError } from "./errors.ts";

/** Bucket names: 1..BUCKET_NAME_LENGTH_MAX characters of `a-z A-Z 0-9 _ -`. */
export const BUCKET_NAME_LENGTH_MAX = 252;

/**
 * Default key length limit in bytes (= DEFAULT_KV_LIMITS.keyBytesMax of src/kv). A cluster may configure
 * another limit; the client checks this default and the server its own.
 */
export const KEY_BYTES_MAX = 1024;

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
export function isValidKey(key: unknown, keyBytesMax: number = KEY_BYTES_MAX): key is string {
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
export function isValidFilter(filter: unknown, keyBytesMax: number = KEY_BYTES_MAX): filter is string {
  if (typeof filter !== "string") return false;
  const length = filter.length;
  if (length === 0 || length > keyBytesMax) return false;
  let tokenStart = 0;
  for (let i = 0; i <= length; i++) {
    const c = i === length ? CHAR_DOT : filter.charCodeAt(i);
    if (c === CHAR_DOT) {
      const tokenLength = i - tokenStart;
      if (tokenLength === 0) return false;
      if (tokenLength === 1 && filter.charCodeAt(tokenStart) === CHAR_GT && i !== length) return false; // `>` only last
      tokenStart = i + 1;
    } else if (c === CHAR_STAR || c === CHAR_GT) {
      // A wildcard must be a whole token: alone between separators.
      const alone = i === tokenStart && (i + 1 === length || filter.charCodeAt(i + 1) === CHAR_DOT);
      if (!alone) return false;
    } else if (c >= 128 || KEY_CHAR[c] === 0) {
      return false;
    }
  }
  return true;
}

/** True when the (valid) filter has a `*` or `>` token. */
export function isWildcardFilter(filter: string): boolean {
  return filter.includes("*") || filter.includes(">");
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

/** Does `key` match any of `filters` (a union)? An empty list matches nothing. */
export function matchAnyFilter(filters: readonly string[], key: string): boolean {
  for (const filter of filters) if (matchFilter(filter, key)) return true;
  return false;
}

/** Throws CairnError INVALID_BUCKET_NAME (`invalid bucket name`), also for a non-string. Returns the name. */
export function validateBucketName(name: unknown): string {
  if (!isValidBucketName(name)) throw new CairnError("INVALID_BUCKET_NAME", "invalid bucket name");
  return name;
}

/** Throws CairnError INVALID_KEY (`invalid key`), also for a non-string. Returns the key. */
export function validateKey(key: unknown, keyBytesMax: number = KEY_BYTES_MAX): string {
  if (!isValidKey(key, keyBytesMax)) throw new CairnError("INVALID_KEY", "invalid key");
  return key;
}

/** Throws CairnError INVALID_KEY (`invalid key`) for a bad filter, also for a non-string. Returns it. */
export function validateFilter(filter: unknown, keyBytesMax: number = KEY_BYTES_MAX): string {
  if (!isValidFilter(filter, keyBytesMax)) throw new CairnError("INVALID_KEY", "invalid key");
  return filter;
}
