/**
 * One WebSocket between two nodes: the mutual authentication handshake (see peer-codec.ts for the frames),
 * keepalive, and close codes. It knows nothing about queues or payloads: once authenticated it hands every
 * binary message to `onFrame` and reports `onOpen` / `onClose` to the transport (transport-ws.ts).
 *
 * Handshake, dialer D and acceptor A (the lower node id dials, so there is one connection per pair):
 *   D sends hello; A checks the claimed id is a known peer that dials it, and answers with its nonce and
 *   proof; D checks A's proof and answers with its own; A checks it and sends ready. Any defect, a wrong
 *   proof or silence past handshakeTimeoutMs closes the socket with one of the CLOSE_CODES below.
 * Messages are handled synchronously in the ws "message" event (ws may emit several in one tick, so the
 * switch from handshake to frames must not wait for a promise).
 */
import type { RawData, WebSocket } from "ws";
import { decodeHandshake, encodeHandshake, handshakeProof, newNonce, proofMatches } from "./peer-codec.ts";
import type { PeerLogger } from "./transport.ts";

/** Application close codes (4000-4999) used between peers. */
export const CLOSE_CODES = {
  /** A newer authenticated connection from the same peer took over. */
  replaced: 4000,
  /** The peer could not prove knowledge of the cluster secret. */
  unauthorized: 4001,
  /** A frame failed decoding or validation, or broke the protocol's order. */
  protocolError: 4002,
  /** Not a peer of this node, wrong node, or wrong dial direction. */
  unknownPeer: 4003,
  /** The handshake did not finish within handshakeTimeoutMs. */
  handshakeTimeout: 4004,
  /** The peer was removed with setPeers. */
  peerRemoved: 4005,
  /** The transport is shutting down. */
  goingAway: 1001,
} as const;

export interface ConnectionContext {
  readonly nodeId: string;
  readonly secret: string;
  readonly handshakeTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly logger: PeerLogger;
  /** Acceptor side: null when `peer` may dial this node, else why not. */
  readonly refuseDialer: (peer: string) => string | null;
  readonly onOpen: (connection: PeerConnection) => void;
  readonly onFrame: (connection: PeerConnection, frame: Buffer) => void;
  readonly onClose: (connection: PeerConnection, code: number, reason: string) => void;
}

type HandshakeStep = "awaitHello" | "awaitAuth" | "awaitChallenge" | "awaitReady";

/** Silent intervals after which the connection is considered dead. */
const KEEPALIVE_MISSED_MAX = 3;

export class PeerConnection {
  /** The authenticated peer id (acceptor: known after hello; dialer: the id it dialed). */
  peer: string | null;
  /** "closing": this side decided to close; nothing more is processed. "closed": the socket is gone. */
  state: "handshake" | "open" | "closing" | "closed" = "handshake";
  private step: HandshakeStep;
  private nonceDialer: Uint8Array | null = null;
  private nonceAcceptor: Uint8Array | null = null;
  private handshakeTimer: NodeJS.Timeout | null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private lastHeardMs = Date.now();

  constructor(
    readonly ws: WebSocket,
    readonly role: "dialer" | "acceptor",
    private readonly context: ConnectionContext,
    expectedPeer: string | null,
  ) {
    this.peer = expectedPeer;
    this.step = role === "dialer" ? "awaitChallenge" : "awaitHello";
    this.handshakeTimer = setTimeout(() => this.fail(CLOSE_CODES.handshakeTimeout, "handshake timeout", "warn"), context.handshakeTimeoutMs);
    ws.on("message", (data, isBinary) => this.onMessage(data, isBinary));
    ws.on("pong", () => {
      this.lastHeardMs = Date.now();
    });
    ws.on("error", (error) => {
      context.logger(this.state === "open" ? "warn" : "debug", "peer connection error", { peer: this.peer, role, error: error.message });
    });
    ws.on("close", (code, reason) => this.onSocketClose(code, reason.toString()));
    if (role === "dialer") ws.on("open", () => this.sendHello());
  }

  /** Closes with a code; the close handshake is cut short if the peer does not answer. */
  close(code: number, reason: string): void {
    if (this.state === "closed" || this.state === "closing") return;
    this.state = "closing";
    this.stopTimers();
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
      return;
    }
    // A peer that stopped reading would hold the closing handshake open forever.
    const grace = setTimeout(() => this.ws.terminate(), 1000);
    grace.unref();
  }

  private sendHello(): void {
    if (this.peer === null) return;
    this.nonceDialer = newNonce();
    this.sendRaw(encodeHandshake({ t: "hello", v: 1, from: this.context.nodeId, to: this.peer, nonce: this.nonceDialer }));
  }

  private sendRaw(data: Buffer): void {
    try {
      this.ws.send(data, { binary: true });
    } catch (error) {
      this.fail(CLOSE_CODES.protocolError, `send failed: ${String(error)}`, "warn");
    }
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.state === "closed" || this.state === "closing") return;
    this.lastHeardMs = Date.now();
    if (!isBinary || !Buffer.isBuffer(data)) {
      this.fail(CLOSE_CODES.protocolError, "text or fragmented-array message", "error");
      return;
    }
    if (this.state === "open") {
      this.context.onFrame(this, data);
      return;
    }
    try {
      this.handshake(data);
    } catch (error) {
      this.fail(CLOSE_CODES.protocolError, (error as Error).message, "error");
    }
  }

  /** One handshake step; throws protocolError on malformed frames (closed by the caller). */
  private handshake(data: Buffer): void {
    const frame = decodeHandshake(data);
    const secret = this.context.secret;
    switch (this.step) {
      case "awaitHello": {
        if (frame.t !== "hello") return this.fail(CLOSE_CODES.protocolError, `expected hello, got ${frame.t}`, "error");
        if (frame.to !== this.context.nodeId) return this.fail(CLOSE_CODES.unknownPeer, `hello is for ${frame.to}, not this node`, "warn");
        const refusal = this.context.refuseDialer(frame.from);
        if (refusal !== null) return this.fail(CLOSE_CODES.unknownPeer, `refused ${frame.from}: ${refusal}`, "warn");
        this.peer = frame.from;
        this.nonceDialer = frame.nonce;
        this.nonceAcceptor = newNonce();
        const proof = handshakeProof(secret, "acceptor", frame.from, this.context.nodeId, frame.nonce, this.nonceAcceptor);
        this.step = "awaitAuth";
        this.sendRaw(encodeHandshake({ t: "challenge", v: 1, from: this.context.nodeId, nonce: this.nonceAcceptor, proof }));
        return;
      }
      case "awaitAuth": {
        if (frame.t !== "auth") return this.fail(CLOSE_CODES.protocolError, `expected auth, got ${frame.t}`, "error");
        const expected = handshakeProof(secret, "dialer", this.peer!, this.context.nodeId, this.nonceDialer!, this.nonceAcceptor!);
        if (!proofMatches(expected, frame.proof)) return this.fail(CLOSE_CODES.unauthorized, "unauthorized: wrong cluster secret", "error");
        this.sendRaw(encodeHandshake({ t: "ready" }));
        this.open();
        return;
      }
      case "awaitChallenge": {
        if (frame.t !== "challenge") return this.fail(CLOSE_CODES.protocolError, `expected challenge, got ${frame.t}`, "error");
        if (frame.from !== this.peer) return this.fail(CLOSE_CODES.unknownPeer, `dialed ${this.peer} but ${frame.from} answered`, "error");
        const expected = handshakeProof(secret, "acceptor", this.context.nodeId, this.peer, this.nonceDialer!, frame.nonce);
        if (!proofMatches(expected, frame.proof)) return this.fail(CLOSE_CODES.unauthorized, "unauthorized: peer does not know the cluster secret", "error");
        this.nonceAcceptor = frame.nonce;
        this.step = "awaitReady";
        this.sendRaw(encodeHandshake({ t: "auth", proof: handshakeProof(secret, "dialer", this.context.nodeId, this.peer, this.nonceDialer!, frame.nonce) }));
        return;
      }
      case "awaitReady": {
        if (frame.t !== "ready") return this.fail(CLOSE_CODES.protocolError, `expected ready, got ${frame.t}`, "error");
        this.open();
        return;
      }
    }
  }

  private open(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    if (this.state !== "handshake") return;
    this.state = "open";
    this.lastHeardMs = Date.now();
    const intervalMs = this.context.keepaliveIntervalMs;
    this.keepaliveTimer = setInterval(() => {
      if (Date.now() - this.lastHeardMs > intervalMs * KEEPALIVE_MISSED_MAX) {
        this.context.logger("warn", "peer connection silent, closing", { peer: this.peer });
        this.ws.terminate();
        return;
      }
      try {
        this.ws.ping();
      } catch {
        // Closing already; the close event follows.
      }
    }, intervalMs);
    this.context.onOpen(this);
  }

  /** Closes after a protocol or authentication failure, logging why. */
  fail(code: number, reason: string, level: "debug" | "info" | "warn" | "error"): void {
    if (this.state === "closed" || this.state === "closing") return;
    this.context.logger(level, `peer connection closed: ${reason}`, { peer: this.peer, role: this.role, code });
    // A close reason is limited to 123 bytes; keep it short and ASCII.
    this.close(code, reason.replace(/[^\x20-\x7e]/g, "?").slice(0, 100));
  }

  private onSocketClose(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.stopTimers();
    this.context.onClose(this, code, reason);
  }

  private stopTimers(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    if (this.keepaliveTimer !== null) clearInterval(this.keepaliveTimer);
    this.handshakeTimer = null;
    this.keepaliveTimer = null;
  }
}
