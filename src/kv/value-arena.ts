/**
 * Value bytes of one bucket, copied into large chunks instead of one Uint8Array per record: a typed array
 * object plus its ArrayBuffer costs V8 well over 100 bytes, more than the whole per-key budget. A value
 * is addressed by (chunk id, offset, length); its owner (the record log) stores those three numbers.
 *
 * Chunks are append-only: bytes once written are never overwritten, so views handed out by view() stay
 * valid and unchanged for as long as a caller holds them (a compaction copies live values into new chunks
 * and lets the old ones go when nobody references them). Freed bytes are counted per chunk; an empty
 * chunk is dropped at once, and the owner compacts when less than half of the allocated bytes are live.
 *
 * Values start at multiples of 4 bytes, so a compaction copies them as 32-bit words from chunk to chunk
 * (a 64-byte value in ~10 ns), without a view object per value.
 */
import { assert } from "../shared/assert.ts";

/** Chunk sizes grow with the bucket, from CHUNK_BYTES_MIN to CHUNK_BYTES_MAX. */
const CHUNK_BYTES_MIN = 4 * 1024;
const CHUNK_BYTES_MAX = 1024 * 1024;
/** Every value offset is below this (large values get a chunk of their own, at offset 0). */
export const VALUE_OFFSET_LIMIT = CHUNK_BYTES_MAX;
/** Compaction pays off only above this much garbage (small buckets never compact). */
const COMPACT_GARBAGE_BYTES_MIN = 4 * 1024 * 1024;

/**
 * Values up to this many bytes are copied byte by byte; longer ones with set(), whose fixed cost (~20 ns)
 * is below a byte loop's from about 16 bytes on (a 64-byte loop takes ~100 ns).
 */
const COPY_LOOP_BYTES_MAX = 8;

/** The next multiple of 4 (value offsets are word-aligned). */
function align(offset: number): number {
  return (offset + 3) & ~3;
}

export class ValueArena {
  private readonly chunks: (Uint8Array | null)[] = [];
  /** buffers[id] === chunks[id].buffer (each chunk starts at offset 0): views are made from the buffer, which is cheaper than subarray(). */
  private readonly buffers: (ArrayBuffer | null)[] = [];
  /** The chunks as 32-bit words (whole words only). */
  private readonly words: (Int32Array | null)[] = [];
  /** Live bytes per chunk. */
  private readonly chunkLive: number[] = [];
  private readonly freeChunkIds: number[] = [];
  /** The chunk that small values are appended to (-1 before the first). */
  private current = -1;
  private currentOffset = 0;
  /** Bytes of all chunks held. Invariant: allocatedBytes >= liveBytes. */
  allocatedBytes = 0;
  /** Bytes of all stored values. */
  liveBytes = 0;
  /** Offset of the value stored by the last store() call (a second return value, to avoid allocation). */
  lastOffset = 0;

  /** Copies a non-empty value in; returns its chunk id (offset in lastOffset). */
  store(value: Uint8Array): number {
    const length = value.length;
    const current = this.current;
    if (current !== -1) {
      const chunk = this.chunks[current]!;
      const offset = this.currentOffset;
      if (length <= chunk.length >>> 2 && offset + length <= chunk.length) {
        this.put(chunk, offset, value);
        this.currentOffset = align(offset + length);
        this.lastOffset = offset;
        this.chunkLive[current]! += length;
        this.liveBytes += length;
        return current;
      }
    }
    return this.storeInNewChunk(value);
  }

  /** store() when the value does not fit the current chunk, or is large enough for a chunk of its own. */
  private storeInNewChunk(value: Uint8Array): number {
    const length = value.length;
    assert(length > 0, "empty values are not stored in the arena");
    let chunkBytes = CHUNK_BYTES_MIN;
    while (chunkBytes < CHUNK_BYTES_MAX && chunkBytes < this.liveBytes / 4) chunkBytes *= 2;
    let id: number;
    if (length > chunkBytes >>> 2) {
      id = this.newChunk(length); // a large value gets a chunk of its own
      this.lastOffset = 0;
    } else {
      const previous = this.current;
      id = this.current = this.newChunk(chunkBytes);
      this.currentOffset = align(length);
      this.lastOffset = 0;
      if (previous !== -1 && this.chunkLive[previous] === 0) this.dropChunk(previous);
    }
    this.put(this.chunks[id]!, this.lastOffset, value);
    this.chunkLive[id]! += length;
    this.liveBytes += length;
    return id;
  }

  private put(chunk: Uint8Array, offset: number, value: Uint8Array): void {
    const length = value.length;
    if (length <= COPY_LOOP_BYTES_MAX) for (let i = 0; i < length; i++) chunk[offset + i] = value[i]!;
    else chunk.set(value, offset);
  }

  /**
   * Copies a value stored in `from` (chunk `id`, `offset`, `length` > 0) in, as store() does; for
   * compaction, without a view of the value.
   */
  storeFrom(from: ValueArena, id: number, offset: number, length: number): number {
    const current = this.current;
    if (current === -1 || length > this.chunks[current]!.length >>> 2 || this.currentOffset + length > this.chunks[current]!.length) {
      return this.storeInNewChunk(from.view(id, offset, length));
    }
    const at = this.currentOffset;
    const words = length >>> 2;
    const source = from.words[id]!;
    const target = this.words[current]!;
    for (let w = 0, s = offset >>> 2, t = at >>> 2; w < words; w++) target[t + w] = source[s + w]!;
    const sourceBytes = from.chunks[id]!;
    const targetBytes = this.chunks[current]!;
    for (let b = words * 4; b < length; b++) targetBytes[at + b] = sourceBytes[offset + b]!;
    this.currentOffset = align(at + length);
    this.lastOffset = at;
    this.chunkLive[current]! += length;
    this.liveBytes += length;
    return current;
  }

  /** A read-only view of a stored value (must not be mutated). */
  view(id: number, offset: number, length: number): Uint8Array {
    return new Uint8Array(this.buffers[id]!, offset, length);
  }

  /**
   * Copies a stored value into `target` at `at` (for bulk export). `targetWords` views target's
   * buffer from target's start as 32-bit words (target.byteOffset a multiple of 4): at a word-aligned
   * `at` the value is copied as words, without a view object.
   */
  copyTo(id: number, offset: number, length: number, target: Uint8Array, targetWords: Int32Array, at: number): void {
    const chunk = this.chunks[id]!;
    if (length <= COPY_LOOP_BYTES_MAX) {
      for (let i = 0; i < length; i++) target[at + i] = chunk[offset + i]!;
    } else if ((at & 3) === 0) {
      const words = length >>> 2;
      const source = this.words[id]!;
      for (let w = 0, s = offset >>> 2, t = at >>> 2; w < words; w++) targetWords[t + w] = source[s + w]!;
      for (let b = words * 4; b < length; b++) target[at + b] = chunk[offset + b]!;
    } else {
      target.set(this.view(id, offset, length), at);
    }
  }

  /** Releases a stored value's bytes. */
  free(id: number, length: number): void {
    const live = this.chunkLive[id]! - length;
    assert(live >= 0, "arena chunk freed more than stored");
    this.chunkLive[id] = live;
    this.liveBytes -= length;
    if (live === 0 && id !== this.current) this.dropChunk(id);
  }

  /** True when less than half of the allocated bytes are live (and the garbage is worth a copy). */
  shouldCompact(): boolean {
    const garbage = this.allocatedBytes - this.liveBytes;
    return garbage > COMPACT_GARBAGE_BYTES_MIN && garbage > this.liveBytes;
  }

  private newChunk(bytes: number): number {
    const id = this.freeChunkIds.length > 0 ? this.freeChunkIds.pop()! : this.chunks.length;
    const chunk = new Uint8Array(bytes);
    this.chunks[id] = chunk;
    this.buffers[id] = chunk.buffer;
    this.words[id] = new Int32Array(chunk.buffer, 0, bytes >>> 2);
    this.chunkLive[id] = 0;
    this.allocatedBytes += bytes;
    return id;
  }

  private dropChunk(id: number): void {
    this.allocatedBytes -= this.chunks[id]!.length;
    this.chunks[id] = null;
    this.buffers[id] = null;
    this.words[id] = null;
    this.freeChunkIds.push(id);
  }
}
