/**
 * A bounded window of "app" messages in flight to one follower in replicate state (etcd
 * tracker/inflights.go). Each slot records the last index a message carried and its entry bytes.
 * Limits: at most `sizeMax` messages and (when `bytesMax` > 0) about `bytesMax` bytes: the window is
 * full once the bytes in flight reach the limit, so one message may overshoot it.
 */
import { assert } from "../shared/assert.ts";

export class Inflights {
  private readonly indexes: Float64Array;
  private readonly sizes: Float64Array;
  /** Ring buffer head (oldest message) and message count. Invariant: 0 <= count <= sizeMax. */
  private start = 0;
  count = 0;
  bytes = 0;

  constructor(
    readonly sizeMax: number,
    readonly bytesMax: number,
  ) {
    assert(Number.isInteger(sizeMax) && sizeMax > 0, "inflights: sizeMax must be a positive integer");
    this.indexes = new Float64Array(sizeMax);
    this.sizes = new Float64Array(sizeMax);
  }

  full(): boolean {
    return this.count === this.sizeMax || (this.bytesMax > 0 && this.bytes >= this.bytesMax);
  }

  /** Records a message whose last entry has `index`. Indexes must increase. */
  add(index: number, bytes: number): void {
    assert(!this.full(), "inflights: add into a full window");
    let slot = this.start + this.count;
    if (slot >= this.sizeMax) slot -= this.sizeMax;
    if (this.count > 0) {
      let last = slot - 1;
      if (last < 0) last += this.sizeMax;
      assert(this.indexes[last]! < index, "inflights: indexes must increase");
    }
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    while (this.count > 0 && this.indexes[this.start]! <= index) {
      this.bytes -= this.sizes[this.start]!;
      this.start++;
      if (this.start === this.sizeMax) this.start = 0;
      this.count--;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
