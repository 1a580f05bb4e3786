/**
 * KvStateMachine: every bucket of a cluster, applied in Raft log order. Deterministic: the same
 * sequence of apply() calls gives the same results, events and snapshot bytes on every replica.
 *
 * Time: each envelope carries the leader's clock (`now`); the machine uses max(now, the latest time it
 * has seen), so time never runs back, not across leader changes either. Records are stamped with that
 * time and all expiry (bucket ttl, per-key TTL, markers) is decided from it, never from a local clock.
 *
 * apply() never throws for a bad command: validation failures, CAS conflicts and limits come back as
 * `{ ok: false, code, message }` results, recorded in the request-id window like successes.
 */
import { assert, AssertionError } from "../shared/assert.ts";
import { CairnError } from "../shared/errors.ts";
import { Bucket, failure } from "./bucket.ts";
import { configsEqual, configUpdateAllowed, normalizeConfig } from "./config.ts";
import { DedupeWindow } from "./dedupe.ts";
import { compileFilters, validateBucketName, validateKey } from "./names.ts";
import { selectSlots, type Selection } from "./query.ts";
import { KEY_LENGTH_LIMIT, RecordLog } from "./record-log.ts";
import { decodeSnapshot, encodeSnapshot } from "./snapshot.ts";
import {
  DEFAULT_KV_LIMITS,
  type ApplyOutcome,
  type BucketConfig,
  type BucketStatus,
  type KvCommand,
  type KvEnvelope,
  type KvLimits,
  type KvRecord,
  type KvResult,
  type WatchEvent,
  type WatchStartOptions,
} from "./types.ts";

/** Shortest per-key TTL (as NATS: one second). */
export const KEY_TTL_MS_MIN = 1000;

const NO_EVENTS: readonly WatchEvent[] = Object.freeze([]);

export interface PageOptions {
  /** Only items whose revision is greater than this (default 0). */
  readonly afterRevision?: number;
  /** At most this many items (default: all). */
  readonly limit?: number;
}

function malformed(what: string): CairnError {
  return new CairnError("INVALID_REQUEST", `malformed request: ${what}`);
}

/** An optional command field: a codec may turn an absent field into null; both mean "not given". */
function optional<T>(value: T | null | undefined): T | undefined {
  return value === null ? undefined : value;
}

function isRevision(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export class KvStateMachine {
  private readonly limits: KvLimits;
  private readonly buckets = new Map<string, Bucket>();
  /** The bucket bucketOf() found last (writes come in runs to one bucket); null after any change to `buckets`. */
  private lastBucket: Bucket | null = null;
  private dedupe: DedupeWindow;
  private applied = 0;
  /** Latest leader time seen (ms); the clock of the state machine. */
  private clock = 0;

  constructor(limits: KvLimits = DEFAULT_KV_LIMITS) {
    assert(Number.isSafeInteger(limits.keyBytesMax) && limits.keyBytesMax >= 1 && limits.keyBytesMax <= KEY_LENGTH_LIMIT, "keyBytesMax out of range");
    assert(limits.dedupeWindowMs >= 0 && Number.isSafeInteger(limits.dedupeEntriesMax) && limits.dedupeEntriesMax >= 0, "dedupe limits out of range");
    this.limits = limits;
    this.dedupe = new DedupeWindow(limits.dedupeWindowMs, limits.dedupeEntriesMax);
  }

  /** Raft index of the last applied entry (0 before any). */
  get appliedIndex(): number {
    return this.applied;
  }

  /** The state machine's clock: the latest leader time applied (ms). */
  get now(): number {
    return this.clock;
  }

  /**
   * Applies one committed log entry. `index` must exceed appliedIndex (gaps are fine: not every Raft
   * entry is a KV command). Returns the result, and the watch events the command caused in revision
   * order: deliver them whatever the result says (a failed CAS may still follow expiry markers that were
   * due at its time). A duplicate request id returns the first result, no events, `duplicate: true`.
   */
  apply(index: number, envelope: KvEnvelope): ApplyOutcome {
    if (!(Number.isSafeInteger(index) && index > this.applied)) {
      throw new AssertionError(`apply index ${index} must exceed ${this.applied}`); // a driver bug, not bad input
    }
    this.applied = index;
    if (typeof envelope !== "object" || envelope === null) {
      return { result: failure(malformed("envelope")), events: NO_EVENTS, duplicate: false };
    }
    const leaderNow = envelope.now;
    if (typeof leaderNow === "number" && Number.isFinite(leaderNow) && leaderNow > this.clock) this.clock = leaderNow;
    const now = this.clock;
    this.dedupe.evict(now);
    const requestId = envelope.requestId;
    if (requestId !== undefined) {
      if (typeof requestId !== "string") {
        return { result: failure(malformed("requestId")), events: NO_EVENTS, duplicate: false };
      }
      const prior = this.dedupe.get(requestId);
      if (prior !== undefined) return { result: prior, events: NO_EVENTS, duplicate: true };
    }
    const events: WatchEvent[] = [];
    let result: KvResult;
    try {
      result = this.execute(envelope.command, now, events);
    } catch (error) {
      // Only validation throws CairnErrors, and it runs before any mutation.
      if (!(error instanceof CairnError)) throw error;
      result = failure(error);
    }
    if (requestId !== undefined) this.dedupe.add(requestId, now, result);
    return { result, events, duplicate: false };
  }

  private execute(command: KvCommand, now: number, events: WatchEvent[]): KvResult {
    if (typeof command !== "object" || command === null) throw malformed("command");
    switch (command.type) {
      case "bucketCreate": {
        const name = validateBucketName(command.bucket);
        const config = normalizeConfig(command.config);
        const existing = this.buckets.get(name);
        if (existing !== undefined) {
          if (configsEqual(existing.config, config)) return { ok: true };
          throw new CairnError("BUCKET_EXISTS", "bucket name already in use");
        }
        this.buckets.set(name, new Bucket(name, config));
        this.lastBucket = null;
        return { ok: true };
      }
      case "bucketUpdate": {
        const bucket = this.bucketOf(command.bucket);
        const config = normalizeConfig(command.config);
        configUpdateAllowed(bucket.config, config);
        bucket.updateConfig(config, now, events);
        return { ok: true };
      }
      case "bucketDelete": {
        this.buckets.delete(this.bucketOf(command.bucket).name);
        this.lastBucket = null;
        return { ok: true };
      }
      case "put":
      case "create":
      case "update": {
        const bucket = this.bucketOf(command.bucket);
        const key = validateKey(command.key, this.limits);
        if (!(command.value instanceof Uint8Array)) throw malformed("value");
        const ttlMs = this.keyTtl(command.ttlMs);
        let expected = 0;
        if (command.type === "update") {
          if (!isRevision(command.revision)) throw malformed("revision");
          expected = command.revision;
        }
        return bucket.writeValue(command.type, key, command.value, expected, ttlMs, now, events);
      }
      case "delete":
      case "purge": {
        const bucket = this.bucketOf(command.bucket);
        const key = validateKey(command.key, this.limits);
        const expected = optional(command.revision);
        if (expected !== undefined && !isRevision(expected)) throw malformed("revision");
        const ttlMs = command.type === "purge" ? this.keyTtl(command.ttlMs) : undefined;
        return bucket.writeMarker(command.type, key, expected, ttlMs, now, events);
      }
      case "purgeDeletes": {
        const bucket = this.bucketOf(command.bucket);
        const olderThanMs = command.olderThanMs;
        if (typeof olderThanMs !== "number" || Number.isNaN(olderThanMs)) throw malformed("olderThanMs");
        return { ok: true, count: bucket.purgeDeletes(olderThanMs, now, events) };
      }
      case "purgeBucket": {
        this.bucketOf(command.bucket).purgeAll();
        return { ok: true };
      }
      case "expire": {
        return { ok: true, count: this.bucketOf(command.bucket).expire(now, events) };
      }
      default:
        throw malformed(`unknown command type ${JSON.stringify((command as { type?: unknown }).type)}`);
    }
  }

  /** A per-key TTL option: absent, or an integer >= KEY_TTL_MS_MIN (CairnError INVALID_OPTION). */
  private keyTtl(ttlMs: unknown): number | undefined {
    if (optional(ttlMs) === undefined) return undefined;
    if (typeof ttlMs !== "number" || !Number.isSafeInteger(ttlMs) || ttlMs < KEY_TTL_MS_MIN) {
      throw new CairnError("INVALID_OPTION", "invalid per-key TTL: must be a whole number of ms >= 1000");
    }
    return ttlMs;
  }

  private bucketOf(name: unknown): Bucket {
    const last = this.lastBucket;
    if (last !== null && last.name === name) return last;
    const bucket = this.buckets.get(name as string);
    if (bucket !== undefined) {
      this.lastBucket = bucket;
      return bucket; // only valid names are ever stored
    }
    validateBucketName(name);
    throw new CairnError("BUCKET_NOT_FOUND", "bucket not found");
  }

  // ---------------------------------------------------------------- reads

  hasBucket(bucket: string): boolean {
    return this.buckets.has(bucket);
  }

  /** Throws CairnError BUCKET_NOT_FOUND. */
  bucketConfig(bucket: string): BucketConfig {
    return this.bucketOf(bucket).config;
  }

  /** Bucket names, sorted. */
  listBuckets(): string[] {
    return [...this.buckets.keys()].sort();
  }

  /** Throws CairnError BUCKET_NOT_FOUND. */
  status(bucket: string): BucketStatus {
    return this.bucketOf(bucket).status();
  }

  /**
   * The latest record of a key, or with `revision` that record if it belongs to the key and is retained.
   * null when there is none, or when it is a DEL/PURGE and includeDeleted is not set.
   * Throws CairnError BUCKET_NOT_FOUND / INVALID_KEY.
   */
  get(bucket: string, key: string, options: { revision?: number; includeDeleted?: boolean } = {}): KvRecord | null {
    const log = this.bucketOf(bucket).log;
    validateKey(key, this.limits);
    const id = log.keyId(key);
    if (id === -1) return null;
    let slot = log.newest(id);
    const revision = options.revision;
    if (revision !== undefined) {
      while (slot !== -1 && log.revision(slot) > revision) slot = log.older(slot);
      if (slot === -1 || log.revision(slot) !== revision) return null;
    }
    if (options.includeDeleted !== true && !log.isPut(slot)) return null;
    return log.record(slot, key);
  }

  /**
   * Keys whose latest record is a PUT, matching any of the filters, ordered by that record's revision;
   * paged: pass the previous page's lastRevision as afterRevision. lastRevision is the revision of the
   * last key returned (afterRevision when none); done is true when no further key matches. A key
   * written between two pages moves to a later revision and may be listed again.
   */
  keys(bucket: string, filters: readonly string[], options: PageOptions = {}): { keys: string[]; lastRevision: number; done: boolean } {
    const { slots, done, lastRevision, log } = this.select(bucket, filters, "latestPut", options);
    const keys: string[] = [];
    for (const slot of slots) keys.push(log.keyName(log.keyOf(slot)));
    return { keys, lastRevision, done };
  }

  /** Every retained record of the matching keys (PUT, DEL, PURGE), ascending revision; paged as keys(). */
  history(bucket: string, filters: readonly string[], options: PageOptions = {}): { records: KvRecord[]; lastRevision: number; done: boolean } {
    const { slots, done, lastRevision, log } = this.select(bucket, filters, "all", options);
    const records: KvRecord[] = [];
    for (const slot of slots) records.push(log.record(slot));
    return { records, lastRevision, done };
  }

  /**
   * The initial part of a watch, at the current applied state, ascending revision: `last` = the latest
   * record of each matching key (DEL/PURGE included), `history` = every retained record, `updates` =
   * none; resumeFromRevision n = every retained record with revision >= n (overrides include; 0 acts
   * as 1).
   * `revision` is the bucket's last revision: live events follow from revision + 1. `firstRevision` is
   * the oldest retained revision of the bucket (0 when empty): a resume from n < firstRevision skipped
   * [n, firstRevision - 1], and any revision in between missing from `records` was either not matching
   * or removed by a limit.
   */
  watchInitial(bucket: string, filters: readonly string[], options: WatchStartOptions): { records: KvRecord[]; revision: number; firstRevision: number } {
    const status = this.bucketOf(bucket).status();
    const resume = options.resumeFromRevision;
    let selection: Selection | null;
    let afterRevision = 0;
    if (resume !== undefined) {
      if (!isRevision(resume)) throw new TypeError("resumeFromRevision must be a non-negative integer");
      selection = "all";
      afterRevision = Math.max(0, resume - 1);
    } else if (options.include === "last") selection = "latest";
    else if (options.include === "history") selection = "all";
    else if (options.include === "updates") selection = null;
    else throw new TypeError(`watch include must be last, history or updates`);
    const records: KvRecord[] = [];
    if (selection !== null) {
      const { slots, log } = this.select(bucket, filters, selection, { afterRevision });
      for (const slot of slots) records.push(log.record(slot));
    }
    return { records, revision: status.revision, firstRevision: status.firstRevision };
  }

  /** Earliest leader time (ms) at which an `expire` command would change this bucket, or null. */
  nextExpiryAt(bucket: string): number | null {
    return this.bucketOf(bucket).nextExpiryAt();
  }

  private select(bucket: string, filters: readonly string[], selection: Selection, options: PageOptions) {
    const log = this.bucketOf(bucket).log;
    if (!Array.isArray(filters)) throw new TypeError("filters must be an array of strings");
    const compiled = compileFilters(filters, this.limits);
    const afterRevision = options.afterRevision ?? 0;
    const limit = options.limit ?? Infinity;
    if (!isRevision(afterRevision)) throw new TypeError("afterRevision must be a non-negative integer");
    if (limit !== Infinity && (!Number.isSafeInteger(limit) || limit < 1)) throw new TypeError("limit must be a positive integer");
    const page = selectSlots(log, compiled, selection, { afterRevision, limit });
    const lastSlot = page.slots[page.slots.length - 1];
    const lastRevision = lastSlot === undefined ? afterRevision : log.revision(lastSlot);
    return { slots: page.slots, done: page.done, lastRevision, log };
  }

  // ---------------------------------------------------------------- snapshots

  /** The whole state (buckets, revisions, clock, request-id window, applied index): byte-identical for identical states. */
  snapshot(): Uint8Array {
    const buckets = this.listBuckets().map((name) => {
      const bucket = this.buckets.get(name)!;
      return { name, config: bucket.config, lastRevision: bucket.log.lastRevision, columns: bucket.log.toColumns() };
    });
    return encodeSnapshot({ appliedIndex: this.applied, now: this.clock, dedupe: this.dedupe.list(), buckets });
  }

  /** Replaces the whole state with a snapshot's. Throws CairnError CORRUPT_DATA (state unchanged) on a damaged image. */
  restore(data: Uint8Array): void {
    const state = decodeSnapshot(data);
    const buckets = new Map<string, Bucket>();
    for (const b of state.buckets) {
      const bucket = new Bucket(b.name, b.config, RecordLog.fromColumns(b.columns, b.lastRevision));
      buckets.set(b.name, bucket);
    }
    const dedupe = new DedupeWindow(this.limits.dedupeWindowMs, this.limits.dedupeEntriesMax);
    dedupe.load(state.dedupe);
    this.buckets.clear();
    this.lastBucket = null;
    for (const [name, bucket] of buckets) this.buckets.set(name, bucket);
    this.dedupe = dedupe;
    this.applied = state.appliedIndex;
    this.clock = state.now;
  }
}
