/**
 * A deliberately simple reference model of the KV state machine for kv-model.test.ts: each bucket is a
 * plain array of records in revision order, every rule of KV-SEMANTICS.md written the obvious way
 * (linear scans, re-sorting, recomputing). It shares no code with src/kv except the config normalizer and
 * the error table, so a bug has to be made twice to go unnoticed.
 */
import { normalizeConfig, type BucketConfig, type KvCommand, type KvRecord, type KvResult, type WatchEvent } from "../../src/kv/index.ts";

export interface ModelLimits {
  readonly keyBytesMax: number;
  readonly dedupeWindowMs: number;
  readonly dedupeEntriesMax: number;
}

type Rec = { -readonly [K in keyof KvRecord]: KvRecord[K] };

interface ModelBucket {
  config: BucketConfig;
  records: Rec[];
  lastRevision: number;
}

/** Naive key/filter rules, straight from the spec text. */
const TOKEN = /^[a-zA-Z0-9_\-/=]+$/;

export function naiveValidKey(key: string, max: number): boolean {
  return key.length > 0 && key.length <= max && key.split(".").every((t) => TOKEN.test(t));
}

export function naiveValidFilter(filter: string, max: number): boolean {
  if (filter.length === 0 || filter.length > max) return false;
  const tokens = filter.split(".");
  return tokens.every((t, i) => TOKEN.test(t) || t === "*" || (t === ">" && i === tokens.length - 1));
}

export function naiveMatch(filter: string, key: string): boolean {
  const f = filter.split(".");
  const k = key.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return k.length > i;
    if (i >= k.length) return false;
    if (f[i] !== "*" && f[i] !== k[i]) return false;
  }
  return f.length === k.length;
}

function fail(code: string, message: string, revision?: number): KvResult {
  return (revision === undefined ? { ok: false, code, message } : { ok: false, code, message, revision }) as KvResult;
}

function sameConfig(a: BucketConfig, b: BucketConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class KvModel {
  readonly buckets = new Map<string, ModelBucket>();
  clock = 0;
  dedupe: { id: string; time: number; result: KvResult }[] = [];

  constructor(readonly limits: ModelLimits) {}

  apply(now: number, command: KvCommand, requestId?: string): { result: KvResult; events: WatchEvent[]; duplicate: boolean } {
    this.clock = Math.max(this.clock, now);
    const t = this.clock;
    this.dedupe = this.dedupe.filter((e) => t - e.time < this.limits.dedupeWindowMs);
    if (requestId !== undefined) {
      const prior = this.dedupe.find((e) => e.id === requestId);
      if (prior) return { result: prior.result, events: [], duplicate: true };
    }
    const events: WatchEvent[] = [];
    const result = this.execute(command, t, events);
    if (requestId !== undefined) {
      this.dedupe.push({ id: requestId, time: t, result });
      if (this.dedupe.length > this.limits.dedupeEntriesMax) this.dedupe.shift();
    }
    return { result, events, duplicate: false };
  }

  private execute(c: KvCommand, now: number, events: WatchEvent[]): KvResult {
    if (c.type === "bucketCreate") {
      const config = normalizeConfig(c.config);
      const existing = this.buckets.get(c.bucket);
      if (existing) return sameConfig(existing.config, config) ? { ok: true } : fail("BUCKET_EXISTS", "bucket name already in use");
      this.buckets.set(c.bucket, { config, records: [], lastRevision: 0 });
      return { ok: true };
    }
    const b = this.buckets.get(c.bucket);
    if (!b) return fail("BUCKET_NOT_FOUND", "bucket not found");
    switch (c.type) {
      case "bucketUpdate": {
        const config = normalizeConfig(c.config);
        if (config.storage !== b.config.storage) return fail("INVALID_CONFIG", "storage can not be changed");
        if (b.config.markerTtlMs > 0 && config.markerTtlMs === 0) return fail("INVALID_CONFIG", "markerTtl can not be disabled once enabled");
        b.config = config;
        for (const key of new Set(b.records.map((r) => r.key))) this.trim(b, key);
        this.expire(c.bucket, b, now, events);
        return { ok: true };
      }
      case "bucketDelete":
        this.buckets.delete(c.bucket);
        return { ok: true };
      case "put":
      case "create":
      case "update": {
        if (!naiveValidKey(c.key, this.limits.keyBytesMax)) return fail("INVALID_KEY", "invalid key");
        if (c.ttlMs !== undefined && !(Number.isInteger(c.ttlMs) && c.ttlMs >= 1000)) {
          return fail("INVALID_OPTION", "invalid per-key TTL: must be a whole number of ms >= 1000");
        }
        if (b.config.maxValueSize >= 0 && c.value.length > b.config.maxValueSize) {
          return fail("VALUE_TOO_LARGE", "message size exceeds maximum allowed");
        }
        if (c.ttlMs !== undefined && b.config.markerTtlMs === 0) {
          return fail("INVALID_OPTION", "per-key TTL is disabled: the bucket has no markerTtl");
        }
        this.expire(c.bucket, b, now, events);
        const latest = this.latest(b, c.key);
        const last = latest?.revision ?? 0;
        if (c.type === "create" && latest?.operation === "PUT") return fail("KEY_EXISTS", `wrong last sequence: ${last}: key exists`, last);
        if (c.type === "update" && c.revision !== last) return fail("WRONG_LAST_REVISION", `wrong last sequence: ${last}`, last);
        if (b.config.maxBytes >= 0) {
          const own = b.records.filter((r) => r.key === c.key);
          const trimmed = own.length >= b.config.history ? own[0]! : undefined;
          const after = this.bytes(b) + c.key.length + c.value.length - (trimmed ? trimmed.key.length + trimmed.value.length : 0);
          if (after > b.config.maxBytes) return fail("BUCKET_FULL", "maximum bytes exceeded");
        }
        const rec = this.append(c.bucket, b, c.key, "PUT", c.value.slice(), now, c.ttlMs === undefined ? undefined : now + c.ttlMs, false, events);
        this.trim(b, c.key);
        return { ok: true, revision: rec.revision };
      }
      case "delete":
      case "purge": {
        if (!naiveValidKey(c.key, this.limits.keyBytesMax)) return fail("INVALID_KEY", "invalid key");
        const ttlMs = c.type === "purge" ? c.ttlMs : undefined;
        if (ttlMs !== undefined && !(Number.isInteger(ttlMs) && ttlMs >= 1000)) {
          return fail("INVALID_OPTION", "invalid per-key TTL: must be a whole number of ms >= 1000");
        }
        if (ttlMs !== undefined && b.config.markerTtlMs === 0) {
          return fail("INVALID_OPTION", "per-key TTL is disabled: the bucket has no markerTtl");
        }
        this.expire(c.bucket, b, now, events);
        if (c.revision !== undefined) {
          const last = this.latest(b, c.key)?.revision ?? 0;
          if (c.revision !== last) return fail("WRONG_LAST_REVISION", `wrong last sequence: ${last}`, last);
        }
        const op = c.type === "delete" ? "DEL" : "PURGE";
        const rec = this.append(c.bucket, b, c.key, op, new Uint8Array(0), now, ttlMs === undefined ? undefined : now + ttlMs, false, events);
        if (op === "PURGE") b.records = b.records.filter((r) => r.key !== c.key || r === rec);
        else this.trim(b, c.key);
        return { ok: true, revision: rec.revision };
      }
      case "purgeDeletes": {
        this.expire(c.bucket, b, now, events);
        let count = 0;
        for (const key of new Set(b.records.map((r) => r.key))) {
          const latest = this.latest(b, key)!;
          if (latest.operation === "PUT") continue;
          const keep = c.olderThanMs > 0 && latest.created > now - c.olderThanMs;
          const before = b.records.length;
          b.records = b.records.filter((r) => r.key !== key || (keep && r === latest));
          count += before - b.records.length;
        }
        return { ok: true, count };
      }
      case "purgeBucket":
        b.records = [];
        return { ok: true };
      case "expire":
        return { ok: true, count: this.expire(c.bucket, b, now, events) };
    }
  }

  private latest(b: ModelBucket, key: string): Rec | undefined {
    const own = b.records.filter((r) => r.key === key);
    return own[own.length - 1];
  }

  bytes(b: ModelBucket): number {
    return b.records.reduce((n, r) => n + r.key.length + r.value.length, 0);
  }

  private append(
    name: string,
    b: ModelBucket,
    key: string,
    operation: Rec["operation"],
    value: Uint8Array,
    created: number,
    expiresAt: number | undefined,
    maxAge: boolean,
    events: WatchEvent[],
  ): Rec {
    const rec: Rec = { key, value, revision: ++b.lastRevision, created, operation };
    if (expiresAt !== undefined) rec.expiresAt = expiresAt;
    if (maxAge) rec.reason = "MaxAge";
    b.records.push(rec);
    events.push({ bucket: name, record: { ...rec } });
    return rec;
  }

  private trim(b: ModelBucket, key: string): void {
    let own = b.records.filter((r) => r.key === key);
    while (own.length > b.config.history) {
      const oldest = own[0]!;
      b.records = b.records.filter((r) => r !== oldest);
      own = own.slice(1);
    }
  }

  /** When the record's expiry is due: min(created + bucket ttl, own expiresAt). */
  due(b: ModelBucket, r: Rec): number {
    const byTtl = b.config.ttlMs > 0 ? r.created + b.config.ttlMs : Infinity;
    return Math.min(byTtl, r.expiresAt ?? Infinity);
  }

  private expire(name: string, b: ModelBucket, now: number, events: WatchEvent[]): number {
    let removed = 0;
    for (;;) {
      const due = b.records.filter((r) => this.due(b, r) <= now);
      if (due.length === 0) return removed;
      due.sort((x, y) => this.due(b, x) - this.due(b, y) || x.revision - y.revision);
      const r = due[0]!;
      const latest = this.latest(b, r.key)!;
      if (r !== latest) {
        b.records = b.records.filter((x) => x !== r);
        removed++;
        continue;
      }
      const count = b.records.filter((x) => x.key === r.key).length;
      b.records = b.records.filter((x) => x.key !== r.key);
      removed += count;
      if (r.operation === "PUT" && b.config.markerTtlMs > 0) {
        this.append(name, b, r.key, "PURGE", new Uint8Array(0), now, now + b.config.markerTtlMs, true, events);
      }
    }
  }

  nextExpiryAt(name: string): number | null {
    const b = this.buckets.get(name)!;
    const times = b.records.map((r) => this.due(b, r));
    const min = Math.min(Infinity, ...times);
    return min === Infinity ? null : min;
  }

  // ---- queries ----

  private matching(b: ModelBucket, filters: readonly string[]): Rec[] {
    return b.records.filter((r) => filters.some((f) => naiveMatch(f, r.key)));
  }

  private latestOfEach(b: ModelBucket, filters: readonly string[]): Rec[] {
    return this.matching(b, filters).filter((r) => this.latest(b, r.key) === r);
  }

  private page<T>(items: Rec[], afterRevision: number, limit: number, map: (r: Rec) => T) {
    const after = items.filter((r) => r.revision > afterRevision);
    const taken = after.slice(0, limit);
    return {
      items: taken.map(map),
      lastRevision: taken.length === 0 ? afterRevision : taken[taken.length - 1]!.revision,
      done: after.length <= limit,
    };
  }

  keys(name: string, filters: readonly string[], afterRevision: number, limit: number) {
    const b = this.buckets.get(name)!;
    const latestPuts = this.latestOfEach(b, filters).filter((r) => r.operation === "PUT");
    const { items, lastRevision, done } = this.page(latestPuts, afterRevision, limit, (r) => r.key);
    return { keys: items, lastRevision, done };
  }

  history(name: string, filters: readonly string[], afterRevision: number, limit: number) {
    const b = this.buckets.get(name)!;
    const { items, lastRevision, done } = this.page(this.matching(b, filters), afterRevision, limit, (r) => ({ ...r }));
    return { records: items, lastRevision, done };
  }

  watchInitial(name: string, filters: readonly string[], include: "last" | "history" | "updates", resumeFromRevision?: number) {
    const b = this.buckets.get(name)!;
    let records: Rec[];
    if (resumeFromRevision !== undefined) records = this.matching(b, filters).filter((r) => r.revision >= resumeFromRevision);
    else if (include === "last") records = this.latestOfEach(b, filters);
    else if (include === "history") records = this.matching(b, filters);
    else records = [];
    return {
      records: records.map((r) => ({ ...r })),
      revision: b.lastRevision,
      firstRevision: b.records[0]?.revision ?? 0,
    };
  }

  get(name: string, key: string, revision: number | undefined, includeDeleted: boolean): KvRecord | null {
    const b = this.buckets.get(name)!;
    const r = revision === undefined ? this.latest(b, key) : b.records.find((x) => x.key === key && x.revision === revision);
    if (!r || (r.operation !== "PUT" && !includeDeleted)) return null;
    return { ...r };
  }

  status(name: string) {
    const b = this.buckets.get(name)!;
    return {
      bucket: name,
      config: b.config,
      values: b.records.length,
      bytes: this.bytes(b),
      revision: b.lastRevision,
      firstRevision: b.records[0]?.revision ?? 0,
      keys: new Set(b.records.map((r) => r.key)).size,
    };
  }
}
