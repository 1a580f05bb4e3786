/**
 * What the WebSocket transport and its in-memory twin share: the request/response bookkeeping behind
 * PeerTransport.request/onRequest, and safe dispatch to the driver's listeners.
 *
 * RPC envelope: a request payload carries the caller's body unchanged; the response body is
 * `{ ok: true, result }` or `{ ok: false, error: { code, message, data } }` so a CairnError thrown by the
 * responder's handler (NOT_LEADER with its leaderHint, say) reaches the caller with its code.
 */
import type { Message } from "../raft/types.ts";
import { AssertionError } from "../shared/assert.ts";
import { CairnError, isErrorCode } from "../shared/errors.ts";
import type { ErrorData } from "../shared/errors.ts";
import { checkPlainData } from "./peer-codec.ts";
import type { PeerLogger, PeerPayload } from "./transport.ts";

interface PendingRequest {
  readonly to: string;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  /** True once the request was handed to the connection: after that a lost connection means "outcome unknown". */
  written: boolean;
}

export interface PeerRpcOptions {
  readonly logger: PeerLogger;
  readonly requestsPendingMax: number;
  readonly requestsInflightMax: number;
  /** Queues a payload for a peer; false when it was dropped (peer down, queue full, too large). */
  readonly send: (to: string, payload: PeerPayload) => boolean;
}

/** Calls a driver callback; an exception is the driver's bug: logged, and rethrown if it is an assertion. */
export function callListener(logger: PeerLogger, what: string, call: () => void): void {
  try {
    call();
  } catch (error) {
    logger("error", `peer transport: ${what} listener threw`, { error: String(error) });
    // Assertions crash the node (STYLE.md), but not from inside the socket's event handler.
    if (error instanceof AssertionError) queueMicrotask(() => { throw error; });
  }
}

/** The listeners a transport dispatches to. */
export class PeerListeners {
  readonly raft: ((from: string, group: string, message: Message) => void)[] = [];
  readonly peerState: ((peer: string, up: boolean) => void)[] = [];
  readonly snapshotStatus: ((peer: string, group: string, ok: boolean) => void)[] = [];

  constructor(private readonly logger: PeerLogger) {}

  emitRaft(from: string, group: string, message: Message): void {
    for (const handler of this.raft) callListener(this.logger, "onRaft", () => handler(from, group, message));
  }

  emitPeerState(peer: string, up: boolean): void {
    for (const handler of this.peerState) callListener(this.logger, "onPeerState", () => handler(peer, up));
  }

  /** Deferred to a microtask so a listener is never re-entered from inside the driver's own send(). */
  emitSnapshotStatus(peer: string, group: string, ok: boolean): void {
    if (this.snapshotStatus.length === 0) return;
    queueMicrotask(() => {
      for (const handler of this.snapshotStatus) callListener(this.logger, "onSnapshotStatus", () => handler(peer, group, ok));
    });
  }
}

export class PeerRpc {
  private readonly pending = new Map<number, PendingRequest>();
  /** Requests from each peer currently being served. Invariant: every value in 1..requestsInflightMax. */
  private readonly inflight = new Map<string, number>();
  private requestIdNext = 1;
  private handler: ((from: string, body: unknown) => Promise<unknown>) | null = null;
  private closed = false;

  constructor(private readonly options: PeerRpcOptions) {}

  setHandler(handler: (from: string, body: unknown) => Promise<unknown>): void {
    this.handler = handler;
  }

  request(to: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) return Promise.reject(new TypeError("request timeoutMs must be a positive number"));
    try {
      checkPlainData(body);
    } catch (error) {
      return Promise.reject(new TypeError(`request body is not plain data: ${(error as Error).message}`));
    }
    if (this.closed) return Promise.reject(new CairnError("UNAVAILABLE", "peer transport closed"));
    if (this.pending.size >= this.options.requestsPendingMax) {
      return Promise.reject(new CairnError("UNAVAILABLE", `too many pending peer requests (${this.options.requestsPendingMax})`));
    }
    const requestId = this.requestIdNext++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new CairnError("TIMEOUT", `no answer from peer ${to} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(requestId, { to, timer, resolve, reject, written: false });
      if (!this.options.send(to, { kind: "request", requestId, body })) {
        this.settle(requestId, () => new CairnError("UNAVAILABLE", `peer ${to} is not reachable`));
      }
    });
  }

  /** The request went out on the connection (its outcome is unknown from now on if the link breaks). */
  markWritten(requestId: number): void {
    const pending = this.pending.get(requestId);
    if (pending !== undefined) pending.written = true;
  }

  /** The payload carrying this request was dropped before being written. */
  markDropped(requestId: number): void {
    this.settle(requestId, () => new CairnError("UNAVAILABLE", "peer request dropped before it was sent"));
  }

  handleResponse(from: string, requestId: number, body: unknown): void {
    const pending = this.pending.get(requestId);
    if (pending === undefined || pending.to !== from) {
      this.options.logger("debug", "peer transport: response to an unknown or expired request", { from, requestId });
      return;
    }
    this.pending.delete(requestId);
    clearTimeout(pending.timer);
    const envelope = body as { ok?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown } } | null;
    if (typeof envelope === "object" && envelope !== null && envelope.ok === true) {
      pending.resolve(envelope.result);
    } else if (typeof envelope === "object" && envelope !== null && envelope.ok === false && typeof envelope.error === "object" && envelope.error !== null) {
      const { code, message, data } = envelope.error;
      pending.reject(
        new CairnError(
          isErrorCode(code) ? code : "INTERNAL",
          typeof message === "string" ? message : undefined,
          typeof data === "object" && data !== null ? (data as ErrorData) : {},
        ),
      );
    } else {
      pending.reject(new CairnError("INTERNAL", `peer ${from} sent a malformed response envelope`));
    }
  }

  handleRequest(from: string, requestId: number, body: unknown): void {
    const count = this.inflight.get(from) ?? 0;
    const handler = this.handler;
    if (handler === null || count >= this.options.requestsInflightMax) {
      const reason = handler === null ? "no request handler" : `too many requests in flight from ${from}`;
      this.respond(from, requestId, { ok: false, error: new CairnError("UNAVAILABLE", reason).toJSON() });
      return;
    }
    this.inflight.set(from, count + 1);
    let promise: Promise<unknown>;
    try {
      promise = Promise.resolve(handler(from, body));
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (result) => {
        try {
          checkPlainData(result, "result");
          this.respond(from, requestId, { ok: true, result });
        } catch (error) {
          this.options.logger("error", "peer transport: request handler resolved with non-plain data", { from, error: String(error) });
          this.respond(from, requestId, { ok: false, error: new CairnError("INTERNAL", "response is not plain data").toJSON() });
        }
      },
      (error: unknown) => {
        const cairn = error instanceof CairnError ? error : new CairnError("INTERNAL", String(error), {}, { cause: error });
        if (!(error instanceof CairnError)) this.options.logger("error", "peer transport: request handler failed", { from, error: String(error) });
        const wire = cairn.toJSON();
        try {
          checkPlainData(wire.data);
        } catch {
          wire.data = {};
        }
        this.respond(from, requestId, { ok: false, error: wire });
      },
    ).finally(() => {
      const left = (this.inflight.get(from) ?? 1) - 1;
      if (left === 0) this.inflight.delete(from);
      else this.inflight.set(from, left);
    });
  }

  private respond(to: string, requestId: number, body: unknown): void {
    if (this.closed) return;
    if (!this.options.send(to, { kind: "response", requestId, body })) {
      this.options.logger("debug", "peer transport: response dropped", { to, requestId });
    }
  }

  /** The connection to `peer` went down: its requests were either never sent or have an unknown outcome. */
  peerDown(peer: string): void {
    for (const [requestId, pending] of this.pending) {
      if (pending.to !== peer) continue;
      this.settle(requestId, () =>
        pending.written
          ? new CairnError("TIMEOUT", `connection to peer ${peer} lost after the request was sent; outcome unknown`)
          : new CairnError("UNAVAILABLE", `connection to peer ${peer} lost before the request was sent`),
      );
    }
  }

  close(): void {
    this.closed = true;
    for (const requestId of [...this.pending.keys()]) this.settle(requestId, () => new CairnError("UNAVAILABLE", "peer transport closed"));
  }

  pendingCount(): number {
    return this.pending.size;
  }

  private settle(requestId: number, error: () => Error): void {
    const pending = this.pending.get(requestId);
    if (pending === undefined) return;
    this.pending.delete(requestId);
    clearTimeout(pending.timer);
    pending.reject(error());
  }
}
