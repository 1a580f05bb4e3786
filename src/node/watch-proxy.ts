/**
 * Watch proxy (issue 4: watches are served by the node the client is connected to, "proxied from a
 * replica if that node holds none"). A node without a replica of the bucket opens the watch on a
 * node that has one and relays it; the client cannot tell the difference.
 *
 * Wire: three peer RPCs (transport request/response, docs/peer-protocol.md), proxy -> replica:
 *
 *   { watchStream: "open", request }  -> { stream, revision }   a local watch on the replica, whose
 *                                                               pushes fill the stream's buffer
 *   { watchStream: "poll", stream }   -> { items, ended? }      held up to pollHoldMs until the buffer
 *                                                               has something; at most one per stream
 *   { watchStream: "close", stream }  -> { closed: true }       stops the replica's watch
 *
 * Why long polls over the existing RPC (and not pushed peer frames, nor a client connection to the
 * replica's client endpoint): the RPC already runs on the authenticated peer link, in both transports
 * (so in-process clusters and the simulator get it too), with no change to the peer frame format; a
 * client endpoint may be bound where peers cannot reach it, may require a token, and its URL is not
 * always known (startNode without clientUrls). A poll is the flow control: the replica sends a batch
 * only when the proxy asks for the next one, and buffers at most streamBufferBytesMax meanwhile (the
 * same bound as a client socket's; beyond it the replica's watch ends with WATCH_OVERFLOW). A proxy
 * that vanishes stops polling and its stream is dropped after streamLeaseMs.
 *
 * Order, gaps and duplicates (same rules as the client's own resume, docs/protocol.md "Watch
 * resume"): the proxy keeps lastRevision, the highest revision it handed to its client (also moved by
 * initialized and skipped), and drops anything at or below it. When the replica's link breaks, a poll
 * times out, the stream is unknown (lease expired) or the replica ends the watch with a retryable
 * code, the proxy re-opens on another replica with resumeFromRevision = lastRevision + 1 (after
 * initialization; before it, as the client would: include "last" starts over, "history" or an explicit
 * resume continues). Records the replica can no longer replay arrive as watch.skipped, as for a local
 * resume. The client sees one watch throughout: one watch.initialized, entries in revision order.
 */
import { CairnError, type ErrorCode } from "../shared/errors.ts";
import type { WireEntry, WireError } from "../shared/protocol.ts";
import type { Logger } from "./logger.ts";
import { fnv1a } from "./meta.ts";
import type { PeerTransport } from "./transport.ts";
import { Watcher, type WatchSink, type WatchSpec } from "./watch.ts";

/** The watch.start request as a node handles it (no connection-scoped id). */
export interface WatchStartRequest {
  readonly op: "watch.start";
  readonly bucket: string;
  readonly filters: string[];
  readonly include: "last" | "history" | "updates";
  readonly ignoreDeletes: boolean;
  readonly metaOnly: boolean;
  readonly resumeFromRevision?: number;
}

export const WATCH_PROXY_LIMITS = {
  /**
   * Proxied watches one node serves at once. Each keeps one poll in flight at a replica, and a node
   * serves at most requestsInflightMax (default 1024) requests of one peer at once: half of that is
   * left to forwarded client requests.
   */
  proxiedWatchesMax: 512,
  /** Streams one node serves to proxies at once. */
  streamsMax: 4096,
  /** How long a replica holds a poll that finds nothing to send. */
  pollHoldMs: 5000,
  /** A proxy gives up on a poll after pollHoldMs + this (a stopped replica) and re-opens elsewhere. */
  pollTimeoutMarginMs: 5000,
  /** A stream not polled for this long is dropped: its proxy is gone or cut off. */
  streamLeaseMs: 15_000,
  /** Bytes of items in one poll answer (at least one item); entries are split into items of at most this. */
  pollBytesMax: 1024 * 1024,
  /** Time one open attempt may take. */
  openTimeoutMs: 5000,
  /** Rounds over the replicas a re-open tries (within the node's requestTimeoutMs) before giving up. */
  reopenRoundsMax: 20,
  reopenDelayMsMin: 50,
  reopenDelayMsMax: 1000,
  closeTimeoutMs: 2000,
} as const;

/** Errors after which a proxy re-opens the watch elsewhere rather than ending it. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set(["UNAVAILABLE", "TIMEOUT", "NOT_LEADER", "PROPOSAL_DROPPED"]);

/** What a stream carries, in the order the replica's watcher produced it. */
type StreamItem =
  | { readonly t: "entries"; readonly entries: WireEntry[] }
  | { readonly t: "initialized"; readonly revision: number }
  | { readonly t: "skipped"; readonly from: number; readonly to: number };

interface PollAnswer {
  items: StreamItem[];
  ended?: WireError;
}

type StreamBody =
  | { watchStream: "open"; request: WatchStartRequest }
  | { watchStream: "poll"; stream: number }
  | { watchStream: "close"; stream: number };

/** Estimated bytes of an entry on the wire (its value, its key, and the fixed fields). */
function entryBytes(entry: WireEntry): number {
  return entry.value.byteLength + entry.key.length + 64;
}

function itemBytes(item: StreamItem): number {
  if (item.t !== "entries") return 16;
  let bytes = 0;
  for (const e of item.entries) bytes += entryBytes(e);
  return bytes;
}

export interface WatchProxyOptions {
  readonly nodeId: string;
  readonly transport: PeerTransport;
  readonly logger: Logger;
  /** Time a proxy keeps trying to re-open on some replica before ending the watch (UNAVAILABLE, the client resumes). */
  readonly requestTimeoutMs: number;
  /** Bytes a stream buffers for its proxy (the node's watchBufferBytesMax). */
  readonly streamBufferBytesMax: number;
  /** The bucket's replicas now, and whether this node holds one; null when the bucket is gone. */
  replicasOf(bucket: string): { placement: readonly string[]; local: boolean } | null;
  /** Starts a watch on this node's own replica (UNAVAILABLE when it holds none; never proxies). */
  openLocal(request: WatchStartRequest, sink: WatchSink, beforeStart: (watchId: number, revision: number) => void): Promise<Watcher>;
}

// ---- replica side ------------------------------------------------------------------------------------

/** One watch served to a proxy: the replica's watcher pushes into it, the proxy's polls drain it. */
class Stream implements WatchSink {
  /** Items not yet polled are items[head..]. Their bytes: `bytes`. */
  private items: StreamItem[] = [];
  private head = 0;
  private bytes = 0;
  /** Set once the replica's watcher ended (or the stream was released): sent after the last item. */
  private end: WireError | null = null;
  watcher: Watcher | null = null;
  private waiter: { resolve: (answer: PollAnswer) => void; timer: NodeJS.Timeout } | null = null;
  private leaseTimer: NodeJS.Timeout | null = null;
  private wakeScheduled = false;

  constructor(
    readonly id: number,
    readonly peer: string,
    readonly bucket: string,
    private readonly bufferBytesMax: number,
    /** Forgets the stream: its end was taken by the proxy, or its lease ran out. */
    private readonly drop: (stream: Stream) => void,
  ) {
    this.renewLease();
  }

  // WatchSink (from the replica's watcher)
  entries(_watchId: number, entries: WireEntry[]): boolean {
    // As a client socket: refused once over the bound (the watcher then ends with WATCH_OVERFLOW).
    if (this.end !== null || this.bytes > this.bufferBytesMax) return false;
    let chunk: WireEntry[] = [];
    let chunkBytes = 0;
    for (const entry of entries) {
      const size = entryBytes(entry);
      if (chunk.length > 0 && chunkBytes + size > WATCH_PROXY_LIMITS.pollBytesMax) {
        this.push({ t: "entries", entries: chunk });
        chunk = [];
        chunkBytes = 0;
      }
      chunk.push(entry);
      chunkBytes += size;
    }
    if (chunk.length > 0) this.push({ t: "entries", entries: chunk });
    return true;
  }
  initialized(_watchId: number, revision: number): void {
    this.push({ t: "initialized", revision });
  }
  skipped(_watchId: number, fromRevision: number, toRevision: number): void {
    this.push({ t: "skipped", from: fromRevision, to: toRevision });
  }
  ended(_watchId: number, error: WireError): void {
    this.setEnd(error);
  }

  private setEnd(error: WireError): void {
    if (this.end !== null) return;
    this.end = { code: error.code, message: error.message, ...(error.data !== undefined ? { data: error.data } : {}) };
    this.wake();
  }

  private push(item: StreamItem): void {
    this.items.push(item);
    this.bytes += itemBytes(item);
    this.wake();
  }

  get hasEnded(): boolean {
    return this.end !== null;
  }

  private hasAnswer(): boolean {
    return this.head < this.items.length || this.end !== null;
  }

  /** Items up to pollBytesMax (at least one); `ended` once everything before it was taken. */
  private take(): PollAnswer {
    const out: StreamItem[] = [];
    let bytes = 0;
    while (this.head < this.items.length) {
      const item = this.items[this.head]!;
      const size = itemBytes(item);
      if (out.length > 0 && bytes + size > WATCH_PROXY_LIMITS.pollBytesMax) break;
      out.push(item);
      bytes += size;
      this.head++;
    }
    this.bytes -= bytes;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    const answer: PollAnswer = { items: out };
    if (this.head === this.items.length && this.end !== null) answer.ended = this.end;
    return answer;
  }

  /** Answers now if there is something, else holds the poll up to pollHoldMs. */
  poll(): Promise<PollAnswer> {
    this.clearLease();
    if (this.waiter !== null) this.answerWaiter(); // a newer poll replaces a held one (empty answer)
    if (this.hasAnswer()) return Promise.resolve(this.answered(this.take()));
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.answerWaiter(), WATCH_PROXY_LIMITS.pollHoldMs);
      this.waiter = { resolve, timer };
    });
  }

  /** After an answer: the stream goes once the proxy has its end, else the lease runs again. */
  private answered(answer: PollAnswer): PollAnswer {
    if (answer.ended !== undefined) this.drop(this);
    else this.renewLease();
    return answer;
  }

  /** Answers a held poll once the current run of pushes is over (one applied batch, one answer). */
  private wake(): void {
    if (this.waiter === null || this.wakeScheduled) return;
    this.wakeScheduled = true;
    queueMicrotask(() => {
      this.wakeScheduled = false;
      this.answerWaiter();
    });
  }

  private answerWaiter(): void {
    const waiter = this.waiter;
    if (waiter === null) return;
    this.waiter = null;
    clearTimeout(waiter.timer);
    waiter.resolve(this.answered(this.take()));
  }

  private renewLease(): void {
    this.clearLease();
    this.leaseTimer = setTimeout(() => {
      this.leaseTimer = null;
      this.drop(this);
    }, WATCH_PROXY_LIMITS.streamLeaseMs);
    this.leaseTimer.unref?.();
  }

  private clearLease(): void {
    if (this.leaseTimer !== null) clearTimeout(this.leaseTimer);
    this.leaseTimer = null;
  }

  /** Stops the replica's watcher and answers a held poll with `error` (the stream is going away). */
  release(error: WireError): void {
    this.clearLease();
    this.watcher?.stop();
    this.setEnd(error);
    this.answerWaiter();
    this.clearLease();
  }
}

// ---- proxy side ----------------------------------------------------------------------------------

/**
 * A watch of this node's client served from a replica on another node. To the session it is a
 * Watcher (stop/end/ended as for a local one); its entries come from polls instead of apply.
 */
export class ProxyWatcher extends Watcher {
  /** Where the watch is open now: the replica and its stream id. */
  target: { peer: string; stream: number } | null = null;
  /** How many times the watch moved to another replica (or re-opened on the same one). */
  reopens = 0;
  private initializedSent = false;

  constructor(
    id: number,
    spec: WatchSpec,
    sink: WatchSink,
    private readonly proxy: WatchProxy,
    private readonly request: WatchStartRequest,
  ) {
    super(id, spec, sink, (w) => proxy.released(w as ProxyWatcher));
  }

  /** What to ask a replica for: the original request, or a resume after what was delivered. */
  startRequest(): WatchStartRequest {
    const { resumeFromRevision: given, ...base } = this.request;
    const delivered = this.lastRevision > 0 || this.initializedSent;
    if (this.initializedSent || given !== undefined || (this.request.include === "history" && delivered)) {
      return { ...base, resumeFromRevision: Math.max(given ?? 0, this.lastRevision + 1) };
    }
    return base;
  }

  /** Called once the first open succeeded (after the session answered watch.start). */
  begin(revision: number): void {
    // "updates" has no initial part: initialized at once, exactly as a local watch does it.
    if (this.request.include === "updates" && this.request.resumeFromRevision === undefined) this.markInitialized(revision);
    void this.run();
  }

  private markInitialized(revision: number): void {
    if (revision > this.lastRevision) this.lastRevision = revision;
    if (this.initializedSent) return;
    this.initializedSent = true;
    this.sink.initialized(this.id, revision);
  }

  private async run(): Promise<void> {
    while (!this.ended && this.target !== null) {
      const target = this.target;
      let answer: PollAnswer;
      try {
        answer = parsePollAnswer(
          await this.proxy.transport.request(
            target.peer,
            { watchStream: "poll", stream: target.stream },
            WATCH_PROXY_LIMITS.pollHoldMs + WATCH_PROXY_LIMITS.pollTimeoutMarginMs,
          ),
        );
      } catch (error) {
        if (this.ended) return;
        if (error instanceof CairnError && error.code === "INTERNAL") {
          this.end({ code: "INTERNAL", message: `watch proxy: ${error.message}` });
          return;
        }
        if (!(await this.reopen(target.peer, target, String(error)))) return;
        continue;
      }
      if (this.ended) return;
      for (const item of answer.items) {
        this.consume(item);
        if (this.ended) return;
      }
      const ended = answer.ended;
      if (ended === undefined) continue;
      this.target = null; // the replica dropped the stream with its end
      if (RETRYABLE.has(ended.code)) {
        if (!(await this.reopen(target.peer, null, `${ended.code}: ${ended.message}`))) return;
      } else if (ended.code === "WATCH_OVERFLOW") {
        // Everything before the end was delivered: resume where the replica stopped (at least after what we sent).
        const remote = ended.data?.resumeFromRevision ?? 0;
        const resumeFromRevision = Math.max(remote, this.lastRevision + 1);
        this.end({ code: "WATCH_OVERFLOW", message: ended.message, data: { resumeFromRevision } });
      } else {
        this.end(ended);
      }
    }
  }

  private consume(item: StreamItem): void {
    switch (item.t) {
      case "entries": {
        const batch: WireEntry[] = [];
        for (const entry of item.entries) {
          if (entry.revision <= this.lastRevision) continue;
          // After initialization everything is live, also a resumed stream's catch-up part.
          if (this.initializedSent) batch.push({ ...entry, isUpdate: true, delta: 0 });
          else batch.push(entry);
        }
        if (batch.length === 0) return;
        if (!this.sink.entries(this.id, batch)) {
          this.end({ code: "WATCH_OVERFLOW", message: "watcher could not keep up", data: { resumeFromRevision: batch[0]!.revision } });
          return;
        }
        this.lastRevision = batch[batch.length - 1]!.revision;
        return;
      }
      case "initialized":
        this.markInitialized(item.revision);
        return;
      case "skipped":
        if (item.to <= this.lastRevision) return;
        this.sink.skipped(this.id, Math.max(item.from, this.lastRevision + 1), item.to);
        this.lastRevision = item.to;
        return;
    }
  }

  /**
   * Moves the watch to a replica (another one first) from where it stands. Bounded by
   * reopenRoundsMax rounds and the node's request timeout; on giving up, ends the watch with
   * UNAVAILABLE, which the client answers by resuming the watch itself. Returns false when ended.
   */
  private async reopen(failed: string, stale: { peer: string; stream: number } | null, reason: string): Promise<boolean> {
    if (stale !== null) this.proxy.closeRemote(stale);
    this.target = null;
    this.reopens++;
    this.proxy.options.logger.debug("watch proxy: re-opening", { bucket: this.spec.bucket, watchId: this.id, from: failed, reason });
    const deadline = Date.now() + this.proxy.options.requestTimeoutMs;
    let lastError = reason;
    for (let round = 0; round < WATCH_PROXY_LIMITS.reopenRoundsMax && !this.ended; round++) {
      const where = this.proxy.options.replicasOf(this.spec.bucket);
      if (where === null) {
        this.end({ code: "BUCKET_NOT_FOUND", message: "bucket not found" });
        return false;
      }
      if (where.local) {
        // This node holds a replica now: the client re-watches here, served locally.
        this.end({ code: "UNAVAILABLE", message: `node ${this.proxy.options.nodeId} now holds a replica of bucket ${this.spec.bucket}; resume the watch` });
        return false;
      }
      const order = this.proxy.order(where.placement, this.id, failed);
      for (const peer of order) {
        if (this.ended) return false;
        try {
          const opened = await this.proxy.openOn(peer, this.startRequest());
          if (this.ended) {
            this.proxy.closeRemote({ peer, stream: opened.stream });
            return false;
          }
          this.target = { peer, stream: opened.stream };
          return true;
        } catch (error) {
          if (error instanceof CairnError && !RETRYABLE.has(error.code)) {
            this.end({ code: error.code, message: error.message, ...(Object.keys(error.data).length > 0 ? { data: error.data } : {}) });
            return false;
          }
          lastError = String(error);
        }
      }
      const delay = Math.min(WATCH_PROXY_LIMITS.reopenDelayMsMin * 2 ** round, WATCH_PROXY_LIMITS.reopenDelayMsMax);
      if (Date.now() + delay >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    if (!this.ended) {
      this.end({ code: "UNAVAILABLE", message: `no replica of bucket ${this.spec.bucket} reachable from node ${this.proxy.options.nodeId} (${lastError}); resume the watch` });
    }
    return false;
  }
}

function parsePollAnswer(value: unknown): PollAnswer {
  const bad = (what: string) => new CairnError("INTERNAL", `malformed watch poll answer: ${what}`);
  if (typeof value !== "object" || value === null || !Array.isArray((value as PollAnswer).items)) throw bad("no items");
  const answer = value as PollAnswer;
  for (const item of answer.items) {
    if (typeof item !== "object" || item === null) throw bad("item");
    if (item.t === "entries") {
      if (!Array.isArray(item.entries) || item.entries.some((e) => typeof e?.revision !== "number")) throw bad("entries");
    } else if (item.t === "initialized") {
      if (typeof item.revision !== "number") throw bad("initialized");
    } else if (item.t === "skipped") {
      if (typeof item.from !== "number" || typeof item.to !== "number") throw bad("skipped");
    } else throw bad("item type");
  }
  if (answer.ended !== undefined && (typeof answer.ended !== "object" || answer.ended === null || typeof answer.ended.code !== "string")) throw bad("ended");
  return answer;
}

function checkStartRequest(value: unknown): WatchStartRequest {
  const r = value as Partial<WatchStartRequest> | null;
  const ok =
    typeof r === "object" &&
    r !== null &&
    r.op === "watch.start" &&
    typeof r.bucket === "string" &&
    Array.isArray(r.filters) &&
    typeof r.include === "string" &&
    typeof r.ignoreDeletes === "boolean" &&
    typeof r.metaOnly === "boolean" &&
    (r.resumeFromRevision === undefined || typeof r.resumeFromRevision === "number");
  if (!ok) throw new CairnError("INVALID_REQUEST", "malformed watch stream open");
  return r as WatchStartRequest;
}

// ---- both sides ----------------------------------------------------------------------------------

export class WatchProxy {
  /** Streams this node serves to proxies, by `${peer}/${id}`. */
  private readonly streams = new Map<string, Stream>();
  /** Watches this node proxies for its clients (opening ones included). */
  private readonly proxies = new Set<ProxyWatcher>();
  private streamSeq = 0;
  private closed = false;

  constructor(readonly options: WatchProxyOptions) {}

  get transport(): PeerTransport {
    return this.options.transport;
  }

  static isPeerBody(body: unknown): body is StreamBody {
    return typeof body === "object" && body !== null && typeof (body as { watchStream?: unknown }).watchStream === "string";
  }

  /** Counts and placements, for status and tests. */
  stats(): {
    proxies: { watchId: number; bucket: string; peer: string | null; reopens: number }[];
    streams: { peer: string; bucket: string; ended: boolean }[];
  } {
    return {
      proxies: [...this.proxies].map((w) => ({ watchId: w.id, bucket: w.spec.bucket, peer: w.target?.peer ?? null, reopens: w.reopens })),
      streams: [...this.streams.values()].map((s) => ({ peer: s.peer, bucket: s.bucket, ended: s.hasEnded })),
    };
  }

  // ---- proxy side

  /**
   * Starts a proxied watch: opens it on a replica (each replica once, in an order that spreads
   * proxies over them), then answers the client (`beforeStart`) and relays. Throws what the replica
   * threw when it is final (BUCKET_NOT_FOUND, INVALID_OPTION, ...), UNAVAILABLE when no replica could
   * be reached (the client retries).
   */
  async start(
    watchId: number,
    request: WatchStartRequest,
    spec: WatchSpec,
    placement: readonly string[],
    sink: WatchSink,
    beforeStart: (watchId: number, revision: number) => void,
  ): Promise<Watcher> {
    if (this.closed) throw new CairnError("UNAVAILABLE", "node shutting down");
    if (this.proxies.size >= WATCH_PROXY_LIMITS.proxiedWatchesMax) {
      throw new CairnError(
        "UNAVAILABLE",
        `node ${this.options.nodeId} proxies ${WATCH_PROXY_LIMITS.proxiedWatchesMax} watches already; watch bucket ${spec.bucket} from one of its replicas: ${placement.join(", ")}`,
      );
    }
    const watcher = new ProxyWatcher(watchId, spec, sink, this, request);
    this.proxies.add(watcher);
    let lastError: unknown = null;
    try {
      for (const peer of this.order(placement, watchId, null)) {
        try {
          const opened = await this.openOn(peer, watcher.startRequest());
          if (this.closed) {
            this.closeRemote({ peer, stream: opened.stream });
            throw new CairnError("UNAVAILABLE", "node shutting down");
          }
          watcher.target = { peer, stream: opened.stream };
          beforeStart(watchId, opened.revision);
          watcher.begin(opened.revision);
          return watcher;
        } catch (error) {
          if (!(error instanceof CairnError) || !RETRYABLE.has(error.code)) throw error;
          lastError = error;
        }
      }
      throw new CairnError(
        "UNAVAILABLE",
        `no replica of bucket ${spec.bucket} reachable from node ${this.options.nodeId} (${placement.join(", ")})`,
        {},
        { cause: lastError },
      );
    } catch (error) {
      this.proxies.delete(watcher);
      throw error;
    }
  }

  /** Replicas to try: all of them, from one picked by (node, watch), the one that just failed last. */
  order(placement: readonly string[], watchId: number, failed: string | null): string[] {
    const peers = placement.filter((p) => p !== this.options.nodeId);
    if (peers.length === 0) return [];
    const start = (fnv1a(this.options.nodeId) + watchId) % peers.length;
    const rotated = [...peers.slice(start), ...peers.slice(0, start)];
    if (failed === null || !rotated.includes(failed)) return rotated;
    return [...rotated.filter((p) => p !== failed), failed];
  }

  async openOn(peer: string, request: WatchStartRequest): Promise<{ stream: number; revision: number }> {
    const result = (await this.options.transport.request(peer, { watchStream: "open", request }, WATCH_PROXY_LIMITS.openTimeoutMs)) as {
      stream?: unknown;
      revision?: unknown;
    } | null;
    if (typeof result?.stream !== "number" || typeof result.revision !== "number") throw new CairnError("INTERNAL", "malformed watch stream open answer");
    return { stream: result.stream, revision: result.revision };
  }

  /** Releases a stream on its replica (best effort: a lost close is covered by the stream's lease). */
  closeRemote(target: { peer: string; stream: number }): void {
    this.options.transport
      .request(target.peer, { watchStream: "close", stream: target.stream }, WATCH_PROXY_LIMITS.closeTimeoutMs)
      .catch(() => undefined);
  }

  /** A proxied watch ended or was stopped: release its stream. */
  released(watcher: ProxyWatcher): void {
    this.proxies.delete(watcher);
    const target = watcher.target;
    watcher.target = null;
    if (target !== null) this.closeRemote(target);
  }

  // ---- replica side

  async onPeerRequest(from: string, body: StreamBody): Promise<unknown> {
    if (this.closed) throw new CairnError("UNAVAILABLE", "node shutting down");
    switch (body.watchStream) {
      case "open":
        return this.openStream(from, checkStartRequest(body.request));
      case "poll": {
        const stream = this.streams.get(`${from}/${String(body.stream)}`);
        if (stream === undefined) throw new CairnError("UNAVAILABLE", `watch stream ${String(body.stream)} is not open on node ${this.options.nodeId}`);
        return stream.poll();
      }
      case "close": {
        const stream = this.streams.get(`${from}/${String(body.stream)}`);
        if (stream !== undefined) {
          this.streams.delete(`${from}/${stream.id}`);
          stream.release({ code: "UNAVAILABLE", message: "watch stream closed" });
        }
        return { closed: true };
      }
      default:
        throw new CairnError("INVALID_REQUEST", "unknown watch stream request");
    }
  }

  private async openStream(from: string, request: WatchStartRequest): Promise<{ stream: number; revision: number }> {
    if (this.streams.size >= WATCH_PROXY_LIMITS.streamsMax) {
      throw new CairnError("UNAVAILABLE", `node ${this.options.nodeId} serves ${WATCH_PROXY_LIMITS.streamsMax} proxied watches already`);
    }
    const id = ++this.streamSeq;
    const key = `${from}/${id}`;
    const stream = new Stream(id, from, request.bucket, this.options.streamBufferBytesMax, (s) => {
      if (this.streams.get(key) === s) this.streams.delete(key);
      s.release({ code: "UNAVAILABLE", message: "watch stream expired" });
    });
    this.streams.set(key, stream);
    let revision = 0;
    try {
      stream.watcher = await this.options.openLocal(request, stream, (_watchId, startRevision) => {
        revision = startRevision;
      });
    } catch (error) {
      this.streams.delete(key);
      stream.release({ code: "UNAVAILABLE", message: "watch stream failed to open" });
      throw error;
    }
    if (this.closed || this.streams.get(key) !== stream) {
      stream.release({ code: "UNAVAILABLE", message: "node shutting down" });
      throw new CairnError("UNAVAILABLE", "node shutting down");
    }
    return { stream: id, revision };
  }

  /** Node shutdown: proxied watches end (their clients resume elsewhere), served streams are released. */
  close(): void {
    this.closed = true;
    for (const w of [...this.proxies]) w.end({ code: "UNAVAILABLE", message: "node shutting down" });
    for (const s of this.streams.values()) s.release({ code: "UNAVAILABLE", message: "node shutting down" });
    this.streams.clear();
  }
}
