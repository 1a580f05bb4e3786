/**
 * The fault proxy jepsen-lite owns between nodes: a TCP proxy on loopback for every directed pair of
 * nodes (route `from→to` listens on its own port and forwards to `to`'s real peer address; node `from`'s
 * generated config names that port as `to`'s peer address). Partitions are cut here, on the real peer
 * connections, not by flags inside the nodes.
 *
 * The peer transport keeps ONE WebSocket per pair (dialed by the lower id), carrying both directions. So
 * each direction of a pair has its own mode, applied to the bytes flowing that way on whatever connection
 * carries them:
 *   - "open": bytes pass.
 *   - "drop-data" (one-way partitions): whole WebSocket data messages are dropped; control frames (ping,
 *     pong, close) pass, so the connection stays up and only Raft and RPC traffic is lost that way. The
 *     proxy parses WebSocket frame headers to drop at message boundaries: the stream stays valid and
 *     nothing has to reconnect at heal. (Cutting raw bytes one way would break TCP-level liveness and
 *     turn into a full cut after the transport's keepalive; this keeps the asymmetry.)
 *   - "blackhole" (full partitions): every frame is dropped, pings included, so the transport's keepalive
 *     closes the connection as it would over a dead network; the upgrade request of a new connection is
 *     held (bounded) until heal, so reconnects hang like SYNs into a partition and time out.
 * A mode change applies at the next frame (data: the next message) boundary of each direction.
 *
 * Limits: connections per route, bytes held per connection before the upgrade, and bytes buffered to a
 * destination socket before the source is paused (TCP back-pressure instead of growth).
 */
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";

export type LinkMode = "open" | "drop-data" | "blackhole";

export const PROXY_LIMITS = {
  /** Connections one route holds at once; more are refused (closed at once). */
  connectionsPerRouteMax: 8,
  /** Bytes of a connection's HTTP upgrade phase held while its direction is cut; beyond: closed. */
  heldBytesMax: 64 * 1024,
  /** Bytes queued to a destination socket before the source socket is paused. */
  pipeBufferedBytesMax: 4 * 1024 * 1024,
} as const;

const HEADER_END = Buffer.from("\r\n\r\n");

export interface LinkStats {
  bytesForwarded: number;
  bytesDropped: number;
  messagesDropped: number;
  controlFramesDropped: number;
}

/** One direction of one TCP connection: HTTP upgrade phase, then WebSocket frames. Exported for tests. */
export class DirectedPipe {
  private phase: "http" | "frames" = "http";
  /** Last bytes of the HTTP phase seen, to find the header end across chunk boundaries. */
  private httpTail = Buffer.alloc(0);
  /** HTTP-phase bytes held while this direction is cut (bounded by heldBytesMax). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Frame parser: header bytes collected so far, payload bytes left of the current frame. */
  private header = Buffer.alloc(0);
  private payloadLeft = 0;
  private forwardFrame = true;
  /** Whether the data message in progress (until its FIN frame) is forwarded. */
  private forwardMessage = true;

  constructor(
    private readonly src: Pick<Socket, "on" | "pause" | "resume" | "isPaused">,
    private readonly dst: Pick<Socket, "write" | "once" | "writableLength" | "destroyed">,
    private readonly mode: () => LinkMode,
    private readonly stats: LinkStats,
    private readonly fail: (why: string) => void,
  ) {
    src.on("data", (chunk: Buffer) => this.input(chunk));
  }

  private input(chunk: Buffer): void {
    if (this.phase === "http" && (this.held.length > 0 || this.mode() !== "open")) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes > PROXY_LIMITS.heldBytesMax) this.fail("held bytes limit");
      return;
    }
    this.process(chunk);
  }

  get heldByteCount(): number {
    return this.heldBytes;
  }

  /** Called when modes change: releases held upgrade bytes if this direction is open now. */
  pump(): void {
    if (this.held.length === 0 || this.mode() !== "open") return;
    const held = Buffer.concat(this.held);
    this.held = [];
    this.heldBytes = 0;
    this.process(held);
  }

  private process(chunk: Buffer): void {
    const out: Buffer[] = [];
    let offset = 0;
    if (this.phase === "http") {
      const scan = Buffer.concat([this.httpTail, chunk]);
      const end = scan.indexOf(HEADER_END);
      if (end < 0) {
        this.httpTail = scan.subarray(Math.max(0, scan.length - 3));
        out.push(chunk);
        offset = chunk.length;
      } else {
        const cut = end + HEADER_END.length - this.httpTail.length;
        out.push(chunk.subarray(0, cut));
        offset = cut;
        this.phase = "frames";
        this.httpTail = Buffer.alloc(0);
      }
    }
    while (offset < chunk.length) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, chunk.length - offset);
        if (this.forwardFrame) out.push(chunk.subarray(offset, offset + n));
        else this.stats.bytesDropped += n;
        this.payloadLeft -= n;
        offset += n;
        continue;
      }
      // Collect a frame header: 2 bytes, then 0/2/8 bytes of extended length, then 0/4 bytes of mask.
      const need = this.headerLength();
      const take = Math.min(need - this.header.length, chunk.length - offset);
      this.header = Buffer.concat([this.header, chunk.subarray(offset, offset + take)]);
      offset += take;
      if (this.header.length < this.headerLength()) continue;
      this.startFrame(out);
    }
    this.write(out);
  }

  /** The full header length as far as the bytes so far tell (2 until the second byte is known). */
  private headerLength(): number {
    if (this.header.length < 2) return 2;
    const len7 = this.header[1]! & 0x7f;
    const masked = (this.header[1]! & 0x80) !== 0;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
  }

  private startFrame(out: Buffer[]): void {
    const header = this.header;
    this.header = Buffer.alloc(0);
    const opcode = header[0]! & 0x0f;
    const len7 = header[1]! & 0x7f;
    const length = len7 === 126 ? header.readUInt16BE(2) : len7 === 127 ? Number(header.readBigUInt64BE(2)) : len7;
    const mode = this.mode();
    if (opcode >= 0x8) {
      this.forwardFrame = mode !== "blackhole";
      if (!this.forwardFrame) this.stats.controlFramesDropped++;
    } else {
      if (opcode !== 0x0) {
        this.forwardMessage = mode === "open";
        if (!this.forwardMessage) this.stats.messagesDropped++;
      }
      // Continuation frames follow their message's decision; the frame after a FIN decides again.
      this.forwardFrame = this.forwardMessage;
    }
    if (this.forwardFrame) out.push(header);
    else this.stats.bytesDropped += header.length;
    this.payloadLeft = length;
  }

  private write(out: Buffer[]): void {
    if (out.length === 0) return;
    const data = out.length === 1 ? out[0]! : Buffer.concat(out);
    if (data.length === 0 || this.dst.destroyed) return;
    this.stats.bytesForwarded += data.length;
    this.dst.write(data);
    if (this.dst.writableLength > PROXY_LIMITS.pipeBufferedBytesMax && !this.src.isPaused()) {
      this.src.pause();
      this.dst.once("drain", () => this.src.resume());
    }
  }
}

interface ProxyConnection {
  client: Socket;
  upstream: Socket;
  pipes: DirectedPipe[];
}

interface Route {
  from: string;
  to: string;
  server: Server;
  address: string;
  connections: Set<ProxyConnection>;
}

const linkKey = (from: string, to: string): string => `${from}>${to}`;

export class FaultProxy {
  private readonly modes = new Map<string, LinkMode>();
  private readonly routes: Route[] = [];
  private readonly linkStats = new Map<string, LinkStats>();
  private closed = false;
  /** Connections refused because a route was at connectionsPerRouteMax. */
  refusedConnections = 0;

  /** Starts route `from→to` on 127.0.0.1 (ephemeral port) to `target` (host:port); returns its host:port. */
  async route(from: string, to: string, target: string): Promise<string> {
    const [host, portText] = target.split(":");
    const port = Number(portText);
    const route: Route = { from, to, server: createServer(), address: "", connections: new Set() };
    route.server.on("connection", (client) => this.accept(route, client, host!, port));
    await new Promise<void>((resolve, reject) => {
      route.server.once("error", reject);
      route.server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = route.server.address();
    route.address = `127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
    this.routes.push(route);
    return route.address;
  }

  private accept(route: Route, client: Socket, host: string, port: number): void {
    if (this.closed || route.connections.size >= PROXY_LIMITS.connectionsPerRouteMax) {
      this.refusedConnections++;
      client.destroy();
      return;
    }
    const upstream = netConnect({ host, port });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const connection: ProxyConnection = { client, upstream, pipes: [] };
    route.connections.add(connection);
    const close = (): void => {
      route.connections.delete(connection);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on("error", close);
      socket.on("close", close);
      socket.on("end", close);
    }
    connection.pipes.push(
      new DirectedPipe(client, upstream, () => this.mode(route.from, route.to), this.stats(route.from, route.to), close),
      new DirectedPipe(upstream, client, () => this.mode(route.to, route.from), this.stats(route.to, route.from), close),
    );
  }

  mode(from: string, to: string): LinkMode {
    return this.modes.get(linkKey(from, to)) ?? "open";
  }

  stats(from: string, to: string): LinkStats {
    const key = linkKey(from, to);
    let stats = this.linkStats.get(key);
    if (stats === undefined) {
      stats = { bytesForwarded: 0, bytesDropped: 0, messagesDropped: 0, controlFramesDropped: 0 };
      this.linkStats.set(key, stats);
    }
    return stats;
  }

  /** Sets one direction's mode. */
  setMode(from: string, to: string, mode: LinkMode): void {
    if (mode === "open") this.modes.delete(linkKey(from, to));
    else this.modes.set(linkKey(from, to), mode);
    this.pumpAll();
  }

  /** Full partition: every pair of nodes in different groups is blackholed both ways; others are open. */
  partition(groups: readonly (readonly string[])[]): void {
    this.modes.clear();
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.modes.set(linkKey(a, b), "blackhole");
      }
    }
    this.pumpAll();
  }

  /** Cuts both directions between `a` and `b` (keeps every other link as it is). */
  cutPair(a: string, b: string): void {
    this.modes.set(linkKey(a, b), "blackhole");
    this.modes.set(linkKey(b, a), "blackhole");
    this.pumpAll();
  }

  /** Every link open again. */
  heal(): void {
    this.modes.clear();
    this.pumpAll();
  }

  /** The directed links currently not open, as "from>to:mode". */
  cuts(): string[] {
    return [...this.modes].map(([key, mode]) => `${key}:${mode}`).sort();
  }

  allStats(): Record<string, LinkStats> {
    return Object.fromEntries([...this.linkStats].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Upgrade bytes held (by cut directions) over every connection. */
  heldBytes(): number {
    let total = 0;
    for (const route of this.routes) for (const c of route.connections) for (const pipe of c.pipes) total += pipe.heldByteCount;
    return total;
  }

  private pumpAll(): void {
    for (const route of this.routes) for (const c of route.connections) for (const pipe of c.pipes) pipe.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const route of this.routes) {
      for (const c of route.connections) {
        c.client.destroy();
        c.upstream.destroy();
      }
      route.connections.clear();
    }
    await Promise.all(this.routes.map((route) => new Promise<void>((resolve) => route.server.close(() => resolve()))));
  }
}
