/**
 * The node-to-node transport seam (after hashicorp/raft's Transport): what the node driver uses to
 * exchange Raft messages of every group and node-to-node RPCs with its peers. Two implementations:
 *   - WsPeerTransport (transport-ws.ts): one authenticated WebSocket per pair of nodes, msgpackr frames.
 *   - MemoryPeerTransport (transport-memory.ts): an in-process twin over a hub with fault controls.
 *
 * Contracts shared by both:
 *   - send() never blocks and never throws for operating conditions: a message that cannot be queued
 *     (peer unknown or down, queue over its limit, message too large) is dropped and counted in stats().
 *     Raft tolerates loss; the driver learns about dead links through onPeerState.
 *   - Messages queued to one peer are delivered in order, at most once, batched per event-loop turn.
 *   - Everything received is validated (peer-codec.ts) before a handler sees it; a Message handed to
 *     onRaft always has `from` = the authenticated peer and `to` = this node.
 */
import type { Message } from "../raft/types.ts";

/** One unit carried between two nodes. */
export type PeerPayload =
  /** A Raft message of one group. */
  | { readonly kind: "raft"; readonly group: string; readonly message: Message }
  /** Node-to-node RPC (forwarded client requests). Prefer request()/onRequest over sending these raw. */
  | { readonly kind: "request"; readonly requestId: number; readonly body: unknown }
  | { readonly kind: "response"; readonly requestId: number; readonly body: unknown };

export type PeerLogLevel = "debug" | "info" | "warn" | "error";
export type PeerLogger = (level: PeerLogLevel, msg: string, fields?: object) => void;

/** Named limits of a transport. Required ones come from the cluster config; the others have defaults. */
export interface PeerTransportLimits {
  /** Largest frame either side sends or accepts (also the ws maxPayload). Default cluster value: 8 MiB. */
  frameBytesMax: number;
  /** Encoded bytes queued for one peer and not yet handed to the socket. Beyond it, sends are dropped. */
  sendQueueBytesMax: number;
  /** Payloads queued for one peer. Default 65_536. */
  sendQueueFramesMax?: number;
  reconnectDelayMsMin: number;
  reconnectDelayMsMax: number;
  /** WebSocket bufferedAmount above which no more frames are written to one peer. Default frameBytesMax. */
  socketBufferedBytesMax?: number;
  /** Largest snapshot accepted or sent (reassembled from chunks). Default 1 GiB. */
  snapshotBytesMax?: number;
  /** Snapshot bytes per chunk when a snapshot does not fit in one frame. Default min(4 MiB, frameBytesMax - 1 KiB). */
  snapshotChunkBytes?: number;
  /** Snapshot messages waiting to be streamed to one peer (beyond it they are dropped and reported failed). Default 8. */
  snapshotsQueuedMax?: number;
  /** Time allowed for the WebSocket upgrade plus the authentication handshake. Default 5000. */
  handshakeTimeoutMs?: number;
  /** Ping interval on an idle connection; a connection silent for 3 intervals is closed. Default 2000. */
  keepaliveIntervalMs?: number;
  /** Requests from one peer being served at once; beyond it they are answered UNAVAILABLE. Default 1024. */
  requestsInflightMax?: number;
  /** Outstanding request() calls of this transport, all peers together. Default 16_384. */
  requestsPendingMax?: number;
  /** Connections that have not finished authenticating, held at once. Default 64. */
  connectionsPendingMax?: number;
}

export interface PeerTransportOptions {
  nodeId: string;
  /** Address to listen on; port 0 picks an ephemeral port (tests). Peers are meant for loopback / private networks. */
  listen: { host: string; port: number };
  /** nodeId -> ws URL of every peer (this node's own entry is ignored). May be replaced with setPeers. */
  peers: Record<string, string>;
  /** Shared secret; both sides of every connection prove they know it (HMAC challenge-response). */
  clusterSecret: string;
  limits: PeerTransportLimits;
  logger?: PeerLogger;
}

export interface PeerStats {
  /** Authenticated connection up. */
  connected: boolean;
  /** Encoded bytes queued and not yet handed to the socket. */
  queuedBytes: number;
  framesSent: number;
  framesReceived: number;
  /** Payloads dropped on the way out: queue over limit, peer down, too large. */
  dropped: number;
}

export interface PeerTransport {
  /** Starts listening (and dialing the peers this node dials). Resolves with the bound port. */
  start(): Promise<{ port: number }>;
  /**
   * Non-blocking. Queued per peer and flushed as batched frames once per event-loop turn (all groups'
   * messages multiplexed). When a peer's queue is over its limit, the message is dropped (Raft tolerates
   * loss) and counted; raft messages to an unreachable peer are dropped.
   */
  send(to: string, payload: PeerPayload): void;
  /**
   * RPC helper on top of request/response payloads, with timeout. Resolves with what the peer's onRequest
   * handler resolved. Rejects with CairnError: UNAVAILABLE when the request was not sent (peer unknown,
   * down, queue full), TIMEOUT when the outcome is unknown (no answer in time, or the connection was lost
   * after the request was written), or the error the peer's handler threw (its code is kept).
   * `body` must be plain data: null, boolean, number, string, Uint8Array, arrays and plain objects.
   */
  request(to: string, body: unknown, timeoutMs: number): Promise<unknown>;
  /** Adds a listener for validated Raft messages. */
  onRaft(handler: (from: string, group: string, message: Message) => void): void;
  /** Sets the one responder for requests. What it throws is sent back as a CairnError (INTERNAL if not one). */
  onRequest(handler: (from: string, body: unknown) => Promise<unknown>): void;
  /** Adds a listener called when a peer's connection goes up or down (the driver calls core.reportUnreachable). */
  onPeerState(handler: (peer: string, up: boolean) => void): void;
  /**
   * Adds a listener told whether a snapshot message was handed to the connection in full (ok = true) or
   * was dropped (queue limit, connection lost). The driver reports it to the core (etcd ReportSnapshot);
   * without it a leader may wait forever on a lost snapshot.
   */
  onSnapshotStatus(handler: (peer: string, group: string, ok: boolean) => void): void;
  /** Replaces the peer table: removed peers are disconnected, changed URLs are redialed. */
  setPeers(peers: Record<string, string>): void;
  stats(): { peers: Record<string, PeerStats> };
  /** Closes every connection and the listener; pending requests reject UNAVAILABLE. No peer-state events fire. */
  close(): Promise<void>;
}

/** Limits with every default filled in. */
export type ResolvedPeerLimits = Required<PeerTransportLimits>;

export const PEER_LIMIT_DEFAULTS = {
  sendQueueFramesMax: 65_536,
  snapshotBytesMax: 1024 * 1024 * 1024,
  snapshotChunkBytesMax: 4 * 1024 * 1024,
  snapshotsQueuedMax: 8,
  handshakeTimeoutMs: 5000,
  keepaliveIntervalMs: 2000,
  requestsInflightMax: 1024,
  requestsPendingMax: 16_384,
  connectionsPendingMax: 64,
  /** Smallest frameBytesMax accepted: below it a Raft message with a few entries cannot travel. */
  frameBytesMin: 4096,
} as const;

function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`transport option limits.${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** Checks caller-supplied limits (TypeError on a caller mistake) and fills in defaults. */
export function resolvePeerLimits(limits: PeerTransportLimits): ResolvedPeerLimits {
  if (typeof limits !== "object" || limits === null) throw new TypeError("transport option limits is required");
  const frameBytesMax = positiveInteger(limits.frameBytesMax, "frameBytesMax");
  if (frameBytesMax < PEER_LIMIT_DEFAULTS.frameBytesMin) {
    throw new TypeError(`transport option limits.frameBytesMax must be >= ${PEER_LIMIT_DEFAULTS.frameBytesMin}`);
  }
  const reconnectDelayMsMin = positiveInteger(limits.reconnectDelayMsMin, "reconnectDelayMsMin");
  const reconnectDelayMsMax = positiveInteger(limits.reconnectDelayMsMax, "reconnectDelayMsMax");
  if (reconnectDelayMsMax < reconnectDelayMsMin) {
    throw new TypeError("transport option limits.reconnectDelayMsMax must be >= reconnectDelayMsMin");
  }
  const snapshotChunkBytes = positiveInteger(
    limits.snapshotChunkBytes ?? Math.min(PEER_LIMIT_DEFAULTS.snapshotChunkBytesMax, frameBytesMax - 1024),
    "snapshotChunkBytes",
  );
  if (snapshotChunkBytes > frameBytesMax - 1024) {
    throw new TypeError("transport option limits.snapshotChunkBytes must leave 1 KiB of frameBytesMax for framing");
  }
  return {
    frameBytesMax,
    sendQueueBytesMax: positiveInteger(limits.sendQueueBytesMax, "sendQueueBytesMax"),
    sendQueueFramesMax: positiveInteger(limits.sendQueueFramesMax ?? PEER_LIMIT_DEFAULTS.sendQueueFramesMax, "sendQueueFramesMax"),
    reconnectDelayMsMin,
    reconnectDelayMsMax,
    socketBufferedBytesMax: positiveInteger(limits.socketBufferedBytesMax ?? frameBytesMax, "socketBufferedBytesMax"),
    snapshotBytesMax: positiveInteger(limits.snapshotBytesMax ?? PEER_LIMIT_DEFAULTS.snapshotBytesMax, "snapshotBytesMax"),
    snapshotChunkBytes,
    snapshotsQueuedMax: positiveInteger(limits.snapshotsQueuedMax ?? PEER_LIMIT_DEFAULTS.snapshotsQueuedMax, "snapshotsQueuedMax"),
    handshakeTimeoutMs: positiveInteger(limits.handshakeTimeoutMs ?? PEER_LIMIT_DEFAULTS.handshakeTimeoutMs, "handshakeTimeoutMs"),
    keepaliveIntervalMs: positiveInteger(limits.keepaliveIntervalMs ?? PEER_LIMIT_DEFAULTS.keepaliveIntervalMs, "keepaliveIntervalMs"),
    requestsInflightMax: positiveInteger(limits.requestsInflightMax ?? PEER_LIMIT_DEFAULTS.requestsInflightMax, "requestsInflightMax"),
    requestsPendingMax: positiveInteger(limits.requestsPendingMax ?? PEER_LIMIT_DEFAULTS.requestsPendingMax, "requestsPendingMax"),
    connectionsPendingMax: positiveInteger(
      limits.connectionsPendingMax ?? PEER_LIMIT_DEFAULTS.connectionsPendingMax,
      "connectionsPendingMax",
    ),
  };
}
