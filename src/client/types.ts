/**
 * The public surface of the cairn client, in the shape of nats.js v3 KV (`Kvm`, `KV`, `KvEntry`,
 * `KvStatus`, watch as an async iterator with `stop()`), with one options object per method in one
 * naming style (units last: `ttlMs`), writes returning the revision, coded errors (CairnError) and a
 * bounded watch buffer. See docs/protocol.md for the wire protocol underneath.
 */
import type { BucketConfigInput, Consistency } from "../shared/protocol.ts";

export type { Consistency } from "../shared/protocol.ts";

export type KvOperation = "PUT" | "DEL" | "PURGE";

export type StorageType = "file" | "memory";

export interface ConnectOptions {
  /** One URL or several (`ws://host:port`); the client connects to one and fails over to the others. */
  servers: string | string[];
  /** Connect timeout and the default deadline of every call, in ms (default 5000). */
  timeoutMs?: number;
  /** Sent in the `hello` handshake. */
  token?: string;
  /** Client name sent in the `hello` handshake (shows in server logs). */
  name?: string;
  /** Try servers in the given order instead of shuffling them (default false: shuffled, as nats.js). */
  noRandomize?: boolean;
  /** Add the servers a node reports in `hello` to the failover list (default true). */
  discoverServers?: boolean;
  /** First reconnect backoff in ms (default 25); doubles per failed round up to reconnectDelayMsMax. */
  reconnectDelayMsMin?: number;
  /** Largest reconnect backoff in ms (default 2000). */
  reconnectDelayMsMax?: number;
  /**
   * Liveness check: when nothing arrived for this long, the client sends a `ping`; when still nothing
   * arrived after another interval, it drops the socket and fails over (a stopped or partitioned node
   * does not close its sockets). 0 disables (default 5000).
   */
  pingIntervalMs?: number;
}

/** A change of the connection's state, as reported by `status()`. */
export type ConnectionStatus =
  | { type: "connect"; server: string; node: string }
  | { type: "disconnect"; server: string; error?: Error }
  | { type: "reconnect"; server: string; node: string }
  | { type: "serversDiscovered"; servers: string[] }
  | { type: "close" };

export type ConnectionState = "connected" | "reconnecting" | "closed";

/** Options every call takes. */
export interface CallOptions {
  /** This call's deadline in ms (default: the connection's timeoutMs). */
  timeoutMs?: number;
}

/** Bucket configuration for `Kvm.create` / `Kvm.update`. Every field optional; see KV-SEMANTICS.md. */
export type KvOptions = BucketConfigInput;

export interface KvEntry {
  readonly bucket: string;
  readonly key: string;
  /** The value's bytes (empty for DEL/PURGE and for metaOnly watches). Must not be mutated. */
  readonly value: Uint8Array;
  readonly revision: number;
  /** Leader timestamp of the write. */
  readonly created: Date;
  readonly operation: KvOperation;
  /** Matching records still pending after this one in the same keys/history/watch stream (0 for get). */
  readonly delta: number;
  /** The value's length in bytes (also for metaOnly watch entries, whose value is empty). */
  readonly length: number;
  /** The value decoded as UTF-8. */
  string(): string;
  /** The value parsed as JSON (throws SyntaxError when it is not JSON). */
  json<T = unknown>(): T;
}

export interface KvWatchEntry extends KvEntry {
  /** False during the initial part (include last/history/resume), true for live changes. */
  readonly isUpdate: boolean;
}

export interface KvReplicaInfo {
  readonly node: string;
  readonly current: boolean;
  /** Log entries this replica is behind the leader. */
  readonly lag: number;
  readonly leader: boolean;
  /** In the group's voting configuration; false while the replica joins (a learner catching up). Absent from older servers. */
  readonly voter?: boolean;
}

export interface KvStatus {
  readonly bucket: string;
  /** Retained records (markers included), not keys. */
  readonly values: number;
  readonly history: number;
  readonly ttlMs: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly maxValueSize: number;
  /** Configured replica count (`kvm.update` may change it; see replicasRunning). */
  readonly replicas: number;
  readonly storage: StorageType;
  readonly markerTtlMs: number;
  readonly description: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly compression: boolean;
  /** The bucket's last revision (0 if nothing was ever written). */
  readonly revision: number;
  /** The node leading the bucket's Raft group, if known. */
  readonly leader: string | null;
  /**
   * Replicas the bucket runs on now (voters of its Raft group): differs from `replicas` while a change
   * of the replica count or a membership change is under way, or while a removal keeps it shrunk.
   * Absent from older servers.
   */
  readonly replicasRunning?: number;
  /** The replicas the bucket should run on. */
  readonly replicasInfo: readonly KvReplicaInfo[];
}

export interface KvPutOptions extends CallOptions {
  /** Per-record TTL in ms (requires the bucket's markerTtlMs). */
  ttlMs?: number;
}

export type KvCreateOptions = KvPutOptions;
export type KvUpdateOptions = KvPutOptions;

export interface KvDeleteOptions extends CallOptions {
  /** Expected last revision of the key (0 = the key has no retained record). */
  revision?: number;
}

export interface KvPurgeOptions extends KvDeleteOptions {
  /** Lifetime of the purge marker in ms (requires the bucket's markerTtlMs). */
  ttlMs?: number;
}

export interface KvGetOptions extends CallOptions {
  /** Return this record if it belongs to the key and is still retained, else null. */
  revision?: number;
  /** Return the DEL/PURGE marker instead of null when the key's latest record is one. */
  includeDeleted?: boolean;
  /** "linearizable" (default) reads through the bucket leader; "stale" reads the node's replica. */
  consistency?: Consistency;
}

export interface KvListOptions extends CallOptions {
  consistency?: Consistency;
  /** Records requested per page (default 1000, at most 10000). */
  pageSize?: number;
}

export interface KvHistoryOptions extends KvListOptions {
  /** Key or filters (union); default `>` (the whole bucket). */
  key?: string | string[];
}

export interface KvPurgeDeletesOptions extends CallOptions {
  /** Markers older than this lose their key entirely; younger ones are kept alone. Default 30 minutes;
   *  negative = remove every marker now. */
  olderThanMs?: number;
}

export type KvWatchInclude = "last" | "history" | "updates";

/** A revision range the watcher could not deliver because limits removed it while it was away. */
export interface KvSkippedRange {
  readonly fromRevision: number;
  readonly toRevision: number;
}

export interface KvWatchOptions {
  /** Key or filters (union); default `>`. */
  key?: string | string[];
  /** "last" (default): latest record of each key, then live; "history": all retained, then live;
   *  "updates": live only. */
  include?: KvWatchInclude;
  /** Drop DEL and PURGE records. */
  ignoreDeletes?: boolean;
  /** Entries without values (the `length` still says the value's size). */
  metaOnly?: boolean;
  /** Every retained record with revision >= this, then live (overrides include). */
  resumeFromRevision?: number;
  /** Entries buffered for a slow consumer before the watch ends with WATCH_OVERFLOW (default 10000). */
  bufferEntriesMax?: number;
  /** Called when the server reports records that limits removed before they could be delivered
   *  (after a reconnect). The watch goes on. */
  onSkipped?: (range: KvSkippedRange) => void;
  /** Deadline of the initial watch.start in ms (default: the connection's timeoutMs). */
  timeoutMs?: number;
}

export interface KvWatcher extends AsyncIterable<KvWatchEntry> {
  /** Resolves once the initial part was delivered to the buffer (also when it was empty, and at once
   *  for "updates"); rejects if the watch ends with an error before that. */
  readonly initialized: Promise<void>;
  /** The last revision accepted into the buffer (0 before the first entry). Resume from this + 1. */
  readonly lastRevision: number;
  /** Ends the iteration (after entries already buffered are dropped), stops the server-side watch and
   *  releases the buffer. Idempotent. */
  stop(): Promise<void>;
}

/** The read-only part of a bucket handle (as nats.js RoKV). */
export interface RoKV {
  readonly bucket: string;
  get(key: string, options?: KvGetOptions): Promise<KvEntry | null>;
  keys(filter?: string | string[], options?: KvListOptions): AsyncIterable<string>;
  history(options?: KvHistoryOptions): AsyncIterable<KvEntry>;
  watch(options?: KvWatchOptions): Promise<KvWatcher>;
  status(options?: CallOptions): Promise<KvStatus>;
}

export interface KV extends RoKV {
  put(key: string, value: string | Uint8Array, options?: KvPutOptions): Promise<number>;
  create(key: string, value: string | Uint8Array, options?: KvCreateOptions): Promise<number>;
  update(key: string, value: string | Uint8Array, revision: number, options?: KvUpdateOptions): Promise<number>;
  delete(key: string, options?: KvDeleteOptions): Promise<number>;
  purge(key: string, options?: KvPurgeOptions): Promise<number>;
  /** Returns the number of records removed. */
  purgeDeletes(options?: KvPurgeDeletesOptions): Promise<number>;
  /** Removes every record of the bucket (no watch events); revisions continue. */
  purgeBucket(options?: CallOptions): Promise<void>;
}
