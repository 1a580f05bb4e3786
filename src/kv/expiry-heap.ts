/**
 * A binary min-heap of (expiresAt, revision) pairs: the records of one bucket that carry their own
 * expiry (per-key TTL, markers). Ordered by time, then revision, a total order, so the state machine
 * expires due records in the same order on every replica. Entries of records removed earlier (trimmed,
 * purged) stay until they reach the top, where the owner discards them (lazy deletion).
 */
export class ExpiryHeap {
  private times: number[] = [];
  private revisions: number[] = [];

  get size(): number {
    return this.times.length;
  }

  /** Earliest time, or Infinity when empty. */
  peekTime(): number {
    return this.times.length === 0 ? Infinity : this.times[0]!;
  }

  /** Revision of the earliest entry (the heap must not be empty). */
  peekRevision(): number {
    return this.revisions[0]!;
  }

  push(time: number, revision: number): void {
    const times = this.times;
    const revisions = this.revisions;
    let i = times.length;
    times.push(time);
    revisions.push(revision);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = times[parent]!;
      if (pt < time || (pt === time && revisions[parent]! < revision)) break;
      times[i] = pt;
      revisions[i] = revisions[parent]!;
      i = parent;
    }
    times[i] = time;
    revisions[i] = revision;
  }

  pop(): void {
    const times = this.times;
    const revisions = this.revisions;
    const lastTime = times.pop()!;
    const lastRevision = revisions.pop()!;
    const n = times.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && less(times[right]!, revisions[right]!, times[child]!, revisions[child]!)) child = right;
      if (!less(times[child]!, revisions[child]!, lastTime, lastRevision)) break;
      times[i] = times[child]!;
      revisions[i] = revisions[child]!;
      i = child;
    }
    times[i] = lastTime;
    revisions[i] = lastRevision;
  }

  /** Keeps only the entries for which keep(revision) is true (rebuilds in O(n)). */
  retain(keep: (revision: number) => boolean): void {
    const entries: number[] = [];
    for (let i = 0; i < this.times.length; i++) if (keep(this.revisions[i]!)) entries.push(i);
    const times = entries.map((i) => this.times[i]!);
    const revisions = entries.map((i) => this.revisions[i]!);
    this.times = [];
    this.revisions = [];
    for (let i = 0; i < times.length; i++) this.push(times[i]!, revisions[i]!);
  }

  clear(): void {
    this.times = [];
    this.revisions = [];
  }
}

function less(t1: number, r1: number, t2: number, r2: number): boolean {
  return t1 < t2 || (t1 === t2 && r1 < r2);
}
