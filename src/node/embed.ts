/**
 * Embedding: `startNode` runs one cluster member inside the caller's process; `startCluster` runs
 * several in one process (in memory or on disk) for tests and development.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CairnError } from "../shared/errors.ts";
import { resolveLimits, resolveTiming, type Durability, type NodeLimits, type RaftTiming } from "./config.ts";
import type { LogStore } from "./log-store.ts";
import { openLevelLogStore } from "./log-store-level.ts";
import { MemoryLogStore } from "./log-store-memory.ts";
import { createLogger, silentLogger, type Logger } from "./logger.ts";
import { CairnNode } from "./node.ts";
import { startClientServer, type ClientServer } from "./server.ts";
import type { PeerTransport } from "./transport.ts";
import { WsPeerTransport } from "./transport-ws.ts";
import { MemoryPeerHub } from "./transport-memory.ts";
import { NodeRecovery } from "./recovery.ts";

export interface StartNodeOptions {
  /** This node's id; must be a key of `peers`. */
  readonly id: string;
  /** Every member of the cluster, this node included: id -> peer WebSocket URL (ws://host:port). */
  readonly peers: Readonly<Record<string, string>>;
  /** Where clients connect; default 127.0.0.1 on an ephemeral port. */
  readonly clientListen?: { host: string; port: number };
  /** Client URLs of every member (told to clients in hello); default: only this node's. */
  readonly clientUrls?: Readonly<Record<string, string>>;
  /** Data directory (one level database). Omitted: in-memory storage, lost when the node stops. */
  readonly dataDir?: string;
  readonly clusterSecret?: string;
  readonly durability?: Durability;
  readonly raft?: Partial<RaftTiming>;
  readonly limits?: Partial<NodeLimits>;
  readonly requestTimeoutMs?: number;
  /** Client hello must carry this token when set. */
  readonly clientToken?: string;
  /** Inject a transport (in-process clusters); default: a WebSocket transport listening on this node's peer URL. */
  readonly transport?: PeerTransport;
  /** Inject a store (tests); default from dataDir. */
  readonly store?: LogStore;
  /** "silent", a Logger, or default JSON lines on stderr. */
  readonly logger?: Logger | "silent";
}

export interface RunningNode {
  readonly id: string;
  /** ws:// URL clients connect to. */
  readonly url: string;
  readonly node: CairnNode;
  readonly store: LogStore;
  readonly transport: PeerTransport;
  /** Whether this node is recovering state it may have lost, and since when (src/node/recovery.ts). */
  readonly recovery: NodeRecovery;
  /** Resolves with the error when the node stops serving after a fatal error (damaged data, storage failure). */
  readonly failed: Promise<unknown>;
  /** Graceful stop: hands off leaderships, stops serving, flushes and closes storage. */
  stop(): Promise<void>;
  /** Abrupt stop (no hand-off): what a crash looks like to the rest of the cluster. */
  kill(): Promise<void>;
}

const DEFAULT_SECRET = "cairn-embedded-secret";

export async function startNode(options: StartNodeOptions): Promise<RunningNode> {
  if (!Object.prototype.hasOwnProperty.call(options.peers, options.id)) {
    throw new CairnError("INVALID_CONFIG", `node id ${options.id} is not one of the peers (${Object.keys(options.peers).join(", ")})`);
  }
  const timing = resolveTiming(options.raft);
  const limits = resolveLimits(options.limits);
  const logger = options.logger === "silent" ? silentLogger : (options.logger ?? createLogger({ node: options.id }));
  const durability = options.durability ?? "fsync";
  const store =
    options.store ?? (options.dataDir ? await openLevelLogStore({ dir: options.dataDir, durability, lostStore: "recover" }) : new MemoryLogStore());
  let recovery: NodeRecovery;
  try {
    await checkIdentity(store, options.id);
    // Before any group opens: a lost, new or repaired store starts a recovery episode (recovery.ts).
    recovery = await NodeRecovery.open(store, { nodeId: options.id, logger });
  } catch (error) {
    await store.close();
    throw error;
  }
  let transport = options.transport;
  if (!transport) {
    const own = new URL(options.peers[options.id]!);
    transport = new WsPeerTransport({
      nodeId: options.id,
      listen: { host: own.hostname, port: Number(own.port) },
      peers: { ...options.peers },
      clusterSecret: options.clusterSecret ?? DEFAULT_SECRET,
      limits: {
        frameBytesMax: limits.frameBytesMax,
        sendQueueBytesMax: limits.peerSendQueueBytesMax,
        reconnectDelayMsMin: 50,
        reconnectDelayMsMax: 1000,
      },
      logger: (level, msg, fields) => logger[level](msg, fields),
    });
    await transport.start();
  }
  const clientListen = options.clientListen ?? { host: "127.0.0.1", port: 0 };
  const clientUrls: Record<string, string> = { ...(options.clientUrls ?? {}) };
  const node = new CairnNode({
    nodeId: options.id,
    members: Object.keys(options.peers),
    store,
    transport,
    timing,
    limits,
    logger,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    clientUrls,
  });
  let reportFatal: (error: unknown) => void = () => undefined;
  const failed = new Promise<unknown>((resolve) => (reportFatal = resolve));
  node.host.onFatal = (error) => {
    logger.error("node stopped serving after a fatal error", { error: String(error) });
    reportFatal(error);
  };
  node.host.recovery = recovery;
  await node.start();
  recovery.startProbe({
    nodeId: options.id,
    members: Object.keys(options.peers),
    transport,
    host: {
      metaStatus: () => node.host.group("meta")?.core.status() ?? null,
      endRecovery: (reason) => node.host.endRecovery(reason),
    },
  });
  let server: ClientServer;
  try {
    server = await startClientServer({
      host: clientListen.host,
      port: clientListen.port,
      node,
      logger,
      frameBytesMax: limits.frameBytesMax,
      watchBufferBytesMax: limits.watchBufferBytesMax,
      clientRequestsMax: limits.clientRequestsMax,
      ...(options.clientToken !== undefined ? { token: options.clientToken } : {}),
    });
  } catch (error) {
    await recovery.close();
    await node.close();
    await transport.close();
    await store.close();
    throw error;
  }
  const url = `ws://${clientListen.host}:${server.port}`;
  clientUrls[options.id] ??= url;
  let stopped = false;
  const shutdown = async (graceful: boolean) => {
    if (stopped) return;
    stopped = true;
    await recovery.close();
    if (graceful) {
      await handOffLeadership(node, timing, logger);
      await drainRequests(node, timing);
    }
    await server.close();
    await node.close();
    await transport!.close();
    await store.close();
  };
  return { id: options.id, url, node, store, transport, recovery, failed, stop: () => shutdown(true), kill: () => shutdown(false) };
}

/** A data directory remembers which node it belongs to: refuse to run node B on node A's data. */
async function checkIdentity(store: LogStore, id: string): Promise<void> {
  const stored = await store.getMeta("nodeId");
  if (stored === null) {
    await store.setMeta("nodeId", new TextEncoder().encode(id));
    return;
  }
  const owner = new TextDecoder().decode(stored);
  if (owner !== id) {
    throw new CairnError("INVALID_CONFIG", `data directory belongs to node ${owner}, not ${id}: refusing to start`);
  }
}

/**
 * Graceful shutdown: every group this node leads is handed to its most caught-up live voter (Raft
 * leadership transfer: the target campaigns at once, so nobody waits for an election timeout), and
 * we wait, at most one election timeout, until each names its new leader. Proposals meanwhile are
 * refused as retryable and forwarded to the new leader; ones already in the log commit there.
 */
async function handOffLeadership(node: CairnNode, timing: RaftTiming, logger: Logger): Promise<void> {
  const led = [...node.host.allGroups()].filter((g) => g.isLeader());
  if (led.length === 0) return;
  for (const g of led) {
    const status = g.core.status();
    const peers = Object.entries(status.progress ?? {}).filter(([id, p]) => id !== node.id && !p.isLearner);
    peers.sort((a, b) => Number(b[1].recentActive) - Number(a[1].recentActive) || b[1].match - a[1].match);
    const target = peers[0]?.[0];
    if (target) node.host.transferLeader(g.id, target);
  }
  const handedOff = (g: (typeof led)[number]) => !g.isLeader() && g.leader !== null && g.leader !== node.id;
  const deadline = Date.now() + timing.tickMs * timing.electionTicks;
  while (Date.now() < deadline && !led.every(handedOff)) await new Promise((r) => setTimeout(r, timing.tickMs));
  for (const g of led) {
    if (handedOff(g)) logger.info(`handed leadership of group ${g.id} to ${g.leader} at term ${g.core.status().term}`);
    else logger.warn(`group ${g.id}: no successor took over leadership before shutdown; the others elect one after an election timeout`);
  }
}

/**
 * Graceful shutdown, after the hand-off: client requests in progress here (now forwarded to the new
 * leaders) get up to two election timeouts to finish before the sockets close; what is still open
 * then fails with a retryable error and the client retries elsewhere with the same request id.
 */
async function drainRequests(node: CairnNode, timing: RaftTiming): Promise<void> {
  const deadline = Date.now() + 2 * timing.tickMs * timing.electionTicks;
  while (Date.now() < deadline && (node.clientStats?.().requestsInProgress ?? 0) > 0) await new Promise((r) => setTimeout(r, timing.tickMs));
}

// ---- in-process clusters ---------------------------------------------------------------------------

export interface StartClusterOptions {
  /** Number of nodes (1..7). */
  readonly nodes: number;
  /** Keep data on disk here (one subdirectory per node); default: a fresh temporary directory. */
  readonly dataDir?: string;
  /** Keep everything in memory (no disk at all). */
  readonly inMemory?: boolean;
  readonly durability?: Durability;
  readonly raft?: Partial<RaftTiming>;
  readonly limits?: Partial<NodeLimits>;
  readonly requestTimeoutMs?: number;
  readonly logger?: Logger | "silent";
}

export interface InProcessCluster {
  /** Client URLs, one per node, in node order. */
  readonly urls: string[];
  /** Running nodes by id (a killed node is absent until restarted). */
  readonly nodes: Map<string, RunningNode>;
  readonly ids: readonly string[];
  readonly hub: MemoryPeerHub;
  /** Crash a node: no hand-off; with durability "none" or in memory, whatever was not synced is lost. */
  kill(id: string): Promise<void>;
  /** Start a killed or stopped node again on its data (same client URL). */
  restart(id: string): Promise<void>;
  /**
   * Delete every byte a killed or stopped node stored (its data directory, or its memory store), as a
   * replaced disk would; restart() then brings it back empty, recovering from its peers.
   */
  wipe(id: string): Promise<void>;
  /** Freeze a node like SIGSTOP: no ticks, no processing; it keeps its connections. */
  pause(id: string): void;
  resume(id: string): void;
  /** Cut every link between the two sides, both ways. */
  partition(a: readonly string[], b: readonly string[]): void;
  /** Cut one node off from every other. */
  isolate(id: string): void;
  /** Remove every network fault. */
  heal(): void;
  /** The node currently leading the bucket's group, as the running nodes see it (null if none). */
  leaderOf(bucket: string): string | null;
  /** Waits until the bucket (or "meta" for the meta group) has a leader; resolves with its id. */
  waitForLeader(bucket: string, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startCluster(options: StartClusterOptions): Promise<InProcessCluster> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 7) {
    throw new CairnError("INVALID_CONFIG", "nodes must be an integer from 1 to 7");
  }
  const ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
  const ownTemp = options.dataDir === undefined && !options.inMemory;
  const root = options.inMemory ? null : (options.dataDir ?? (await mkdtemp(join(tmpdir(), "cairn-cluster-"))));
  const hub = new MemoryPeerHub();
  const peers = Object.fromEntries(ids.map((id) => [id, `memory://${id}`]));
  const clientUrls: Record<string, string> = {};
  const clientPorts: Record<string, number> = {};
  const nodes = new Map<string, RunningNode>();
  /** In-memory stores survive kill/restart (what was synced, that is). */
  const memoryStores = new Map<string, MemoryLogStore>();
  const timing = options.raft ?? { tickMs: 20, heartbeatTicks: 2, electionTicks: 15 };
  const durability = options.durability ?? "fsync";

  const boot = async (id: string) => {
    let store: LogStore | undefined;
    if (!root) {
      store = memoryStores.get(id) ?? new MemoryLogStore({ durability });
      memoryStores.set(id, store as MemoryLogStore);
    }
    const running = await startNode({
      id,
      peers,
      clientUrls,
      ...(root ? { dataDir: join(root, id) } : {}),
      ...(store ? { store } : {}),
      clientListen: { host: "127.0.0.1", port: clientPorts[id] ?? 0 },
      durability,
      raft: timing,
      ...(options.limits ? { limits: options.limits } : {}),
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      transport: hub.transport(id),
      logger: options.logger ?? "silent",
    });
    clientUrls[id] = running.url;
    clientPorts[id] = Number(new URL(running.url).port);
    nodes.set(id, running);
  };
  for (const id of ids) await boot(id);

  const running = (id: string): RunningNode => {
    const n = nodes.get(id);
    if (!n) throw new CairnError("UNAVAILABLE", `node ${id} is not running`);
    return n;
  };
  const groupOf = (bucket: string): string | null => {
    if (bucket === "meta") return "meta";
    for (const n of nodes.values()) {
      const b = n.node.meta.get(bucket);
      if (b) return b.group;
    }
    return null;
  };
  const leaderOf = (bucket: string): string | null => {
    const group = groupOf(bucket);
    if (!group) return null;
    let best: { id: string; term: number } | null = null;
    for (const n of nodes.values()) {
      const g = n.node.host.group(group);
      if (g?.isLeader()) {
        const term = g.core.status().term;
        if (!best || term > best.term) best = { id: n.id, term };
      }
    }
    return best?.id ?? null;
  };

  return {
    urls: ids.map((id) => clientUrls[id]!),
    nodes,
    ids,
    hub,
    async kill(id) {
      const n = running(id);
      nodes.delete(id);
      await n.kill();
      const mem = memoryStores.get(id);
      if (mem) memoryStores.set(id, mem.crash());
    },
    async restart(id) {
      if (nodes.has(id)) throw new CairnError("INVALID_OPTION", `node ${id} is running`);
      await boot(id);
    },
    async wipe(id) {
      if (!ids.includes(id)) throw new CairnError("INVALID_OPTION", `no node ${id}`);
      if (nodes.has(id)) throw new CairnError("INVALID_OPTION", `node ${id} is running: kill or stop it first`);
      if (root) await rm(join(root, id), { recursive: true, force: true });
      else memoryStores.set(id, new MemoryLogStore({ durability }));
    },
    pause(id) {
      running(id).node.host.pause();
    },
    resume(id) {
      running(id).node.host.resume();
    },
    partition(a, b) {
      hub.partition(a, b);
    },
    isolate(id) {
      hub.isolate(id);
    },
    heal() {
      hub.heal();
    },
    leaderOf,
    async waitForLeader(bucket, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const leader = leaderOf(bucket);
        if (leader) return leader;
        if (Date.now() > deadline) throw new CairnError("TIMEOUT", `no leader for ${bucket} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop() {
      for (const n of nodes.values()) await n.kill();
      nodes.clear();
      hub.close();
      if (ownTemp && root) await rm(root, { recursive: true, force: true });
    },
  };
}

