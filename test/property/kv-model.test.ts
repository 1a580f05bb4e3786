/**
 * Goal: the KV state machine behaves exactly like a deliberately simple reference model (a list of
 * records per bucket, kv-reference.ts) for random sequences of every command across several buckets,
 * with leader time advancing (and sometimes running back, which the machine must clamp), request ids
 * that repeat, TTLs, markers and limits. Snapshot/restore injected at random points must change nothing,
 * and a twin machine fed the same commands (never restored) must produce byte-identical snapshots.
 * Method: fast-check fc.commands + fc.modelRun. After every command the machine's results, events and
 * whole visible state (history, keys, status, next expiry) are compared with the model's; query commands
 * compare keys/history/watchInitial/get for random filters and pages.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KvStateMachine, normalizeConfig, type BucketConfig, type KvCommand, type KvLimits } from "../../src/kv/index.ts";
import { KvModel } from "./kv-reference.ts";

const LIMITS: KvLimits = { keyBytesMax: 16, dedupeWindowMs: 5000, dedupeEntriesMax: 4 };
const T0 = 1_700_000_000_000;
const BUCKETS = ["b0", "b1", "b2"];
const FILTERS = [">", "*", "a", "a.>", "a.*", "*.b", "a.b", "a.*.c", "b.>", "*.*.*", "c.b.a"];

interface Real {
  sm: KvStateMachine;
  /** Fed the same commands, never restored: its snapshots must equal sm's byte for byte. */
  twin: KvStateMachine;
  index: number;
  leaderNow: number;
}

interface Model {
  kv: KvModel;
}

const arbBucket = fc.constantFrom(...BUCKETS);
const arbKey = fc.oneof(
  { weight: 20, arbitrary: fc.array(fc.constantFrom("a", "b", "c"), { minLength: 1, maxLength: 3 }).map((t) => t.join(".")) },
  { weight: 1, arbitrary: fc.constantFrom("a..b", "a.*", ">", "x".repeat(17)) },
);
const arbValue = fc.uint8Array({ maxLength: 6 });
const arbFilters = fc.array(fc.constantFrom(...FILTERS), { minLength: 1, maxLength: 3 });
const arbConfig: fc.Arbitrary<BucketConfig> = fc
  .record({
    history: fc.integer({ min: 1, max: 4 }),
    ttlMs: fc.oneof(fc.constant(0), fc.integer({ min: 2, max: 24 }).map((n) => n * 250)),
    markerTtlMs: fc.oneof(fc.constant(0), fc.integer({ min: 4, max: 16 }).map((n) => n * 250)),
    maxBytes: fc.oneof(fc.constant(-1), fc.integer({ min: 6, max: 40 })),
    maxValueSize: fc.oneof(fc.constant(-1), fc.integer({ min: 2, max: 6 })),
    storage: fc.constantFrom("file" as const, "memory" as const),
  })
  .map((c) => normalizeConfig(c));
// Times are mostly multiples of 250 ms so that due times tie often (ties are ordered by revision).
const arbTtl = fc.option(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 4, max: 20 }).map((n) => n * 250) }, { weight: 1, arbitrary: fc.constant(500) }), {
  nil: undefined,
  freq: 2,
});
/** Leader clock step: mostly forward, sometimes a leader whose clock is behind. */
const arbDt = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 10 }).map((n) => n * 250) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 2500 }) },
  { weight: 1, arbitrary: fc.integer({ min: -3000, max: -1 }) },
);
const arbRequestId = fc.option(fc.constantFrom("r0", "r1", "r2", "r3", "r4", "r5"), { nil: undefined, freq: 3 });

function compareState(model: Model, real: Real): void {
  expect(real.sm.listBuckets()).toEqual([...model.kv.buckets.keys()].sort());
  for (const name of model.kv.buckets.keys()) {
    expect(real.sm.history(name, [">"]), `history of ${name}`).toEqual(model.kv.history(name, [">"], 0, Infinity));
    expect(real.sm.keys(name, [">"])).toEqual(model.kv.keys(name, [">"], 0, Infinity));
    expect(real.sm.status(name)).toEqual(model.kv.status(name));
    expect(real.sm.nextExpiryAt(name)).toEqual(model.kv.nextExpiryAt(name));
  }
}

/** Applies a command to model, machine and twin, compares the outcomes and the resulting state. */
class Apply implements fc.Command<Model, Real> {
  constructor(
    readonly make: (model: Model) => KvCommand,
    readonly dt: number,
    readonly requestId: string | undefined,
    readonly label: string,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const command = this.make(model);
    real.leaderNow += this.dt;
    real.index++;
    const envelope = this.requestId === undefined ? { now: real.leaderNow, command } : { now: real.leaderNow, command, requestId: this.requestId };
    const expected = model.kv.apply(real.leaderNow, command, this.requestId);
    const actual = real.sm.apply(real.index, envelope);
    const twin = real.twin.apply(real.index, envelope);
    expect(actual.result).toEqual(expected.result);
    expect(actual.duplicate).toBe(expected.duplicate);
    expect(actual.events).toEqual(expected.events);
    expect(twin).toEqual(actual);
    compareState(model, real);
  }
  toString(): string {
    return `${this.label} dt=${this.dt}${this.requestId ? ` id=${this.requestId}` : ""}`;
  }
}

/** Expected revision for CAS commands: the key's actual last revision (so CAS can succeed) or a guess. */
function expectedRevision(model: Model, bucket: string, key: string, guess: number | "actual"): number {
  if (guess !== "actual") return guess;
  const b = model.kv.buckets.get(bucket);
  if (!b) return 0;
  const own = b.records.filter((r) => r.key === key);
  return own[own.length - 1]?.revision ?? 0;
}

const arbGuess = fc.oneof(fc.constant("actual" as const), fc.integer({ min: 0, max: 12 }));

const writeCommands: fc.Arbitrary<fc.Command<Model, Real>>[] = [
  fc.tuple(arbBucket, arbConfig, arbDt, arbRequestId).map(
    ([bucket, config, dt, id]) => new Apply(() => ({ type: "bucketCreate", bucket, config }), dt, id, `bucketCreate ${bucket} ${JSON.stringify(config)}`),
  ),
  fc.tuple(arbBucket, arbConfig, arbDt).map(
    ([bucket, config, dt]) => new Apply(() => ({ type: "bucketUpdate", bucket, config }), dt, undefined, `bucketUpdate ${bucket} ${JSON.stringify(config)}`),
  ),
  fc.tuple(arbBucket, arbDt).map(([bucket, dt]) => new Apply(() => ({ type: "bucketDelete", bucket }), dt, undefined, `bucketDelete ${bucket}`)),
  fc.tuple(arbBucket, arbKey, arbValue, arbTtl, arbDt, arbRequestId).map(
    ([bucket, key, value, ttlMs, dt, id]) =>
      new Apply(
        () => (ttlMs === undefined ? { type: "put", bucket, key, value } : { type: "put", bucket, key, value, ttlMs }),
        dt,
        id,
        `put ${bucket} ${key}=${value.length}b ttl=${ttlMs}`,
      ),
  ),
  fc.tuple(arbBucket, arbKey, arbValue, arbTtl, arbDt, arbRequestId).map(
    ([bucket, key, value, ttlMs, dt, id]) =>
      new Apply(
        () => (ttlMs === undefined ? { type: "create", bucket, key, value } : { type: "create", bucket, key, value, ttlMs }),
        dt,
        id,
        `create ${bucket} ${key} ttl=${ttlMs}`,
      ),
  ),
  fc.tuple(arbBucket, arbKey, arbValue, arbGuess, arbDt, arbRequestId).map(
    ([bucket, key, value, guess, dt, id]) =>
      new Apply((m) => ({ type: "update", bucket, key, value, revision: expectedRevision(m, bucket, key, guess) }), dt, id, `update ${bucket} ${key} @${guess}`),
  ),
  fc.tuple(arbBucket, arbKey, fc.option(arbGuess, { nil: undefined }), arbDt, arbRequestId).map(
    ([bucket, key, guess, dt, id]) =>
      new Apply(
        (m) => (guess === undefined ? { type: "delete", bucket, key } : { type: "delete", bucket, key, revision: expectedRevision(m, bucket, key, guess) }),
        dt,
        id,
        `delete ${bucket} ${key} @${guess}`,
      ),
  ),
  fc.tuple(arbBucket, arbKey, fc.option(arbGuess, { nil: undefined }), arbTtl, arbDt, arbRequestId).map(
    ([bucket, key, guess, ttlMs, dt, id]) =>
      new Apply(
        (m) => {
          const base = { type: "purge" as const, bucket, key };
          const withRevision = guess === undefined ? base : { ...base, revision: expectedRevision(m, bucket, key, guess) };
          return ttlMs === undefined ? withRevision : { ...withRevision, ttlMs };
        },
        dt,
        id,
        `purge ${bucket} ${key} @${guess} ttl=${ttlMs}`,
      ),
  ),
  fc.tuple(arbBucket, fc.constantFrom(-1, 0, 1000, 5000, 30 * 60_000), arbDt).map(
    ([bucket, olderThanMs, dt]) => new Apply(() => ({ type: "purgeDeletes", bucket, olderThanMs }), dt, undefined, `purgeDeletes ${bucket} ${olderThanMs}`),
  ),
  fc.tuple(arbBucket, arbDt).map(([bucket, dt]) => new Apply(() => ({ type: "purgeBucket", bucket }), dt, undefined, `purgeBucket ${bucket}`)),
  fc.tuple(arbBucket, fc.integer({ min: 0, max: 32 }).map((n) => n * 250)).map(([bucket, dt]) => new Apply(() => ({ type: "expire", bucket }), dt, undefined, `expire ${bucket}`)),
];

/** Queries with random filters and pages. */
class Query implements fc.Command<Model, Real> {
  constructor(
    readonly bucket: string,
    readonly filters: string[],
    readonly afterRevision: number,
    readonly limit: number | undefined,
    readonly key: string,
    readonly revision: number | undefined,
  ) {}
  check(model: Model): boolean {
    return model.kv.buckets.has(this.bucket);
  }
  run(model: Model, real: Real): void {
    const { bucket, filters, afterRevision, limit } = this;
    const page = limit === undefined ? { afterRevision } : { afterRevision, limit };
    expect(real.sm.keys(bucket, filters, page)).toEqual(model.kv.keys(bucket, filters, afterRevision, limit ?? Infinity));
    expect(real.sm.history(bucket, filters, page)).toEqual(model.kv.history(bucket, filters, afterRevision, limit ?? Infinity));
    for (const include of ["last", "history", "updates"] as const) {
      expect(real.sm.watchInitial(bucket, filters, { include })).toEqual(model.kv.watchInitial(bucket, filters, include));
    }
    const resume = afterRevision + 1;
    expect(real.sm.watchInitial(bucket, filters, { include: "last", resumeFromRevision: resume })).toEqual(
      model.kv.watchInitial(bucket, filters, "last", resume),
    );
    if (/^[abc](\.[abc])*$/.test(this.key)) {
      for (const includeDeleted of [false, true]) {
        const options = this.revision === undefined ? { includeDeleted } : { includeDeleted, revision: this.revision };
        expect(real.sm.get(bucket, this.key, options)).toEqual(model.kv.get(bucket, this.key, this.revision, includeDeleted));
      }
    }
  }
  toString(): string {
    return `query ${this.bucket} ${JSON.stringify(this.filters)} after=${this.afterRevision} limit=${this.limit} get=${this.key}@${this.revision}`;
  }
}

const queryCommand = fc
  .tuple(arbBucket, arbFilters, fc.integer({ min: 0, max: 15 }), fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }), arbKey, fc.option(fc.integer({ min: 1, max: 15 }), { nil: undefined }))
  .map(([b, f, after, limit, key, rev]) => new Query(b, f, after, limit, key, rev));

/** Replaces the machine with one restored from its snapshot; nothing observable may change. */
class SnapshotRestore implements fc.Command<Model, Real> {
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const image = real.sm.snapshot();
    expect(Buffer.from(image).equals(Buffer.from(real.twin.snapshot()))).toBe(true);
    const restored = new KvStateMachine(LIMITS);
    restored.restore(image);
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(image))).toBe(true);
    expect(restored.appliedIndex).toBe(real.index);
    real.sm = restored;
    compareState(model, real);
  }
  toString(): string {
    return "snapshot+restore";
  }
}

/** fc.commands picks uniformly among its arbitraries: repeat the ones that should come up more often. */
const allCommands: fc.Arbitrary<fc.Command<Model, Real>>[] = [
  ...writeCommands,
  writeCommands[3]!, // put
  writeCommands[3]!,
  writeCommands[4]!, // create
  writeCommands[10]!, // expire
  queryCommand,
  queryCommand,
  queryCommand,
  fc.constant(new SnapshotRestore()),
  fc.constant(new SnapshotRestore()),
];

describe("KvStateMachine against the reference model", () => {
  it("agrees on results, events and state; snapshots are canonical and restore changes nothing", () => {
    fc.assert(
      fc.property(
        fc.commands(allCommands, { maxCommands: 200, size: "medium" }),
        (commands) => {
          let last: Real | undefined;
          const setup = (): { model: Model; real: Real } => {
            const sm = new KvStateMachine(LIMITS);
            const twin = new KvStateMachine(LIMITS);
            const model: Model = { kv: new KvModel(LIMITS) };
            const real: Real = { sm, twin, index: 0, leaderNow: T0 };
            // Start with buckets so most commands hit something: two with TTLs and markers, one small.
            const initial = [
              ["b0", { history: 2, markerTtlMs: 1000, ttlMs: 4000 }],
              ["b1", { history: 2, markerTtlMs: 1000, ttlMs: 4000 }],
              ["b2", { history: 1, maxBytes: 24, maxValueSize: 5 }],
            ] as const;
            for (const [bucket, config] of initial) {
              const command: KvCommand = { type: "bucketCreate", bucket, config: normalizeConfig(config) };
              real.index++;
              model.kv.apply(T0, command);
              sm.apply(real.index, { now: T0, command });
              twin.apply(real.index, { now: T0, command });
            }
            last = real;
            return { model, real };
          };
          fc.modelRun(setup, commands);
          expect(Buffer.from(last!.sm.snapshot()).equals(Buffer.from(last!.twin.snapshot()))).toBe(true);
        },
      ),
      { numRuns: Number(process.env["KV_MODEL_RUNS"] ?? 1500) },
    );
  });
});
