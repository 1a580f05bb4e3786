/**
 * The client endpoint: a WebSocket server speaking the protocol of src/shared/protocol.ts. Each
 * connection is a session: requests are answered by id (possibly out of order), watches push
 * their entries on the same socket. Malformed frames get an INVALID_REQUEST error (or, when not even
 * an id can be read, the connection is closed); nothing malformed reaches the node.
 */
import { WebSocketServer, type WebSocket } from "ws";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { CairnError } from "../shared/errors.ts";
import { PROTOCOL_LIMITS, PROTOCOL_VERSION, type Push, type Response, type WireClientStats, type WireEntry, type WireError } from "../shared/protocol.ts";
import { clientPackr } from "./codec.ts";
import type { Logger } from "./logger.ts";
import type { CairnNode, NodeRequest } from "./node.ts";
import type { Watcher, WatchSink } from "./watch.ts";

export interface ClientServerOptions {
  readonly host: string;
  readonly port: number;
  readonly node: CairnNode;
  readonly logger: Logger;
  readonly frameBytesMax: number;
  readonly watchBufferBytesMax: number;
  readonly clientRequestsMax: number;
  /** When set, a client's hello must carry this token (else UNAUTHORIZED). */
  readonly token?: string;
}

export interface ClientServer {
  readonly port: number;
  close(): Promise<void>;
}

const OPS = new Set([
  "hello", "bucket.create", "bucket.update", "bucket.delete", "bucket.status", "bucket.list",
  "kv.put", "kv.create", "kv.update", "kv.delete", "kv.purge", "kv.get", "kv.keys", "kv.history",
  "kv.purgeDeletes", "kv.purgeBucket", "watch.start", "watch.stop", "cluster.status", "ping",
  "cluster.removeNode", "cluster.addNode",
]);

export async function startClientServer(options: ClientServerOptions): Promise<ClientServer> {
  const wss = new WebSocketServer({ host: options.host, port: options.port, maxPayload: options.frameBytesMax, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    wss.once("listening", resolve);
    wss.once("error", reject);
  });
  let inProgress = 0;
  const sessions = new Set<Session>();
  wss.on("connection", (socket: WebSocket, req: IncomingMessage) => {
    const session = new Session(socket, options, () => inProgress, (d) => (inProgress += d));
    sessions.add(session);
    socket.on("close", () => {
      sessions.delete(session);
      session.closed();
    });
    options.logger.debug("client connected", { remote: req.socket.remoteAddress });
  });
  wss.on("error", (error) => options.logger.error("client server error", { error: String(error) }));
  options.node.clientStats = (): WireClientStats => {
    let watches = 0;
    let bufferedBytesMax = 0;
    for (const s of sessions) {
      watches += s.watchCount;
      bufferedBytesMax = Math.max(bufferedBytesMax, s.bufferedBytes);
    }
    return { connections: sessions.size, watches, requestsInProgress: inProgress, bufferedBytesMax };
  };
  const address = wss.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        options.node.clientStats = null;
        for (const s of sessions) s.shutdown();
        wss.close(() => resolve());
      }),
  };
}

class Session implements WatchSink {
  private helloDone = false;
  /** The TCP socket is corked until the next tick (see cork()). */
  private corked = false;
  private readonly watchers = new Map<number, Watcher>();

  constructor(
    private readonly socket: WebSocket,
    private readonly options: ClientServerOptions,
    private readonly inProgress: () => number,
    private readonly addInProgress: (delta: number) => void,
  ) {
    socket.binaryType = "nodebuffer";
    socket.on("message", (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    socket.on("error", () => socket.terminate());
  }

  get watchCount(): number {
    return this.watchers.size;
  }

  get bufferedBytes(): number {
    return this.socket.bufferedAmount;
  }

  private send(frame: Response | Push): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.cork();
    this.socket.send(clientPackr.pack(frame));
  }

  /**
   * Keeps the TCP socket corked until the current run of callbacks ends (next tick), so the responses
   * that one applied batch settles leave in one write instead of one syscall each (a large part of the
   * leader's CPU under load). Frames stay separate WebSocket messages; only the syscalls are merged.
   */
  private cork(): void {
    if (this.corked) return;
    const raw = (this.socket as unknown as { _socket?: Socket })._socket;
    if (raw === undefined) return;
    this.corked = true;
    raw.cork();
    process.nextTick(() => {
      this.corked = false;
      raw.uncork();
    });
  }

  private fail(id: number, error: unknown): void {
    const wire: WireError =
      error instanceof CairnError
        ? { code: error.code, message: error.message, data: error.data }
        : { code: "INTERNAL", message: "internal error" };
    if (!(error instanceof CairnError)) this.options.logger.error("request failed", { error: String(error) });
    this.send({ id, ok: false, error: wire });
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    let request: { id?: unknown; op?: unknown } & Record<string, unknown>;
    try {
      if (!isBinary) throw new Error("text frame");
      request = clientPackr.unpack(data);
    } catch {
      this.socket.close(1007, "malformed frame");
      return;
    }
    if (!request || typeof request !== "object" || typeof request.id !== "number" || !Number.isSafeInteger(request.id)) {
      this.socket.close(1007, "malformed frame: no request id");
      return;
    }
    const id = request.id;
    if (typeof request.op !== "string" || !OPS.has(request.op)) {
      return this.fail(id, new CairnError("INVALID_REQUEST", `unknown op ${JSON.stringify(request.op)}`));
    }
    if (!this.helloDone && request.op !== "hello") {
      return this.fail(id, new CairnError("UNAUTHORIZED", "the first request must be hello"));
    }
    if (this.inProgress() >= this.options.clientRequestsMax) {
      return this.fail(id, new CairnError("UNAVAILABLE", "node overloaded: too many requests in progress"));
    }
    const { id: _id, ...rest } = request;
    this.addInProgress(1);
    this.dispatch(id, rest as unknown as NodeRequest)
      .catch((error) => this.fail(id, error))
      .finally(() => this.addInProgress(-1));
  }

  private async dispatch(id: number, request: NodeRequest): Promise<void> {
    const node = this.options.node;
    switch (request.op) {
      case "hello": {
        if (this.options.token !== undefined && request.token !== this.options.token) {
          throw new CairnError("UNAUTHORIZED", "unauthorized: bad or missing token");
        }
        if (request.version !== PROTOCOL_VERSION) throw new CairnError("INVALID_REQUEST", `unsupported protocol version ${String(request.version)}`);
        this.helloDone = true;
        this.send({ id, ok: true, result: await node.handle(request) });
        return;
      }
      case "watch.start": {
        if (this.watchers.size >= PROTOCOL_LIMITS.watchesPerConnectionMax) {
          throw new CairnError("UNAVAILABLE", "too many watches on this connection");
        }
        if (!Array.isArray(request.filters)) throw new CairnError("INVALID_OPTION", "filters must be an array");
        const watcher = await node.startWatch(request, this, (watchId, revision) => this.send({ id, ok: true, result: { watchId, revision } }));
        if (!watcher.ended) this.watchers.set(watcher.id, watcher);
        return;
      }
      case "ping":
        this.send({ id, ok: true, result: { pong: true } });
        return;
      case "watch.stop": {
        const w = this.watchers.get(request.watchId);
        if (w) {
          w.stop();
          this.watchers.delete(request.watchId);
        }
        this.send({ id, ok: true, result: { stopped: true } });
        return;
      }
      default:
        this.send({ id, ok: true, result: await node.handle(request) });
    }
  }

  // WatchSink
  entries(watchId: number, entries: WireEntry[]): boolean {
    if (this.socket.bufferedAmount > this.options.watchBufferBytesMax) return false;
    this.send({ push: "watch.entries", watchId, entries });
    return true;
  }
  initialized(watchId: number, revision: number): void {
    this.send({ push: "watch.initialized", watchId, revision });
  }
  skipped(watchId: number, fromRevision: number, toRevision: number): void {
    this.send({ push: "watch.skipped", watchId, fromRevision, toRevision });
  }
  ended(watchId: number, error: WireError): void {
    this.watchers.delete(watchId);
    this.send({ push: "watch.ended", watchId, error });
  }

  closed(): void {
    for (const w of this.watchers.values()) w.stop();
    this.watchers.clear();
  }

  shutdown(): void {
    for (const w of [...this.watchers.values()]) w.end({ code: "UNAVAILABLE", message: "node shutting down" });
    this.socket.close(1001, "node shutting down");
  }
}
