/**
 * The keys of one bucket in ascending order (JS string order, which for ASCII keys is byte order), each
 * with its key id, for prefix scans: a filter `a.b.>` visits only the keys starting with `a.b.` instead of
 * the whole bucket, and gets their ids without a hash lookup (so does a snapshot, walking all keys).
 *
 * A two-level sorted list (as Python's sortedcontainers): an array of blocks, each a sorted array of at
 * most BLOCK_MAX keys with a parallel Int32Array of ids, and the first key of every block for a binary
 * search. Memory is about one pointer and one int32 per key (the key strings are the record log's).
 *
 * New keys are not sorted in one by one: a binary search over a million keys costs a cache miss per
 * string compared, so new keys wait, unsorted, in a pending list. The list is merged in before any scan,
 * and whenever it grows past an eighth of the sorted keys; a large batch is merged by rebuilding the
 * blocks in one sequential pass, a small one key by key. Deleting a pending key only forgets it: the
 * merge skips entries whose id no longer names that key (KeyOwner).
 */
import { assert } from "../shared/assert.ts";

const BLOCK_MAX = 1024;
const BLOCK_MIN = BLOCK_MAX / 8;
/** Pending keys merge on their own once more than this many and an eighth of the sorted keys wait. */
const PENDING_MIN = 4096;

export interface KeyOwner {
  /** The key currently named by `id`, or undefined when the id is free. */
  liveNameOf(id: number): string | undefined;
}

export class SortedKeys {
  private blocks: string[][] = [];
  /** ids[b][i] is the id of blocks[b][i]; capacity BLOCK_MAX + 1 (a block overflows by one, then splits). */
  private ids: Int32Array[] = [];
  /** mins[b] === blocks[b][0]. Invariant: blocks are non-empty and ordered; all keys distinct. */
  private mins: string[] = [];
  /** Keys in the blocks. */
  private sortedCount = 0;
  private pendingKeys: string[] = [];
  private pendingIds: number[] = [];
  /** inBlocks[id] = 1 when the id's key is in the blocks (not pending). */
  private inBlocks = new Uint8Array(16);

  constructor(private readonly owner: KeyOwner) {}

  /** Builds from keys that are strictly ascending (the caller checked); key k has id ids[k]. */
  static fromSorted(owner: KeyOwner, keys: readonly string[], ids: Int32Array): SortedKeys {
    const out = new SortedKeys(owner);
    let idsMax = 16;
    for (const id of ids) idsMax = Math.max(idsMax, id + 1);
    out.inBlocks = new Uint8Array(idsMax);
    for (const id of ids) out.inBlocks[id] = 1;
    out.build(keys, ids);
    return out;
  }

  /**
   * The owner gave its keys new ids: the key of old id i now has id remap[i] (-1: no key had id i).
   * Pending entries of forgotten ids are dropped.
   */
  renumber(remap: Int32Array, idCount: number): void {
    for (let b = 0; b < this.blocks.length; b++) {
      const ids = this.ids[b]!;
      for (let i = 0; i < this.blocks[b]!.length; i++) ids[i] = remap[ids[i]!]!;
    }
    const keys: string[] = [];
    const ids: number[] = [];
    for (let p = 0; p < this.pendingKeys.length; p++) {
      const id = remap[this.pendingIds[p]!]!;
      if (id === -1) continue;
      keys.push(this.pendingKeys[p]!);
      ids.push(id);
    }
    this.pendingKeys = keys;
    this.pendingIds = ids;
    const inBlocks = new Uint8Array(Math.max(16, idCount));
    for (let old = 0; old < remap.length && old < this.inBlocks.length; old++) {
      if (remap[old] !== -1) inBlocks[remap[old]!] = this.inBlocks[old]!;
    }
    this.inBlocks = inBlocks;
  }

  insert(key: string, id: number): void {
    this.pendingKeys.push(key);
    this.pendingIds.push(id);
    this.setInBlocks(id, 0);
    if (this.pendingKeys.length > PENDING_MIN && this.pendingKeys.length > this.sortedCount >>> 3) this.merge();
  }

  /** Removes a key; `id` is the id it has now (before the caller frees it). */
  delete(key: string, id: number): void {
    if (this.inBlocks[id] !== 1) return; // pending: the merge will skip it
    this.inBlocks[id] = 0;
    const b = this.blockFor(key);
    const block = this.blocks[b];
    assert(block !== undefined, "SortedKeys.delete: empty");
    const ids = this.ids[b]!;
    const at = lowerBound(block, key);
    assert(block[at] === key, "SortedKeys.delete: missing key");
    block.splice(at, 1);
    ids.copyWithin(at, at + 1, block.length + 1);
    this.sortedCount--;
    if (block.length === 0) {
      this.blocks.splice(b, 1);
      this.ids.splice(b, 1);
      this.mins.splice(b, 1);
      return;
    }
    if (at === 0) this.mins[b] = block[0]!;
    // Merge a small block into its successor so blocks stay few after mass deletions.
    const next = this.blocks[b + 1];
    if (block.length < BLOCK_MIN && next !== undefined && block.length + next.length <= BLOCK_MAX) {
      ids.set(this.ids[b + 1]!.subarray(0, next.length), block.length);
      this.blocks[b] = block.concat(next);
      this.blocks.splice(b + 1, 1);
      this.ids.splice(b + 1, 1);
      this.mins.splice(b + 1, 1);
    }
  }

  /**
   * Calls visit(key, id) for every key starting with `prefix`, ascending, until visit returns false.
   * Returns false when stopped early.
   */
  scanPrefix(prefix: string, visit: (key: string, id: number) => boolean): boolean {
    this.merge();
    if (this.blocks.length === 0) return true;
    let b = this.blockFor(prefix);
    let i = lowerBound(this.blocks[b]!, prefix);
    for (; b < this.blocks.length; b++, i = 0) {
      const block = this.blocks[b]!;
      const ids = this.ids[b]!;
      for (; i < block.length; i++) {
        const key = block[i]!;
        if (!key.startsWith(prefix)) return true;
        if (!visit(key, ids[i]!)) return false;
      }
    }
    return true;
  }

  /** All keys ascending, with their ids. */
  entries(): { keys: string[]; ids: Int32Array } {
    this.merge();
    const keys: string[] = [];
    const ids = new Int32Array(this.sortedCount);
    for (let b = 0; b < this.blocks.length; b++) {
      const block = this.blocks[b]!;
      ids.set(this.ids[b]!.subarray(0, block.length), keys.length);
      for (const key of block) keys.push(key);
    }
    return { keys, ids };
  }

  /** Moves the live pending keys into the blocks. */
  private merge(): void {
    if (this.pendingKeys.length === 0) return;
    const order: number[] = [];
    for (let p = 0; p < this.pendingKeys.length; p++) {
      const id = this.pendingIds[p]!;
      if (this.inBlocks[id] === 0 && this.owner.liveNameOf(id) === this.pendingKeys[p]) order.push(p);
    }
    const keys = this.pendingKeys;
    order.sort((x, y) => (keys[x]! < keys[y]! ? -1 : keys[x]! > keys[y]! ? 1 : 0));
    const newKeys: string[] = [];
    const newIds: number[] = [];
    for (const p of order) {
      const key = keys[p]!;
      if (newKeys.length > 0 && newKeys[newKeys.length - 1] === key) continue; // deleted, then added again
      newKeys.push(key);
      newIds.push(this.pendingIds[p]!);
    }
    this.pendingKeys = [];
    this.pendingIds = [];
    for (const id of newIds) this.inBlocks[id] = 1;
    if (newKeys.length * 64 < this.sortedCount) {
      for (let k = 0; k < newKeys.length; k++) this.insertSorted(newKeys[k]!, newIds[k]!);
    } else {
      this.rebuildWith(newKeys, newIds);
    }
  }

  /** Rebuilds every block from the sorted keys merged with `keys` (ascending, none already present). */
  private rebuildWith(keys: readonly string[], ids: readonly number[]): void {
    const total = this.sortedCount + keys.length;
    const allKeys: string[] = new Array<string>(total);
    const allIds = new Int32Array(total);
    let n = 0;
    let k = 0;
    for (let b = 0; b < this.blocks.length; b++) {
      const block = this.blocks[b]!;
      const blockIds = this.ids[b]!;
      for (let i = 0; i < block.length; i++) {
        const key = block[i]!;
        while (k < keys.length && keys[k]! < key) {
          allKeys[n] = keys[k]!;
          allIds[n++] = ids[k++]!;
        }
        allKeys[n] = key;
        allIds[n++] = blockIds[i]!;
      }
    }
    while (k < keys.length) {
      allKeys[n] = keys[k]!;
      allIds[n++] = ids[k++]!;
    }
    this.build(allKeys, allIds);
  }

  /** Replaces the blocks with `keys` (strictly ascending) and their ids, half-full blocks. */
  private build(keys: readonly string[], ids: Int32Array): void {
    this.blocks = [];
    this.ids = [];
    this.mins = [];
    const blockSize = BLOCK_MAX / 2;
    for (let i = 0; i < keys.length; i += blockSize) {
      const block = keys.slice(i, i + blockSize);
      const blockIds = new Int32Array(BLOCK_MAX + 1);
      blockIds.set(ids.subarray(i, i + block.length));
      this.blocks.push(block);
      this.ids.push(blockIds);
      this.mins.push(block[0]!);
    }
    this.sortedCount = keys.length;
  }

  private insertSorted(key: string, id: number): void {
    this.sortedCount++;
    if (this.blocks.length === 0) {
      const ids = new Int32Array(BLOCK_MAX + 1);
      ids[0] = id;
      this.blocks.push([key]);
      this.ids.push(ids);
      this.mins.push(key);
      return;
    }
    const b = this.blockFor(key);
    const block = this.blocks[b]!;
    const ids = this.ids[b]!;
    const at = lowerBound(block, key);
    assert(block[at] !== key, "SortedKeys.insert: duplicate key");
    block.splice(at, 0, key);
    ids.copyWithin(at + 1, at, block.length - 1);
    ids[at] = id;
    if (at === 0) this.mins[b] = key;
    if (block.length > BLOCK_MAX) {
      const half = BLOCK_MAX / 2;
      const upper = block.splice(half);
      const upperIds = new Int32Array(BLOCK_MAX + 1);
      upperIds.set(ids.subarray(half, half + upper.length));
      this.blocks.splice(b + 1, 0, upper);
      this.ids.splice(b + 1, 0, upperIds);
      this.mins.splice(b + 1, 0, upper[0]!);
    }
  }

  private setInBlocks(id: number, value: number): void {
    if (id >= this.inBlocks.length) {
      const grown = new Uint8Array(Math.max(id + 1, Math.ceil(this.inBlocks.length * 1.5)));
      grown.set(this.inBlocks);
      this.inBlocks = grown;
    }
    this.inBlocks[id] = value;
  }

  /** Index of the block that holds (or would hold) `key`: the last block whose first key <= key. */
  private blockFor(key: string): number {
    const mins = this.mins;
    let low = 0;
    let high = mins.length; // first index with mins[i] > key
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (mins[mid]! <= key) low = mid + 1;
      else high = mid;
    }
    return low === 0 ? 0 : low - 1;
  }
}

/** First index in the sorted array whose element is >= key. */
function lowerBound(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid]! < key) low = mid + 1;
    else high = mid;
  }
  return low;
}
