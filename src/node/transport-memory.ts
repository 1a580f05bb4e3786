/**
 * MemoryPeerTransport: the in-process twin of WsPeerTransport (hashicorp/raft's InmemTransport), used by
 * startCluster's fault API and the node tests. Transports of one cluster share a MemoryPeerHub, which plays
 * the network and takes fault controls: partition, one-way drop, loss, isolate, delay, heal.
 *
 * Same contract as the WebSocket transport (transport.ts): non-blocking send, bounded per-peer queues
 * flushed once per event-loop turn, FIFO per directed link, at-most-once delivery, peer up/down events,
 * request/response with the same envelope and errors. Every payload is encoded and decoded with the real
 * peer codec, so handlers receive validated copies (never the sender's objects) and a payload the wire
 * would refuse is refused here too. Differences: no frames or chunking (a snapshot travels whole), no
 * authentication (a node accepts only its configured peers instead), no frameBytesMax.
 *
 * A link a<->b is up when both transports are started, each lists the other as a peer, and no partition or
 * isolation separates them. Loss, one-way drops and delays do not take a link down (as on a lossy network);
 * partitions and isolation do (as a cut connection would), and fire onPeerState on both sides.
 */
import type { Message } from "../raft/types.ts";
import { decodePayload, encodePayload } from "./peer-codec.ts";
import { PeerListeners, PeerRpc } from "./transport-rpc.ts";
import type { PeerLogger, PeerPayload, PeerStats, PeerTransport, PeerTransportLimits } from "./transport.ts";
import { PEER_LIMIT_DEFAULTS } from "./transport.ts";

export interface MemoryPeerTransportOptions {
  nodeId: string;
  /** Peers by id (values unused: any address string). When absent, every other node of the hub is a peer. */
  peers?: Record<string, string>;
  limits?: Partial<Pick<PeerTransportLimits, "sendQueueBytesMax" | "sendQueueFramesMax" | "requestsInflightMax" | "requestsPendingMax">>;
  logger?: PeerLogger;
}

export interface MemoryPeerHubOptions {
  /** Source of randomness for loss rates; inject a seeded PRNG for reproducible tests. Default Math.random. */
  random?: () => number;
}

const MEMORY_LIMIT_DEFAULTS = {
  sendQueueBytesMax: 64 * 1024 * 1024,
} as const;

const noopLogger: PeerLogger = () => {};

type Side = string | readonly string[];

function sides(value: Side): readonly string[] {
  return typeof value === "string" ? [value] : value;
}

function linkKey(from: string, to: string): string {
  return `${from}\u0000${to}`;
}

function pairKey(a: string, b: string): string {
  return a < b ? linkKey(a, b) : linkKey(b, a);
}

/** The in-process network shared by the MemoryPeerTransports of one cluster. */
export class MemoryPeerHub {
  private readonly nodes = new Map<string, MemoryPeerTransport>();
  private readonly partitions = new Set<string>();
  private readonly isolated = new Set<string>();
  /** Directed link -> probability in [0, 1] that a batch is lost. */
  private readonly lossRates = new Map<string, number>();
  /** Directed link ("*" wildcards allowed) -> added latency. */
  private readonly delays = new Map<string, number>();
  /** Directed link -> batches delayed on it, in send order (non-decreasing atMs). Absent when empty. */
  private readonly inFlight = new Map<string, { atMs: number; batch: readonly Uint8Array[] }[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly random: () => number;
  private payloadsDelivered = 0;
  private payloadsLost = 0;

  constructor(options: MemoryPeerHubOptions = {}) {
    this.random = options.random ?? Math.random;
  }

  /**
   * Creates a transport and attaches it to this hub at once (start() is then optional and a no-op), so
   * an injected transport works even if its owner never starts it. A node id may be attached once at a
   * time: close the old transport before creating a restarted node's new one.
   */
  transport(options: MemoryPeerTransportOptions | string): MemoryPeerTransport {
    const transport = new MemoryPeerTransport(this, typeof options === "string" ? { nodeId: options } : options);
    transport.join();
    return transport;
  }

  /** Cuts every link between a node of `a` and a node of `b`, both ways. */
  partition(a: Side, b: Side): void {
    for (const x of sides(a)) for (const y of sides(b)) if (x !== y) this.partitions.add(pairKey(x, y));
    this.refresh();
  }

  /** Drops everything sent from `from` to `to`; the other direction still works and the link stays "up". */
  dropOneWay(from: string, to: string): void {
    this.loss(from, to, 1);
  }

  /** Loses each batch sent from `from` to `to` with probability `rate` (0 restores the link). */
  loss(from: string, to: string, rate: number): void {
    if (!(rate >= 0 && rate <= 1)) throw new TypeError("loss rate must be in [0, 1]");
    if (rate === 0) this.lossRates.delete(linkKey(from, to));
    else this.lossRates.set(linkKey(from, to), rate);
  }

  /** Cuts `id` off from every other node until heal(). */
  isolate(id: string): void {
    this.isolated.add(id);
    this.refresh();
  }

  /** Adds `ms` of latency to batches from `from` to `to`; "*" matches any node. 0 removes it. */
  delay(from: string, to: string, ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new TypeError("delay must be a non-negative number of ms");
    if (ms === 0) this.delays.delete(linkKey(from, to));
    else this.delays.set(linkKey(from, to), ms);
  }

  /** Removes every fault: partitions, isolation, loss, one-way drops and delays. */
  heal(): void {
    this.partitions.clear();
    this.isolated.clear();
    this.lossRates.clear();
    this.delays.clear();
    this.refresh();
  }

  /** True when `a` and `b` are connected (see the file comment). */
  linkUp(a: string, b: string): boolean {
    if (a === b) return false;
    const x = this.nodes.get(a);
    const y = this.nodes.get(b);
    if (x === undefined || y === undefined || !x.knowsPeer(b) || !y.knowsPeer(a)) return false;
    return !this.partitions.has(pairKey(a, b)) && !this.isolated.has(a) && !this.isolated.has(b);
  }

  /** Node ids currently attached (started and not closed). */
  members(): string[] {
    return [...this.nodes.keys()];
  }

  stats(): { payloadsDelivered: number; payloadsLost: number; deliveriesScheduled: number } {
    let scheduled = 0;
    for (const queue of this.inFlight.values()) scheduled += queue.length;
    return { payloadsDelivered: this.payloadsDelivered, payloadsLost: this.payloadsLost, deliveriesScheduled: scheduled };
  }

  /** @internal called by MemoryPeerTransport.start */
  attach(node: MemoryPeerTransport): void {
    const existing = this.nodes.get(node.nodeId);
    if (existing !== undefined && existing !== node) throw new TypeError(`node ${node.nodeId} is already attached to this hub`);
    this.nodes.set(node.nodeId, node);
  }

  /** @internal called by MemoryPeerTransport.close */
  detach(node: MemoryPeerTransport): void {
    if (this.nodes.get(node.nodeId) === node) this.nodes.delete(node.nodeId);
    this.refresh();
  }

  /** @internal Re-evaluates every link and tells the transports which changed. */
  refresh(): void {
    for (const node of this.nodes.values()) node.syncPeerStates();
  }

  /** @internal Carries one batch (encoded payloads) from `from` to `to`, applying the link's faults. */
  carry(from: string, to: string, batch: readonly Uint8Array[]): void {
    const key = linkKey(from, to);
    const rate = this.lossRates.get(key) ?? 0;
    if (rate > 0 && this.random() < rate) {
      this.payloadsLost += batch.length;
      return;
    }
    const delayMs = this.delays.get(key) ?? this.delays.get(linkKey(from, "*")) ?? this.delays.get(linkKey("*", to)) ?? this.delays.get(linkKey("*", "*")) ?? 0;
    const queue = this.inFlight.get(key);
    if (delayMs === 0 && queue === undefined) {
      this.deliver(from, to, batch);
      return;
    }
    // FIFO per link: a batch never overtakes one sent earlier, even when the delay shrinks meanwhile.
    const atMs = Math.max(Date.now() + delayMs, queue?.at(-1)?.atMs ?? 0);
    if (queue === undefined) {
      this.inFlight.set(key, [{ atMs, batch }]);
      this.armLink(key, from, to);
    } else {
      queue.push({ atMs, batch });
    }
  }

  /** Sets the one timer of a link for the head of its in-flight queue. */
  private armLink(key: string, from: string, to: string): void {
    const head = this.inFlight.get(key)?.[0];
    if (head === undefined) {
      this.inFlight.delete(key);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const queue = this.inFlight.get(key);
      while (queue !== undefined && queue.length > 0 && queue[0]!.atMs <= Date.now()) this.deliver(from, to, queue.shift()!.batch);
      this.armLink(key, from, to);
    }, Math.max(0, head.atMs - Date.now()));
    this.timers.add(timer);
  }

  private deliver(from: string, to: string, batch: readonly Uint8Array[]): void {
    // A batch in flight when its link was cut is lost, as it would be with a closed connection.
    const target = this.nodes.get(to);
    if (target === undefined || !this.linkUp(from, to)) {
      this.payloadsLost += batch.length;
      return;
    }
    this.payloadsDelivered += batch.length;
    target.receive(from, batch);
  }

  /** Cancels deliveries still scheduled (call when the whole in-memory cluster is torn down). */
  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.inFlight.clear();
  }
}

interface QueuedPayload {
  readonly payload: PeerPayload;
  readonly encoded: Uint8Array;
}

interface MemoryPeerState {
  queue: QueuedPayload[];
  queuedBytes: number;
  up: boolean;
  framesSent: number;
  framesReceived: number;
  dropped: number;
}

export class MemoryPeerTransport implements PeerTransport {
  readonly nodeId: string;
  private readonly logger: PeerLogger;
  private readonly listeners: PeerListeners;
  private readonly rpc: PeerRpc;
  private readonly sendQueueBytesMax: number;
  private readonly sendQueueFramesMax: number;
  /** null: every other hub member is a peer. */
  private peerIds: Set<string> | null;
  private readonly peers = new Map<string, MemoryPeerState>();
  private flushScheduled: NodeJS.Immediate | null = null;
  private state: "new" | "started" | "closed" = "new";

  constructor(
    private readonly hub: MemoryPeerHub,
    options: MemoryPeerTransportOptions,
  ) {
    if (typeof options.nodeId !== "string" || options.nodeId.length === 0) throw new TypeError("nodeId must be a non-empty string");
    this.nodeId = options.nodeId;
    this.logger = options.logger ?? noopLogger;
    this.listeners = new PeerListeners(this.logger);
    this.sendQueueBytesMax = options.limits?.sendQueueBytesMax ?? MEMORY_LIMIT_DEFAULTS.sendQueueBytesMax;
    this.sendQueueFramesMax = options.limits?.sendQueueFramesMax ?? PEER_LIMIT_DEFAULTS.sendQueueFramesMax;
    this.peerIds = options.peers === undefined ? null : this.idsOf(options.peers);
    this.rpc = new PeerRpc({
      logger: this.logger,
      requestsPendingMax: options.limits?.requestsPendingMax ?? PEER_LIMIT_DEFAULTS.requestsPendingMax,
      requestsInflightMax: options.limits?.requestsInflightMax ?? PEER_LIMIT_DEFAULTS.requestsInflightMax,
      send: (to, payload) => this.enqueue(to, payload),
    });
  }

  /** Attaches to the hub. Idempotent; rejects after close() or when the node id is attached by another transport. */
  start(): Promise<{ port: number }> {
    try {
      this.join();
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve({ port: 0 });
  }

  /** @internal Attaches to the hub now; throws TypeError when closed or when the id is taken. */
  join(): void {
    if (this.state === "closed") throw new TypeError(`transport ${this.nodeId} is closed`);
    if (this.state === "started") return;
    this.hub.attach(this);
    this.state = "started";
    this.hub.refresh();
  }

  send(to: string, payload: PeerPayload): void {
    this.enqueue(to, payload);
  }

  request(to: string, body: unknown, timeoutMs: number): Promise<unknown> {
    return this.rpc.request(to, body, timeoutMs);
  }

  onRaft(handler: (from: string, group: string, message: Message) => void): void {
    this.listeners.raft.push(handler);
  }

  onRequest(handler: (from: string, body: unknown) => Promise<unknown>): void {
    this.rpc.setHandler(handler);
  }

  onPeerState(handler: (peer: string, up: boolean) => void): void {
    this.listeners.peerState.push(handler);
  }

  onSnapshotStatus(handler: (peer: string, group: string, ok: boolean) => void): void {
    this.listeners.snapshotStatus.push(handler);
  }

  setPeers(peers: Record<string, string>): void {
    this.peerIds = this.idsOf(peers);
    for (const id of [...this.peers.keys()]) {
      if (!this.peerIds.has(id)) {
        const peer = this.peers.get(id);
        if (peer !== undefined) this.dropQueue(id, peer);
        this.peers.delete(id);
      }
    }
    this.hub.refresh();
  }

  stats(): { peers: Record<string, PeerStats> } {
    const result: Record<string, PeerStats> = {};
    for (const id of this.peerList()) {
      const peer = this.peers.get(id);
      result[id] = {
        connected: peer?.up ?? false,
        queuedBytes: peer?.queuedBytes ?? 0,
        framesSent: peer?.framesSent ?? 0,
        framesReceived: peer?.framesReceived ?? 0,
        dropped: peer?.dropped ?? 0,
      };
    }
    return { peers: result };
  }

  close(): Promise<void> {
    if (this.state === "closed") return Promise.resolve();
    const wasStarted = this.state === "started";
    this.state = "closed";
    if (this.flushScheduled !== null) clearImmediate(this.flushScheduled);
    this.flushScheduled = null;
    for (const [id, peer] of this.peers) {
      peer.up = false;
      this.dropQueue(id, peer);
    }
    this.rpc.close();
    if (wasStarted) this.hub.detach(this);
    return Promise.resolve();
  }

  /** @internal */
  knowsPeer(id: string): boolean {
    return id !== this.nodeId && (this.peerIds === null || this.peerIds.has(id));
  }

  /** @internal Compares each link with the hub and fires onPeerState for the ones that changed. */
  syncPeerStates(): void {
    if (this.state !== "started") return;
    for (const id of this.peerList()) {
      const up = this.hub.linkUp(this.nodeId, id);
      const peer = this.peerState(id);
      if (peer.up === up) continue;
      peer.up = up;
      if (!up) {
        this.dropQueue(id, peer);
        this.rpc.peerDown(id);
      }
      this.logger("info", `peer ${id} ${up ? "up" : "down"}`, { peer: id });
      this.listeners.emitPeerState(id, up);
    }
  }

  /** @internal A batch arrived from `from` over an up link. */
  receive(from: string, batch: readonly Uint8Array[]): void {
    if (this.state !== "started") return;
    const peer = this.peerState(from);
    peer.framesReceived++;
    for (const encoded of batch) {
      let payload;
      try {
        payload = decodePayload(encoded);
      } catch (error) {
        this.logger("error", "peer transport: invalid payload", { from, error: String(error) });
        continue;
      }
      this.dispatch(from, payload);
    }
  }

  private dispatch(from: string, payload: ReturnType<typeof decodePayload>): void {
    switch (payload.kind) {
      case "raft":
        if (payload.message.from !== from || payload.message.to !== this.nodeId) {
          this.logger("error", "peer transport: raft message with wrong from/to", { from, messageFrom: payload.message.from, messageTo: payload.message.to });
          return;
        }
        this.listeners.emitRaft(from, payload.group, payload.message);
        return;
      case "request":
        this.rpc.handleRequest(from, payload.requestId, payload.body);
        return;
      case "response":
        this.rpc.handleResponse(from, payload.requestId, payload.body);
        return;
      default:
        this.logger("error", "peer transport: unexpected payload kind in memory transport", { from, kind: payload.kind });
    }
  }

  private enqueue(to: string, payload: PeerPayload): boolean {
    if (this.state !== "started" || !this.knowsPeer(to)) {
      this.countDrop(to, payload, "peer unknown or transport not running");
      return false;
    }
    const peer = this.peerState(to);
    if (!peer.up) {
      this.countDrop(to, payload, "peer down");
      return false;
    }
    let encoded: Uint8Array;
    try {
      encoded = encodePayload(payload);
    } catch (error) {
      this.logger("error", "peer transport: refusing to send an invalid payload", { to, error: String(error) });
      this.countDrop(to, payload, "invalid payload");
      return false;
    }
    if (peer.queue.length >= this.sendQueueFramesMax || peer.queuedBytes + encoded.byteLength > this.sendQueueBytesMax) {
      this.countDrop(to, payload, "send queue full");
      return false;
    }
    peer.queue.push({ payload, encoded });
    peer.queuedBytes += encoded.byteLength;
    this.flushScheduled ??= setImmediate(() => this.flush());
    return true;
  }

  private flush(): void {
    this.flushScheduled = null;
    for (const [id, peer] of this.peers) {
      if (peer.queue.length === 0) continue;
      const queue = peer.queue;
      peer.queue = [];
      peer.queuedBytes = 0;
      if (!peer.up) {
        for (const item of queue) this.countDrop(id, item.payload, "peer down");
        continue;
      }
      peer.framesSent++;
      for (const item of queue) {
        if (item.payload.kind === "request") this.rpc.markWritten(item.payload.requestId);
        if (item.payload.kind === "raft" && item.payload.message.type === "snap") {
          this.listeners.emitSnapshotStatus(id, item.payload.group, true);
        }
      }
      this.hub.carry(this.nodeId, id, queue.map((item) => item.encoded));
    }
  }

  private dropQueue(id: string, peer: MemoryPeerState): void {
    const queue = peer.queue;
    peer.queue = [];
    peer.queuedBytes = 0;
    for (const item of queue) this.countDrop(id, item.payload, "peer down");
  }

  private countDrop(to: string, payload: PeerPayload, reason: string): void {
    const peer = this.peers.get(to);
    if (peer !== undefined) peer.dropped++;
    this.logger("debug", `peer transport: dropped ${payload.kind} to ${to}: ${reason}`);
    if (payload.kind === "request") this.rpc.markDropped(payload.requestId);
    if (payload.kind === "raft" && payload.message.type === "snap") this.listeners.emitSnapshotStatus(to, payload.group, false);
  }

  private peerState(id: string): MemoryPeerState {
    let peer = this.peers.get(id);
    if (peer === undefined) {
      peer = { queue: [], queuedBytes: 0, up: false, framesSent: 0, framesReceived: 0, dropped: 0 };
      this.peers.set(id, peer);
    }
    return peer;
  }

  /** Configured peers; without a configuration, the hub's other members plus any peer still marked up. */
  private peerList(): string[] {
    if (this.peerIds !== null) return [...this.peerIds];
    const ids = new Set(this.hub.members().filter((id) => id !== this.nodeId));
    for (const [id, peer] of this.peers) if (peer.up) ids.add(id);
    return [...ids];
  }

  private idsOf(peers: Record<string, string>): Set<string> {
    if (typeof peers !== "object" || peers === null) throw new TypeError("peers must be a record of nodeId -> address");
    return new Set(Object.keys(peers).filter((id) => id !== this.nodeId));
  }
}
