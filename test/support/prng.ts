/**
 * A small seeded PRNG for tests and the simulator: xoshiro128** seeded through splitmix32.
 *
 * Why our own: the simulator must replay a run bit for bit from one printed seed, on any Node version,
 * so every random choice flows from this code and never from Math.random(). Streams are forked by
 * label from the *seed* (not from the parent's current state), so adding a draw in one part of the
 * simulator (say, the network) does not shift the draws of another (say, a core's election timeouts).
 * That keeps a failure stable while fast-check shrinks the fault schedule around it.
 */

/** 32-bit FNV-1a of a string; used to turn fork labels into seed material. */
export function fnv1aString(text: string, hash = 0x811c9dc5): number {
  let h = hash >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) >>> 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export class Prng {
  /** The 32-bit seed material this stream (and every fork of it) derives from. */
  readonly seedMaterial: number;
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed`: any safe integer or string (a string is hashed). */
  constructor(seed: number | string) {
    this.seedMaterial = Prng.material(seed);
    const state = { s: this.seedMaterial };
    this.a = splitmix32(state);
    this.b = splitmix32(state);
    this.c = splitmix32(state);
    this.d = splitmix32(state);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1; // xoshiro's one forbidden state
  }

  private static material(seed: number | string): number {
    if (typeof seed === "string") return fnv1aString(seed);
    if (!Number.isSafeInteger(seed)) throw new TypeError(`seed must be a safe integer, got ${seed}`);
    // Fold the high bits in so seeds above 2^32 stay distinct.
    const high = Math.floor(seed / 0x100000000);
    return (fnv1aString(String(high), seed >>> 0) ^ (seed >>> 0)) >>> 0;
  }

  /** An independent stream named `label`, derived from this stream's seed (not its position). */
  fork(label: string): Prng {
    return new Prng(fnv1aString(label, this.seedMaterial));
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.b << 9) >>> 0;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    return result;
  }

  /** Uniform in [0, 1), 32 bits of precision. */
  float(): number {
    return this.nextU32() / 0x100000000;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1) || !Number.isInteger(n)) throw new TypeError(`int(n) needs an integer n >= 1, got ${n}`);
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [low, high] (both inclusive). */
  range(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new TypeError("pick from an empty list");
    return items[this.int(items.length)] as T;
  }

  /** Fisher-Yates, in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
