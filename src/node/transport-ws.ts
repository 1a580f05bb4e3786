/**
 * WsPeerTransport: the PeerTransport over WebSockets (`ws`), one authenticated connection per pair of nodes
 * (the lower node id dials, the other accepts), multiplexing every Raft group and the node-to-node RPCs.
 *
 * Sending: send() validates and encodes a payload at once and appends it to the peer's queue (bounded by
 * sendQueueBytesMax and sendQueueFramesMax; beyond, or when the peer is down, the payload is dropped and
 * counted). Once per event-loop turn the queues are flushed as batched frames of at most frameBytesMax,
 * but only while the socket's bufferedAmount is under socketBufferedBytesMax: a slow or stopped peer fills
 * its queue and then loses messages, it never grows memory. A write callback resumes the flush.
 *
 * Snapshots larger than snapshotChunkBytes are streamed: a "snapshotBegin" payload (the snap message with
 * empty data) and then chunks, produced lazily as the socket drains, so a snapshot of hundreds of MB costs
 * no extra memory on the sender. The receiver reassembles at most one snapshot per peer, bounded by
 * snapshotBytesMax, and discards it on disconnect. Chunks interleave with ordinary messages.
 *
 * Receiving: every frame is decoded and validated (peer-codec.ts) before any payload is dispatched; a raft
 * message must come from the authenticated peer and be addressed to this node. Any defect closes the
 * connection with an error log (the dialer reconnects with backoff); nothing escapes as an exception.
 */
import { createServer } from "node:http";
import type { Server as HttpServer } from "node:http";
import { WebSocket, WebSocketServer } from "ws";
import type { Message } from "../raft/types.ts";
import { CairnError } from "../shared/errors.ts";
import { FRAME_OVERHEAD_BYTES_MAX, decodeFrame, encodePayload, protocolError } from "./peer-codec.ts";
import type { WirePayload } from "./peer-codec.ts";
import { CLOSE_CODES, PeerConnection } from "./transport-ws-connection.ts";
import type { ConnectionContext } from "./transport-ws-connection.ts";
import { PeerSendQueue, SnapshotReassembly } from "./transport-ws-queue.ts";
import type { QueuedPayload } from "./transport-ws-queue.ts";
import { PeerListeners, PeerRpc } from "./transport-rpc.ts";
import { resolvePeerLimits } from "./transport.ts";
import type { PeerLogger, PeerPayload, PeerStats, PeerTransport, PeerTransportOptions, ResolvedPeerLimits } from "./transport.ts";

/** Time close() waits for sockets to finish their closing handshake before terminating them. */
const CLOSE_WAIT_MS = 2000;
/** Frames written to one peer in one flush before yielding to the event loop. */
const FLUSH_FRAMES_MAX = 64;
interface PeerLink {
  readonly id: string;
  url: string;
  /** This node dials the peer (its id is lower); otherwise it only accepts. */
  readonly dialer: boolean;
  /** The authenticated connection, if up. */
  connection: PeerConnection | null;
  /** An outbound connection still handshaking. */
  dialing: PeerConnection | null;
  reconnectTimer: NodeJS.Timeout | null;
  reconnectAttempt: number;
  readonly queue: PeerSendQueue;
  readonly incoming: SnapshotReassembly;
  framesSent: number;
  framesReceived: number;
  dropped: number;
}

const noopLogger: PeerLogger = () => {};

function parsePeers(peers: Record<string, string>, self: string): Map<string, string> {
  if (typeof peers !== "object" || peers === null) throw new TypeError("peers must be a record of nodeId -> ws URL");
  const result = new Map<string, string>();
  for (const [id, url] of Object.entries(peers)) {
    if (id === self) continue;
    if (id.length === 0) throw new TypeError("peer ids must be non-empty");
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError(`peer ${id} has an invalid URL: ${String(url)}`);
    }
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") throw new TypeError(`peer ${id} URL must be ws:// or wss://, got ${url}`);
    result.set(id, url);
  }
  return result;
}

export class WsPeerTransport implements PeerTransport {
  private readonly nodeId: string;
  private readonly secret: string;
  private readonly listen: { host: string; port: number };
  private readonly limits: ResolvedPeerLimits;
  private readonly logger: PeerLogger;
  private readonly listeners: PeerListeners;
  private readonly rpc: PeerRpc;
  private readonly links = new Map<string, PeerLink>();
  /** Connections (both directions) not yet authenticated. Size <= connectionsPendingMax (acceptor side). */
  private readonly pending = new Set<PeerConnection>();
  private readonly context: ConnectionContext;
  private server: WebSocketServer | null = null;
  private http: HttpServer | null = null;
  private flushScheduled: NodeJS.Immediate | null = null;
  private state: "new" | "starting" | "started" | "closed" = "new";

  constructor(options: PeerTransportOptions) {
    if (typeof options.nodeId !== "string" || options.nodeId.length === 0) throw new TypeError("nodeId must be a non-empty string");
    if (typeof options.clusterSecret !== "string" || options.clusterSecret.length === 0) throw new TypeError("clusterSecret must be a non-empty string");
    this.nodeId = options.nodeId;
    this.secret = options.clusterSecret;
    this.listen = { host: options.listen.host, port: options.listen.port };
    this.limits = resolvePeerLimits(options.limits);
    this.logger = options.logger ?? noopLogger;
    this.listeners = new PeerListeners(this.logger);
    for (const [id, url] of parsePeers(options.peers, this.nodeId)) this.links.set(id, this.newLink(id, url));
    this.rpc = new PeerRpc({
      logger: this.logger,
      requestsPendingMax: this.limits.requestsPendingMax,
      requestsInflightMax: this.limits.requestsInflightMax,
      send: (to, payload) => this.enqueue(to, payload),
    });
    this.context = {
      nodeId: this.nodeId,
      secret: this.secret,
      handshakeTimeoutMs: this.limits.handshakeTimeoutMs,
      keepaliveIntervalMs: this.limits.keepaliveIntervalMs,
      logger: this.logger,
      refuseDialer: (peer) => {
        const link = this.links.get(peer);
        if (link === undefined) return "not a peer of this node";
        if (link.dialer) return "this node dials that peer, not the reverse";
        return null;
      },
      onOpen: (connection) => this.onConnectionOpen(connection),
      onFrame: (connection, frame) => this.onFrame(connection, frame),
      onClose: (connection, code, reason) => this.onConnectionClose(connection, code, reason),
    };
  }

  async start(): Promise<{ port: number }> {
    if (this.state !== "new") throw new TypeError("transport already started");
    this.state = "starting";
    // Our own HTTP server (not ws's) so that slow or idle pre-upgrade connections are bounded in time and
    // number, and close() can cut every connection.
    const http = createServer((_request, response) => {
      response.writeHead(426, { connection: "close" }).end("peer transport: WebSocket upgrade required\n");
    });
    http.headersTimeout = this.limits.handshakeTimeoutMs;
    http.requestTimeout = this.limits.handshakeTimeoutMs;
    http.maxHeadersCount = 64;
    this.http = http;
    this.updateConnectionsMax();
    try {
      await new Promise<void>((resolve, reject) => {
        http.once("error", reject);
        http.listen(this.listen.port, this.listen.host, () => {
          http.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      this.state = "closed";
      this.http = null;
      http.close();
      throw new CairnError("UNAVAILABLE", `peer transport cannot listen on ${this.listen.host}:${this.listen.port}`, {}, { cause: error });
    }
    http.on("error", (error) => this.logger("error", "peer listener error", { error: error.message }));
    http.on("clientError", (error, socket) => {
      this.logger("debug", "peer listener: malformed HTTP from a client", { error: error.message });
      socket.destroy();
    });
    const server = new WebSocketServer({
      server: http,
      maxPayload: this.limits.frameBytesMax,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.server = server;
    server.on("error", (error) => this.logger("error", "peer listener error", { error: error.message }));
    server.on("connection", (ws) => this.onInbound(ws));
    const address = http.address();
    const port = typeof address === "object" && address !== null ? address.port : this.listen.port;
    this.state = "started";
    for (const link of this.links.values()) if (link.dialer) this.dial(link);
    this.logger("info", "peer transport listening", { node: this.nodeId, host: this.listen.host, port });
    return { port };
  }

  /** TCP connections the listener holds at once: every peer (twice, while one replaces another) plus pending ones. */
  private updateConnectionsMax(): void {
    if (this.http !== null) this.http.maxConnections = this.limits.connectionsPendingMax + 2 * this.links.size;
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
    const next = parsePeers(peers, this.nodeId);
    for (const [id, link] of [...this.links]) {
      if (next.has(id)) continue;
      this.links.delete(id);
      this.disconnect(link, CLOSE_CODES.peerRemoved, "peer removed");
    }
    for (const [id, url] of next) {
      const link = this.links.get(id);
      if (link === undefined) {
        const added = this.newLink(id, url);
        this.links.set(id, added);
        if (this.state === "started" && added.dialer) this.dial(added);
      } else if (link.url !== url) {
        link.url = url;
        if (link.dialer && this.state === "started") {
          // Redial the new address now; the old connection's close must not schedule a backoff.
          link.reconnectAttempt = 0;
          this.disconnect(link, CLOSE_CODES.peerRemoved, "peer address changed");
          this.dial(link);
        }
      }
    }
    this.updateConnectionsMax();
  }

  stats(): { peers: Record<string, PeerStats & { socketBufferedBytes: number; snapshotsQueued: number }> } {
    const peers: Record<string, PeerStats & { socketBufferedBytes: number; snapshotsQueued: number }> = {};
    for (const link of this.links.values()) {
      peers[link.id] = {
        connected: link.connection !== null,
        queuedBytes: link.queue.queuedBytes,
        framesSent: link.framesSent,
        framesReceived: link.framesReceived,
        dropped: link.dropped,
        socketBufferedBytes: link.connection?.ws.bufferedAmount ?? 0,
        snapshotsQueued: link.queue.snapshotsQueued(),
      };
    }
    return { peers };
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    if (this.flushScheduled !== null) clearImmediate(this.flushScheduled);
    this.flushScheduled = null;
    const sockets: WebSocket[] = [];
    for (const link of this.links.values()) {
      if (link.connection !== null) sockets.push(link.connection.ws);
      if (link.dialing !== null) sockets.push(link.dialing.ws);
      this.disconnect(link, CLOSE_CODES.goingAway, "shutting down");
    }
    for (const connection of this.pending) {
      sockets.push(connection.ws);
      connection.close(CLOSE_CODES.goingAway, "shutting down");
    }
    this.rpc.close();
    const closed = sockets.map((ws) =>
      ws.readyState === WebSocket.CLOSED ? Promise.resolve() : new Promise<void>((resolve) => ws.once("close", () => resolve())),
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)));
    await Promise.race([Promise.all(closed), deadline]);
    clearTimeout(timer);
    for (const ws of sockets) if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    this.server?.close();
    this.server = null;
    const http = this.http;
    this.http = null;
    if (http !== null) {
      const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections(); // upgrade requests still in progress, raw garbage connections
      await stopped;
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Connections

  private newLink(id: string, url: string): PeerLink {
    return {
      id,
      url,
      dialer: this.nodeId < id,
      connection: null,
      dialing: null,
      reconnectTimer: null,
      reconnectAttempt: 0,
      queue: new PeerSendQueue(this.limits),
      incoming: new SnapshotReassembly(this.limits.snapshotBytesMax),
      framesSent: 0,
      framesReceived: 0,
      dropped: 0,
    };
  }

  private dial(link: PeerLink): void {
    if (this.state !== "started" || link.dialing !== null || link.connection !== null || this.links.get(link.id) !== link) return;
    if (link.reconnectTimer !== null) clearTimeout(link.reconnectTimer);
    link.reconnectTimer = null;
    let ws: WebSocket;
    try {
      ws = new WebSocket(link.url, {
        perMessageDeflate: false,
        maxPayload: this.limits.frameBytesMax,
        handshakeTimeout: this.limits.handshakeTimeoutMs,
        followRedirects: false,
        // RFC 6455 masking protects HTTP intermediaries from hostile browser scripts; a node-to-node link has
        // neither. An all-zero key makes ws skip the XOR pass on both ends (it cost half the throughput).
        generateMask: (mask: Buffer) => {
          mask.fill(0);
        },
      });
    } catch (error) {
      this.logger("error", "peer dial failed", { peer: link.id, url: link.url, error: String(error) });
      this.scheduleReconnect(link);
      return;
    }
    const connection = new PeerConnection(ws, "dialer", this.context, link.id);
    link.dialing = connection;
    this.pending.add(connection);
  }

  private scheduleReconnect(link: PeerLink): void {
    if (this.state !== "started" || !link.dialer || link.reconnectTimer !== null || this.links.get(link.id) !== link) return;
    const { reconnectDelayMsMin: min, reconnectDelayMsMax: max } = this.limits;
    // Exponential backoff with equal jitter: [base/2, base], never below min.
    const base = Math.min(max, min * 2 ** Math.min(link.reconnectAttempt, 30));
    const delayMs = Math.max(min, Math.round(base / 2 + (Math.random() * base) / 2));
    link.reconnectAttempt++;
    link.reconnectTimer = setTimeout(() => {
      link.reconnectTimer = null;
      this.dial(link);
    }, delayMs);
  }

  private onInbound(ws: WebSocket): void {
    if (this.state !== "started") {
      ws.terminate();
      return;
    }
    if (this.pending.size >= this.limits.connectionsPendingMax) {
      this.logger("warn", "too many unauthenticated peer connections; refusing one", { pending: this.pending.size });
      ws.terminate();
      return;
    }
    this.pending.add(new PeerConnection(ws, "acceptor", this.context, null));
  }

  private onConnectionOpen(connection: PeerConnection): void {
    this.pending.delete(connection);
    const link = connection.peer === null ? undefined : this.links.get(connection.peer);
    if (this.state !== "started" || link === undefined) {
      connection.close(CLOSE_CODES.peerRemoved, "not a peer");
      return;
    }
    if (connection.role === "dialer") {
      if (link.dialing !== connection) {
        connection.close(CLOSE_CODES.replaced, "stale dial");
        return;
      }
      link.dialing = null;
      link.reconnectAttempt = 0;
    }
    if (link.connection !== null) {
      // The peer reconnected while this side still held the old socket (a half-open connection).
      const old = link.connection;
      this.linkDown(link, "replaced by a new connection");
      old.close(CLOSE_CODES.replaced, "replaced");
    }
    link.connection = connection;
    this.logger("info", "peer up", { peer: link.id, role: connection.role });
    this.listeners.emitPeerState(link.id, true);
    this.scheduleFlush();
  }

  private onConnectionClose(connection: PeerConnection, code: number, reason: string): void {
    this.pending.delete(connection);
    const link = connection.peer === null ? undefined : this.links.get(connection.peer);
    if (link === undefined) return;
    if (link.dialing === connection) {
      link.dialing = null;
      this.logger("debug", "peer dial failed", { peer: link.id, code, reason });
      this.scheduleReconnect(link);
      return;
    }
    if (link.connection !== connection) return;
    this.linkDown(link, `closed (${code}${reason ? ` ${reason}` : ""})`);
    this.scheduleReconnect(link);
  }

  /** Takes a link down: drop what was queued for it, fail its requests and snapshots, tell the driver. */
  private linkDown(link: PeerLink, why: string): void {
    if (link.connection === null) return;
    link.connection = null;
    link.incoming.reset();
    this.dropQueued(link);
    this.rpc.peerDown(link.id);
    this.logger("info", "peer down", { peer: link.id, why });
    this.listeners.emitPeerState(link.id, false);
  }

  private disconnect(link: PeerLink, code: number, reason: string): void {
    if (link.reconnectTimer !== null) clearTimeout(link.reconnectTimer);
    link.reconnectTimer = null;
    const connection = link.connection;
    const dialing = link.dialing;
    link.dialing = null;
    if (dialing !== null) {
      this.pending.delete(dialing);
      dialing.close(code, reason);
    }
    if (connection !== null) {
      if (this.state === "closed") {
        link.connection = null;
        link.incoming.reset();
        this.dropQueued(link);
      } else {
        this.linkDown(link, reason);
      }
      connection.close(code, reason);
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Sending

  /** Queues a payload; false (and counted) when it is dropped instead. Never throws. */
  private enqueue(to: string, payload: PeerPayload): boolean {
    const link = this.links.get(to);
    if (link === undefined || this.state !== "started") {
      this.dropped(link, to, payload, "peer unknown or transport not running");
      return false;
    }
    if (link.connection === null || link.connection.state !== "open") {
      this.dropped(link, to, payload, "peer down");
      return false;
    }
    const snapshot = payload.kind === "raft" ? payload.message.snapshot : undefined;
    if (payload.kind === "raft" && snapshot !== undefined && snapshot.data.byteLength > this.limits.snapshotChunkBytes) {
      return this.enqueueSnapshot(link, payload.group, payload.message);
    }
    let encoded: Uint8Array;
    try {
      encoded = encodePayload(payload);
    } catch (error) {
      this.logger("error", "peer transport: refusing to send an invalid payload", { to, error: String(error) });
      this.dropped(link, to, payload, "invalid payload");
      return false;
    }
    if (encoded.byteLength + FRAME_OVERHEAD_BYTES_MAX > this.limits.frameBytesMax) {
      this.logger("error", "peer transport: payload larger than frameBytesMax", { to, kind: payload.kind, bytes: encoded.byteLength });
      this.dropped(link, to, payload, "too large");
      return false;
    }
    const item: QueuedPayload =
      payload.kind === "request"
        ? { encoded, requestId: payload.requestId }
        : payload.kind === "raft" && payload.message.type === "snap"
          ? { encoded, snapGroup: payload.group }
          : { encoded };
    if (!link.queue.push(item)) {
      this.dropped(link, to, payload, "send queue full");
      return false;
    }
    this.scheduleFlush();
    return true;
  }

  private enqueueSnapshot(link: PeerLink, group: string, message: Message): boolean {
    const snapshot = message.snapshot!;
    const fail = (reason: string): boolean => {
      link.dropped++;
      this.logger("warn", `peer transport: snapshot to ${link.id} dropped: ${reason}`, { group, bytes: snapshot.data.byteLength });
      this.listeners.emitSnapshotStatus(link.id, group, false);
      return false;
    };
    if (snapshot.data.byteLength > this.limits.snapshotBytesMax) return fail(`larger than snapshotBytesMax (${this.limits.snapshotBytesMax})`);
    let header: Uint8Array;
    try {
      header = encodePayload({
        kind: "snapshotBegin",
        group,
        message: { ...message, snapshot: { metadata: snapshot.metadata, data: new Uint8Array(0) } },
        snapshotBytes: snapshot.data.byteLength,
      });
    } catch (error) {
      this.logger("error", "peer transport: refusing to send an invalid snapshot message", { to: link.id, error: String(error) });
      return fail("invalid message");
    }
    if (!link.queue.pushSnapshot(group, header, snapshot.data)) return fail("too many snapshots queued");
    this.scheduleFlush();
    return true;
  }

  private dropped(link: PeerLink | undefined, to: string, payload: PeerPayload, reason: string): void {
    if (link !== undefined) link.dropped++;
    this.logger("debug", `peer transport: dropped ${payload.kind} to ${to}: ${reason}`);
    if (payload.kind === "request") this.rpc.markDropped(payload.requestId);
    if (payload.kind === "raft" && payload.message.type === "snap") this.listeners.emitSnapshotStatus(to, payload.group, false);
  }

  /** Drops everything queued for a link (it went down), failing requests and snapshots. */
  private dropQueued(link: PeerLink): void {
    const { items, snapshotGroups } = link.queue.drain();
    for (const item of items) {
      link.dropped++;
      if (item.requestId !== undefined) this.rpc.markDropped(item.requestId);
      if (item.snapGroup !== undefined) this.listeners.emitSnapshotStatus(link.id, item.snapGroup, false);
    }
    for (const group of snapshotGroups) {
      link.dropped++;
      this.listeners.emitSnapshotStatus(link.id, group, false);
    }
  }

  private scheduleFlush(): void {
    if (this.state === "started") this.flushScheduled ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = null;
    for (const link of this.links.values()) {
      const connection = link.connection;
      if (connection !== null && connection.state === "open" && link.queue.hasWork()) this.writeFrames(link, connection);
    }
  }

  /** Writes batched frames while the socket has room; a write callback resumes when it drains. */
  private writeFrames(link: PeerLink, connection: PeerConnection): void {
    for (let frames = 0; frames < FLUSH_FRAMES_MAX; frames++) {
      if (connection.ws.bufferedAmount >= this.limits.socketBufferedBytesMax) return; // resumed by a write callback
      const next = link.queue.nextFrame();
      if (next === null) return;
      for (const requestId of next.requestIds) this.rpc.markWritten(requestId);
      link.framesSent++;
      try {
        connection.ws.send(next.frame, { binary: true }, (error) => {
          for (const group of next.snapshotGroups) this.listeners.emitSnapshotStatus(link.id, group, error == null);
          if (error == null && link.connection === connection && link.queue.hasWork()) this.scheduleFlush();
        });
      } catch (error) {
        connection.fail(CLOSE_CODES.protocolError, `write failed: ${String(error)}`, "warn");
        return;
      }
    }
    this.scheduleFlush(); // more to send: continue next turn rather than hog the loop
  }

  // ------------------------------------------------------------------------------------------------
  // Receiving

  private onFrame(connection: PeerConnection, frame: Buffer): void {
    const link = connection.peer === null ? undefined : this.links.get(connection.peer);
    if (link === undefined || link.connection !== connection) {
      connection.close(CLOSE_CODES.peerRemoved, "not a current peer connection");
      return;
    }
    link.framesReceived++;
    let payloads: WirePayload[];
    try {
      payloads = decodeFrame(frame, this.limits.frameBytesMax);
      for (const payload of payloads) {
        if (payload.kind !== "raft" && payload.kind !== "snapshotBegin") continue;
        if (payload.message.from !== link.id || payload.message.to !== this.nodeId) {
          throw protocolError(`raft message from ${payload.message.from} to ${payload.message.to} on the link ${link.id} -> ${this.nodeId}`);
        }
      }
    } catch (error) {
      connection.fail(CLOSE_CODES.protocolError, (error as Error).message, "error");
      return;
    }
    for (const payload of payloads) {
      if (link.connection !== connection) return; // a listener or a failure closed it meanwhile
      try {
        this.dispatch(link, payload);
      } catch (error) {
        connection.fail(CLOSE_CODES.protocolError, (error as Error).message, "error");
        return;
      }
    }
  }

  private dispatch(link: PeerLink, payload: WirePayload): void {
    switch (payload.kind) {
      case "raft":
        this.listeners.emitRaft(link.id, payload.group, payload.message);
        return;
      case "request":
        this.rpc.handleRequest(link.id, payload.requestId, payload.body);
        return;
      case "response":
        this.rpc.handleResponse(link.id, payload.requestId, payload.body);
        return;
      case "snapshotBegin":
        this.emitSnapshot(link, link.incoming.begin(payload.group, payload.message, payload.snapshotBytes));
        return;
      case "snapshotChunk":
        this.emitSnapshot(link, link.incoming.chunk(payload.data));
        return;
    }
  }

  private emitSnapshot(link: PeerLink, complete: { group: string; message: Message } | null): void {
    if (complete !== null) this.listeners.emitRaft(link.id, complete.group, complete.message);
  }
}
