/**
 * A fake cairn server for client tests: a real `ws` WebSocket server on loopback speaking the protocol of
 * src/shared/protocol.ts, backed by a tiny in-memory KV model (FakeKv) that several FakeServers can
 * share (a "cluster" whose nodes can die independently). Tests script faults through `handler`, which
 * sees every request first and may answer, answer with an error, or drop it ("never answered").
 *
 * Not a model of the real semantics beyond what client tests need: no TTLs, no history limits, no
 * durability. Every socket and listener is closed by kill(); tests call it in afterEach.
 */
import { WebSocketServer, type WebSocket } from "ws";
import { Packr } from "msgpackr";
import { PROTOCOL_PACKR_OPTIONS, PROTOCOL_VERSION, type Push, type WireEntry, type WireError, type WireBucketStatus } from "../../src/shared/protocol.ts";
import { matchAnyFilter } from "../../src/shared/names.ts";

const packr = new Packr({ ...PROTOCOL_PACKR_OPTIONS });

export type FakeRequest = { id: number; op: string } & Record<string, unknown>;

/** What a handler decides: an answer, an error, "drop" (never answer) or undefined (default model). */
export type HandlerResult = { result: unknown } | { error: WireError } | "drop" | undefined;
export type Handler = (request: FakeRequest, conn: FakeConn) => HandlerResult | Promise<HandlerResult>;

interface FakeRecord {
  key: string;
  value: Uint8Array;
  revision: number;
  created: number;
  operation: "PUT" | "DEL" | "PURGE";
}

interface FakeBucket {
  name: string;
  revision: number;
  records: FakeRecord[];
  history: number;
}

interface FakeWatch {
  conn: FakeConn;
  watchId: number;
  bucket: string;
  filters: string[];
  ignoreDeletes: boolean;
  metaOnly: boolean;
}

/** The shared state of a fake cluster: buckets, records, request-id dedupe, live watches. */
export class FakeKv {
  readonly buckets = new Map<string, FakeBucket>();
  /** requestId → the result first returned (a retried write is applied once). */
  readonly applied = new Map<string, unknown>();
  readonly watches = new Set<FakeWatch>();
  /** Counts applications (not dedupe hits) per op, for "applied once" assertions. */
  readonly applyCount = new Map<string, number>();
  now = 1_700_000_000_000;

  bucket(name: string): FakeBucket {
    let bucket = this.buckets.get(name);
    if (!bucket) {
      bucket = { name, revision: 0, records: [], history: 1 };
      this.buckets.set(name, bucket);
    }
    return bucket;
  }

  /** Appends a record (as a committed write would) and pushes it to matching live watches. */
  write(bucketName: string, key: string, value: string | Uint8Array, operation: FakeRecord["operation"] = "PUT"): number {
    const bucket = this.bucket(bucketName);
    const record: FakeRecord = {
      key,
      value: typeof value === "string" ? new TextEncoder().encode(value) : value,
      revision: ++bucket.revision,
      created: this.now++,
      operation,
    };
    if (operation === "PURGE") bucket.records = bucket.records.filter((r) => r.key !== key);
    bucket.records.push(record);
    for (const watch of this.watches) {
      if (watch.bucket !== bucketName || !this.watchMatches(watch, record)) continue;
      watch.conn.push({ push: "watch.entries", watchId: watch.watchId, entries: [toWire(bucketName, record, 0, true, watch.metaOnly)] });
    }
    return record.revision;
  }

  /** Removes records as limits would (no events): for watch.skipped tests. */
  trim(bucketName: string, predicate: (record: FakeRecord) => boolean): void {
    const bucket = this.bucket(bucketName);
    bucket.records = bucket.records.filter((r) => !predicate(r));
  }

  latest(bucketName: string, key: string): FakeRecord | undefined {
    const records = this.bucket(bucketName).records;
    for (let i = records.length - 1; i >= 0; i--) if (records[i]!.key === key) return records[i];
    return undefined;
  }

  watchMatches(watch: FakeWatch, record: FakeRecord): boolean {
    if (watch.ignoreDeletes && record.operation !== "PUT") return false;
    return matchAnyFilter(watch.filters, record.key);
  }

  status(name: string): WireBucketStatus {
    const bucket = this.bucket(name);
    return {
      bucket: name,
      values: bucket.records.length,
      bytes: bucket.records.reduce((sum, r) => sum + r.key.length + r.value.length, 0),
      revision: bucket.revision,
      history: bucket.history,
      ttlMs: 0,
      maxBytes: -1,
      maxValueSize: -1,
      replicas: 1,
      storage: "file",
      markerTtlMs: 0,
      description: "",
      metadata: {},
      compression: false,
      leader: "n1",
      replicasInfo: [{ node: "n1", current: true, lag: 0, leader: true }],
    };
  }
}

export function toWire(bucket: string, record: FakeRecord, delta: number, isUpdate: boolean, metaOnly = false): WireEntry {
  return {
    bucket,
    key: record.key,
    value: metaOnly ? new Uint8Array(0) : record.value,
    length: record.value.length,
    revision: record.revision,
    created: record.created,
    operation: record.operation,
    delta,
    isUpdate,
  };
}

/** One client socket on a FakeServer. */
export class FakeConn {
  private nextWatchId = 1;
  readonly watchIds = new Set<number>();
  constructor(
    readonly socket: WebSocket,
    readonly server: FakeServer,
  ) {}

  send(frame: object): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(packr.pack(frame));
  }

  push(frame: Push): void {
    this.send(frame);
  }

  newWatchId(): number {
    return this.nextWatchId++;
  }

  terminate(): void {
    this.socket.terminate();
  }
}

export interface FakeServerOptions {
  kv?: FakeKv;
  node?: string;
  handler?: Handler;
  /** URLs returned in hello (discovery). */
  servers?: string[];
  port?: number;
}

export class FakeServer {
  readonly requests: FakeRequest[] = [];
  readonly conns = new Set<FakeConn>();
  readonly kv: FakeKv;
  readonly node: string;
  handler: Handler | undefined;
  private waiters: { predicate: (request: FakeRequest) => boolean; resolve: (request: FakeRequest) => void }[] = [];
  helloServers: string[];
  /** When true, frames are read and recorded but nothing is answered (a stopped process). */
  paused = false;
  /** Cluster membership as cluster.removeNode / cluster.addNode change it (a 3-node config). */
  readonly members: string[];
  readonly removed: string[] = [];
  private constructor(
    private readonly wss: WebSocketServer,
    readonly port: number,
    options: FakeServerOptions,
  ) {
    this.kv = options.kv ?? new FakeKv();
    this.node = options.node ?? "n1";
    this.members = [this.node, "n2", "n3"].filter((id, i, all) => all.indexOf(id) === i).sort();
    this.handler = options.handler;
    this.helloServers = options.servers ?? [];
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  static async start(options: FakeServerOptions = {}): Promise<FakeServer> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: options.port ?? 0 });
    await new Promise<void>((resolve, reject) => {
      wss.once("listening", resolve);
      wss.once("error", reject);
    });
    const address = wss.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const server = new FakeServer(wss, port, options);
    wss.on("connection", (socket) => server.accept(socket));
    return server;
  }

  /** Requests received with this op (hello included when asked for). */
  ops(op: string): FakeRequest[] {
    return this.requests.filter((r) => r.op === op);
  }

  /** Requests other than hello and ping: what the client sent on behalf of the caller. */
  calls(): FakeRequest[] {
    return this.requests.filter((r) => r.op !== "hello" && r.op !== "ping");
  }

  /** Resolves with the first request (already received or still to come) that satisfies predicate. */
  waitForRequest(predicate: (request: FakeRequest) => boolean): Promise<FakeRequest> {
    const found = this.requests.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ predicate, resolve }));
  }

  /** Resolves once a client completed hello on this server (counting earlier ones). */
  waitForHello(count = 1): Promise<FakeRequest> {
    let seen = 0;
    return this.waitForRequest((r) => r.op === "hello" && ++seen >= count);
  }

  /** Drops every client socket (TCP reset) but keeps listening. */
  dropConnections(): void {
    for (const conn of this.conns) conn.terminate();
  }

  /** Closes every socket and the listener: a dead node. Idempotent. */
  async kill(): Promise<void> {
    for (const conn of this.conns) conn.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private accept(socket: WebSocket): void {
    const conn = new FakeConn(socket, this);
    this.conns.add(conn);
    socket.on("close", () => {
      this.conns.delete(conn);
      for (const watch of [...this.kv.watches]) if (watch.conn === conn) this.kv.watches.delete(watch);
    });
    socket.on("message", (data) => {
      const request = packr.unpack(data as Buffer) as FakeRequest;
      this.requests.push(request);
      for (const waiter of [...this.waiters]) {
        if (waiter.predicate(request)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(request);
        }
      }
      if (this.paused) return;
      void this.handle(request, conn);
    });
  }

  private async handle(request: FakeRequest, conn: FakeConn): Promise<void> {
    const decided = this.handler ? await this.handler(request, conn) : undefined;
    if (decided === "drop") return;
    if (decided !== undefined) {
      if ("result" in decided) conn.send({ id: request.id, ok: true, result: decided.result });
      else conn.send({ id: request.id, ok: false, error: decided.error });
      return;
    }
    try {
      const result = this.model(request, conn);
      if (result !== undefined) conn.send({ id: request.id, ok: true, result });
    } catch (error) {
      const wire = error as WireError;
      conn.send({ id: request.id, ok: false, error: { code: wire.code ?? "INTERNAL", message: wire.message ?? String(error), ...(wire.data ? { data: wire.data } : {}) } });
    }
  }

  /** The default behaviour: a minimal KV. Returns the result, or undefined when it answered itself. */
  private model(request: FakeRequest, conn: FakeConn): unknown {
    const kv = this.kv;
    const r = request as Record<string, any>;
    const dedupe = (compute: () => unknown): unknown => {
      const requestId = r["requestId"] as string | undefined;
      if (requestId !== undefined && kv.applied.has(requestId)) return kv.applied.get(requestId);
      const result = compute();
      kv.applyCount.set(request.op, (kv.applyCount.get(request.op) ?? 0) + 1);
      if (requestId !== undefined) kv.applied.set(requestId, result);
      return result;
    };
    switch (request.op) {
      case "hello":
        return { node: this.node, version: PROTOCOL_VERSION, servers: this.helloServers };
      case "ping":
        return { pong: true };
      case "bucket.create":
        return dedupe(() => {
          kv.bucket(r.bucket).history = r.config?.history ?? 1;
          return kv.status(r.bucket);
        });
      case "bucket.update":
        return dedupe(() => {
          if (!kv.buckets.has(r.bucket)) throw { code: "BUCKET_NOT_FOUND", message: "bucket not found" };
          kv.bucket(r.bucket).history = r.config?.history ?? kv.bucket(r.bucket).history;
          return kv.status(r.bucket);
        });
      case "bucket.status":
        if (!kv.buckets.has(r.bucket)) throw { code: "BUCKET_NOT_FOUND", message: "bucket not found" };
        return kv.status(r.bucket);
      case "bucket.list":
        return [...kv.buckets.keys()].map((name) => kv.status(name));
      case "bucket.delete":
        return dedupe(() => {
          if (!kv.buckets.delete(r.bucket)) throw { code: "BUCKET_NOT_FOUND", message: "bucket not found" };
          return { deleted: true };
        });
      case "kv.put":
        return dedupe(() => ({ revision: kv.write(r.bucket, r.key, r.value) }));
      case "kv.create":
        return dedupe(() => {
          const last = kv.latest(r.bucket, r.key);
          if (last && last.operation === "PUT") {
            throw { code: "KEY_EXISTS", message: `wrong last sequence: ${last.revision}: key exists`, data: { revision: last.revision } };
          }
          return { revision: kv.write(r.bucket, r.key, r.value) };
        });
      case "kv.update":
        return dedupe(() => {
          const actual = kv.latest(r.bucket, r.key)?.revision ?? 0;
          if (actual !== r.revision) throw { code: "WRONG_LAST_REVISION", message: `wrong last sequence: ${actual}`, data: { revision: actual } };
          return { revision: kv.write(r.bucket, r.key, r.value) };
        });
      case "kv.delete":
        return dedupe(() => ({ revision: kv.write(r.bucket, r.key, new Uint8Array(0), "DEL") }));
      case "kv.purge":
        return dedupe(() => ({ revision: kv.write(r.bucket, r.key, new Uint8Array(0), "PURGE") }));
      case "kv.get": {
        const bucket = kv.bucket(r.bucket);
        const record =
          r.revision !== undefined ? bucket.records.find((x) => x.revision === r.revision && x.key === r.key) : kv.latest(r.bucket, r.key);
        if (!record || (record.operation !== "PUT" && !r.includeDeleted && r.revision === undefined)) return { entry: null };
        return { entry: toWire(r.bucket, record, 0, false) };
      }
      case "kv.keys": {
        const bucket = kv.bucket(r.bucket);
        const latest = new Map<string, FakeRecord>();
        for (const record of bucket.records) latest.set(record.key, record);
        const live = [...latest.values()]
          .filter((x) => x.operation === "PUT" && x.revision > (r.afterRevision ?? 0) && matchAnyFilter(r.filters, x.key))
          .sort((a, b) => a.revision - b.revision);
        const page = live.slice(0, r.limit ?? 1000);
        const lastRevision = page.length > 0 ? page[page.length - 1]!.revision : bucket.revision;
        return { keys: page.map((x) => x.key), lastRevision, done: page.length === live.length };
      }
      case "kv.history": {
        const bucket = kv.bucket(r.bucket);
        const matching = bucket.records.filter((x) => x.revision > (r.afterRevision ?? 0) && matchAnyFilter(r.filters, x.key));
        const page = matching.slice(0, r.limit ?? 1000);
        const lastRevision = page.length > 0 ? page[page.length - 1]!.revision : bucket.revision;
        return {
          entries: page.map((x, i) => toWire(r.bucket, x, matching.length - i - 1, false)),
          lastRevision,
          done: page.length === matching.length,
        };
      }
      case "kv.purgeDeletes":
        return dedupe(() => ({ removed: 0 }));
      case "kv.purgeBucket":
        return dedupe(() => {
          kv.bucket(r.bucket).records = [];
          return { purged: true };
        });
      case "watch.start":
        this.startWatch(r, conn);
        return undefined;
      case "watch.stop":
        for (const watch of [...kv.watches]) if (watch.conn === conn && watch.watchId === r.watchId) kv.watches.delete(watch);
        return { stopped: true };
      case "cluster.status":
        return {
          node: this.node,
          nodes: [{ id: this.node, url: this.url, reachable: true }],
          groups: [],
          membership: { members: [...this.members], removed: [...this.removed], change: null },
        };
      case "cluster.removeNode":
      case "cluster.addNode": {
        const id = String(r.nodeId);
        if (!this.members.includes(id) && !this.removed.includes(id)) throw { code: "NODE_NOT_FOUND", message: `node ${id} is not in the cluster config` };
        const [from, to] = request.op === "cluster.removeNode" ? [this.members, this.removed] : [this.removed, this.members];
        if (from.includes(id)) {
          from.splice(from.indexOf(id), 1);
          to.push(id);
          to.sort();
        }
        return { members: [...this.members], removed: [...this.removed], change: null };
      }
      default:
        throw { code: "INVALID_REQUEST", message: `unknown op ${request.op}` };
    }
  }

  /** Answers watch.start, then sends the initial part, then `watch.initialized`, then goes live. */
  private startWatch(r: Record<string, any>, conn: FakeConn): void {
    const kv = this.kv;
    const watch: FakeWatch = {
      conn,
      watchId: conn.newWatchId(),
      bucket: r.bucket,
      filters: r.filters,
      ignoreDeletes: r.ignoreDeletes === true,
      metaOnly: r.metaOnly === true,
    };
    const bucket = kv.bucket(r.bucket);
    conn.send({ id: r.id, ok: true, result: { watchId: watch.watchId, revision: bucket.revision } });
    let initial: FakeRecord[];
    if (typeof r.resumeFromRevision === "number") {
      const first = bucket.records[0]?.revision ?? bucket.revision + 1;
      if (r.resumeFromRevision < first && r.resumeFromRevision <= bucket.revision) {
        conn.push({ push: "watch.skipped", watchId: watch.watchId, fromRevision: r.resumeFromRevision, toRevision: first - 1 });
      }
      initial = bucket.records.filter((x) => x.revision >= r.resumeFromRevision);
    } else if (r.include === "history") initial = [...bucket.records];
    else if (r.include === "updates") initial = [];
    else {
      const latest = new Map<string, FakeRecord>();
      for (const record of bucket.records) latest.set(record.key, record);
      initial = [...latest.values()].sort((a, b) => a.revision - b.revision);
    }
    initial = initial.filter((x) => kv.watchMatches(watch, x));
    if (initial.length > 0) {
      conn.push({
        push: "watch.entries",
        watchId: watch.watchId,
        entries: initial.map((x, i) => toWire(r.bucket, x, initial.length - i - 1, false, watch.metaOnly)),
      });
    }
    conn.push({ push: "watch.initialized", watchId: watch.watchId, revision: bucket.revision });
    kv.watches.add(watch);
  }
}

/** A port nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const server = await FakeServer.start();
  const port = server.port;
  await server.kill();
  return port;
}
