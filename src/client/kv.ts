/**
 * The bucket handle (nats.js `KV`). Every method checks its arguments before sending anything, then
 * makes one call (or, for keys/history, one call per page). Writes return the revision they wrote.
 */
import { CairnError } from "../shared/errors.ts";
import type { Connection } from "./connection.ts";
import { entryFromWire, statusFromWire } from "./entry.ts";
import type {
  CallOptions,
  KV,
  KvDeleteOptions,
  KvEntry,
  KvGetOptions,
  KvHistoryOptions,
  KvListOptions,
  KvPurgeDeletesOptions,
  KvPurgeOptions,
  KvPutOptions,
  KvStatus,
  KvUpdateOptions,
  KvWatcher,
  KvWatchOptions,
} from "./types.ts";
import {
  checkBoolean,
  checkConsistency,
  checkFilters,
  checkInclude,
  checkOptionalRevision,
  checkOptions,
  checkPageSize,
  checkPositiveInteger,
  checkRevision,
  checkTimeout,
  checkTtl,
  checkValue,
  validateBucketName,
  validateKey,
} from "./validate.ts";
import { WATCH_BUFFER_ENTRIES_DEFAULT, Watcher } from "./watch.ts";

/** purgeDeletes default: markers younger than this keep their key (as nats.go). */
export const PURGE_DELETES_OLDER_THAN_MS_DEFAULT = 30 * 60 * 1000;

const PUT_OPTIONS = ["ttlMs", "timeoutMs"] as const;
const DELETE_OPTIONS = ["revision", "timeoutMs"] as const;
const PURGE_OPTIONS = ["revision", "ttlMs", "timeoutMs"] as const;
const GET_OPTIONS = ["revision", "includeDeleted", "consistency", "timeoutMs"] as const;
const LIST_OPTIONS = ["consistency", "pageSize", "timeoutMs"] as const;
const HISTORY_OPTIONS = ["key", ...LIST_OPTIONS] as const;
const WATCH_OPTIONS = ["key", "include", "ignoreDeletes", "metaOnly", "resumeFromRevision", "bufferEntriesMax", "onSkipped", "timeoutMs"] as const;
const CALL_OPTIONS = ["timeoutMs"] as const;

/** An async iterable whose first next() throws `error` (argument errors of the iterator methods). */
function failingIterable<T>(error: unknown): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => Promise.reject(error),
    }),
  };
}

export class Bucket implements KV {
  constructor(
    private readonly conn: Connection,
    readonly bucket: string,
  ) {
    validateBucketName(bucket);
  }

  async put(key: string, value: string | Uint8Array, options?: KvPutOptions): Promise<number> {
    validateKey(key);
    const bytes = checkValue(value);
    const o = checkOptions(options, PUT_OPTIONS, "put");
    const ttlMs = checkTtl(o.ttlMs);
    const result = await this.conn.request("kv.put", { bucket: this.bucket, key, value: bytes, ttlMs }, { timeoutMs: checkTimeout(o.timeoutMs) });
    return result.revision;
  }

  /** Writes only when the key has no live value (missing, deleted, purged or expired); otherwise
   *  KEY_EXISTS (`wrong last sequence: N: key exists`). One atomic operation in the state machine. */
  async create(key: string, value: string | Uint8Array, options?: KvPutOptions): Promise<number> {
    validateKey(key);
    const bytes = checkValue(value);
    const o = checkOptions(options, PUT_OPTIONS, "create");
    const ttlMs = checkTtl(o.ttlMs);
    const result = await this.conn.request("kv.create", { bucket: this.bucket, key, value: bytes, ttlMs }, { timeoutMs: checkTimeout(o.timeoutMs) });
    return result.revision;
  }

  /** Writes only when the key's last record has exactly `revision` (0 = no record at all); otherwise
   *  WRONG_LAST_REVISION (`wrong last sequence: N`). */
  async update(key: string, value: string | Uint8Array, revision: number, options?: KvUpdateOptions): Promise<number> {
    validateKey(key);
    const bytes = checkValue(value);
    checkRevision(revision, "revision", 0);
    const o = checkOptions(options, PUT_OPTIONS, "update");
    const ttlMs = checkTtl(o.ttlMs);
    const result = await this.conn.request(
      "kv.update",
      { bucket: this.bucket, key, value: bytes, revision, ttlMs },
      { timeoutMs: checkTimeout(o.timeoutMs) },
    );
    return result.revision;
  }

  async delete(key: string, options?: KvDeleteOptions): Promise<number> {
    validateKey(key);
    const o = checkOptions(options, DELETE_OPTIONS, "delete");
    const revision = checkOptionalRevision(o.revision, "revision", 0);
    const result = await this.conn.request("kv.delete", { bucket: this.bucket, key, revision }, { timeoutMs: checkTimeout(o.timeoutMs) });
    return result.revision;
  }

  async purge(key: string, options?: KvPurgeOptions): Promise<number> {
    validateKey(key);
    const o = checkOptions(options, PURGE_OPTIONS, "purge");
    const revision = checkOptionalRevision(o.revision, "revision", 0);
    const ttlMs = checkTtl(o.ttlMs);
    const result = await this.conn.request("kv.purge", { bucket: this.bucket, key, revision, ttlMs }, { timeoutMs: checkTimeout(o.timeoutMs) });
    return result.revision;
  }

  /** The key's latest entry, or null when it does not exist or its latest record is DEL/PURGE. */
  async get(key: string, options?: KvGetOptions): Promise<KvEntry | null> {
    validateKey(key);
    const o = checkOptions(options, GET_OPTIONS, "get");
    const revision = checkOptionalRevision(o.revision, "revision", 1);
    const includeDeleted = checkBoolean(o.includeDeleted, "includeDeleted");
    const consistency = checkConsistency(o.consistency);
    const result = await this.conn.request(
      "kv.get",
      { bucket: this.bucket, key, revision, includeDeleted, consistency },
      { timeoutMs: checkTimeout(o.timeoutMs) },
    );
    return result.entry ? entryFromWire(result.entry) : null;
  }

  /**
   * Keys whose latest record is a PUT, each once, matching the filter(s) (default every key). Fetched
   * in pages as the loop asks for them; breaking out of the loop stops fetching. A key updated while
   * the iteration runs is still yielded once.
   */
  keys(filter?: string | string[], options?: KvListOptions): AsyncIterable<string> {
    let filters: string[];
    let o: Partial<KvListOptions>;
    let pageSize: number;
    try {
      filters = checkFilters(filter);
      o = checkOptions(options, LIST_OPTIONS, "keys");
      checkConsistency(o.consistency);
      checkTimeout(o.timeoutMs);
      pageSize = checkPageSize(o.pageSize);
    } catch (error) {
      return failingIterable(error);
    }
    const conn = this.conn;
    const bucket = this.bucket;
    return {
      async *[Symbol.asyncIterator]() {
        // Dedupe across pages: a key rewritten during the iteration shows up again in a later page.
        const seen = new Set<string>();
        let afterRevision = 0;
        for (;;) {
          const page = await conn.request(
            "kv.keys",
            { bucket, filters, afterRevision, limit: pageSize, consistency: o.consistency },
            { timeoutMs: o.timeoutMs },
          );
          for (const key of page.keys) {
            if (seen.has(key)) continue;
            seen.add(key);
            yield key;
          }
          if (page.done || page.lastRevision <= afterRevision) return;
          afterRevision = page.lastRevision;
        }
      },
    };
  }

  /**
   * Every retained record of the matching keys (default every key), oldest first, DEL and PURGE
   * included. Paged like keys(); breaking out of the loop stops fetching.
   */
  history(options?: KvHistoryOptions): AsyncIterable<KvEntry> {
    let filters: string[];
    let o: Partial<KvHistoryOptions>;
    let pageSize: number;
    try {
      o = checkOptions(options, HISTORY_OPTIONS, "history");
      filters = checkFilters(o.key);
      checkConsistency(o.consistency);
      checkTimeout(o.timeoutMs);
      pageSize = checkPageSize(o.pageSize);
    } catch (error) {
      return failingIterable(error);
    }
    const conn = this.conn;
    const bucket = this.bucket;
    return {
      async *[Symbol.asyncIterator]() {
        let afterRevision = 0;
        for (;;) {
          const page = await conn.request(
            "kv.history",
            { bucket, filters, afterRevision, limit: pageSize, consistency: o.consistency },
            { timeoutMs: o.timeoutMs },
          );
          for (const wire of page.entries) {
            // Revisions only grow across pages; anything else would be a duplicate.
            if (wire.revision <= afterRevision) continue;
            afterRevision = wire.revision;
            yield entryFromWire(wire);
          }
          if (page.done) return;
          if (page.lastRevision <= afterRevision && page.entries.length === 0) return;
          afterRevision = Math.max(afterRevision, page.lastRevision);
        }
      },
    };
  }

  /** Starts a watch (see KvWatchOptions and docs/protocol.md, "Watch"). */
  async watch(options?: KvWatchOptions): Promise<KvWatcher> {
    const o = checkOptions(options, WATCH_OPTIONS, "watch");
    const filters = checkFilters(o.key);
    const include = checkInclude(o.include);
    const ignoreDeletes = checkBoolean(o.ignoreDeletes, "ignoreDeletes") ?? false;
    const metaOnly = checkBoolean(o.metaOnly, "metaOnly") ?? false;
    const resumeFromRevision = checkOptionalRevision(o.resumeFromRevision, "resumeFromRevision", 1);
    const bufferEntriesMax = checkPositiveInteger(o.bufferEntriesMax, "bufferEntriesMax", WATCH_BUFFER_ENTRIES_DEFAULT);
    const timeoutMs = checkTimeout(o.timeoutMs);
    if (o.onSkipped !== undefined && typeof o.onSkipped !== "function") throw new TypeError("onSkipped must be a function");
    const watcher = new Watcher(this.conn, {
      bucket: this.bucket,
      filters,
      include,
      ignoreDeletes,
      metaOnly,
      resumeFromRevision,
      bufferEntriesMax,
      onSkipped: o.onSkipped,
    });
    await watcher.start(timeoutMs);
    return watcher;
  }

  async status(options?: CallOptions): Promise<KvStatus> {
    const o = checkOptions(options, CALL_OPTIONS, "status");
    return statusFromWire(await this.conn.request("bucket.status", { bucket: this.bucket }, { timeoutMs: checkTimeout(o.timeoutMs) }));
  }

  /** For each key whose latest record is DEL/PURGE: older than olderThanMs (default 30 min) → the key
   *  goes entirely; younger → only the marker stays. Returns the number of records removed. */
  async purgeDeletes(options?: KvPurgeDeletesOptions): Promise<number> {
    const o = checkOptions(options, ["olderThanMs", "timeoutMs"], "purgeDeletes");
    const olderThanMs = o.olderThanMs ?? PURGE_DELETES_OLDER_THAN_MS_DEFAULT;
    if (typeof olderThanMs !== "number" || !Number.isSafeInteger(olderThanMs)) {
      throw new CairnError("INVALID_OPTION", "invalid option: olderThanMs must be an integer (ms)");
    }
    const result = await this.conn.request("kv.purgeDeletes", { bucket: this.bucket, olderThanMs }, { timeoutMs: checkTimeout(o.timeoutMs) });
    return result.removed;
  }

  async purgeBucket(options?: CallOptions): Promise<void> {
    const o = checkOptions(options, CALL_OPTIONS, "purgeBucket");
    await this.conn.request("kv.purgeBucket", { bucket: this.bucket }, { timeoutMs: checkTimeout(o.timeoutMs) });
  }
}
