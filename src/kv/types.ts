/**
 * The public contract of the KV state machine (src/kv). Pure and deterministic: no clock, no I/O, no
 * randomness. Time arrives in every command envelope (`now`, the leader's timestamp in ms); the state
 * machine clamps it to be monotonic, so replicas that apply the same log reach byte-identical state.
 * See ../shared/KV-SEMANTICS.md for every rule.
 */
import type { ErrorCode } from "../shared/errors.ts";

export type Operation = "PUT" | "DEL" | "PURGE";

export type StorageType = "file" | "memory";

/** Full bucket configuration as stored (every field present; defaults filled in by normalizeConfig). */
export interface BucketConfig {
  readonly description: string;
  /** Records kept per key, 1..64. */
  readonly history: number;
  /** Max age of each record in ms; 0 = forever; otherwise >= 100. */
  readonly ttlMs: number;
  /** Bucket total bytes (keys + values of retained records); -1 = unlimited. */
  readonly maxBytes: number;
  /** Per value; -1 = unlimited. */
  readonly maxValueSize: number;
  /** 1..5. */
  readonly replicas: number;
  readonly storage: StorageType;
  /** Lifetime of expiry/purge markers in ms; 0 = off (no per-key TTL, no markers); otherwise >= 1000. */
  readonly markerTtlMs: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly compression: boolean;
}

/** One record of a bucket's revision log. */
export interface KvRecord {
  readonly key: string;
  /** Empty for DEL and PURGE. Must not be mutated. */
  readonly value: Uint8Array;
  /** The bucket's sequence number; strictly increasing, never reused. */
  readonly revision: number;
  /** Leader timestamp (ms since epoch) of the command that wrote it. */
  readonly created: number;
  readonly operation: Operation;
  /** Absolute expiry time in ms, when the record has a per-key TTL or a marker TTL (else absent). */
  readonly expiresAt?: number;
  /** Set on PURGE records written by expiry (NATS "MaxAge" marker reason). */
  readonly reason?: "MaxAge";
}

/** Commands, as they appear in the log (msgpackr-encoded by src/node). */
export type KvCommand =
  | { readonly type: "bucketCreate"; readonly bucket: string; readonly config: BucketConfig }
  | { readonly type: "bucketUpdate"; readonly bucket: string; readonly config: BucketConfig }
  | { readonly type: "bucketDelete"; readonly bucket: string }
  | { readonly type: "put"; readonly bucket: string; readonly key: string; readonly value: Uint8Array; readonly ttlMs?: number }
  | { readonly type: "create"; readonly bucket: string; readonly key: string; readonly value: Uint8Array; readonly ttlMs?: number }
  | {
      readonly type: "update";
      readonly bucket: string;
      readonly key: string;
      readonly value: Uint8Array;
      /** Expected last revision of the key; 0 = the key has no retained record. */
      readonly revision: number;
      readonly ttlMs?: number;
    }
  | { readonly type: "delete"; readonly bucket: string; readonly key: string; readonly revision?: number }
  | { readonly type: "purge"; readonly bucket: string; readonly key: string; readonly revision?: number; readonly ttlMs?: number }
  | { readonly type: "purgeDeletes"; readonly bucket: string; readonly olderThanMs: number }
  | { readonly type: "purgeBucket"; readonly bucket: string }
  /** Proposed by the leader when something is due: removes expired records, appends markers. */
  | { readonly type: "expire"; readonly bucket: string };

/** What the log carries: the command plus the leader's timestamp and an optional request id. */
export interface KvEnvelope {
  /** Leader wall-clock time in ms; the state machine uses max(now, last now) so time never runs back. */
  readonly now: number;
  /** Client request id for idempotent retries (deduplicated within the window). */
  readonly requestId?: string;
  readonly command: KvCommand;
}

export type KvResult =
  | { readonly ok: true; readonly revision: number } // writes
  | { readonly ok: true; readonly count: number } // purgeDeletes, expire: records removed
  | { readonly ok: true } // bucket commands, purgeBucket
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly revision?: number };

/** A change watchers must see, in revision order. Limit-driven removals produce none. */
export interface WatchEvent {
  readonly bucket: string;
  readonly record: KvRecord;
}

export interface ApplyOutcome {
  readonly result: KvResult;
  readonly events: readonly WatchEvent[];
  /** True when the result was answered from the dedupe window (nothing applied). */
  readonly duplicate: boolean;
}

export interface BucketStatus {
  readonly bucket: string;
  readonly config: BucketConfig;
  /** Retained records, markers included. */
  readonly values: number;
  readonly bytes: number;
  /** Last revision assigned (0 if none). */
  readonly revision: number;
  /** Oldest retained revision (0 if empty). */
  readonly firstRevision: number;
  readonly keys: number;
}

export type WatchInclude = "last" | "history" | "updates";

export interface WatchStartOptions {
  readonly include: WatchInclude;
  /** Overrides include: every retained record with revision >= this. */
  readonly resumeFromRevision?: number;
}

export interface KvLimits {
  /** Key length limit in bytes (UTF-8). */
  readonly keyBytesMax: number;
  /** Dedupe window: request ids remembered at most this long (ms of leader time)... */
  readonly dedupeWindowMs: number;
  /** ...and at most this many. */
  readonly dedupeEntriesMax: number;
}

export const DEFAULT_KV_LIMITS: KvLimits = {
  keyBytesMax: 1024,
  dedupeWindowMs: 2 * 60_000,
  dedupeEntriesMax: 100_000,
};
