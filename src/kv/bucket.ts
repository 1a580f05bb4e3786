/**
 * One bucket: its config, its record log, and the KV rules of KV-SEMANTICS.md applied to it (CAS,
 * history depth, limits, expiry). Every method is deterministic in its arguments and the bucket's state;
 * time is passed in (the state machine's clamped leader time).
 *
 * Writes append their watch events to the `events` array they are given. Before a key write,
 * purgeDeletes or a config update, the bucket first expires what is due at `now` (see expire()), so no
 * command ever observes a record past its expiry time; the markers this appends are events too, and come
 * before the command's own event.
 */
import { CairnError, keyExists, wrongLastRevision } from "../shared/errors.ts";
import { RecordLog, EMPTY_VALUE, FLAG_MAX_AGE, OP_DEL, OP_PURGE, OP_PUT } from "./record-log.ts";
import type { BucketConfig, BucketStatus, KvResult, WatchEvent } from "./types.ts";

/** Result of a failed write, as a value (never thrown: every replica must record the same outcome). */
export function failure(error: CairnError): KvResult {
  const { revision } = error.data;
  return revision === undefined
    ? { ok: false, code: error.code, message: error.message }
    : { ok: false, code: error.code, message: error.message, revision };
}

const TTL_DISABLED = new CairnError("INVALID_OPTION", "per-key TTL is disabled: the bucket has no markerTtl");

export type ValueWrite = "put" | "create" | "update";

/** Configs are handed out by status() and bucketConfig(): frozen, so no caller can change a bucket. */
function frozen(config: BucketConfig): BucketConfig {
  Object.freeze(config.metadata);
  return Object.freeze(config);
}

export class Bucket {
  readonly name: string;
  config: BucketConfig;
  readonly log: RecordLog;

  constructor(name: string, config: BucketConfig, log: RecordLog = new RecordLog()) {
    this.name = name;
    this.config = frozen(config);
    this.log = log;
  }

  /**
   * put / create / update. `expected` is update's expected last revision (0 = no retained record).
   * `ttlMs` (validated by the caller) gives the record its own expiry; it needs markerTtl.
   */
  writeValue(
    kind: ValueWrite,
    key: string,
    value: Uint8Array,
    expected: number,
    ttlMs: number | undefined,
    now: number,
    events: WatchEvent[],
  ): KvResult {
    const config = this.config;
    if (config.maxValueSize >= 0 && value.length > config.maxValueSize) {
      return failure(new CairnError("VALUE_TOO_LARGE", "message size exceeds maximum allowed"));
    }
    if (ttlMs !== undefined && config.markerTtlMs === 0) return failure(TTL_DISABLED);
    this.expire(now, events);

    const log = this.log;
    let id = log.keyId(key);
    if (kind !== "put") {
      const newest = id === -1 ? -1 : log.newest(id);
      const lastRevision = newest === -1 ? 0 : log.revision(newest);
      if (kind === "create" && newest !== -1 && log.isPut(newest)) return failure(keyExists(lastRevision));
      if (kind === "update" && lastRevision !== expected) return failure(wrongLastRevision(lastRevision));
    }
    if (config.maxBytes >= 0) {
      // The write's own trim frees the key's oldest record when the key is at its history depth.
      const oldest = id !== -1 && log.count(id) >= config.history ? log.oldest(id) : -1;
      const freed = oldest === -1 ? 0 : key.length + log.valueLength(oldest);
      if (log.bytes + key.length + value.length - freed > config.maxBytes) {
        return failure(new CairnError("BUCKET_FULL", "maximum bytes exceeded"));
      }
    }
    if (id === -1) id = log.ensureKey(key);
    const expiresAt = ttlMs === undefined ? 0 : now + ttlMs;
    // With history 1 the new record replaces the key's only one: the log does that without touching the
    // old record's row (the overwrite of a large bucket's hot path). Otherwise append, then trim.
    const slot =
      config.history === 1 && log.count(id) === 1
        ? log.replaceOnly(id, OP_PUT, value, now, expiresAt, log.lastRevision + 1)
        : log.append(id, OP_PUT, value, now, expiresAt, log.lastRevision + 1);
    events.push({ bucket: this.name, record: log.record(slot, key) });
    this.trim(id);
    return { ok: true, revision: log.revision(slot) };
  }

  /**
   * delete (DEL marker, history kept) or purge (PURGE marker, older records removed). Succeed on
   * missing keys; `expected` as in update. Never refused for size: markers repair a full bucket.
   */
  writeMarker(
    kind: "delete" | "purge",
    key: string,
    expected: number | undefined,
    ttlMs: number | undefined,
    now: number,
    events: WatchEvent[],
  ): KvResult {
    if (ttlMs !== undefined && this.config.markerTtlMs === 0) return failure(TTL_DISABLED);
    this.expire(now, events);
    const log = this.log;
    if (expected !== undefined) {
      const id = log.keyId(key);
      const lastRevision = id === -1 ? 0 : log.revision(log.newest(id));
      if (lastRevision !== expected) return failure(wrongLastRevision(lastRevision));
    }
    const id = log.ensureKey(key);
    const op = kind === "delete" ? OP_DEL : OP_PURGE;
    const slot = log.append(id, op, EMPTY_VALUE, now, ttlMs === undefined ? 0 : now + ttlMs, log.lastRevision + 1);
    events.push({ bucket: this.name, record: log.record(slot, key) });
    if (kind === "purge") log.removeOlderThan(id, slot);
    else this.trim(id);
    return { ok: true, revision: log.revision(slot) };
  }

  /**
   * For each key whose latest record is DEL/PURGE: a marker created within the last `olderThanMs`
   * (when > 0) is kept alone; otherwise the key goes entirely. Returns the number of records removed.
   * No events (a limit-like cleanup, as NATS).
   */
  purgeDeletes(olderThanMs: number, now: number, events: WatchEvent[]): number {
    this.expire(now, events);
    const log = this.log;
    const threshold = now - olderThanMs;
    const deleted: number[] = [];
    for (const id of log.keyIdList()) {
      if (!log.isPut(log.newest(id))) deleted.push(id);
    }
    let removed = 0;
    for (const id of deleted) {
      const marker = log.newest(id);
      const keep = olderThanMs > 0 && log.created(marker) > threshold;
      removed += keep ? log.removeOlderThan(id, marker) : log.removeKey(id);
    }
    return removed;
  }

  /** Removes every record, silently; revisions continue. */
  purgeAll(): void {
    this.log.clear();
  }

  /** Replaces the config (validated by the caller): a lower history trims every key; expiry follows. */
  updateConfig(next: BucketConfig, now: number, events: WatchEvent[]): void {
    const lowered = next.history < this.config.history;
    this.config = frozen(next);
    if (lowered) for (const id of this.log.keyIdList()) this.trim(id);
    this.expire(now, events);
  }

  /**
   * Removes every record whose expiry is due at `now`, in order of (due time, revision). A record's due
   * time is the earlier of created + ttl (bucket ttl, when set) and its own expiresAt (per-key TTL or
   * marker TTL): a record never outlives the bucket ttl (ADR-43: a TTL may not exceed MaxAge).
   * When the due record is the latest of its key, the whole key goes (no older value may resurface);
   * if that record is a PUT and markerTtl is set, a PURGE marker (reason MaxAge, its own expiry
   * now + markerTtl) takes its place and is an event. Everything else goes silently.
   * Returns the number of records removed.
   */
  expire(now: number, events: WatchEvent[]): number {
    const log = this.log;
    let removed = 0;
    for (;;) {
      const ttl = this.config.ttlMs;
      const front = log.first;
      const frontDue = ttl > 0 && log.live > 0 ? log.created(front) + ttl : Infinity;
      const heapSlot = this.expiryTop();
      const heapDue = heapSlot === -1 ? Infinity : log.expiry.peekTime();
      if (frontDue > now && heapDue > now) break;
      let slot = front;
      if (heapDue < frontDue || (heapDue === frontDue && heapSlot < front)) {
        slot = heapSlot;
        log.expiry.pop();
        log.expiryDead--; // the entry left the heap; remove() below counts it dead again
      }
      removed += this.expireSlot(slot, now, events);
    }
    return removed;
  }

  /** Earliest time at which expire() would remove something, or null. */
  nextExpiryAt(): number | null {
    const log = this.log;
    const ttl = this.config.ttlMs;
    const frontDue = ttl > 0 && log.live > 0 ? log.created(log.first) + ttl : Infinity;
    const heapDue = this.expiryTop() === -1 ? Infinity : log.expiry.peekTime();
    const due = Math.min(frontDue, heapDue);
    return due === Infinity ? null : due;
  }

  status(): BucketStatus {
    const log = this.log;
    return {
      bucket: this.name,
      config: this.config,
      values: log.live,
      bytes: log.bytes,
      revision: log.lastRevision,
      firstRevision: log.live === 0 ? 0 : log.revision(log.first),
      keys: log.keyCount,
    };
  }

  private expireSlot(slot: number, now: number, events: WatchEvent[]): number {
    const log = this.log;
    const id = log.keyOf(slot);
    if (log.newest(id) !== slot) {
      log.remove(slot);
      return 1;
    }
    const markerTtl = this.config.markerTtlMs;
    if (!log.isPut(slot) || markerTtl === 0) return log.removeKey(id);
    const marker = log.append(id, OP_PURGE | FLAG_MAX_AGE, EMPTY_VALUE, now, now + markerTtl, log.lastRevision + 1);
    events.push({ bucket: this.name, record: log.record(marker) });
    return log.removeOlderThan(id, marker);
  }

  /** Slot of the earliest live entry of the expiry heap (discarding dead ones), or -1. */
  private expiryTop(): number {
    const log = this.log;
    const heap = log.expiry;
    while (heap.size > 0) {
      const slot = log.slotOfRevision(heap.peekRevision());
      if (slot !== -1) return slot;
      heap.pop();
      log.expiryDead--;
    }
    return -1;
  }

  private trim(id: number): void {
    const log = this.log;
    const history = this.config.history;
    while (log.count(id) > history) log.remove(log.oldest(id));
  }
}
