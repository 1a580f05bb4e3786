/**
 * The client protocol: one WebSocket per client, binary frames, each frame one msgpackr-encoded object
 * (Packr options in PROTOCOL_PACKR_OPTIONS, fixed so the wire format cannot drift). Documented for
 * humans in docs/protocol.md. Shared by src/client (which must stay free of Node-only imports) and
 * src/node/server.
 *
 * Client -> server: Request. Server -> client: Response (exactly one per request id) or Push (watch
 * traffic, any time after the watch was started).
 */
import type { ErrorCode, ErrorData } from "./errors.ts";

export const PROTOCOL_VERSION = 1;

/** msgpackr options for every client frame. */
export const PROTOCOL_PACKR_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: "number",
  moreTypes: false,
  bundleStrings: false,
  structuredClone: false,
} as const;

export type Consistency = "linearizable" | "stale";

/** Bucket configuration as a client gives it: every field optional (server fills defaults). */
export interface BucketConfigInput {
  description?: string;
  history?: number;
  ttlMs?: number;
  maxBytes?: number;
  maxValueSize?: number;
  replicas?: number;
  storage?: "file" | "memory";
  markerTtlMs?: number;
  metadata?: Record<string, string>;
  compression?: boolean;
}

/** Every field of a bucket configuration, as clients send it and the state machine stores it. */
export const BUCKET_CONFIG_FIELDS = [
  "description",
  "history",
  "ttlMs",
  "maxBytes",
  "maxValueSize",
  "replicas",
  "storage",
  "markerTtlMs",
  "metadata",
  "compression",
] as const satisfies readonly (keyof BucketConfigInput)[];

/** A record as it travels to clients. `created` is ms since epoch; `delta` as in NATS. */
export interface WireEntry {
  bucket: string;
  key: string;
  /** Omitted (empty) for metaOnly watches; `length` still tells the value's size. */
  value: Uint8Array;
  length: number;
  revision: number;
  created: number;
  operation: "PUT" | "DEL" | "PURGE";
  delta: number;
  /** Watch only: false during the initial part. */
  isUpdate?: boolean;
}

export interface WireBucketStatus {
  bucket: string;
  values: number;
  bytes: number;
  revision: number;
  history: number;
  ttlMs: number;
  maxBytes: number;
  maxValueSize: number;
  /** Configured replica count (a bucket.update may change it; see replicasRunning). */
  replicas: number;
  storage: "file" | "memory";
  markerTtlMs: number;
  description: string;
  metadata: Record<string, string>;
  compression: boolean;
  leader: string | null;
  /**
   * Voters of the bucket's Raft group as its leader applied them: equals `replicas` once a change of
   * the replica count (or a membership change) is done; fewer while a removal keeps the bucket shrunk.
   */
  replicasRunning?: number;
  /** The replicas the bucket should run on (its placement); `voter` false: joining, not voting yet. */
  replicasInfo: { node: string; current: boolean; lag: number; leader: boolean; voter?: boolean }[];
}

/** Every request carries `id` (per connection, for matching the response). Writes may carry `requestId`
 *  (globally unique, kept across retries and failovers: the state machine deduplicates on it). */
export type Request =
  | { id: number; op: "hello"; version: number; token?: string; client?: string }
  | { id: number; op: "bucket.create"; bucket: string; config: BucketConfigInput; requestId?: string }
  | { id: number; op: "bucket.update"; bucket: string; config: BucketConfigInput; requestId?: string }
  | { id: number; op: "bucket.delete"; bucket: string; requestId?: string }
  | { id: number; op: "bucket.status"; bucket: string }
  | { id: number; op: "bucket.list" }
  | { id: number; op: "kv.put"; bucket: string; key: string; value: Uint8Array; ttlMs?: number; requestId?: string }
  | { id: number; op: "kv.create"; bucket: string; key: string; value: Uint8Array; ttlMs?: number; requestId?: string }
  | { id: number; op: "kv.update"; bucket: string; key: string; value: Uint8Array; revision: number; ttlMs?: number; requestId?: string }
  | { id: number; op: "kv.delete"; bucket: string; key: string; revision?: number; requestId?: string }
  | { id: number; op: "kv.purge"; bucket: string; key: string; revision?: number; ttlMs?: number; requestId?: string }
  | { id: number; op: "kv.get"; bucket: string; key: string; revision?: number; includeDeleted?: boolean; consistency?: Consistency }
  /** Paged: returns up to `limit` keys whose latest record has revision > afterRevision, ascending. */
  | { id: number; op: "kv.keys"; bucket: string; filters: string[]; afterRevision?: number; limit?: number; consistency?: Consistency }
  /** Paged: records with revision > afterRevision, ascending. */
  | { id: number; op: "kv.history"; bucket: string; filters: string[]; afterRevision?: number; limit?: number; consistency?: Consistency }
  | { id: number; op: "kv.purgeDeletes"; bucket: string; olderThanMs: number; requestId?: string }
  | { id: number; op: "kv.purgeBucket"; bucket: string; requestId?: string }
  | {
      id: number;
      op: "watch.start";
      bucket: string;
      filters: string[];
      include: "last" | "history" | "updates";
      ignoreDeletes: boolean;
      metaOnly: boolean;
      /** Every retained record with revision >= this, then live. Overrides include. */
      resumeFromRevision?: number;
    }
  | { id: number; op: "watch.stop"; watchId: number }
  | { id: number; op: "cluster.status" }
  /** Takes a node of the cluster config out of the cluster; answers when the change is complete (docs/membership.md). */
  | { id: number; op: "cluster.removeNode"; nodeId: string; requestId?: string }
  /** Brings a removed node back; answers when it is a member again and holds its replicas. */
  | { id: number; op: "cluster.addNode"; nodeId: string; requestId?: string }
  /** Liveness probe: the client sends it after pingIntervalMs of silence. Any response (even an error)
   *  proves the connection alive, so a server that predates it still works. */
  | { id: number; op: "ping" };

export type RequestOp = Request["op"];

/**
 * Ops that change state. The client gives each a `requestId` kept across retries (deduplicated by the
 * state machine); an attempt that ends without an answer has an unknown outcome (TIMEOUT), on the
 * client and on a node forwarding it.
 */
export const WRITE_OPS: ReadonlySet<RequestOp> = new Set<RequestOp>([
  "bucket.create",
  "bucket.update",
  "bucket.delete",
  "kv.put",
  "kv.create",
  "kv.update",
  "kv.delete",
  "kv.purge",
  "kv.purgeDeletes",
  "kv.purgeBucket",
  "cluster.removeNode",
  "cluster.addNode",
]);

export interface WireError {
  code: ErrorCode;
  message: string;
  data?: ErrorData;
}

export type Response = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: WireError };

/** Results by op (the `result` field of an ok Response). */
export interface Results {
  hello: { node: string; version: number; servers: string[] };
  "bucket.create": WireBucketStatus;
  "bucket.update": WireBucketStatus;
  "bucket.delete": { deleted: true };
  "bucket.status": WireBucketStatus;
  "bucket.list": WireBucketStatus[];
  "kv.put": { revision: number };
  "kv.create": { revision: number };
  "kv.update": { revision: number };
  "kv.delete": { revision: number };
  "kv.purge": { revision: number };
  "kv.get": { entry: WireEntry | null };
  "kv.keys": { keys: string[]; lastRevision: number; done: boolean };
  "kv.history": { entries: WireEntry[]; lastRevision: number; done: boolean };
  "kv.purgeDeletes": { removed: number };
  "kv.purgeBucket": { purged: true };
  /** `revision`: the bucket revision the watch started at (what `watch.initialized` will carry); a
   *  client whose socket drops before `watch.initialized` resumes an "updates" watch after it. */
  "watch.start": { watchId: number; revision?: number };
  "watch.stop": { stopped: true };
  "cluster.status": unknown;
  "cluster.removeNode": WireMembership;
  "cluster.addNode": WireMembership;
  ping: { pong: true };
}

/**
 * The shape `cluster.status` should return (proposed by the client/CLI side; `cairn cluster status` prints
 * it as tables and falls back to JSON for anything else). One row per node and per Raft group.
 */
export interface WireClusterStatus {
  /** The node that answered. */
  node: string;
  /** `member`: false for a node removed with cluster.removeNode (it forwards its clients to members). */
  nodes: { id: string; url: string; reachable: boolean; version?: string; clients?: WireClientStats; member?: boolean }[];
  groups: {
    /** "meta" or the bucket name. */
    group: string;
    leader: string | null;
    term: number;
    members: { node: string; role: string; commit: number; applied: number; lag: number }[];
  }[];
  /** Membership as the meta group records it (from a member when the answering node was removed). */
  membership?: WireMembership;
}

/** One node's client endpoint, as `cluster.status` reports it per node (resources held for clients). */
export interface WireClientStats {
  /** Open client connections. */
  connections: number;
  /** Watches open on those connections. */
  watches: number;
  /** Client requests being processed. */
  requestsInProgress: number;
  /** The largest number of bytes queued to one client socket (bounded by limits.watchBufferBytesMax for watch traffic). */
  bufferedBytesMax: number;
}

/** Cluster membership as the meta group records it (result of cluster.removeNode / cluster.addNode). */
export interface WireMembership {
  /** Nodes of the cluster config that belong to the cluster. */
  members: string[];
  /** Nodes of the cluster config taken out with cluster.removeNode (until re-added). */
  removed: string[];
  /**
   * The membership change in progress, if any (at most one at a time): a node removed or added, or a
   * bucket's replica count changed by bucket.update (`nodeId` "", `bucket` and `replicas` set).
   */
  change: { seq: number; type: "remove" | "add" | "replicas"; nodeId: string; bucket?: string; replicas?: number } | null;
}

/** Server -> client pushes for a watch. */
export type Push =
  | { push: "watch.entries"; watchId: number; entries: WireEntry[] }
  /** The initial part is complete (also sent when it was empty, and for include "updates"). */
  | { push: "watch.initialized"; watchId: number; revision: number }
  /** Records in [fromRevision, toRevision] were removed by limits before they could be delivered. */
  | { push: "watch.skipped"; watchId: number; fromRevision: number; toRevision: number }
  /** The watch ended on the server (overflow, bucket deleted, node shutting down). */
  | { push: "watch.ended"; watchId: number; error: WireError };

export type ServerFrame = Response | Push;

/** Protocol limits, enforced by the server and known to clients. */
export const PROTOCOL_LIMITS = {
  /** Largest frame either side accepts (also the ws maxPayload). */
  frameBytesMax: 8 * 1024 * 1024,
  /** Default and maximum page size for kv.keys / kv.history. */
  pageEntriesDefault: 1000,
  pageEntriesMax: 10_000,
  /** Requests a client may have outstanding on one connection. */
  inflightRequestsMax: 4096,
  /** Watches one connection may hold. */
  watchesPerConnectionMax: 1024,
} as const;
