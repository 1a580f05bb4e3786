/**
 * Hashes of keys and request ids, for the record log's key table and the request-id window. Iteration
 * order of those tables is never observable: nothing in the replicated state depends on a hash value.
 */

/** murmur3's finalizer: every input bit reaches the low bits the tables mask. */
function finalize(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** 32-bit FNV-1a over UTF-16 code units, finalized: for any string. */
export function hashString(text: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return finalize(h);
}

/**
 * Packs `text` into `words`, four Latin-1 characters per int, lowest byte first, the last word padded
 * with zeros; returns the number of words used, or -1 when the text does not fit `words` or has a
 * character beyond Latin-1. One pass over the characters: reading a character of a string is the
 * expensive part (decoded strings are slices of a larger one), so callers hash and compare the words.
 */
export function packLatin1(text: string, words: Int32Array): number {
  const length = text.length;
  if (length > words.length * 4) return -1;
  let all = 0;
  let w = 0;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    const c0 = text.charCodeAt(i);
    const c1 = text.charCodeAt(i + 1);
    const c2 = text.charCodeAt(i + 2);
    const c3 = text.charCodeAt(i + 3);
    all |= c0 | c1 | c2 | c3;
    words[w++] = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
  }
  if (i < length) {
    let word = 0;
    for (let shift = 0; i < length; i++, shift += 8) {
      const c = text.charCodeAt(i);
      all |= c;
      word |= c << shift;
    }
    words[w++] = word;
  }
  return all > 0xff ? -1 : w;
}

/** murmur3 (32-bit) over `count` packed words of a text of `length` characters. */
export function hashWords(words: Int32Array, count: number, length: number): number {
  let h = length;
  for (let w = 0; w < count; w++) {
    let k = Math.imul(words[w]!, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return finalize(h ^ length);
}

/** Characters of a key packed into its row: keys up to this long (Latin-1) are hashed as words. */
export const KEY_INLINE_WORDS = 4;
const keyWords = new Int32Array(KEY_INLINE_WORDS);

/**
 * The hash of a key as the record log computes it: hashWords of its packed characters when it has at
 * most 4 * KEY_INLINE_WORDS Latin-1 characters, hashString otherwise (a key always takes the same path).
 */
export function hashKey(key: string): number {
  const count = packLatin1(key, keyWords);
  return count >= 0 ? hashWords(keyWords, count, key.length) : hashString(key);
}
