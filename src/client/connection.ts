/**
 * The client connection: one WebSocket at a time to one of several servers, requests matched to
 * responses by a per-connection id, and failover.
 *
 * Contract of `request()` (docs/protocol.md, "Retries"):
 * - A call has one deadline (its timeoutMs). Until then it is retried: after the socket is lost (on the
 *   next connection, with the same `requestId` for writes, which the state machine deduplicates) and
 *   after a NOT_LEADER / UNAVAILABLE / PROPOSAL_DROPPED / TIMEOUT answer (with backoff).
 * - At the deadline: if any attempt may have been applied (sent without a definite answer), the call
 *   fails with TIMEOUT, never with a definite failure; if every attempt was refused, with UNAVAILABLE.
 * - At most PROTOCOL_LIMITS.inflightRequestsMax requests are outstanding on one socket; further calls
 *   wait for a slot (within their deadline).
 */
import { CairnError } from "../shared/errors.ts";
import {
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  type Push,
  type Request,
  type RequestOp,
  type Response,
  type Results,
  WRITE_OPS,
} from "../shared/protocol.ts";
import { decodeFrame, encodeFrame, errorFromWire } from "./codec.ts";
import { DEFAULTS, newRequestId, normalizeServerUrl, parseServers, positiveNumber, type ResolvedOptions } from "./options.ts";
import { openSocket, type ClientSocket } from "./socket.ts";
import type { ConnectOptions, ConnectionState, ConnectionStatus } from "./types.ts";

/** Request fields a caller gives: everything but `id`, `op` and `requestId` (added here). Optional
 *  fields may be `undefined` (left out of the frame). */
export type RequestBody<Op extends RequestOp> = Loose<Omit<Extract<Request, { op: Op }>, "id" | "op" | "requestId">>;
type Loose<T> = { [K in keyof T]: {} extends Pick<T, K> ? T[K] | undefined : T[K] };

export interface RequestOptions<Op extends RequestOp> {
  /** Deadline of the whole call, retries included (default: the connection's timeoutMs). */
  timeoutMs?: number | undefined;
  /** Called synchronously when the ok response arrives, before any later frame of the same socket is
   *  handled (watch.start uses it to register the watch before its first push). */
  onOk?: (result: Results[Op], link: Link) => void;
}


/** Server answers that mean "not done, try again": retried with backoff until the deadline. */
const RETRYABLE_CODES: ReadonlySet<string> = new Set(["NOT_LEADER", "UNAVAILABLE", "PROPOSAL_DROPPED", "TIMEOUT"]);

export function isRetryableCode(code: string): boolean {
  return RETRYABLE_CODES.has(code);
}


type Outcome = { kind: "response"; response: Response } | { kind: "lost" } | { kind: "deadline" } | { kind: "closed" };

interface Pending {
  settle(outcome: Outcome): void;
  onOk: ((result: never, link: Link) => void) | undefined;
}

/** Receives the pushes of one server-side watch, and hears when it can no longer arrive. */
export interface WatchSink {
  onPush(push: Push): void;
  /** The socket carrying the watch is gone (the server dropped the watch with it). */
  onLinkLost(): void;
  /** The connection was closed by the user. */
  onClosed(): void;
}

type HelloResult = Results["hello"];

/** One socket and what belongs to it. Ids, pending requests and watch ids are per socket. */
export class Link {
  readonly inflight = new Map<number, Pending>();
  readonly watches = new Map<number, WatchSink>();
  readonly orphanWatches = new Set<number>();
  socket: ClientSocket | null = null;
  info: HelloResult | null = null;
  closed = false;
  lastInboundAtMs = Date.now();
  /** When the outstanding ping was sent (0 = none outstanding). */
  pingSentAtMs = 0;
  constructor(readonly url: string) {}
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A connection to a cairn cluster (the nats.js `NatsConnection` of cairn). Obtain one with `connect()`.
 */
export class Connection {
  private readonly options: ResolvedOptions;
  private servers: string[];
  /** Index in `servers` of the current (or last) server. */
  private serverIndex = 0;
  private link: Link | null = null;
  private connState: ConnectionState = "reconnecting";
  private nextId = 1;
  private reconnecting = false;
  /** Sockets between open and the hello answer (closed by close() too). */
  private readonly handshakes = new Set<Link>();
  private readonly waiters = new Set<() => void>();
  private readonly sleepers = new Set<{ timer: ReturnType<typeof setTimeout>; resolve: () => void }>();
  private readonly statusListeners = new Set<(event: ConnectionStatus | null) => void>();
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private resolveClosed!: (value: void | Error) => void;
  /** Resolves when the connection is closed (by `close()`); with an Error if it closed because of one. */
  readonly closed: Promise<void | Error>;

  /** Use `connect()`. */
  constructor(options: ConnectOptions) {
    if (typeof options !== "object" || options === null) throw new TypeError("connect options must be an object");
    this.servers = parseServers(options.servers);
    if (!options.noRandomize) {
      for (let i = this.servers.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [this.servers[i], this.servers[j]] = [this.servers[j]!, this.servers[i]!];
      }
    }
    if (options.token !== undefined && typeof options.token !== "string") throw new TypeError("token must be a string");
    if (options.name !== undefined && typeof options.name !== "string") throw new TypeError("name must be a string");
    this.options = {
      timeoutMs: positiveNumber(options.timeoutMs, "timeoutMs", DEFAULTS.timeoutMs),
      token: options.token,
      name: options.name,
      discoverServers: options.discoverServers ?? true,
      reconnectDelayMsMin: positiveNumber(options.reconnectDelayMsMin, "reconnectDelayMsMin", DEFAULTS.reconnectDelayMsMin),
      reconnectDelayMsMax: positiveNumber(options.reconnectDelayMsMax, "reconnectDelayMsMax", DEFAULTS.reconnectDelayMsMax),
      pingIntervalMs: positiveNumber(options.pingIntervalMs, "pingIntervalMs", DEFAULTS.pingIntervalMs, true),
    };
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** The default deadline of calls, in ms. */
  get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  get state(): ConnectionState {
    return this.connState;
  }

  /** The hello answer of the current server (node id, protocol version, cluster URLs), if connected. */
  get info(): HelloResult | null {
    return this.link?.info ?? null;
  }

  /** The URL of the server this connection uses (or last used). */
  getServer(): string {
    return this.link?.url ?? this.servers[this.serverIndex] ?? "";
  }

  /** The URLs this connection may fail over to (given, plus discovered unless disabled). */
  getServers(): string[] {
    return [...this.servers];
  }

  isClosed(): boolean {
    return this.connState === "closed";
  }

  /** Connects to the first server that answers `hello` (trying each, with backoff, until timeoutMs). */
  async start(): Promise<void> {
    const deadline = Date.now() + this.options.timeoutMs;
    let lastError: unknown = null;
    let unauthorized: CairnError | null = null;
    for (let round = 0; ; round++) {
      let refusals = 0;
      for (let i = 0; i < this.servers.length; i++) {
        const index = (this.serverIndex + i) % this.servers.length;
        try {
          const link = await this.handshake(this.servers[index]!, deadline);
          this.install(link, index, "connect");
          if (this.options.pingIntervalMs > 0) {
            this.pingTimer = setInterval(() => this.checkLiveness(), Math.max(1, this.options.pingIntervalMs / 2));
          }
          return;
        } catch (error) {
          lastError = error;
          if (error instanceof CairnError && error.code === "UNAUTHORIZED") {
            unauthorized = error;
            refusals++;
          }
        }
        if (Date.now() >= deadline || this.isClosed()) break;
      }
      // Every server refused the credentials: retrying cannot help.
      if (refusals === this.servers.length) break;
      if (Date.now() >= deadline || this.isClosed()) break;
      await this.sleep(Math.min(deadline - Date.now(), this.backoffMs(round, this.options.reconnectDelayMsMin, this.options.reconnectDelayMsMax)));
    }
    this.shutdown(null);
    if (unauthorized) throw unauthorized;
    throw new CairnError("UNAVAILABLE", `cannot connect to any server (${this.servers.join(", ")}): ${errorMessage(lastError)}`, {}, { cause: lastError });
  }

  /**
   * Sends one request and returns its result; see the module comment for retries and deadlines.
   * Throws CairnError: the server's error, TIMEOUT (outcome unknown), UNAVAILABLE (refused or no
   * server reachable; nothing applied) or CONNECTION_CLOSED.
   */
  async request<Op extends RequestOp>(op: Op, body: RequestBody<Op>, options: RequestOptions<Op> = {}): Promise<Results[Op]> {
    if (this.isClosed()) throw new CairnError("CONNECTION_CLOSED");
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    const deadline = Date.now() + timeoutMs;
    const frame: Record<string, unknown> = { ...body, op };
    if (WRITE_OPS.has(op)) frame["requestId"] = newRequestId();
    // Unknown: some attempt may have reached the server and been applied (no definite answer).
    let unknown = false;
    let refusal: CairnError | null = null;
    for (let attempt = 0; ; attempt++) {
      const link = await this.linkForRequest(deadline);
      if (link === null) break;
      const outcome = await this.send(link, frame, deadline, options.onOk as Pending["onOk"]);
      if (outcome.kind === "response") {
        const response = outcome.response;
        if (response.ok) return response.result as Results[Op];
        const error = errorFromWire(response.error);
        if (!isRetryableCode(error.code)) throw error;
        if (error.code === "TIMEOUT") unknown = true;
        refusal = error;
        const delay = this.backoffMs(attempt, DEFAULTS.retryDelayMsMin, DEFAULTS.retryDelayMsMax);
        if (Date.now() + delay >= deadline) break;
        await this.sleep(delay);
        continue;
      }
      if (outcome.kind === "closed") {
        throw new CairnError("CONNECTION_CLOSED", WRITE_OPS.has(op) ? "connection closed: the outcome of the operation is unknown" : undefined);
      }
      unknown = true;
      if (outcome.kind === "deadline") break;
      // "lost": the next linkForRequest waits for the reconnect.
    }
    if (this.isClosed()) throw new CairnError("CONNECTION_CLOSED");
    if (unknown) {
      const message = WRITE_OPS.has(op) ? undefined : `timeout: no response within ${timeoutMs} ms`;
      throw new CairnError("TIMEOUT", message, {}, refusal ? { cause: refusal } : undefined);
    }
    if (refusal) {
      throw new CairnError("UNAVAILABLE", `${refusal.code === "UNAVAILABLE" ? "" : "no quorum or no leader available: "}${refusal.message}`, {}, { cause: refusal });
    }
    throw new CairnError("UNAVAILABLE", `no server available within ${timeoutMs} ms (tried ${this.servers.join(", ")}); the request was not sent`);
  }

  /**
   * Sends a request on one socket only, without retries (watch.stop: a watch id means nothing on
   * another socket). Resolves with the result, or null when the socket is gone or the deadline passed.
   */
  async requestOnLink<Op extends RequestOp>(link: Link, op: Op, body: RequestBody<Op>, timeoutMs?: number): Promise<Results[Op] | null> {
    if (link.closed || this.isClosed()) return null;
    const outcome = await this.send(link, { ...body, op }, Date.now() + (timeoutMs ?? this.options.timeoutMs), undefined);
    if (outcome.kind !== "response") return null;
    if (!outcome.response.ok) throw errorFromWire(outcome.response.error);
    return outcome.response.result as Results[Op];
  }

  /** Connection state changes, as an async iterator (ends when the connection closes). Bounded: when
   *  the consumer falls behind by more than 256 events, the oldest are dropped. */
  status(): AsyncIterable<ConnectionStatus> {
    const queue: ConnectionStatus[] = [];
    let ended = this.isClosed();
    let wake: (() => void) | null = null;
    const listener = (event: ConnectionStatus | null): void => {
      if (event === null) ended = true;
      else {
        queue.push(event);
        if (queue.length > DEFAULTS.statusEventsMax) queue.shift();
      }
      wake?.();
    };
    if (!ended) this.statusListeners.add(listener);
    const listeners = this.statusListeners;
    return {
      [Symbol.asyncIterator]: () => ({
        async next(): Promise<IteratorResult<ConnectionStatus>> {
          while (queue.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
          const event = queue.shift();
          if (event !== undefined) return { value: event, done: false };
          return { value: undefined, done: true };
        },
        async return(): Promise<IteratorResult<ConnectionStatus>> {
          ended = true;
          listeners.delete(listener);
          wake?.();
          return { value: undefined, done: true };
        },
      }),
    };
  }

  /** Closes the socket and ends everything: calls in flight fail with CONNECTION_CLOSED, watches end
   *  with CONNECTION_CLOSED. Idempotent. */
  async close(): Promise<void> {
    this.shutdown(null);
    await this.closed;
  }

  // ---- internals -------------------------------------------------------------------------------

  private shutdown(error: Error | null): void {
    if (this.isClosed()) return;
    this.connState = "closed";
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    const link = this.link;
    this.link = null;
    for (const handshaking of this.handshakes) {
      for (const pending of [...handshaking.inflight.values()]) pending.settle({ kind: "closed" });
      handshaking.closed = true;
      handshaking.socket?.destroy();
    }
    if (link) {
      link.closed = true;
      link.socket?.destroy();
      for (const pending of [...link.inflight.values()]) pending.settle({ kind: "closed" });
      const sinks = [...link.watches.values()];
      link.watches.clear();
      for (const sink of sinks) sink.onClosed();
    }
    this.wake();
    for (const sleeper of [...this.sleepers]) {
      clearTimeout(sleeper.timer);
      sleeper.resolve();
    }
    this.sleepers.clear();
    this.emit({ type: "close" });
    for (const listener of [...this.statusListeners]) listener(null);
    this.statusListeners.clear();
    this.resolveClosed(error ?? undefined);
  }

  private emit(event: ConnectionStatus): void {
    for (const listener of this.statusListeners) listener(event);
  }

  /** Opens a socket to url and completes the hello handshake; throws on any failure. */
  private async handshake(url: string, deadline: number): Promise<Link> {
    const link = new Link(url);
    this.handshakes.add(link);
    try {
      return await this.handshakeOn(link, deadline);
    } finally {
      this.handshakes.delete(link);
    }
  }

  private async handshakeOn(link: Link, deadline: number): Promise<Link> {
    const url = link.url;
    const socket = await openSocket(url, Math.max(1, Math.min(this.options.timeoutMs, deadline - Date.now())), {
      onFrame: (data) => this.onFrame(link, data),
      onClose: (reason) => this.onLinkClosed(link, reason),
    });
    link.socket = socket;
    if (this.isClosed()) {
      socket.destroy();
      throw new CairnError("CONNECTION_CLOSED");
    }
    const hello = { op: "hello", version: PROTOCOL_VERSION, token: this.options.token, client: this.options.name };
    const outcome = await this.send(link, hello, Math.max(deadline, Date.now() + 1), undefined);
    if (outcome.kind !== "response" || !outcome.response.ok) {
      link.closed = true;
      socket.destroy();
      if (outcome.kind === "response" && !outcome.response.ok) throw errorFromWire(outcome.response.error);
      throw new Error(`no hello answer from ${url} (${outcome.kind})`);
    }
    link.info = outcome.response.result as HelloResult;
    return link;
  }

  private install(link: Link, index: number, type: "connect" | "reconnect"): void {
    this.link = link;
    this.serverIndex = index;
    this.connState = "connected";
    const node = link.info?.node ?? "";
    this.emit({ type, server: link.url, node });
    if (this.options.discoverServers) {
      const found: string[] = [];
      for (const server of link.info?.servers ?? []) {
        let url: string;
        try {
          url = normalizeServerUrl(String(server));
        } catch {
          continue;
        }
        if (!this.servers.includes(url)) {
          this.servers.push(url);
          found.push(url);
        }
      }
      if (found.length > 0) this.emit({ type: "serversDiscovered", servers: found });
    }
    this.wake();
  }

  private onLinkClosed(link: Link, reason: string): void {
    if (link.closed) return;
    link.closed = true;
    link.socket?.destroy();
    for (const pending of [...link.inflight.values()]) pending.settle({ kind: "lost" });
    const sinks = [...link.watches.values()];
    link.watches.clear();
    if (link === this.link && !this.isClosed()) {
      this.link = null;
      this.connState = "reconnecting";
      this.emit({ type: "disconnect", server: link.url, error: new Error(reason) });
      void this.reconnect();
    }
    for (const sink of sinks) sink.onLinkLost();
  }

  /** Reconnects, starting with the server after the lost one, until it succeeds or close(). */
  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      for (let round = 0; !this.isClosed(); round++) {
        const count = this.servers.length;
        for (let i = 1; i <= count && !this.isClosed(); i++) {
          const index = (this.serverIndex + i) % count;
          try {
            const link = await this.handshake(this.servers[index]!, Date.now() + this.options.timeoutMs);
            if (this.isClosed()) {
              link.closed = true;
              link.socket?.destroy();
              return;
            }
            this.install(link, index, "reconnect");
            return;
          } catch {
            // Try the next server.
          }
        }
        await this.sleep(this.backoffMs(round, this.options.reconnectDelayMsMin, this.options.reconnectDelayMsMax));
      }
    } finally {
      this.reconnecting = false;
    }
  }

  private onFrame(link: Link, data: Uint8Array): void {
    if (link.closed) return;
    link.lastInboundAtMs = Date.now();
    link.pingSentAtMs = 0;
    const decoded = decodeFrame(data);
    if (decoded.kind === "invalid") {
      this.onLinkClosed(link, `protocol error: ${decoded.reason}`);
      return;
    }
    if (decoded.kind === "response") {
      const response = decoded.frame;
      const pending = link.inflight.get(response.id);
      if (!pending) return; // Its caller gave up (deadline); nothing waits for it.
      if (response.ok && pending.onOk) {
        try {
          pending.onOk(response.result as never, link);
        } catch {
          // The hook belongs to the client; its failure must not break frame handling.
        }
      }
      pending.settle({ kind: "response", response });
      return;
    }
    const push = decoded.frame;
    const sink = link.watches.get(push.watchId);
    if (sink) {
      sink.onPush(push);
      return;
    }
    // A watch nobody holds (its start timed out, or it was stopped): stop it once on the server.
    if (push.push !== "watch.ended" && !link.orphanWatches.has(push.watchId) && link.orphanWatches.size < DEFAULTS.orphanWatchesMax) {
      link.orphanWatches.add(push.watchId);
      this.requestOnLink(link, "watch.stop", { watchId: push.watchId }).catch(() => undefined);
    }
  }

  /** Sends one frame on link and waits for its response, the socket's loss, the deadline or close. */
  private send(link: Link, frame: Record<string, unknown>, deadline: number, onOk: Pending["onOk"]): Promise<Outcome> {
    if (link.closed || !link.socket) return Promise.resolve({ kind: "lost" });
    if (this.isClosed()) return Promise.resolve({ kind: "closed" });
    const id = this.nextId++;
    const bytes = encodeFrame({ ...frame, id });
    return new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => pending.settle({ kind: "deadline" }), Math.max(0, deadline - Date.now()));
      const pending: Pending = {
        settle: (outcome) => {
          if (!link.inflight.delete(id)) return;
          clearTimeout(timer);
          resolve(outcome);
          this.wake();
        },
        onOk,
      };
      link.inflight.set(id, pending);
      try {
        link.socket!.send(bytes);
      } catch (error) {
        this.onLinkClosed(link, `send failed: ${errorMessage(error)}`);
      }
    });
  }

  /** The current socket once it has a free request slot; null at the deadline. */
  private async linkForRequest(deadline: number): Promise<Link | null> {
    for (;;) {
      if (this.isClosed()) throw new CairnError("CONNECTION_CLOSED");
      const link = this.link;
      if (link && !link.closed && link.inflight.size < PROTOCOL_LIMITS.inflightRequestsMax) return link;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return null;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, remaining);
        this.waiters.add(done);
      });
    }
  }

  /** Wakes every call waiting for a connection or a request slot (they re-check). */
  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Waits ms (cut short by close()). */
  sleep(ms: number): Promise<void> {
    if (this.isClosed() || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve();
        }, ms),
        resolve,
      };
      this.sleepers.add(sleeper);
    });
  }

  /** Exponential backoff with full jitter in [min/2, bound]. */
  backoffMs(attempt: number, min: number, max: number): number {
    const bound = Math.min(max, min * 2 ** Math.min(attempt, 20));
    return bound / 2 + Math.random() * (bound / 2);
  }

  /** Pings a silent socket; drops it when the ping got no answer within another interval. */
  private checkLiveness(): void {
    const link = this.link;
    if (!link || link.closed) return;
    const now = Date.now();
    const interval = this.options.pingIntervalMs;
    if (link.pingSentAtMs > 0) {
      if (now - link.pingSentAtMs >= interval) this.onLinkClosed(link, `no answer to ping within ${interval} ms`);
      return;
    }
    if (now - link.lastInboundAtMs >= interval) {
      link.pingSentAtMs = now;
      void this.send(link, { op: "ping" }, now + 2 * interval, undefined);
    }
  }
}
