/**
 * The retained records of one bucket, packed into typed arrays for memory and speed: a million keys must
 * fit in well under 250 bytes of overhead each (one JS object per record with its own Uint8Array value
 * would use that alone), and a get or an overwrite should touch few cache lines.
 *
 * Records live in slots ordered by revision (slot order = revision order = time order, because
 * revisions and the clamped leader time only grow). A slot is one 48-byte row of a shared buffer, so a
 * record's fields sit in one or two cache lines:
 *
 *   Float64 view, 6 per slot:  0 revision | 1 created | 2 expiresAt (0 = none)
 *   Int32 view, 12 per slot:   6 key id | 7 prev | 8 next | 9 value chunk (-1 = empty)
 *                              | 10 value offset << 3 | operation code and flags | 11 value length
 *
 * Removing a record turns its slot into a tombstone (a bit in removedBits, 1/384 of the rows' size);
 * the rows are compacted when the buffer fills up, so removal anywhere is O(1) amortized.
 *
 * An overwrite with history 1 (replaceOnly) does not touch the replaced record's row at all: in a large
 * bucket that row is a random place in memory, and writing it (a link, a tombstone) or reading it (its
 * value's size) cost a fifth of the overwrite. The tombstone is the bit; the value's bytes are released
 * later in batches (flushFrees), whose reads of many rows overlap instead of each waiting on memory. Each key's records form a doubly linked list (prev = next older
 * record of the key, next = next newer), and each key has a 32-byte row (newest slot, oldest slot,
 * record count and key length, name hash, and a short key's characters): history trimming and purges
 * touch only that key.
 *
 * The key rows are themselves the hash table that finds a key by name (open addressing, linear
 * probing, at most 3/4 full counting tombstones): a key's id is the position of its row, so finding an
 * existing key reads the row it needs anyway, and a key of up to 16 Latin-1 characters is compared with
 * the looked-up name inside that row. In a bucket of a million keys that is one wait on memory where a
 * separate table, the row, the name list and the stored string took four. Ids are stable until a new key
 * is registered (ensureKey), which may rebuild the table and renumber every key: callers hold no ids
 * across it. Keys are listed in order in a SortedKeys index for prefix scans. Values sit in a
 * ValueArena. Records with their own expiry (per-key TTL, markers) are also entered into an ExpiryHeap.
 *
 * This class maintains the structure only; the rules (CAS, limits, expiry) are in bucket.ts.
 */
import { assert } from "../shared/assert.ts";
import { ExpiryHeap } from "./expiry-heap.ts";
import { hashString, hashWords, KEY_INLINE_WORDS, packLatin1 } from "./hash.ts";
import { SortedKeys, type KeyOwner } from "./sorted-keys.ts";
import type { KvRecord, Operation } from "./types.ts";
import { VALUE_OFFSET_LIMIT, ValueArena } from "./value-arena.ts";

/** Operation codes (low two bits) and the MaxAge marker flag. */
export const OP_PUT = 0;
export const OP_DEL = 1;
export const OP_PURGE = 2;
export const OP_MASK = 3;
export const FLAG_MAX_AGE = 4;
const OP_BITS = 3;

export const OPERATIONS: readonly Operation[] = ["PUT", "DEL", "PURGE"];

export const EMPTY_VALUE: Uint8Array = new Uint8Array(0);

const SLOT_F64 = 6;
const SLOT_I32 = 12;
const F_REVISION = 0;
const F_CREATED = 1;
const F_EXPIRES = 2;
const I_KEY = 6;
const I_PREV = 7;
const I_NEXT = 8;
const I_CHUNK = 9;
const I_OFFSET_OP = 10;
const I_LENGTH = 11;

const KEY_I32 = 8;
const K_NEWEST = 0;
const K_OLDEST = 1;
/** Record count in the low 7 bits (<= 65), FLAG_INLINE, key length (>= 1) from bit 8; or ROW_EMPTY, ROW_TOMBSTONE. */
const K_COUNT_LENGTH = 2;
/** A row never used since the table was built: ends every probe. */
const ROW_EMPTY = 0;
/** A row whose key was forgotten: probes go on past it, a new key may take it. */
const ROW_TOMBSTONE = 1;
const K_HASH = 3;
/** KEY_INLINE_WORDS ints: a key of up to 16 Latin-1 characters, packed by packLatin1. */
const K_CHARS = 4;
const COUNT_BITS = 8;
const COUNT_MASK = 0x7f;
/** The key's characters are all in its row (K_CHARS). */
const FLAG_INLINE = 0x80;
/** Keys longer than this cannot be stored (their length must fit next to the count). */
export const KEY_LENGTH_LIMIT = 2 ** (31 - COUNT_BITS) - 1;

const SLOTS_MIN = 64;
/** replaceOnly releases the values it replaced in batches of this many (see flushFrees). */
const PENDING_FREES_MAX = 256;
/** Key rows: a power of two, at least this many. */
const KEY_ROWS_MIN = 16;
/** placeAll: ints per key (hash, count-length, packed characters), and the bits of its counting sort. */
const PLACE_I32 = 2 + KEY_INLINE_WORDS;
const PLACE_BUCKET_BITS = 12;
/** Rebuild the expiry heap when more than this many of its entries (and half) are dead. */
const EXPIRY_DEAD_MIN = 1024;

assert(VALUE_OFFSET_LIMIT <= 2 ** (31 - OP_BITS), "value offsets must fit next to the operation bits");

/**
 * A key string that owns its characters. Strings decoded from a log entry are often slices of a larger
 * string (V8 SlicedString), and a stored slice would keep its whole parent alive for as long as the key
 * exists; a key is stored for a long time, so it is copied once, when it is new.
 */
function flatCopy(key: string): string {
  if (key.length < 13) return key; // V8 copies substrings this short anyway
  const codes = new Array<number>(key.length);
  for (let i = 0; i < key.length; i++) codes[i] = key.charCodeAt(i);
  return String.fromCharCode.apply(null, codes);
}

/** Rows for a table holding `keys` keys at most half full (a power of two). */
function keyRowsFor(keys: number): number {
  let rows = KEY_ROWS_MIN;
  while (rows < keys * 2) rows *= 2;
  return rows;
}

type MutableRecord = { -readonly [K in keyof KvRecord]: KvRecord[K] };

/**
 * A log's retained records in canonical form, as snapshots store them: keys in ascending order, records
 * in revision order referring to keys by position, values back to back. Equal logical states give equal
 * columns, however the slots, key ids and arena chunks happen to be laid out.
 */
export interface LogColumns {
  /** Every key with a retained record, strictly ascending. */
  readonly keys: readonly string[];
  readonly recordKey: Uint32Array;
  readonly revision: Float64Array;
  readonly created: Float64Array;
  readonly expiresAt: Float64Array;
  readonly op: Uint8Array;
  readonly valueLength: Uint32Array;
  /** All values, concatenated in revision order. */
  readonly values: Uint8Array;
}

export class RecordLog implements KeyOwner {
  // ---- slots: rows [first, end) in use, ordered by revision ----
  private capacity!: number;
  private f64!: Float64Array;
  private i32!: Int32Array;
  /** Invariant: first === end, or slot `first` is retained (it is the oldest retained record). */
  first!: number;
  /** One past the last slot in use. */
  end!: number;
  /** Retained records. */
  live!: number;
  /** Bit per slot: the record was removed. */
  private removedBits!: Uint8Array;
  /** Key bytes + value bytes of retained records, less the values of pendingFrees. */
  private byteCount!: number;
  /** Slots replaced by replaceOnly whose value bytes are not released yet (see flushFrees). */
  private readonly pendingFrees = new Int32Array(PENDING_FREES_MAX);
  private pendingCount = 0;
  private readonly pendingLengths = new Int32Array(PENDING_FREES_MAX);
  private readonly pendingChunks = new Int32Array(PENDING_FREES_MAX);
  /** Last revision assigned; survives clear(). */
  lastRevision = 0;

  // ---- keys: the row table (a power of two of rows), names by id ----
  private keyRows!: Int32Array;
  private keyMask!: number;
  private keyNames!: (string | undefined)[];
  /** Keys registered (live rows). */
  private keysLive!: number;
  private keyTombstones!: number;
  sorted!: SortedKeys;

  private arena!: ValueArena;
  expiry!: ExpiryHeap;

  /**
   * The key last passed to probe(): its characters packed as a key row holds them, and how many words
   * that took (-1: not a short Latin-1 key). keyMatches() compares rows with it.
   */
  private readonly probeWords = new Int32Array(KEY_INLINE_WORDS);
  private probeWordCount = -1;
  /** Entries in `expiry` whose record was removed. */
  expiryDead!: number;

  constructor(expectedKeys = 0) {
    this.reset(expectedKeys);
  }

  /** Empties the log (lastRevision excepted). */
  private reset(expectedKeys: number): void {
    this.capacity = 0;
    this.f64 = new Float64Array(0);
    this.i32 = new Int32Array(0);
    this.first = 0;
    this.end = 0;
    this.live = 0;
    this.removedBits = new Uint8Array(0);
    this.byteCount = 0;
    this.pendingCount = 0;
    this.allocateKeyRows(keyRowsFor(expectedKeys));
    this.sorted = new SortedKeys(this);
    this.arena = new ValueArena();
    this.expiry = new ExpiryHeap();
    this.expiryDead = 0;
  }

  // ---- slot fields ----
  revision(slot: number): number {
    return this.f64[slot * SLOT_F64 + F_REVISION]!;
  }
  created(slot: number): number {
    return this.f64[slot * SLOT_F64 + F_CREATED]!;
  }
  /** Key id of the record, -1 when the slot was removed. */
  keyOf(slot: number): number {
    return this.isRemoved(slot) ? -1 : this.i32[slot * SLOT_I32 + I_KEY]!;
  }
  private isRemoved(slot: number): boolean {
    return (this.removedBits[slot >>> 3]! & (1 << (slot & 7))) !== 0;
  }

  /** Key bytes + value bytes of retained records. */
  get bytes(): number {
    this.flushFrees();
    return this.byteCount;
  }
  /** The key's next older record, or -1. */
  older(slot: number): number {
    return this.i32[slot * SLOT_I32 + I_PREV]!;
  }
  /** The key's next newer record, or -1. */
  newer(slot: number): number {
    return this.i32[slot * SLOT_I32 + I_NEXT]!;
  }
  isPut(slot: number): boolean {
    return (this.i32[slot * SLOT_I32 + I_OFFSET_OP]! & OP_MASK) === OP_PUT;
  }
  valueLength(slot: number): number {
    return this.i32[slot * SLOT_I32 + I_LENGTH]!;
  }

  // ---- key fields ----
  /** Newest slot of key `id`. */
  newest(id: number): number {
    return this.keyRows[id * KEY_I32 + K_NEWEST]!;
  }
  /** Oldest slot of key `id`. */
  oldest(id: number): number {
    return this.keyRows[id * KEY_I32 + K_OLDEST]!;
  }
  /** Retained records of key `id` (<= history <= 64). */
  count(id: number): number {
    return this.keyRows[id * KEY_I32 + K_COUNT_LENGTH]! & COUNT_MASK;
  }
  keyName(id: number): string {
    return this.keyNames[id]!;
  }
  /**
   * Is `key` (with hash `hash`, the key last probed) the key of the live row `id`? A short key
   * compares as words, within the row.
   */
  private rowMatches(id: number, key: string, hash: number): boolean {
    const keyRows = this.keyRows;
    const row = id * KEY_I32;
    if (keyRows[row + K_HASH] !== hash) return false;
    const countLength = keyRows[row + K_COUNT_LENGTH]!;
    if (countLength >>> COUNT_BITS !== key.length) return false;
    if ((countLength & FLAG_INLINE) === 0) return this.keyNames[id] === key;
    const words = this.probeWords;
    const count = this.probeWordCount;
    if (count < 0) return false; // equal keys are either both short Latin-1 or neither
    for (let w = 0; w < count; w++) if (words[w] !== keyRows[row + K_CHARS + w]) return false;
    return true;
  }
  /** KeyOwner, for the sorted index. */
  liveNameOf(id: number): string | undefined {
    return this.keyNames[id];
  }
  /** Keys with a retained record. */
  get keyCount(): number {
    return this.keysLive;
  }

  /** Ids of every key with a retained record (in no meaningful order). */
  keyIdList(): number[] {
    const ids: number[] = [];
    for (let id = 0; id <= this.keyMask; id++) if (this.keyNames[id] !== undefined) ids.push(id);
    return ids;
  }

  /** Key id, or -1 when the key has no retained record. */
  keyId(key: string): number {
    const hash = this.probe(key);
    const keyRows = this.keyRows;
    const mask = this.keyMask;
    for (let id = hash & mask; ; id = (id + 1) & mask) {
      const countLength = keyRows[id * KEY_I32 + K_COUNT_LENGTH]!;
      if (countLength === ROW_EMPTY) return -1;
      if (countLength !== ROW_TOMBSTONE && this.rowMatches(id, key, hash)) return id;
    }
  }

  /** Packs a key into probeWords (when short) and returns its hash, as hashKey() computes it. */
  private probe(key: string): number {
    const count = packLatin1(key, this.probeWords);
    this.probeWordCount = count;
    return count >= 0 ? hashWords(this.probeWords, count, key.length) : hashString(key);
  }

  /** Id of a key, registering it (with no records yet) when new: that may renumber every key. */
  ensureKey(key: string): number {
    const existing = this.keyId(key);
    if (existing !== -1) return existing;
    assert(key.length >= 1 && key.length <= KEY_LENGTH_LIMIT, "key length out of the record log's range");
    if ((this.keysLive + this.keyTombstones + 1) * 4 > (this.keyMask + 1) * 3) this.rebuildKeyRows(this.keysLive + 1);
    const name = flatCopy(key);
    const id = this.placeKey(name);
    this.sorted.insert(name, id);
    return id;
  }

  /** Registers a key that is not in the table, in the first free row of its probe; returns its id. */
  private placeKey(name: string): number {
    const hash = this.probe(name);
    const keyRows = this.keyRows;
    const mask = this.keyMask;
    let id = hash & mask;
    for (;;) {
      const countLength = keyRows[id * KEY_I32 + K_COUNT_LENGTH]!;
      if (countLength === ROW_EMPTY) break;
      if (countLength === ROW_TOMBSTONE) {
        this.keyTombstones--;
        break;
      }
      id = (id + 1) & mask;
    }
    this.keyNames[id] = name;
    this.initKeyRow(id, name, hash);
    this.keysLive++;
    return id;
  }

  /** A new key's row: no records, its length, hash and (when short) characters; `key` was probed last. */
  private initKeyRow(id: number, key: string, hash: number): void {
    const keyRows = this.keyRows;
    const row = id * KEY_I32;
    keyRows[row + K_NEWEST] = -1;
    keyRows[row + K_OLDEST] = -1;
    keyRows[row + K_HASH] = hash;
    keyRows.fill(0, row + K_CHARS, row + KEY_I32);
    const count = this.probeWordCount;
    for (let w = 0; w < count; w++) keyRows[row + K_CHARS + w] = this.probeWords[w]!;
    keyRows[row + K_COUNT_LENGTH] = (key.length << COUNT_BITS) | (count >= 0 ? FLAG_INLINE : 0);
  }

  /** Appends a record as the newest of key `id`; returns its slot. The revision must be the next one. */
  append(id: number, op: number, value: Uint8Array, created: number, expiresAt: number, revision: number): number {
    assert(revision > this.lastRevision, "revisions must increase");
    if (this.end === this.capacity) this.makeRoom();
    const slot = this.end++;
    this.lastRevision = revision;
    const f = slot * SLOT_F64;
    this.f64[f + F_REVISION] = revision;
    this.f64[f + F_CREATED] = created;
    this.f64[f + F_EXPIRES] = expiresAt;
    const i = slot * SLOT_I32;
    const i32 = this.i32;
    const row = id * KEY_I32;
    const keyRows = this.keyRows;
    const newest = keyRows[row + K_NEWEST]!;
    i32[i + I_KEY] = id;
    i32[i + I_PREV] = newest;
    i32[i + I_NEXT] = -1;
    if (newest === -1) keyRows[row + K_OLDEST] = slot;
    else i32[newest * SLOT_I32 + I_NEXT] = slot;
    keyRows[row + K_NEWEST] = slot;
    const countLength = keyRows[row + K_COUNT_LENGTH]! + 1;
    keyRows[row + K_COUNT_LENGTH] = countLength;
    const length = value.length;
    i32[i + I_LENGTH] = length;
    if (length === 0) {
      i32[i + I_CHUNK] = -1;
      i32[i + I_OFFSET_OP] = op;
    } else {
      i32[i + I_CHUNK] = this.arena.store(value);
      i32[i + I_OFFSET_OP] = (this.arena.lastOffset << OP_BITS) | op;
    }
    this.byteCount += (countLength >>> COUNT_BITS) + length;
    this.live++;
    if (expiresAt !== 0) {
      this.expiry.push(expiresAt, revision);
      if (this.expiryDead > EXPIRY_DEAD_MIN && this.expiryDead * 2 > this.expiry.size) this.rebuildExpiry();
    }
    if (this.arena.shouldCompact()) this.compactValues();
    return slot;
  }

  /** Removes the record in `slot` (any position in its key's list); a key left empty is forgotten. */
  remove(slot: number): void {
    const i32 = this.i32;
    const i = slot * SLOT_I32;
    assert(!this.isRemoved(slot), "RecordLog.remove: slot already removed");
    const id = i32[i + I_KEY]!;
    const row = id * KEY_I32;
    const keyRows = this.keyRows;
    const older = i32[i + I_PREV]!;
    const newer = i32[i + I_NEXT]!;
    if (older === -1) keyRows[row + K_OLDEST] = newer;
    else i32[older * SLOT_I32 + I_NEXT] = newer;
    if (newer === -1) keyRows[row + K_NEWEST] = older;
    else i32[newer * SLOT_I32 + I_PREV] = older;
    const length = i32[i + I_LENGTH]!;
    if (length !== 0) this.arena.free(i32[i + I_CHUNK]!, length);
    const countLength = keyRows[row + K_COUNT_LENGTH]! - 1;
    keyRows[row + K_COUNT_LENGTH] = countLength;
    this.byteCount -= (countLength >>> COUNT_BITS) + length;
    if (this.f64[slot * SLOT_F64 + F_EXPIRES] !== 0) this.expiryDead++;
    this.removedBits[slot >>> 3]! |= 1 << (slot & 7);
    this.live--;
    if ((countLength & COUNT_MASK) === 0) this.forgetKey(id);
    if (slot === this.first) this.advanceFirst();
  }

  /** Moves `first` past removed slots (after the record at `first` was removed). */
  private advanceFirst(): void {
    let first = this.first + 1;
    while (first < this.end && this.isRemoved(first)) first++;
    this.first = first;
  }

  /**
   * Appends a record for key `id`, which has exactly one record, and removes that one: append() then
   * remove() of the older record (as a history-1 bucket trims), without touching the older record's
   * row (see the class comment). Returns the new slot.
   */
  replaceOnly(id: number, op: number, value: Uint8Array, created: number, expiresAt: number, revision: number): number {
    assert(revision > this.lastRevision, "revisions must increase");
    if (this.end === this.capacity) this.makeRoom();
    const keyRows = this.keyRows;
    const row = id * KEY_I32;
    assert((keyRows[row + K_COUNT_LENGTH]! & COUNT_MASK) === 1, "RecordLog.replaceOnly: the key must have one record");
    const old = keyRows[row + K_NEWEST]!;
    const slot = this.end++;
    this.lastRevision = revision;
    const f = slot * SLOT_F64;
    this.f64[f + F_REVISION] = revision;
    this.f64[f + F_CREATED] = created;
    this.f64[f + F_EXPIRES] = expiresAt;
    const i = slot * SLOT_I32;
    const i32 = this.i32;
    i32[i + I_KEY] = id;
    i32[i + I_PREV] = -1;
    i32[i + I_NEXT] = -1;
    keyRows[row + K_NEWEST] = slot;
    keyRows[row + K_OLDEST] = slot;
    const length = value.length;
    i32[i + I_LENGTH] = length;
    if (length === 0) {
      i32[i + I_CHUNK] = -1;
      i32[i + I_OFFSET_OP] = op;
    } else {
      i32[i + I_CHUNK] = this.arena.store(value);
      i32[i + I_OFFSET_OP] = (this.arena.lastOffset << OP_BITS) | op;
    }
    this.byteCount += length; // the key's bytes stay; the old value's go in flushFrees
    this.removedBits[old >>> 3]! |= 1 << (old & 7);
    this.pendingFrees[this.pendingCount++] = old;
    if (this.pendingCount === PENDING_FREES_MAX) this.flushFrees();
    if (old === this.first) this.advanceFirst();
    if (expiresAt !== 0) {
      this.expiry.push(expiresAt, revision);
      if (this.expiryDead > EXPIRY_DEAD_MIN && this.expiryDead * 2 > this.expiry.size) this.rebuildExpiry();
    }
    if (this.arena.shouldCompact()) this.compactValues();
    return slot;
  }

  /**
   * Releases the values of the records replaceOnly removed: their bytes, their arena space, their
   * expiry entries. Runs before anything reads those counts or moves slots, and every
   * PENDING_FREES_MAX replacements; the rows are read in one loop of independent reads.
   */
  private flushFrees(): void {
    const count = this.pendingCount;
    if (count === 0) return;
    const { f64, i32, pendingFrees, arena } = this;
    // First only the reads (nothing depends on the one before), then the bookkeeping.
    const lengths = this.pendingLengths;
    const chunks = this.pendingChunks;
    let expiring = 0;
    for (let p = 0; p < count; p++) {
      const slot = pendingFrees[p]!;
      lengths[p] = i32[slot * SLOT_I32 + I_LENGTH]!;
      chunks[p] = i32[slot * SLOT_I32 + I_CHUNK]!;
      if (f64[slot * SLOT_F64 + F_EXPIRES] !== 0) expiring++;
    }
    for (let p = 0; p < count; p++) {
      const length = lengths[p]!;
      if (length !== 0) arena.free(chunks[p]!, length);
      this.byteCount -= length;
    }
    this.expiryDead += expiring;
    this.pendingCount = 0;
  }

  /** Removes the oldest records of key `id` until `newest` is its only one. Returns how many went. */
  removeOlderThan(id: number, newest: number): number {
    let removed = 0;
    while (this.oldest(id) !== newest) {
      this.remove(this.oldest(id));
      removed++;
    }
    return removed;
  }

  /** Removes every record of key `id`. Returns how many went. */
  removeKey(id: number): number {
    const count = this.count(id);
    for (let n = 0; n < count; n++) this.remove(this.oldest(id));
    return count;
  }

  /** The first slot (retained or not) with revision >= `revision`; `end` when none. */
  lowerSlot(revision: number): number {
    let low = this.first;
    let high = this.end;
    const f64 = this.f64;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (f64[mid * SLOT_F64 + F_REVISION]! < revision) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Slot of the retained record with this revision, or -1. */
  slotOfRevision(revision: number): number {
    const slot = this.lowerSlot(revision);
    return slot < this.end && this.revision(slot) === revision && this.keyOf(slot) !== -1 ? slot : -1;
  }

  /**
   * The record in a retained slot, as handed to callers (a fresh object; the value is a shared view).
   * `key`, when the caller has it at hand, saves a lookup of the key's name.
   */
  record(slot: number, key?: string): KvRecord {
    const i = slot * SLOT_I32;
    const f = slot * SLOT_F64;
    const offsetOp = this.i32[i + I_OFFSET_OP]!;
    const length = this.i32[i + I_LENGTH]!;
    const record: MutableRecord = {
      key: key ?? this.keyNames[this.i32[i + I_KEY]!]!,
      value: length === 0 ? EMPTY_VALUE : this.arena.view(this.i32[i + I_CHUNK]!, offsetOp >>> OP_BITS, length),
      revision: this.f64[f + F_REVISION]!,
      created: this.f64[f + F_CREATED]!,
      operation: OPERATIONS[offsetOp & OP_MASK]!,
    };
    const expiresAt = this.f64[f + F_EXPIRES]!;
    if (expiresAt !== 0) record.expiresAt = expiresAt;
    if ((offsetOp & FLAG_MAX_AGE) !== 0) record.reason = "MaxAge";
    return record;
  }

  /** Drops every record and key; lastRevision stays (revisions are never reused). */
  clear(): void {
    this.reset(0);
  }

  /** The retained records in canonical form (see LogColumns). */
  toColumns(): LogColumns {
    this.flushFrees();
    const { keys, ids } = this.sorted.entries();
    const position = new Int32Array(this.keyMask + 1);
    for (let k = 0; k < keys.length; k++) position[ids[k]!] = k;
    const n = this.live;
    const recordKey = new Uint32Array(n);
    const revision = new Float64Array(n);
    const created = new Float64Array(n);
    const expiresAt = new Float64Array(n);
    const op = new Uint8Array(n);
    const valueLength = new Uint32Array(n);
    const values = new Uint8Array(this.arena.liveBytes);
    const valueWords = new Int32Array(values.buffer, 0, values.length >>> 2);
    const { f64, i32 } = this;
    let j = 0;
    let offset = 0;
    for (let slot = this.first; slot < this.end; slot++) {
      if (this.isRemoved(slot)) continue;
      const i = slot * SLOT_I32;
      const id = i32[i + I_KEY]!;
      const f = slot * SLOT_F64;
      recordKey[j] = position[id]!;
      revision[j] = f64[f + F_REVISION]!;
      created[j] = f64[f + F_CREATED]!;
      expiresAt[j] = f64[f + F_EXPIRES]!;
      const offsetOp = i32[i + I_OFFSET_OP]!;
      op[j] = offsetOp & ((1 << OP_BITS) - 1);
      const length = i32[i + I_LENGTH]!;
      valueLength[j] = length;
      if (length !== 0) {
        this.arena.copyTo(i32[i + I_CHUNK]!, offsetOp >>> OP_BITS, length, values, valueWords, offset);
        offset += length;
      }
      j++;
    }
    assert(j === n && offset === values.length, "RecordLog.toColumns: counts drifted");
    return { keys, recordKey, revision, created, expiresAt, op, valueLength, values };
  }

  /**
   * Rebuilds a log from columns that were validated by the caller (keys strictly ascending and each
   * used, revisions strictly ascending and <= lastRevision, value lengths summing to values.length,
   * op codes valid, at most 64 records per key).
   */
  static fromColumns(columns: LogColumns, lastRevision: number): RecordLog {
    const { keys, recordKey, revision, created, expiresAt, op, valueLength, values } = columns;
    const log = new RecordLog(keys.length);
    const n = revision.length;
    log.allocateSlots(Math.max(SLOTS_MIN, n));
    const idOf = new Int32Array(keys.length);
    const countLength = new Int32Array(keys.length);
    log.placeAll(keys, idOf, countLength);
    log.sorted = SortedKeys.fromSorted(log, keys, idOf);
    // Records fill the slots in order. Their keys come in no order, so the per-key state (first and
    // last slot, count) is kept in arrays by key position, a few MB, and written to the key rows at
    // the end, without reading them: a read of a random key row per record waits on memory.
    const firstSlot = new Int32Array(keys.length);
    const lastSlot = new Int32Array(keys.length);
    const count = new Uint8Array(keys.length);
    const { f64, i32, arena } = log;
    const buffer = values.buffer;
    let at = values.byteOffset;
    let valueBytes = 0;
    for (let j = 0; j < n; j++) {
      const k = recordKey[j]!;
      const f = j * SLOT_F64;
      f64[f + F_REVISION] = revision[j]!;
      f64[f + F_CREATED] = created[j]!;
      f64[f + F_EXPIRES] = expiresAt[j]!;
      const i = j * SLOT_I32;
      i32[i + I_KEY] = idOf[k]!;
      if (count[k] === 0) {
        firstSlot[k] = j;
        i32[i + I_PREV] = -1;
      } else {
        const previous = lastSlot[k]!;
        i32[i + I_PREV] = previous;
        i32[previous * SLOT_I32 + I_NEXT] = j;
      }
      i32[i + I_NEXT] = -1;
      lastSlot[k] = j;
      count[k]!++;
      const length = valueLength[j]!;
      i32[i + I_LENGTH] = length;
      if (length === 0) {
        i32[i + I_CHUNK] = -1;
        i32[i + I_OFFSET_OP] = op[j]!;
      } else {
        // A view made from the buffer: a million subarray() calls would cost twice as much.
        i32[i + I_CHUNK] = arena.store(new Uint8Array(buffer, at, length));
        i32[i + I_OFFSET_OP] = (arena.lastOffset << OP_BITS) | op[j]!;
        at += length;
        valueBytes += length;
      }
      if (expiresAt[j] !== 0) log.expiry.push(expiresAt[j]!, revision[j]!);
    }
    let keyBytes = 0;
    const keyRows = log.keyRows;
    for (let k = 0; k < keys.length; k++) {
      const row = idOf[k]! * KEY_I32;
      keyRows[row + K_NEWEST] = lastSlot[k]!;
      keyRows[row + K_OLDEST] = firstSlot[k]!;
      keyRows[row + K_COUNT_LENGTH] = countLength[k]! + count[k]!;
      keyBytes += keys[k]!.length * count[k]!;
    }
    assert(n === 0 || revision[n - 1]! <= lastRevision, "RecordLog.fromColumns: revisions beyond lastRevision");
    log.first = 0;
    log.end = n;
    log.live = n;
    log.byteCount = keyBytes + valueBytes;
    log.lastRevision = lastRevision;
    return log;
  }

  /**
   * Registers every key of a fresh table at once, with no records; sets each key's id and its row's
   * count-length field (no records) in idOf and countLength. The keys go in by their rows' positions
   * (a counting sort of their hashes), so the table fills front to back instead of at a random row per
   * key; their characters are read once, in order.
   */
  private placeAll(keys: readonly string[], idOf: Int32Array, countLength: Int32Array): void {
    const n = keys.length;
    const mask = this.keyMask;
    assert(this.keysLive === 0 && n * 2 <= mask + 1, "RecordLog.placeAll: table not fresh or too small");
    let rowBits = 0;
    while (1 << rowBits <= mask) rowBits++;
    const shift = Math.max(0, rowBits - PLACE_BUCKET_BITS);
    // Counting sort by the top bits of each key's home row: count, then scatter each key's row fields
    // (hash, count-length with no records, packed characters) and position to its place.
    const starts = new Int32Array((1 << PLACE_BUCKET_BITS) + 1);
    for (let k = 0; k < n; k++) starts[((this.probe(keys[k]!) & mask) >>> shift) + 1]!++;
    for (let b = 1; b < starts.length; b++) starts[b]! += starts[b - 1]!;
    const fields = new Int32Array(n * PLACE_I32);
    const positions = new Int32Array(n);
    for (let k = 0; k < n; k++) {
      const key = keys[k]!;
      const hash = this.probe(key);
      const words = this.probeWordCount;
      const p = starts[(hash & mask) >>> shift]!++;
      const f = p * PLACE_I32;
      fields[f] = hash;
      fields[f + 1] = countLength[k] = (key.length << COUNT_BITS) | (words >= 0 ? FLAG_INLINE : 0);
      for (let w = 0; w < words; w++) fields[f + 2 + w] = this.probeWords[w]!;
      positions[p] = k;
    }
    const keyRows = this.keyRows;
    for (let p = 0; p < n; p++) {
      const f = p * PLACE_I32;
      let id = fields[f]! & mask;
      while (keyRows[id * KEY_I32 + K_COUNT_LENGTH] !== ROW_EMPTY) id = (id + 1) & mask;
      const row = id * KEY_I32;
      keyRows[row + K_NEWEST] = -1;
      keyRows[row + K_OLDEST] = -1;
      keyRows[row + K_COUNT_LENGTH] = fields[f + 1]!;
      keyRows[row + K_HASH] = fields[f]!;
      for (let w = 0; w < KEY_INLINE_WORDS; w++) keyRows[row + K_CHARS + w] = fields[f + 2 + w]!;
      idOf[positions[p]!] = id;
    }
    // Names in key order: the key list is read in sequence, the name list written in any order.
    for (let k = 0; k < n; k++) this.keyNames[idOf[k]!] = keys[k];
    this.keysLive = n;
  }


  /**
   * Full when end reaches capacity: squeeze out tombstones, and grow or shrink to 1.5x live (plus
   * SLOTS_MIN, so a small, busy log does not compact every few appends).
   */
  private makeRoom(): void {
    this.flushFrees();
    const live = this.live;
    const wanted = Math.ceil(live * 1.5) + SLOTS_MIN;
    const inPlace = wanted <= this.capacity && wanted * 2 >= this.capacity;
    const fromF64 = this.f64;
    const fromI32 = this.i32;
    const removed = this.removedBits;
    if (!inPlace) this.allocateSlots(wanted);
    const remap = new Int32Array(this.end);
    let j = 0;
    for (let slot = this.first; slot < this.end; slot++) remap[slot] = (removed[slot >>> 3]! & (1 << (slot & 7))) !== 0 ? -1 : j++;
    assert(j === live, "RecordLog: live count drifted");
    const { f64, i32, keyRows } = this;
    // Moving down in place is safe: row `to` <= `slot`, and every old row below `slot` was already moved.
    for (let slot = this.first; slot < this.end; slot++) {
      const to = remap[slot]!;
      if (to === -1) continue;
      const fFrom = slot * SLOT_F64;
      const fTo = to * SLOT_F64;
      f64[fTo + F_REVISION] = fromF64[fFrom + F_REVISION]!;
      f64[fTo + F_CREATED] = fromF64[fFrom + F_CREATED]!;
      f64[fTo + F_EXPIRES] = fromF64[fFrom + F_EXPIRES]!;
      const iFrom = slot * SLOT_I32;
      const iTo = to * SLOT_I32;
      const id = fromI32[iFrom + I_KEY]!;
      const older = fromI32[iFrom + I_PREV]!;
      const newer = fromI32[iFrom + I_NEXT]!;
      i32[iTo + I_KEY] = id;
      i32[iTo + I_PREV] = older === -1 ? -1 : remap[older]!;
      i32[iTo + I_NEXT] = newer === -1 ? -1 : remap[newer]!;
      i32[iTo + I_CHUNK] = fromI32[iFrom + I_CHUNK]!;
      i32[iTo + I_OFFSET_OP] = fromI32[iFrom + I_OFFSET_OP]!;
      i32[iTo + I_LENGTH] = fromI32[iFrom + I_LENGTH]!;
      // A record is its key's newest exactly when it has no newer one (oldest: no older one). Knowing
      // that from the row itself, the key rows are only written, never read: a read of a random key
      // row per record would wait for memory a million times.
      const row = id * KEY_I32;
      if (newer === -1) keyRows[row + K_NEWEST] = to;
      if (older === -1) keyRows[row + K_OLDEST] = to;
    }
    this.removedBits.fill(0);
    this.first = 0;
    this.end = live;
  }

  private allocateSlots(capacity: number): void {
    const buffer = new ArrayBuffer(capacity * SLOT_F64 * 8);
    this.f64 = new Float64Array(buffer);
    this.i32 = new Int32Array(buffer);
    this.removedBits = new Uint8Array((capacity + 7) >>> 3);
    this.capacity = capacity;
  }

  private allocateKeyRows(rows: number): void {
    this.keyRows = new Int32Array(rows * KEY_I32);
    this.keyMask = rows - 1;
    this.keyNames = new Array<string | undefined>(rows).fill(undefined);
    this.keysLive = 0;
    this.keyTombstones = 0;
  }

  /**
   * Moves every key into a fresh table sized for `keys` keys (dropping tombstones) and renumbers the
   * records and the sorted index to the new ids. O(rows + slots); runs when the table is 3/4 full.
   */
  private rebuildKeyRows(keys: number): void {
    const oldRows = this.keyRows;
    const oldNames = this.keyNames;
    const oldCount = this.keyMask + 1;
    this.allocateKeyRows(keyRowsFor(keys));
    const remap = new Int32Array(oldCount).fill(-1);
    const mask = this.keyMask;
    const keyRows = this.keyRows;
    for (let old = 0; old < oldCount; old++) {
      const name = oldNames[old];
      if (name === undefined) continue;
      let id = oldRows[old * KEY_I32 + K_HASH]! & mask;
      while (keyRows[id * KEY_I32 + K_COUNT_LENGTH] !== ROW_EMPTY) id = (id + 1) & mask;
      for (let f = 0; f < KEY_I32; f++) keyRows[id * KEY_I32 + f] = oldRows[old * KEY_I32 + f]!;
      this.keyNames[id] = name;
      remap[old] = id;
      this.keysLive++;
    }
    const i32 = this.i32;
    for (let slot = this.first; slot < this.end; slot++) {
      if (!this.isRemoved(slot)) i32[slot * SLOT_I32 + I_KEY] = remap[i32[slot * SLOT_I32 + I_KEY]!]!;
    }
    this.sorted.renumber(remap, mask + 1);
  }

  private forgetKey(id: number): void {
    const key = this.keyNames[id]!;
    this.sorted.delete(key, id);
    this.keyNames[id] = undefined;
    this.keysLive--;
    const keyRows = this.keyRows;
    const mask = this.keyMask;
    if (keyRows[((id + 1) & mask) * KEY_I32 + K_COUNT_LENGTH] !== ROW_EMPTY) {
      keyRows[id * KEY_I32 + K_COUNT_LENGTH] = ROW_TOMBSTONE;
      this.keyTombstones++;
      return;
    }
    // No probe goes on past an empty row: this row, and the tombstones right before it, can be empty.
    keyRows[id * KEY_I32 + K_COUNT_LENGTH] = ROW_EMPTY;
    for (let before = (id - 1) & mask; keyRows[before * KEY_I32 + K_COUNT_LENGTH] === ROW_TOMBSTONE; before = (before - 1) & mask) {
      keyRows[before * KEY_I32 + K_COUNT_LENGTH] = ROW_EMPTY;
      this.keyTombstones--;
    }
  }

  /** Copies live values into a fresh arena (in revision order) and drops the old one. */
  private compactValues(): void {
    this.flushFrees();
    const arena = new ValueArena();
    const old = this.arena;
    const i32 = this.i32;
    for (let slot = this.first; slot < this.end; slot++) {
      const i = slot * SLOT_I32;
      const length = i32[i + I_LENGTH]!;
      if (length === 0 || this.isRemoved(slot)) continue;
      const offsetOp = i32[i + I_OFFSET_OP]!;
      i32[i + I_CHUNK] = arena.storeFrom(old, i32[i + I_CHUNK]!, offsetOp >>> OP_BITS, length);
      i32[i + I_OFFSET_OP] = (arena.lastOffset << OP_BITS) | (offsetOp & ((1 << OP_BITS) - 1));
    }
    this.arena = arena;
  }

  private rebuildExpiry(): void {
    this.expiry.retain((revision) => this.slotOfRevision(revision) !== -1);
    this.expiryDead = 0;
  }
}
