/**
 * The retained records of one bucket, stored column-wise for memory and speed (a million keys must fit
 * in well under 250 bytes of overhead each; one JS object per record with a Uint8Array value would use
 * that on its own).
 *
 * Records live in slots ordered by revision (slot order = revision order = time order, because
 * revisions and clamped leader time only grow). Removing a record turns its slot into a tombstone; the
 * arrays are compacted when they fill up, so removal anywhere is O(1) amortized. Each key's records form
 * a doubly linked list through `prevOf`/`nextOf` (older/newer record of the same key), with the key's
 * newest and oldest slot in `keyHead`/`keyTail`: history trimming and purges touch only that key.
 *
 * Keys get small integer ids (reused after a key loses its last record), kept in a Map from name to id,
 * and in a SortedKeys index for prefix scans. Values sit in a ValueArena. Records with their own expiry
 * (per-key TTL, markers) are also entered into an ExpiryHeap.
 *
 * This class maintains the structure only; the rules (CAS, limits, expiry) are in bucket.ts.
 */
import { assert } from "../shared/assert.ts";
import { ExpiryHeap } from "./expiry-heap.ts";
import { SortedKeys } from "./sorted-keys.ts";
import type { KvRecord, Operation } from "./types.ts";
import { ValueArena } from "./value-arena.ts";

/** Operation codes in `opOf` (low two bits) and the MaxAge marker flag. */
export const OP_PUT = 0;
export const OP_DEL = 1;
export const OP_PURGE = 2;
export const OP_MASK = 3;
export const FLAG_MAX_AGE = 4;

export const OPERATIONS: readonly Operation[] = ["PUT", "DEL", "PURGE"];

export const EMPTY_VALUE: Uint8Array = new Uint8Array(0);

const SLOTS_MIN = 16;
const KEYS_MIN = 16;
/** Rebuild the expiry heap when more than this many of its entries (and half) are dead. */
const EXPIRY_DEAD_MIN = 1024;

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

type MutableRecord = { -readonly [K in keyof KvRecord]: KvRecord[K] };

export class RecordLog {
  // ---- slots: one per record, [head, tail) in use, ordered by revision ----
  capacity = 0;
  revisionOf = new Float64Array(0);
  createdOf = new Float64Array(0);
  /** Own expiry time (per-key TTL or marker TTL); 0 = none. */
  expiresOf = new Float64Array(0);
  /** Key id; -1 marks a removed record (tombstone). */
  keyOf = new Int32Array(0);
  /** Slot of the key's next older / newer record, -1 at the ends. */
  prevOf = new Int32Array(0);
  nextOf = new Int32Array(0);
  /** Value location in the arena (chunk -1 when the value is empty). */
  chunkOf = new Int32Array(0);
  offsetOf = new Uint32Array(0);
  lengthOf = new Uint32Array(0);
  /** Operation code | flags. */
  opOf = new Uint8Array(0);
  /** Invariant: head === tail, or keyOf[head] !== -1 (head is the oldest retained record). */
  head = 0;
  tail = 0;
  /** Retained records. */
  live = 0;
  /** Key bytes + value bytes of retained records. */
  bytes = 0;
  /** Last revision assigned; survives clear(). */
  lastRevision = 0;

  // ---- keys ----
  readonly keyIds = new Map<string, number>();
  keyNames: (string | undefined)[] = [];
  keyHead = new Int32Array(0);
  keyTail = new Int32Array(0);
  /** Retained records per key (<= history <= 64). Invariant: > 0 for every id in keyIds. */
  keyCount = new Uint8Array(0);
  private freeKeyIds: number[] = [];
  private nextKeyId = 0;
  sorted = new SortedKeys();

  arena = new ValueArena();
  readonly expiry = new ExpiryHeap();
  /** Entries in `expiry` whose record was removed. */
  expiryDead = 0;

  /** Key id, or -1 when the key has no retained record. */
  keyId(key: string): number {
    const id = this.keyIds.get(key);
    return id === undefined ? -1 : id;
  }

  /** Id of a key, registering it (with no records yet) when new. */
  ensureKey(key: string): number {
    const existing = this.keyIds.get(key);
    if (existing !== undefined) return existing;
    let id: number;
    if (this.freeKeyIds.length > 0) id = this.freeKeyIds.pop()!;
    else {
      id = this.nextKeyId++;
      if (id >= this.keyHead.length) this.growKeys();
    }
    this.keyIds.set(key, id);
    this.keyNames[id] = key;
    this.keyHead[id] = -1;
    this.keyTail[id] = -1;
    this.keyCount[id] = 0;
    this.sorted.insert(key);
    return id;
  }

  /** Appends a record as the newest of key `id`; returns its slot. The revision must be the next one. */
  append(id: number, op: number, value: Uint8Array, created: number, expiresAt: number, revision: number): number {
    assert(revision > this.lastRevision, "revisions must increase");
    if (this.tail === this.capacity) this.makeRoom();
    const slot = this.tail++;
    this.lastRevision = revision;
    this.revisionOf[slot] = revision;
    this.createdOf[slot] = created;
    this.expiresOf[slot] = expiresAt;
    this.keyOf[slot] = id;
    this.opOf[slot] = op;
    const newest = this.keyHead[id]!;
    this.prevOf[slot] = newest;
    this.nextOf[slot] = -1;
    if (newest === -1) this.keyTail[id] = slot;
    else this.nextOf[newest] = slot;
    this.keyHead[id] = slot;
    this.keyCount[id]!++;
    const length = value.length;
    this.lengthOf[slot] = length;
    if (length === 0) {
      this.chunkOf[slot] = -1;
      this.offsetOf[slot] = 0;
    } else {
      this.chunkOf[slot] = this.arena.store(value);
      this.offsetOf[slot] = this.arena.lastOffset;
    }
    this.bytes += this.keyNames[id]!.length + length;
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
    const id = this.keyOf[slot]!;
    assert(id !== -1, "RecordLog.remove: slot already removed");
    const older = this.prevOf[slot]!;
    const newer = this.nextOf[slot]!;
    if (older === -1) this.keyTail[id] = newer;
    else this.nextOf[older] = newer;
    if (newer === -1) this.keyHead[id] = older;
    else this.prevOf[newer] = older;
    const length = this.lengthOf[slot]!;
    if (length !== 0) this.arena.free(this.chunkOf[slot]!, length);
    this.bytes -= this.keyNames[id]!.length + length;
    if (this.expiresOf[slot] !== 0) this.expiryDead++;
    this.keyOf[slot] = -1;
    this.live--;
    if (--this.keyCount[id]! === 0) this.forgetKey(id);
    if (slot === this.head) {
      let head = this.head + 1;
      while (head < this.tail && this.keyOf[head] === -1) head++;
      this.head = head;
    }
  }

  /** Removes the oldest records of key `id` until `newest` is its only one. Returns how many went. */
  removeOlderThan(id: number, newest: number): number {
    let removed = 0;
    while (this.keyTail[id] !== newest) {
      this.remove(this.keyTail[id]!);
      removed++;
    }
    return removed;
  }

  /** Removes every record of key `id`. Returns how many went. */
  removeKey(id: number): number {
    const count = this.keyCount[id]!;
    for (let i = 0; i < count; i++) this.remove(this.keyTail[id]!);
    return count;
  }

  /** Slot of the first retained-or-removed slot with revision >= `revision` (tail when none). */
  lowerSlot(revision: number): number {
    let low = this.head;
    let high = this.tail;
    const revisions = this.revisionOf;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (revisions[mid]! < revision) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Slot of the retained record with this revision, or -1. */
  slotOfRevision(revision: number): number {
    const slot = this.lowerSlot(revision);
    return slot < this.tail && this.revisionOf[slot] === revision && this.keyOf[slot] !== -1 ? slot : -1;
  }

  /** The record in a retained slot, as handed to callers (a fresh object; the value is a shared view). */
  record(slot: number): KvRecord {
    const op = this.opOf[slot]!;
    const length = this.lengthOf[slot]!;
    const record: MutableRecord = {
      key: this.keyNames[this.keyOf[slot]!]!,
      value: length === 0 ? EMPTY_VALUE : this.arena.view(this.chunkOf[slot]!, this.offsetOf[slot]!, length),
      revision: this.revisionOf[slot]!,
      created: this.createdOf[slot]!,
      operation: OPERATIONS[op & OP_MASK]!,
    };
    const expiresAt = this.expiresOf[slot]!;
    if (expiresAt !== 0) record.expiresAt = expiresAt;
    if ((op & FLAG_MAX_AGE) !== 0) record.reason = "MaxAge";
    return record;
  }

  /** The retained records in canonical form (see LogColumns). */
  toColumns(): LogColumns {
    const keys = this.sorted.toArray();
    const position = new Int32Array(this.keyHead.length);
    for (let i = 0; i < keys.length; i++) position[this.keyIds.get(keys[i]!)!] = i;
    const n = this.live;
    const recordKey = new Uint32Array(n);
    const revision = new Float64Array(n);
    const created = new Float64Array(n);
    const expiresAt = new Float64Array(n);
    const op = new Uint8Array(n);
    const valueLength = new Uint32Array(n);
    const values = new Uint8Array(this.arena.liveBytes);
    let j = 0;
    let offset = 0;
    for (let slot = this.head; slot < this.tail; slot++) {
      const id = this.keyOf[slot]!;
      if (id === -1) continue;
      recordKey[j] = position[id]!;
      revision[j] = this.revisionOf[slot]!;
      created[j] = this.createdOf[slot]!;
      expiresAt[j] = this.expiresOf[slot]!;
      op[j] = this.opOf[slot]!;
      const length = this.lengthOf[slot]!;
      valueLength[j] = length;
      if (length !== 0) {
        values.set(this.arena.view(this.chunkOf[slot]!, this.offsetOf[slot]!, length), offset);
        offset += length;
      }
      j++;
    }
    assert(j === n && offset === values.length, "RecordLog.toColumns: counts drifted");
    return { keys, recordKey, revision, created, expiresAt, op, valueLength, values };
  }

  /**
   * Rebuilds a log from columns that were validated by the caller (keys strictly ascending and each
   * used, revisions strictly ascending and <= lastRevision, value lengths summing to values.length).
   * Takes ownership of `columns.values`.
   */
  static fromColumns(columns: LogColumns, lastRevision: number): RecordLog {
    const log = new RecordLog();
    const { keys, recordKey, revision, created, expiresAt, op, valueLength, values } = columns;
    const n = revision.length;
    const capacity = Math.max(SLOTS_MIN, n);
    log.capacity = capacity;
    log.revisionOf = new Float64Array(capacity);
    log.revisionOf.set(revision);
    log.createdOf = new Float64Array(capacity);
    log.createdOf.set(created);
    log.expiresOf = new Float64Array(capacity);
    log.expiresOf.set(expiresAt);
    log.keyOf = new Int32Array(capacity);
    log.keyOf.set(recordKey);
    log.opOf = new Uint8Array(capacity);
    log.opOf.set(op);
    log.lengthOf = new Uint32Array(capacity);
    log.lengthOf.set(valueLength);
    log.prevOf = new Int32Array(capacity);
    log.nextOf = new Int32Array(capacity);
    log.chunkOf = new Int32Array(capacity);
    log.offsetOf = new Uint32Array(capacity);

    // Key ids are the keys' positions, so the ids already in recordKey need no mapping.
    const keyCapacity = Math.max(KEYS_MIN, keys.length);
    log.keyHead = new Int32Array(keyCapacity).fill(-1);
    log.keyTail = new Int32Array(keyCapacity).fill(-1);
    log.keyCount = new Uint8Array(keyCapacity);
    log.keyNames = keys.slice();
    log.nextKeyId = keys.length;
    for (let i = 0; i < keys.length; i++) log.keyIds.set(keys[i]!, i);
    log.sorted = SortedKeys.fromSorted(keys);

    const chunk = values.length === 0 ? -1 : log.arena.adoptChunk(values);
    let offset = 0;
    let bytes = 0;
    for (let slot = 0; slot < n; slot++) {
      const id = recordKey[slot]!;
      const newest = log.keyHead[id]!;
      log.prevOf[slot] = newest;
      log.nextOf[slot] = -1;
      if (newest === -1) log.keyTail[id] = slot;
      else log.nextOf[newest] = slot;
      log.keyHead[id] = slot;
      log.keyCount[id]!++;
      const length = valueLength[slot]!;
      log.chunkOf[slot] = length === 0 ? -1 : chunk;
      log.offsetOf[slot] = offset;
      offset += length;
      bytes += keys[id]!.length + length;
      const expires = expiresAt[slot]!;
      if (expires !== 0) log.expiry.push(expires, revision[slot]!);
    }
    log.head = 0;
    log.tail = n;
    log.live = n;
    log.bytes = bytes;
    log.lastRevision = lastRevision;
    return log;
  }

  /** Drops every record and key; lastRevision stays (revisions are never reused). */
  clear(): void {
    const lastRevision = this.lastRevision;
    const fresh = new RecordLog();
    Object.assign(this, fresh);
    this.lastRevision = lastRevision;
  }

  /** Full when tail reaches capacity: squeeze out tombstones, and grow or shrink to 1.5x live. */
  private makeRoom(): void {
    const live = this.live;
    const wanted = Math.max(SLOTS_MIN, Math.ceil(live * 1.5));
    const inPlace = wanted <= this.capacity && wanted * 2 >= this.capacity;
    const capacity = inPlace ? this.capacity : wanted;
    const remap = new Int32Array(this.tail);
    let j = 0;
    for (let i = this.head; i < this.tail; i++) remap[i] = this.keyOf[i] === -1 ? -1 : j++;
    assert(j === live, "RecordLog: live count drifted");

    const from = {
      revisionOf: this.revisionOf,
      createdOf: this.createdOf,
      expiresOf: this.expiresOf,
      keyOf: this.keyOf,
      prevOf: this.prevOf,
      nextOf: this.nextOf,
      chunkOf: this.chunkOf,
      offsetOf: this.offsetOf,
      lengthOf: this.lengthOf,
      opOf: this.opOf,
    };
    if (!inPlace) {
      this.revisionOf = new Float64Array(capacity);
      this.createdOf = new Float64Array(capacity);
      this.expiresOf = new Float64Array(capacity);
      this.keyOf = new Int32Array(capacity);
      this.prevOf = new Int32Array(capacity);
      this.nextOf = new Int32Array(capacity);
      this.chunkOf = new Int32Array(capacity);
      this.offsetOf = new Uint32Array(capacity);
      this.lengthOf = new Uint32Array(capacity);
      this.opOf = new Uint8Array(capacity);
      this.capacity = capacity;
    }
    // Moving down in place is safe: slot j <= i, and every old slot below i was already moved.
    for (let i = this.head; i < this.tail; i++) {
      const to = remap[i]!;
      if (to === -1) continue;
      const id = from.keyOf[i]!;
      const older = from.prevOf[i]!;
      const newer = from.nextOf[i]!;
      this.revisionOf[to] = from.revisionOf[i]!;
      this.createdOf[to] = from.createdOf[i]!;
      this.expiresOf[to] = from.expiresOf[i]!;
      this.keyOf[to] = id;
      this.prevOf[to] = older === -1 ? -1 : remap[older]!;
      this.nextOf[to] = newer === -1 ? -1 : remap[newer]!;
      this.chunkOf[to] = from.chunkOf[i]!;
      this.offsetOf[to] = from.offsetOf[i]!;
      this.lengthOf[to] = from.lengthOf[i]!;
      this.opOf[to] = from.opOf[i]!;
      // A key's head is its highest slot and its tail its lowest, so an already-renumbered entry
      // (to <= i) can never be mistaken for a later old slot of the same key.
      if (this.keyHead[id] === i) this.keyHead[id] = to;
      if (this.keyTail[id] === i) this.keyTail[id] = to;
    }
    this.head = 0;
    this.tail = live;
  }

  private growKeys(): void {
    const capacity = Math.max(KEYS_MIN, Math.ceil(this.keyHead.length * 1.5));
    const keyHead = new Int32Array(capacity);
    keyHead.set(this.keyHead);
    const keyTail = new Int32Array(capacity);
    keyTail.set(this.keyTail);
    const keyCount = new Uint8Array(capacity);
    keyCount.set(this.keyCount);
    this.keyHead = keyHead;
    this.keyTail = keyTail;
    this.keyCount = keyCount;
  }

  private forgetKey(id: number): void {
    const key = this.keyNames[id]!;
    this.keyIds.delete(key);
    this.sorted.delete(key);
    this.keyNames[id] = undefined;
    this.keyHead[id] = -1;
    this.keyTail[id] = -1;
    this.freeKeyIds.push(id);
  }

  /** Copies live values into a fresh arena (in revision order) and drops the old one. */
  private compactValues(): void {
    const arena = new ValueArena();
    const old = this.arena;
    for (let slot = this.head; slot < this.tail; slot++) {
      const length = this.lengthOf[slot]!;
      if (this.keyOf[slot] === -1 || length === 0) continue;
      this.chunkOf[slot] = arena.store(old.view(this.chunkOf[slot]!, this.offsetOf[slot]!, length));
      this.offsetOf[slot] = arena.lastOffset;
    }
    this.arena = arena;
  }

  private rebuildExpiry(): void {
    this.expiry.retain((revision) => this.slotOfRevision(revision) !== -1);
    this.expiryDead = 0;
  }
}
