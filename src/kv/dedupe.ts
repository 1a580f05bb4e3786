/**
 * The request-id window: a write retried with the same request id returns its first result instead of
 * applying twice. Bounded by leader time (entries older than windowMs go) and by count (the oldest go
 * first). Entries are kept in insertion order, which is also time order because the state machine's
 * clock never runs back, so both evictions pop from the front. Part of the replicated state: it is in
 * snapshots, and every replica evicts at the same applied commands.
 *
 * Every client write carries a request id, so a full window (entriesMax ids, 100,000 by default) sits on
 * the apply path of every put: one lookup that misses, one insertion, one eviction. It is built for that:
 *
 * - Entries live in a ring of typed arrays (time, hash, the revision of an `{ ok: true, revision }`
 *   result, and the id's characters in a fixed 64-byte cell), so a retained entry is no JS object at all:
 *   the id string and result of every write die young instead of being promoted and traced by the GC.
 *   Ids longer than a cell or outside Latin-1, and every other result shape, are kept as they are in
 *   side arrays (rare: request ids are UUIDs or node-made ids, and most writes succeed).
 * - Lookups go through an open-addressing table of (hash, ring index) pairs, linear probing with
 *   backward-shift deletion, at most half full: a miss reads one or two adjacent pairs.
 *   (A JS Map is no good here: finding its oldest entry walks over every entry deleted since it last
 *   rehashed, which made each eviction a scan of up to entriesMax holes.)
 *
 * The ring grows by doubling up to the first power of two above the largest count it has held
 * (<= entriesMax + 1 in apply), so a quiet bucket keeps a small window.
 */
import { AssertionError } from "../shared/assert.ts";
import { hashKey } from "./key-table.ts";
import type { KvResult } from "./types.ts";

export interface DedupeEntry {
  readonly requestId: string;
  /** Leader time (clamped) of the command that first carried the id. */
  readonly time: number;
  readonly result: KvResult;
}

const RING_MIN = 16;
/** Id characters stored in the ring per entry; longer ids are kept as strings. */
const ID_CELL_BYTES = 64;
/** idLength of an entry whose id is kept in `longIds`. */
const LONG_ID = -1;
/** revision of an entry whose result is kept in `otherResults`. */
const OTHER_RESULT = -1;

/** Is `result` exactly `{ ok: true, revision }` (two fields, in that order), so it can be rebuilt from the revision? */
function isRevisionResult(result: KvResult): boolean {
  if (result.ok !== true || !("revision" in result)) return false;
  const revision = result.revision;
  if (!(Number.isSafeInteger(revision) && revision >= 0)) return false;
  let fields = 0;
  for (const name in result) if (fields++ !== (name === "ok" ? 0 : name === "revision" ? 1 : -1)) return false;
  return fields === 2;
}

export class DedupeWindow {
  private readonly windowMs: number;
  private readonly entriesMax: number;

  // ---- the ring: entries oldest first, from `head`, `count` of them ----
  private capacity = 0;
  private head = 0;
  private count = 0;
  private times = new Float64Array(0);
  private hashes = new Int32Array(0);
  /** Revision of an `{ ok: true, revision }` result, or OTHER_RESULT. */
  private revisions = new Float64Array(0);
  private otherResults: (KvResult | undefined)[] = [];
  /** Id length in characters (its Latin-1 codes in idBytes), or LONG_ID. */
  private idLengths = new Int32Array(0);
  private idBytes = new Uint8Array(0);
  private longIds: (string | undefined)[] = [];

  // ---- the lookup table: pairs (hash, ring index + 1), 0 = empty ----
  private table = new Int32Array(0);
  private tableMask = 0;

  /** The last id get() hashed, and its hash: apply() adds the id it looked up. */
  private hashedId: string | undefined = undefined;
  private hashedValue = 0;

  constructor(windowMs: number, entriesMax: number) {
    this.windowMs = windowMs;
    this.entriesMax = entriesMax;
  }

  get size(): number {
    return this.count;
  }

  /** Forgets entries that are windowMs old or older at `now`. */
  evict(now: number): void {
    while (this.count > 0 && now - this.times[this.head]! >= this.windowMs) this.dropOldest();
  }

  get(requestId: string): KvResult | undefined {
    if (this.count === 0) return undefined;
    const hash = hashKey(requestId);
    this.hashedId = requestId;
    this.hashedValue = hash;
    const table = this.table;
    const mask = this.tableMask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const entry = table[2 * i + 1]!;
      if (entry === 0) return undefined;
      if (table[2 * i] === hash && this.idEquals(entry - 1, requestId)) return this.resultAt(entry - 1);
    }
  }

  /** Records the result of an id that is not in the window (apply() looked it up first). */
  add(requestId: string, time: number, result: KvResult): void {
    this.push(requestId, time, result, result.ok === true && "revision" in result);
    if (this.count > this.entriesMax) this.dropOldest();
  }

  /** Entries, oldest first. */
  list(): DedupeEntry[] {
    const out: DedupeEntry[] = [];
    for (let n = 0; n < this.count; n++) {
      const r = (this.head + n) & (this.capacity - 1);
      out.push({ requestId: this.idAt(r), time: this.times[r]!, result: this.resultAt(r) });
    }
    return out;
  }

  /** Replaces the contents with `entries` (oldest first, distinct ids), as read from a snapshot. */
  load(entries: readonly DedupeEntry[]): void {
    this.count = 0;
    this.head = 0;
    this.capacity = 0;
    this.grow(); // empty, at the smallest size
    this.hashedId = undefined;
    for (const entry of entries) this.push(entry.requestId, entry.time, entry.result, isRevisionResult(entry.result));
  }

  private push(requestId: string, time: number, result: KvResult, revisionOnly: boolean): void {
    if (this.count === this.capacity) this.grow();
    const hash = this.hashOf(requestId);
    const table = this.table;
    const mask = this.tableMask;
    let i = hash & mask;
    for (; ; i = (i + 1) & mask) {
      const entry = table[2 * i + 1]!;
      if (entry === 0) break;
      if (table[2 * i] === hash && this.idEquals(entry - 1, requestId)) {
        throw new AssertionError("DedupeWindow: request id already in the window");
      }
    }
    const r = (this.head + this.count) & (this.capacity - 1);
    this.count++;
    table[2 * i] = hash;
    table[2 * i + 1] = r + 1;
    this.times[r] = time;
    this.hashes[r] = hash;
    if (revisionOnly) {
      this.revisions[r] = (result as { revision: number }).revision;
    } else {
      this.revisions[r] = OTHER_RESULT;
      this.otherResults[r] = result;
    }
    this.storeId(r, requestId);
  }

  private storeId(r: number, requestId: string): void {
    const length = requestId.length;
    if (length <= ID_CELL_BYTES) {
      const bytes = this.idBytes;
      const base = r * ID_CELL_BYTES;
      let k = 0;
      for (; k < length; k++) {
        const c = requestId.charCodeAt(k);
        if (c > 0xff) break;
        bytes[base + k] = c;
      }
      if (k === length) {
        this.idLengths[r] = length;
        return;
      }
    }
    this.idLengths[r] = LONG_ID;
    this.longIds[r] = requestId;
  }

  private idEquals(r: number, requestId: string): boolean {
    const length = this.idLengths[r]!;
    if (length === LONG_ID) return this.longIds[r] === requestId;
    if (length !== requestId.length) return false;
    const bytes = this.idBytes;
    const base = r * ID_CELL_BYTES;
    for (let k = 0; k < length; k++) if (bytes[base + k] !== requestId.charCodeAt(k)) return false;
    return true;
  }

  private idAt(r: number): string {
    const length = this.idLengths[r]!;
    if (length === LONG_ID) return this.longIds[r]!;
    const base = r * ID_CELL_BYTES;
    return String.fromCharCode.apply(null, Array.from(this.idBytes.subarray(base, base + length)));
  }

  private resultAt(r: number): KvResult {
    const revision = this.revisions[r]!;
    return revision === OTHER_RESULT ? this.otherResults[r]! : { ok: true, revision };
  }

  /** The id's hash; get() just computed it when apply() adds the id it looked up (the same string). */
  private hashOf(requestId: string): number {
    return requestId === this.hashedId ? this.hashedValue : hashKey(requestId);
  }

  private dropOldest(): void {
    const r = this.head;
    const table = this.table;
    const mask = this.tableMask;
    let i = this.hashes[r]! & mask;
    while (table[2 * i + 1] !== r + 1) {
      if (table[2 * i + 1] === 0) throw new AssertionError("DedupeWindow: entry missing from the table");
      i = (i + 1) & mask;
    }
    // Backward-shift deletion: pull later pairs of the probe run into the hole, so lookups never stop
    // early at it.
    for (let j = i; ; ) {
      table[2 * i + 1] = 0;
      let entry: number;
      for (;;) {
        j = (j + 1) & mask;
        entry = table[2 * j + 1]!;
        if (entry === 0) break;
        const home = table[2 * j]! & mask;
        // The pair at j may move to i unless its home lies cyclically in (i, j].
        const stays = i <= j ? i < home && home <= j : i < home || home <= j;
        if (!stays) break;
      }
      if (entry === 0) break;
      table[2 * i] = table[2 * j]!;
      table[2 * i + 1] = entry;
      i = j;
    }
    this.otherResults[r] = undefined;
    this.longIds[r] = undefined;
    this.head = (r + 1) & (this.capacity - 1);
    this.count--;
    if (this.count === 0) this.hashedId = undefined;
  }

  /** Doubles the ring (entries move to the front, in order) and rebuilds the table at twice the ring size. */
  private grow(): void {
    const oldCapacity = this.capacity;
    const capacity = Math.max(RING_MIN, oldCapacity * 2);
    const times = new Float64Array(capacity);
    const hashes = new Int32Array(capacity);
    const revisions = new Float64Array(capacity);
    const otherResults = new Array<KvResult | undefined>(capacity).fill(undefined);
    const idLengths = new Int32Array(capacity);
    const idBytes = new Uint8Array(capacity * ID_CELL_BYTES);
    const longIds = new Array<string | undefined>(capacity).fill(undefined);
    const table = new Int32Array(capacity * 4);
    const tableMask = capacity * 2 - 1;
    for (let n = 0; n < this.count; n++) {
      const from = (this.head + n) & (oldCapacity - 1);
      times[n] = this.times[from]!;
      const hash = (hashes[n] = this.hashes[from]!);
      revisions[n] = this.revisions[from]!;
      otherResults[n] = this.otherResults[from];
      idLengths[n] = this.idLengths[from]!;
      idBytes.set(this.idBytes.subarray(from * ID_CELL_BYTES, (from + 1) * ID_CELL_BYTES), n * ID_CELL_BYTES);
      longIds[n] = this.longIds[from];
      let i = hash & tableMask;
      while (table[2 * i + 1] !== 0) i = (i + 1) & tableMask;
      table[2 * i] = hash;
      table[2 * i + 1] = n + 1;
    }
    this.capacity = capacity;
    this.head = 0;
    this.times = times;
    this.hashes = hashes;
    this.revisions = revisions;
    this.otherResults = otherResults;
    this.idLengths = idLengths;
    this.idBytes = idBytes;
    this.longIds = longIds;
    this.table = table;
    this.tableMask = tableMask;
  }
}
