/**
 * Node and cluster configuration: typed defaults, named limits, and validation with clear errors.
 * `cluster.config.ts` at the repository root is a ClusterConfig; `startNode` takes NodeOptions.
 */
import { CairnError } from "../shared/errors.ts";

/**
 * "fsync" (default): a write is acknowledged once a quorum has it fsynced. "none": UNSAFE, NATS's lazy
 * sync: each node acknowledges writes from memory and writes them to storage up to 1 s later, never
 * fsynced (log-store-level.ts); a crash of a majority, even a kill -9, loses acknowledged writes and
 * votes. For benchmarks and the negative controls of fault tests only.
 */
export type Durability = "fsync" | "none";

export interface RaftTiming {
  /** Wall-clock length of one Raft tick. */
  readonly tickMs: number;
  /** Ticks between heartbeats (heartbeat interval = tickMs * heartbeatTicks). */
  readonly heartbeatTicks: number;
  /** Ticks before a follower campaigns (randomized up to twice this). Must exceed heartbeatTicks by far. */
  readonly electionTicks: number;
}

export interface NodeLimits {
  /** Largest peer frame and client frame (ws maxPayload). */
  readonly frameBytesMax: number;
  /** Raft: entry bytes per append message. */
  readonly raftMessageBytesMax: number;
  /** Raft: append messages in flight per follower. */
  readonly inflightMessagesMax: number;
  /** Raft: bytes proposed but not yet committed per group (beyond: writes refused as UNAVAILABLE). */
  readonly uncommittedBytesMax: number;
  /** Bytes queued to one peer before messages to it are dropped. */
  readonly peerSendQueueBytesMax: number;
  /** Events waiting to enter the Raft loop while a write is in flight (beyond: refused as UNAVAILABLE). */
  readonly loopQueueMax: number;
  /** Client requests in progress on one node (beyond: UNAVAILABLE). */
  readonly clientRequestsMax: number;
  /** Bytes buffered to one client socket before its watches are ended with WATCH_OVERFLOW. */
  readonly watchBufferBytesMax: number;
  /** Entries applied since the last snapshot before a group snapshots and compacts its log. */
  readonly snapshotEntries: number;
  /** Entries kept in memory behind a snapshot so slow followers can catch up without one. */
  readonly compactionKeepEntries: number;
  /** Largest value accepted at the edge (a bucket's maxValueSize may be lower). */
  readonly valueBytesMax: number;
}

export const DEFAULT_LIMITS: NodeLimits = {
  frameBytesMax: 8 * 1024 * 1024,
  raftMessageBytesMax: 4 * 1024 * 1024,
  inflightMessagesMax: 256,
  uncommittedBytesMax: 64 * 1024 * 1024,
  peerSendQueueBytesMax: 64 * 1024 * 1024,
  loopQueueMax: 100_000,
  clientRequestsMax: 50_000,
  watchBufferBytesMax: 16 * 1024 * 1024,
  snapshotEntries: 20_000,
  compactionKeepEntries: 5_000,
  valueBytesMax: 1024 * 1024,
};

export const DEFAULT_TIMING: RaftTiming = { tickMs: 50, heartbeatTicks: 2, electionTicks: 20 };

export interface ClusterNodeConfig {
  /** Stable node id, never reused after removal (e.g. "n1"). */
  readonly id: string;
  /** host:port for peer (node-to-node) traffic. */
  readonly peer: string;
  /** host:port for clients. */
  readonly client: string;
  /** Data directory of this node; default `<dataDir>/<id>`. */
  readonly dataDir?: string;
}

export interface ClusterConfig {
  readonly clusterSecret: string;
  readonly dataDir: string;
  readonly nodes: readonly ClusterNodeConfig[];
  readonly durability?: Durability;
  readonly raft?: Partial<RaftTiming>;
  readonly limits?: Partial<NodeLimits>;
  /** Default client request timeout on the server side (forwarding, waiting for commit). */
  readonly requestTimeoutMs?: number;
  /** When set, clients must send this token in their hello (`connect({ token })`, `cairn --token`,
   *  CAIRN_TOKEN); others are refused with UNAUTHORIZED. */
  readonly clientToken?: string;
}

export function defineCluster(config: ClusterConfig): ClusterConfig {
  return config;
}

function configError(message: string): CairnError {
  return new CairnError("INVALID_CONFIG", `invalid cluster config: ${message}`);
}

export function parseHostPort(value: string, what: string): { host: string; port: number } {
  const m = /^([^:]+):(\d{1,5})$/.exec(value);
  if (!m) throw configError(`${what} must be host:port, got ${JSON.stringify(value)}`);
  const port = Number(m[2]);
  if (port > 65535) throw configError(`${what} port out of range: ${port}`);
  return { host: m[1]!, port };
}

export function resolveTiming(partial: Partial<RaftTiming> | undefined): RaftTiming {
  const timing = { ...DEFAULT_TIMING, ...(partial ?? {}) };
  for (const [k, v] of Object.entries(timing)) {
    if (!Number.isInteger(v) || v <= 0) throw configError(`raft.${k} must be a positive integer`);
  }
  if (timing.electionTicks <= timing.heartbeatTicks * 3) {
    throw configError("raft.electionTicks must be more than 3 x raft.heartbeatTicks");
  }
  return timing;
}

export function resolveLimits(partial: Partial<NodeLimits> | undefined): NodeLimits {
  const limits = { ...DEFAULT_LIMITS, ...(partial ?? {}) };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isInteger(v) || v <= 0) throw configError(`limits.${k} must be a positive integer`);
  }
  if (limits.raftMessageBytesMax + 64 * 1024 > limits.frameBytesMax) {
    throw configError("limits.raftMessageBytesMax must leave room for framing inside limits.frameBytesMax");
  }
  if (limits.valueBytesMax + 64 * 1024 > limits.raftMessageBytesMax) {
    throw configError("limits.valueBytesMax must fit in one raft message (limits.raftMessageBytesMax)");
  }
  if (limits.compactionKeepEntries >= limits.snapshotEntries) {
    throw configError("limits.compactionKeepEntries must be below limits.snapshotEntries");
  }
  return limits;
}

/** Validates the whole cluster config; throws CairnError INVALID_CONFIG with a precise message. */
export function validateClusterConfig(config: ClusterConfig): void {
  if (typeof config.clusterSecret !== "string" || config.clusterSecret.length < 8) {
    throw configError("clusterSecret must be a string of at least 8 characters");
  }
  if (!Array.isArray(config.nodes) || config.nodes.length === 0) throw configError("nodes must list at least one node");
  if (config.nodes.length > 7) throw configError("at most 7 nodes are supported");
  const ids = new Set<string>();
  const addresses = new Set<string>();
  for (const node of config.nodes) {
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(node.id)) throw configError(`node id ${JSON.stringify(node.id)} must match [a-zA-Z0-9_-]{1,64}`);
    if (ids.has(node.id)) throw configError(`duplicate node id ${node.id}`);
    ids.add(node.id);
    for (const [what, addr] of [["peer", node.peer], ["client", node.client]] as const) {
      parseHostPort(addr, `node ${node.id} ${what}`);
      if (addresses.has(addr)) throw configError(`address ${addr} is used twice`);
      addresses.add(addr);
    }
  }
  if (config.durability !== undefined && config.durability !== "fsync" && config.durability !== "none") {
    throw configError(`durability must be "fsync" or "none"`);
  }
  if (config.clientToken !== undefined && (typeof config.clientToken !== "string" || config.clientToken.length === 0)) {
    throw configError("clientToken must be a non-empty string");
  }
  resolveTiming(config.raft);
  resolveLimits(config.limits);
}
