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
 *   result, and the id's characters packed in a fixed 64-byte cell), so a retained entry is no JS object:
 *   the id string and result of every write die young instead of being promoted and traced by the GC.
 *   Ids longer than a cell or outside Latin-1, and every other result shape, are kept as they are in
 *   side arrays (rare: request ids are UUIDs or node-made ids, and most writes succeed).
 * - An id's characters are read once (get() packs them into probe words and hashes those); comparing
 *   and storing then work on words. Reading a decoded string's characters is what costs.
 * - Lookups go through hash buckets chained through the ring: every entry has a sequence number
 *   (never reused), a bucket holds the sequence number of its newest entry and each entry that of the
 *   next older one in its bucket. A chain descends in age, so it ends at the first entry that is no
 *   longer in the window: evicting an entry touches no bucket at all (with two buckets per ring cell,
 *   a lookup that misses reads one bucket and, a third of the time, one entry's hash). A bucket keeps
 *   the low 32 bits of the sequence number (half the memory of a whole one, so more of it stays in
 *   cache), read as an offset from the oldest entry's: a bucket untouched for 2^32 ids may then seem to
 *   name a live entry of another bucket, whose id will not match and whose chain ends as any other.
 *   (A JS Map is no good here: finding its oldest entry walks over every entry deleted since it last
 *   rehashed, which made each eviction a scan of up to entriesMax holes.)
 *
 * The ring grows by doubling up to the first power of two above the largest count it has held
 * (<= entriesMax + 1 in apply), so a quiet bucket keeps a small window.
 */
import { AssertionError } from "../shared/assert.ts";
import { hashString, hashWords, packLatin1 } from "./hash.ts";
import type { KvResult } from "./types.ts";

export interface DedupeEntry {
  readonly requestId: string;
  /** Leader time (clamped) of the command that first carried the id. */
  readonly time: number;
  readonly result: KvResult;
}

const RING_MIN = 16;
/** Id characters stored in the ring per entry (packed four to a word); longer ids are kept as strings. */
const ID_CELL_WORDS = 16;
/** idLength of an entry whose id is kept in `longIds`. */
const LONG_ID = -1;
/** revision of an entry whose result is kept in `otherResults`. */
const OTHER_RESULT = -1;
/** No entry (below every sequence number). */
const NONE = -1;

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
  /** Sequence number of the entry at `head`; the next entry added gets headSeq + count. */
  private headSeq = 0;
  private count = 0;
  /** Sequence number of the next older entry in the same bucket, or NONE. */
  private nexts = new Float64Array(0);
  private times = new Float64Array(0);
  private hashes = new Int32Array(0);
  /** Revision of an `{ ok: true, revision }` result, or OTHER_RESULT. */
  private revisions = new Float64Array(0);
  private otherResults: (KvResult | undefined)[] = [];
  /** Id length in characters (packed in idWords), or LONG_ID. */
  private idLengths = new Int32Array(0);
  /** ID_CELL_WORDS per entry. */
  private idWords = new Int32Array(0);
  private longIds: (string | undefined)[] = [];

  // ---- the buckets: low 32 bits of the sequence number of the newest entry whose hash & bucketMask is the bucket ----
  private buckets = new Int32Array(0);
  private bucketMask = 0;

  /**
   * The id last probed (apply() adds the id it looked up): its hash, its characters packed (when it
   * fits a cell) and how many words that took, or LONG_ID.
   */
  private probedId: string | undefined = undefined;
  private probeHash = 0;
  private readonly probeWords = new Int32Array(ID_CELL_WORDS);
  private probeWordCount = LONG_ID;
  /** The window (headSeq, count) in which get() found the probed id absent, so add() need not look again. */
  private absentHeadSeq = NONE;
  private absentCount = 0;

  /** `firstSequence`: where sequence numbers start (tests start near 2^32 to cross the buckets' wrap). */
  constructor(windowMs: number, entriesMax: number, firstSequence = 0) {
    this.windowMs = windowMs;
    this.entriesMax = entriesMax;
    this.headSeq = firstSequence;
  }

  get size(): number {
    return this.count;
  }

  /** Forgets entries that are windowMs old or older at `now`. */
  evict(now: number): void {
    while (this.count > 0 && now - this.times[this.head]! >= this.windowMs) this.dropOldest();
  }

  get(requestId: string): KvResult | undefined {
    const hash = this.probe(requestId); // also for an empty window: add() takes the probe
    const r = this.count === 0 ? -1 : this.find(hash);
    if (r !== -1) return this.resultAt(r);
    this.absentHeadSeq = this.headSeq;
    this.absentCount = this.count;
    return undefined;
  }

  /** Ring index of the entry whose id is the one last probed (with hash `hash`), or -1. */
  private find(hash: number): number {
    const headSeq = this.headSeq;
    const mask = this.capacity - 1;
    // Chains descend in sequence number: the first one below headSeq (or NONE) ends it.
    for (let seq = this.bucketHead(hash & this.bucketMask); seq >= headSeq; ) {
      const r = (this.head + (seq - headSeq)) & mask;
      if (this.hashes[r] === hash && this.isProbed(r)) return r;
      seq = this.nexts[r]!;
    }
    return -1;
  }

  /** Sequence number of the newest live entry a bucket names, or NONE. */
  private bucketHead(bucket: number): number {
    const offset = (this.buckets[bucket]! - this.headSeq) | 0; // modulo 2^32
    return offset >= 0 && offset < this.count ? this.headSeq + offset : NONE;
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
    for (const entry of entries) this.push(entry.requestId, entry.time, entry.result, isRevisionResult(entry.result));
  }

  private push(requestId: string, time: number, result: KvResult, revisionOnly: boolean): void {
    if (this.count === this.capacity) this.grow();
    const probed = requestId === this.probedId;
    const hash = probed ? this.probeHash : this.probe(requestId);
    const knownAbsent = probed && this.absentHeadSeq === this.headSeq && this.absentCount === this.count;
    if (!knownAbsent && this.find(hash) !== -1) throw new AssertionError("DedupeWindow: request id already in the window");
    const seq = this.headSeq + this.count;
    const r = (this.head + this.count) & (this.capacity - 1);
    this.count++;
    const bucket = hash & this.bucketMask;
    this.nexts[r] = this.bucketHead(bucket);
    this.buckets[bucket] = seq | 0;
    this.times[r] = time;
    this.hashes[r] = hash;
    if (revisionOnly) {
      this.revisions[r] = (result as { revision: number }).revision;
    } else {
      this.revisions[r] = OTHER_RESULT;
      this.otherResults[r] = result;
    }
    const count = this.probeWordCount;
    if (count === LONG_ID) {
      this.idLengths[r] = LONG_ID;
      this.longIds[r] = requestId;
    } else {
      this.idLengths[r] = requestId.length;
      const words = this.idWords;
      const base = r * ID_CELL_WORDS;
      for (let w = 0; w < count; w++) words[base + w] = this.probeWords[w]!;
    }
  }

  /** Packs an id into probeWords (when it fits a cell) and returns its hash; an id always hashes the same way. */
  private probe(requestId: string): number {
    const count = packLatin1(requestId, this.probeWords);
    this.probedId = requestId;
    this.probeWordCount = count;
    this.probeHash = count >= 0 ? hashWords(this.probeWords, count, requestId.length) : hashString(requestId);
    return this.probeHash;
  }

  /** Is the id of entry `r` the one last probed? */
  private isProbed(r: number): boolean {
    const length = this.idLengths[r]!;
    const count = this.probeWordCount;
    if (length === LONG_ID) return count === LONG_ID && this.longIds[r] === this.probedId;
    if (count === LONG_ID || length !== this.probedId!.length) return false;
    const words = this.idWords;
    const base = r * ID_CELL_WORDS;
    for (let w = 0; w < count; w++) if (words[base + w] !== this.probeWords[w]) return false;
    return true;
  }

  private idAt(r: number): string {
    const length = this.idLengths[r]!;
    if (length === LONG_ID) return this.longIds[r]!;
    const words = this.idWords;
    const base = r * ID_CELL_WORDS;
    const codes = new Array<number>(length);
    for (let k = 0; k < length; k++) codes[k] = (words[base + (k >>> 2)]! >>> (8 * (k & 3))) & 0xff;
    return String.fromCharCode.apply(null, codes);
  }

  private resultAt(r: number): KvResult {
    const revision = this.revisions[r]!;
    return revision === OTHER_RESULT ? this.otherResults[r]! : { ok: true, revision };
  }

  /** Forgets the oldest entry: its sequence number falls below headSeq, which ends every chain there. */
  private dropOldest(): void {
    const r = this.head;
    if (this.revisions[r] === OTHER_RESULT) this.otherResults[r] = undefined;
    if (this.idLengths[r] === LONG_ID) this.longIds[r] = undefined;
    this.head = (r + 1) & (this.capacity - 1);
    this.headSeq++;
    this.count--;
  }

  /** Doubles the ring (entries move to the front, in order) and rebuilds the chains in twice as many buckets. */
  private grow(): void {
    const oldCapacity = this.capacity;
    const capacity = Math.max(RING_MIN, oldCapacity * 2);
    const times = new Float64Array(capacity);
    const hashes = new Int32Array(capacity);
    const revisions = new Float64Array(capacity);
    const otherResults = new Array<KvResult | undefined>(capacity).fill(undefined);
    const idLengths = new Int32Array(capacity);
    const idWords = new Int32Array(capacity * ID_CELL_WORDS);
    const longIds = new Array<string | undefined>(capacity).fill(undefined);
    const nexts = new Float64Array(capacity);
    // Empty buckets name the entry just before the oldest: none.
    const buckets = new Int32Array(capacity * 2).fill((this.headSeq - 1) | 0);
    const bucketMask = capacity * 2 - 1;
    for (let n = 0; n < this.count; n++) {
      const from = (this.head + n) & (oldCapacity - 1);
      times[n] = this.times[from]!;
      const hash = (hashes[n] = this.hashes[from]!);
      revisions[n] = this.revisions[from]!;
      otherResults[n] = this.otherResults[from];
      idLengths[n] = this.idLengths[from]!;
      for (let w = 0; w < ID_CELL_WORDS; w++) idWords[n * ID_CELL_WORDS + w] = this.idWords[from * ID_CELL_WORDS + w]!;
      longIds[n] = this.longIds[from];
      const bucket = hash & bucketMask;
      const offset = (buckets[bucket]! - this.headSeq) | 0;
      nexts[n] = offset >= 0 && offset < n ? this.headSeq + offset : NONE; // entries [0, n) are placed
      buckets[bucket] = (this.headSeq + n) | 0; // oldest first, so each bucket ends at its newest
    }
    this.capacity = capacity;
    this.head = 0;
    this.times = times;
    this.hashes = hashes;
    this.revisions = revisions;
    this.otherResults = otherResults;
    this.idLengths = idLengths;
    this.idWords = idWords;
    this.longIds = longIds;
    this.nexts = nexts;
    this.buckets = buckets;
    this.bucketMask = bucketMask;
  }
}
