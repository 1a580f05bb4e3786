/**
 * The keys of one bucket in ascending order (JS string order, which for ASCII keys is byte order), each
 * with its key id, for prefix scans: a filter `a.b.>` visits only the keys starting with `a.b.` instead of
 * the whole bucket, and gets their ids without a hash lookup (so does a snapshot, walking all keys).
 *
 * A two-level sorted list (as Python's sortedcontainers): an array of blocks, each a sorted array of at
 * most BLOCK_MAX keys with a parallel Int32Array of ids, and the first key of every block for a binary
 * search. Insert and delete cost O(log n) comparisons plus a move of at most BLOCK_MAX entries; memory is
 * about one pointer and one int32 per key (the key strings are shared with the record log).
 */
import { assert } from "../shared/assert.ts";

const BLOCK_MAX = 1024;
const BLOCK_MIN = BLOCK_MAX / 8;

export class SortedKeys {
  private blocks: string[][] = [];
  /** ids[b][i] is the id of blocks[b][i]; capacity BLOCK_MAX + 1 (a block overflows by one, then splits). */
  private ids: Int32Array[] = [];
  /** mins[b] === blocks[b][0]. Invariant: blocks are non-empty and ordered; all keys distinct. */
  private mins: string[] = [];
  size = 0;

  /** Builds from keys that are strictly ascending (the caller checked); key k gets id k. */
  static fromSorted(keys: readonly string[]): SortedKeys {
    const out = new SortedKeys();
    const blockSize = BLOCK_MAX / 2;
    for (let i = 0; i < keys.length; i += blockSize) {
      const block = keys.slice(i, i + blockSize);
      const ids = new Int32Array(BLOCK_MAX + 1);
      for (let j = 0; j < block.length; j++) ids[j] = i + j;
      out.blocks.push(block);
      out.ids.push(ids);
      out.mins.push(block[0]!);
    }
    out.size = keys.length;
    return out;
  }

  insert(key: string, id: number): void {
    this.size++;
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

  delete(key: string): void {
    const b = this.blockFor(key);
    const block = this.blocks[b];
    assert(block !== undefined, "SortedKeys.delete: empty");
    const ids = this.ids[b]!;
    const at = lowerBound(block, key);
    assert(block[at] === key, "SortedKeys.delete: missing key");
    block.splice(at, 1);
    ids.copyWithin(at, at + 1, block.length + 1);
    this.size--;
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
    const keys: string[] = [];
    const ids = new Int32Array(this.size);
    for (let b = 0; b < this.blocks.length; b++) {
      const block = this.blocks[b]!;
      ids.set(this.ids[b]!.subarray(0, block.length), keys.length);
      for (const key of block) keys.push(key);
    }
    return { keys, ids };
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
