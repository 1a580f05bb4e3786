/**
 * Goal: WsPeerTransport over real loopback sockets keeps the PeerTransport contract: one authenticated
 * connection per pair, batched delivery of every group, RPC, chunked snapshots, bounded queues against a
 * peer that stops reading, reconnection, and refusal (logged, connection closed, never a crash) of unknown
 * peers, wrong secrets and garbage before and after authentication.
 * Method: two transports on 127.0.0.1 port 0, plus hand-driven raw sockets and a fake peer that performs
 * the real handshake (peer-codec helpers) and then misbehaves. Waits are bounded polls, never timed assertions.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect as netConnect } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { CairnError } from "../../src/shared/errors.ts";
import type { Message } from "../../src/raft/types.ts";
import { WsPeerTransport } from "../../src/node/transport-ws.ts";
import type { PeerTransportLimits } from "../../src/node/transport.ts";
import {
  decodeHandshake,
  encodeFrame,
  encodeHandshake,
  encodePayload,
  handshakeProof,
  messageToWire,
  newNonce,
} from "../../src/node/peer-codec.ts";
import type { WirePayload } from "../../src/node/peer-codec.ts";
import { CLOSE_CODES } from "../../src/node/transport-ws-connection.ts";
import { entry, message, recordingLogger, snapshot, waitFor } from "../support/peer-fixtures.ts";
import { Packr } from "msgpackr";

const SECRET = "test-cluster-secret";
const LIMITS: PeerTransportLimits = {
  frameBytesMax: 1 << 20,
  sendQueueBytesMax: 4 << 20,
  reconnectDelayMsMin: 10,
  reconnectDelayMsMax: 100,
  handshakeTimeoutMs: 2000,
};
const raw = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number", moreTypes: false, bundleStrings: false });

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Node {
  transport: WsPeerTransport;
  port: number;
  url: string;
  raft: { from: string; group: string; message: Message }[];
  states: [string, boolean][];
  log: ReturnType<typeof recordingLogger>;
}

async function node(id: string, options: { limits?: Partial<PeerTransportLimits>; secret?: string; port?: number } = {}): Promise<Node> {
  const log = recordingLogger();
  const transport = new WsPeerTransport({
    nodeId: id,
    listen: { host: "127.0.0.1", port: options.port ?? 0 },
    peers: {},
    clusterSecret: options.secret ?? SECRET,
    limits: { ...LIMITS, ...options.limits },
    logger: log.logger,
  });
  cleanups.push(() => transport.close());
  const { port } = await transport.start();
  const result: Node = { transport, port, url: `ws://127.0.0.1:${port}`, raft: [], states: [], log };
  transport.onRaft((from, group, m) => result.raft.push({ from, group, message: m }));
  transport.onPeerState((peer, up) => result.states.push([peer, up]));
  return result;
}

/** n1 and n2 peered (n1 dials), connected. */
async function pair(options: Parameters<typeof node>[1] = {}, optionsB: Parameters<typeof node>[1] = options) {
  const a = await node("n1", options);
  const b = await node("n2", optionsB);
  b.transport.setPeers({ n1: a.url, n2: b.url });
  a.transport.setPeers({ n1: a.url, n2: b.url });
  return { a, b };
}

async function connected(x: Node, peer: string): Promise<void> {
  await waitFor(() => x.transport.stats().peers[peer]?.connected === true, 5000, `${peer} connected`);
}

function rawSocket(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  cleanups.push(() => ws.terminate());
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

function closeOf(ws: WebSocket): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(-1);
  return new Promise((resolve) => ws.once("close", (code) => resolve(code)));
}

function nextMessage(ws: WebSocket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    ws.once("message", (data) => resolve(data as Buffer));
    ws.once("close", (code) => reject(new Error(`closed ${code}`)));
  });
}

/** Connects as `from` and performs the real dialer handshake; `secret` may be wrong on purpose. */
async function fakeDialer(port: number, from: string, to: string, secret = SECRET): Promise<WebSocket> {
  const ws = await rawSocket(port);
  const nonceDialer = newNonce();
  ws.send(encodeHandshake({ t: "hello", v: 1, from, to, nonce: nonceDialer }));
  const challenge = decodeHandshake(await nextMessage(ws));
  if (challenge.t !== "challenge") throw new Error("expected challenge");
  ws.send(encodeHandshake({ t: "auth", proof: handshakeProof(secret, "dialer", from, to, nonceDialer, challenge.nonce) }));
  if (secret !== SECRET) return ws;
  const ready = decodeHandshake(await nextMessage(ws));
  if (ready.t !== "ready") throw new Error("expected ready");
  return ws;
}

function frame(...payloads: WirePayload[]): Buffer {
  return encodeFrame(payloads.map(encodePayload));
}

describe("WsPeerTransport: connection and delivery", () => {
  it("connects one authenticated socket per pair (lower id dials) and multiplexes groups in order", async () => {
    const { a, b } = await pair();
    await connected(a, "n2");
    await connected(b, "n1");
    expect(a.log.lines.filter((l) => l.msg === "peer up")).toEqual([{ level: "info", msg: "peer up", fields: { peer: "n2", role: "dialer" } }]);
    expect(b.log.lines.filter((l) => l.msg === "peer up")).toEqual([{ level: "info", msg: "peer up", fields: { peer: "n1", role: "acceptor" } }]);
    for (let i = 0; i < 300; i++) {
      a.transport.send("n2", { kind: "raft", group: `g${i % 3}`, message: message({ index: i, entries: [entry(i + 1)] }) });
      b.transport.send("n1", { kind: "raft", group: "g0", message: message({ from: "n2", to: "n1", type: "appResp", index: i }) });
    }
    await waitFor(() => b.raft.length === 300 && a.raft.length === 300);
    expect(b.raft.map((r) => r.message.index)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(b.raft[4]).toEqual({ from: "n1", group: "g1", message: message({ index: 4, entries: [entry(5)] }) });
    // Sent in one event-loop turn: batched into one frame.
    expect(a.transport.stats().peers["n2"]!.framesSent).toBe(1);
    expect(b.transport.stats().peers["n1"]!.framesReceived).toBe(1);
    expect(a.states).toEqual([["n2", true]]);
  });

  it("drops raft messages to a peer that is down or unknown, and counts them", async () => {
    const a = await node("n1");
    a.transport.setPeers({ n2: "ws://127.0.0.1:1" }); // nothing listens there
    a.transport.send("n2", { kind: "raft", group: "g", message: message() });
    a.transport.send("n9", { kind: "raft", group: "g", message: message({ to: "n9" }) });
    expect(a.transport.stats().peers["n2"]).toMatchObject({ connected: false, dropped: 1, queuedBytes: 0 });
    expect(Object.keys(a.transport.stats().peers)).toEqual(["n2"]);
  });

  it("request/response over the socket: result, error code, timeout, unavailable, lost connection", async () => {
    const { a, b } = await pair();
    await connected(a, "n2");
    let hanging = 0;
    b.transport.onRequest(async (from, body) => {
      const op = (body as { op: string }).op;
      if (op === "echo") return { from, body };
      if (op === "notLeader") throw new CairnError("NOT_LEADER", "not leader", { leaderHint: "n3" });
      if (op === "hang") {
        hanging++;
        return new Promise(() => {});
      }
      throw new TypeError("bad op");
    });
    // b -> a direction works too (a has no handler: UNAVAILABLE from the responder).
    await expect(b.transport.request("n1", { op: "echo" }, 2000)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await expect(a.transport.request("n2", { op: "echo", bin: Uint8Array.of(1) }, 2000)).resolves.toEqual({
      from: "n1",
      body: { op: "echo", bin: Uint8Array.of(1) },
    });
    const error = await a.transport.request("n2", { op: "notLeader" }, 2000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CairnError);
    expect(error).toMatchObject({ code: "NOT_LEADER", data: { leaderHint: "n3" } });
    await expect(a.transport.request("n2", { op: "other" }, 2000)).rejects.toMatchObject({ code: "INTERNAL" });
    await expect(a.transport.request("n2", { op: "hang" }, 20)).rejects.toMatchObject({ code: "TIMEOUT" });
    await expect(a.transport.request("n3", { op: "echo" }, 2000)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    const lost = a.transport.request("n2", { op: "hang" }, 60_000).catch((e: unknown) => e);
    await waitFor(() => hanging === 2);
    await b.transport.close();
    expect(await lost).toMatchObject({ code: "TIMEOUT" });
    await expect(a.transport.request("n2", { op: "echo" }, 2000)).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });

  it("close() rejects pending requests with UNAVAILABLE", async () => {
    const { a, b } = await pair();
    await connected(a, "n2");
    b.transport.onRequest(() => new Promise(() => {}));
    const pending = a.transport.request("n2", { op: "x" }, 60_000).catch((e: unknown) => e);
    await waitFor(() => b.transport.stats().peers["n1"]!.framesReceived === 1);
    await a.transport.close();
    expect(await pending).toMatchObject({ code: "UNAVAILABLE" });
  });

  it("reconnects with backoff after the peer restarts, reporting down then up", async () => {
    const { a, b } = await pair();
    await connected(a, "n2");
    await b.transport.close();
    await waitFor(() => a.states.length === 2);
    expect(a.states).toEqual([["n2", true], ["n2", false]]);
    const b2 = await node("n2", { port: b.port });
    b2.transport.setPeers({ n1: a.url });
    await connected(a, "n2");
    expect(a.states).toEqual([["n2", true], ["n2", false], ["n2", true]]);
    a.transport.send("n2", { kind: "raft", group: "g", message: message({ index: 42 }) });
    await waitFor(() => b2.raft.length === 1);
    expect(b2.raft[0]!.message.index).toBe(42);
  });

  it("setPeers: a removed peer is disconnected on both sides; re-adding reconnects", async () => {
    const { a, b } = await pair();
    await connected(a, "n2");
    a.transport.setPeers({});
    expect(a.states).toEqual([["n2", true], ["n2", false]]);
    await waitFor(() => b.states.length === 2);
    expect(b.states).toEqual([["n1", true], ["n1", false]]);
    a.transport.setPeers({ n2: b.url });
    await connected(a, "n2");
    await connected(b, "n1");
  });
});

describe("WsPeerTransport: snapshots", () => {
  const small = { frameBytesMax: 64 * 1024 };

  it("streams a snapshot larger than a frame in chunks, interleaved with other messages", async () => {
    const { a, b } = await pair({ limits: small });
    await connected(a, "n2");
    const status: [string, string, boolean][] = [];
    a.transport.onSnapshotStatus((peer, group, ok) => status.push([peer, group, ok]));
    const data = Uint8Array.from({ length: 1_000_003 }, (_, i) => (i * 31) & 0xff);
    a.transport.send("n2", { kind: "raft", group: "g", message: message({ type: "snap", snapshot: snapshot(data) }) });
    for (let i = 0; i < 20; i++) a.transport.send("n2", { kind: "raft", group: "h", message: message({ type: "heartbeat", index: i }) });
    await waitFor(() => b.raft.length === 21);
    const snap = b.raft.find((r) => r.message.type === "snap")!;
    expect(snap.group).toBe("g");
    expect(snap.message.snapshot!.metadata).toEqual(snapshot(data).metadata);
    expect(Buffer.from(snap.message.snapshot!.data).equals(Buffer.from(data))).toBe(true);
    expect(b.raft.filter((r) => r.group === "h").map((r) => r.message.index)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(b.transport.stats().peers["n1"]!.framesReceived).toBeGreaterThan(15); // 1 MB over 64 KiB frames
    await waitFor(() => status.length === 1);
    expect(status).toEqual([["n2", "g", true]]);
  });

  it("refuses to send a snapshot over snapshotBytesMax and reports it failed", async () => {
    const { a } = await pair({ limits: { ...small, snapshotBytesMax: 100_000 } });
    await connected(a, "n2");
    const status: boolean[] = [];
    a.transport.onSnapshotStatus((_peer, _group, ok) => status.push(ok));
    a.transport.send("n2", { kind: "raft", group: "g", message: message({ type: "snap", snapshot: snapshot(new Uint8Array(200_000)) }) });
    await waitFor(() => status.length === 1);
    expect(status).toEqual([false]);
    expect(a.transport.stats().peers["n2"]!.dropped).toBe(1);
  });

  it("discards a partial reassembly when the connection drops, then accepts a fresh snapshot", async () => {
    const b = await node("n2", { limits: small });
    b.transport.setPeers({ n1: "ws://127.0.0.1:1" });
    const header = message({ type: "snap", to: "n2", snapshot: snapshot(new Uint8Array(0)) });
    const first = await fakeDialer(b.port, "n1", "n2");
    first.send(frame({ kind: "snapshotBegin", group: "g", message: header, snapshotBytes: 6 }, { kind: "snapshotChunk", data: Uint8Array.of(1, 2, 3) }));
    await waitFor(() => b.transport.stats().peers["n1"]!.framesReceived === 1);
    first.close();
    await waitFor(() => b.states.length === 2);
    const second = await fakeDialer(b.port, "n1", "n2");
    second.send(frame({ kind: "snapshotChunk", data: Uint8Array.of(4, 5, 6) })); // continuation of the dead transfer: refused
    expect(await closeOf(second)).toBe(CLOSE_CODES.protocolError);
    const third = await fakeDialer(b.port, "n1", "n2");
    third.send(frame({ kind: "snapshotBegin", group: "g", message: header, snapshotBytes: 4 }));
    third.send(frame({ kind: "snapshotChunk", data: Uint8Array.of(9, 8) }, { kind: "snapshotChunk", data: Uint8Array.of(7, 6) }));
    await waitFor(() => b.raft.length === 1);
    expect(b.raft[0]!.message.snapshot!.data).toEqual(Uint8Array.of(9, 8, 7, 6));
    expect(b.raft[0]!.message.snapshot!.metadata).toEqual(header.snapshot!.metadata);
  });
});

describe("WsPeerTransport: bounded memory", () => {
  it("a peer that stops reading fills a bounded queue, then messages are dropped and counted", async () => {
    const limits = { frameBytesMax: 256 * 1024, sendQueueBytesMax: 1 << 20, socketBufferedBytesMax: 512 * 1024, keepaliveIntervalMs: 60_000 };
    const b = await node("n2", { limits });
    b.transport.setPeers({ n1: "ws://127.0.0.1:1" });
    const peer = await fakeDialer(b.port, "n1", "n2");
    await connected(b, "n1");
    peer.pause(); // stops reading: the kernel buffers fill, then ws bufferedAmount, then our queue
    const payload = new Uint8Array(60 * 1024);
    let maxQueued = 0;
    let maxBuffered = 0;
    let sent = 0;
    for (let turn = 0; turn < 5000 && b.transport.stats().peers["n1"]!.dropped < 800; turn++) {
      for (let i = 0; i < 8; i++) {
        b.transport.send("n1", { kind: "raft", group: "g", message: message({ from: "n2", to: "n1", entries: [entry(1, payload)] }) });
        sent++;
      }
      await new Promise((resolve) => setImmediate(resolve));
      const stats = b.transport.stats().peers["n1"]!;
      maxQueued = Math.max(maxQueued, stats.queuedBytes);
      maxBuffered = Math.max(maxBuffered, stats.socketBufferedBytes);
    }
    const stats = b.transport.stats().peers["n1"]!;
    expect(stats.dropped).toBeGreaterThanOrEqual(800);
    expect(stats.connected).toBe(true);
    expect(maxQueued).toBeLessThanOrEqual(limits.sendQueueBytesMax);
    expect(maxBuffered).toBeLessThanOrEqual(limits.socketBufferedBytesMax + limits.frameBytesMax);
    // Far more was offered than is held: what is retained is bounded by the limits, not by the offer.
    expect(sent * payload.byteLength).toBeGreaterThan(20 * (limits.sendQueueBytesMax + limits.socketBufferedBytesMax));
    // Once the peer reads again, the queue drains.
    let received = 0;
    peer.on("message", () => received++);
    peer.resume();
    await waitFor(() => b.transport.stats().peers["n1"]!.queuedBytes === 0 && received > 0, 10_000, "queue drained");
  });

  it("closes a connection whose peer stops answering keepalive pings", async () => {
    const b = await node("n2", { limits: { keepaliveIntervalMs: 20 } });
    b.transport.setPeers({ n1: "ws://127.0.0.1:1" });
    const peer = await fakeDialer(b.port, "n1", "n2");
    await connected(b, "n1");
    peer.pause();
    await waitFor(() => b.states.length === 2, 5000, "peer down");
    expect(b.states).toEqual([["n1", true], ["n1", false]]);
    expect(b.log.lines.some((l) => l.msg === "peer connection silent, closing")).toBe(true);
  });
});

describe("WsPeerTransport: refusal of unknown, unauthenticated and malformed peers", () => {
  it("transports with different secrets never connect; the dialer logs unauthorized", async () => {
    const { a, b } = await pair({ secret: "one" }, { secret: "two" });
    await waitFor(() => a.log.lines.filter((l) => /unauthorized/.test(l.msg)).length >= 2, 5000, "two refused attempts");
    expect(a.transport.stats().peers["n2"]!.connected).toBe(false);
    expect(b.transport.stats().peers["n1"]!.connected).toBe(false);
    expect(a.states).toEqual([]);
    expect(b.states).toEqual([]);
    expect(a.log.lines.find((l) => /unauthorized/.test(l.msg))!.level).toBe("error");
  });

  it("the acceptor refuses a dialer with a wrong proof (4001)", async () => {
    const b = await node("n2");
    b.transport.setPeers({ n1: "ws://127.0.0.1:1" });
    const ws = await fakeDialer(b.port, "n1", "n2", "wrong-secret");
    expect(await closeOf(ws)).toBe(CLOSE_CODES.unauthorized);
    expect(b.log.lines.some((l) => l.level === "error" && /unauthorized/.test(l.msg))).toBe(true);
    expect(b.states).toEqual([]);
  });

  it("the dialer refuses an acceptor that cannot prove the secret", async () => {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    await new Promise((resolve) => server.once("listening", resolve));
    const codes: number[] = [];
    server.on("connection", (ws) => {
      ws.on("close", (code) => codes.push(code));
      ws.once("message", (data) => {
        const hello = decodeHandshake(data as Buffer);
        if (hello.t !== "hello") return;
        const nonce = newNonce();
        ws.send(encodeHandshake({ t: "challenge", v: 1, from: hello.to, nonce, proof: handshakeProof("guess", "acceptor", hello.from, hello.to, hello.nonce, nonce) }));
      });
    });
    const port = (server.address() as { port: number }).port;
    const a = await node("n1");
    a.transport.setPeers({ n2: `ws://127.0.0.1:${port}` });
    await waitFor(() => codes.length >= 1);
    expect(codes[0]).toBe(CLOSE_CODES.unauthorized);
    expect(a.states).toEqual([]);
  });

  it("refuses unknown ids, the wrong dial direction and hellos meant for another node (4003)", async () => {
    const b = await node("n2");
    b.transport.setPeers({ n1: "ws://127.0.0.1:1", n3: "ws://127.0.0.1:1" });
    for (const [from, to] of [["n0", "n2"], ["n3", "n2"], ["n1", "n7"]] as const) {
      const ws = await rawSocket(b.port);
      ws.send(encodeHandshake({ t: "hello", v: 1, from, to, nonce: newNonce() }));
      expect(await closeOf(ws)).toBe(CLOSE_CODES.unknownPeer);
    }
    expect(b.log.lines.filter((l) => l.level === "warn" && /refused n0|refused n3|not this node/.test(l.msg))).toHaveLength(3);
  });

  it("garbage before authentication closes the socket; a real peer still connects afterwards", async () => {
    const b = await node("n2", { limits: { handshakeTimeoutMs: 200 } });
    b.transport.setPeers({ n1: "ws://127.0.0.1:1" });
    const attempts: [string, (ws: WebSocket) => void, number][] = [
      ["random bytes", (ws) => ws.send(Buffer.from("deadbeefc1c1c1", "hex")), CLOSE_CODES.protocolError],
      ["text frame", (ws) => ws.send("hello"), CLOSE_CODES.protocolError],
      ["a batch frame before auth", (ws) => ws.send(frame({ kind: "raft", group: "g", message: message() })), CLOSE_CODES.protocolError],
      ["oversize handshake", (ws) => ws.send(raw.pack({ t: "hello", pad: "x".repeat(5000) })), CLOSE_CODES.protocolError],
      ["auth before hello", (ws) => ws.send(encodeHandshake({ t: "auth", proof: newNonce() })), CLOSE_CODES.protocolError],
      ["wrong shape", (ws) => ws.send(raw.pack([1, 2, 3])), CLOSE_CODES.protocolError],
      ["frame over maxPayload", (ws) => ws.send(Buffer.alloc(LIMITS.frameBytesMax + 1)), 1009],
      ["silence", () => {}, CLOSE_CODES.handshakeTimeout],
    ];
    for (const [what, act, code] of attempts) {
      const ws = await rawSocket(b.port);
      act(ws);
      expect(await closeOf(ws), what).toBe(code);
    }
    // Raw TCP garbage (not even HTTP) on the peer port: the socket is closed.
    await new Promise<void>((resolve, reject) => {
      const socket = netConnect(b.port, "127.0.0.1", () => socket.write(Buffer.from("\x00\xff garbage \r\n\r\n")));
      socket.on("error", () => {});
      socket.on("close", () => resolve());
      setTimeout(() => reject(new Error("raw socket not closed")), 5000).unref();
      socket.resume();
    });
    expect(b.states).toEqual([]);
    const a = await node("n1");
    a.transport.setPeers({ n2: b.url });
    b.transport.setPeers({ n1: a.url });
    await connected(a, "n2");
    a.transport.send("n2", { kind: "raft", group: "g", message: message() });
    await waitFor(() => b.raft.length === 1);
  });

  it("garbage after authentication: error logged, connection closed, nothing reaches the handlers", async () => {
    const b = await node("n2", { limits: { frameBytesMax: 64 * 1024, snapshotBytesMax: 1000 } });
    b.transport.setPeers({ n1: "ws://127.0.0.1:1" });
    let requests = 0;
    b.transport.onRequest(async () => requests++);
    const header = message({ type: "snap", snapshot: snapshot(new Uint8Array(0)) });
    const attacks: [string, (ws: WebSocket) => void, number][] = [
      ["random bytes", (ws) => ws.send(Buffer.from("c1ffee00112233", "hex")), CLOSE_CODES.protocolError],
      ["text frame", (ws) => ws.send("{}"), CLOSE_CODES.protocolError],
      ["handshake frame again", (ws) => ws.send(encodeHandshake({ t: "ready" })), CLOSE_CODES.protocolError],
      ["wrong version", (ws) => ws.send(raw.pack([2, []])), CLOSE_CODES.protocolError],
      ["negative term", (ws) => ws.send(raw.pack([1, [[0, "g", messageToWire(message()).map((v, i) => (i === 3 ? -1 : v))]]])), CLOSE_CODES.protocolError],
      ["valid message after an invalid one in the same frame", (ws) => ws.send(raw.pack([1, [[0, "g", messageToWire(message())], [0, "g", [1]]]])), CLOSE_CODES.protocolError],
      ["spoofed sender", (ws) => ws.send(frame({ kind: "raft", group: "g", message: message({ from: "n3" }) })), CLOSE_CODES.protocolError],
      ["wrong recipient", (ws) => ws.send(frame({ kind: "raft", group: "g", message: message({ to: "n5" }) })), CLOSE_CODES.protocolError],
      ["request with a Date body", (ws) => ws.send(Buffer.concat([Buffer.from("9201919301 01".replace(/ /g, ""), "hex"), Buffer.from("d6ff00000000", "hex")])), CLOSE_CODES.protocolError],
      ["chunk without begin", (ws) => ws.send(frame({ kind: "snapshotChunk", data: Uint8Array.of(1) })), CLOSE_CODES.protocolError],
      ["snapshot over snapshotBytesMax", (ws) => ws.send(frame({ kind: "snapshotBegin", group: "g", message: header, snapshotBytes: 1001 })), CLOSE_CODES.protocolError],
      ["chunk beyond the announced size", (ws) => ws.send(frame({ kind: "snapshotBegin", group: "g", message: header, snapshotBytes: 1 }, { kind: "snapshotChunk", data: Uint8Array.of(1, 2) })), CLOSE_CODES.protocolError],
      ["begin while streaming", (ws) => ws.send(frame({ kind: "snapshotBegin", group: "g", message: header, snapshotBytes: 5 }, { kind: "snapshotBegin", group: "g", message: header, snapshotBytes: 5 })), CLOSE_CODES.protocolError],
      ["frame over maxPayload", (ws) => ws.send(Buffer.alloc(64 * 1024 + 1)), 1009],
    ];
    for (const [what, act, code] of attacks) {
      const ws = await fakeDialer(b.port, "n1", "n2");
      await connected(b, "n1");
      const errorsBefore = b.log.lines.filter((l) => l.level === "error" || l.level === "warn").length;
      act(ws);
      expect(await closeOf(ws), what).toBe(code);
      await waitFor(() => b.transport.stats().peers["n1"]!.connected === false);
      expect(b.log.lines.filter((l) => l.level === "error" || l.level === "warn").length, what).toBeGreaterThan(errorsBefore);
    }
    expect(b.raft).toEqual([]);
    expect(requests).toBe(0);
    // The same fake peer behaving well is served.
    const ws = await fakeDialer(b.port, "n1", "n2");
    ws.send(frame({ kind: "raft", group: "g", message: message({ index: 5 }) }));
    await waitFor(() => b.raft.length === 1);
    expect(b.raft[0]!.message.index).toBe(5);
  });

  it("bounds connections that have not authenticated yet", async () => {
    const b = await node("n2", { limits: { connectionsPendingMax: 2 } });
    b.transport.setPeers({ n1: "ws://127.0.0.1:1", n3: "ws://127.0.0.1:1" });
    const first = await rawSocket(b.port);
    const second = await rawSocket(b.port);
    const third = await rawSocket(b.port);
    expect(await closeOf(third)).toBe(1006); // terminated without a close frame
    expect(first.readyState).toBe(WebSocket.OPEN);
    expect(second.readyState).toBe(WebSocket.OPEN);
    expect(b.log.lines.some((l) => /too many unauthenticated/.test(l.msg))).toBe(true);
  });

  it("bounds TCP connections on the peer port before any upgrade", async () => {
    const b = await node("n2", { limits: { connectionsPendingMax: 2 } }); // no peers: 2 connections in all
    await rawSocket(b.port);
    await rawSocket(b.port);
    const third = new WebSocket(`ws://127.0.0.1:${b.port}`, { perMessageDeflate: false });
    cleanups.push(() => third.terminate());
    const outcome = await new Promise<string>((resolve) => {
      third.once("open", () => resolve("open"));
      third.once("error", (error) => resolve(error.message));
    });
    expect(outcome).toBe("socket hang up");
  });

  it("refuses invalid options with TypeError", () => {
    const base = { nodeId: "n1", listen: { host: "127.0.0.1", port: 0 }, peers: {}, clusterSecret: SECRET, limits: LIMITS };
    expect(() => new WsPeerTransport({ ...base, clusterSecret: "" })).toThrow(TypeError);
    expect(() => new WsPeerTransport({ ...base, peers: { n2: "http://x" } })).toThrow(TypeError);
    expect(() => new WsPeerTransport({ ...base, limits: { ...LIMITS, frameBytesMax: 100 } })).toThrow(TypeError);
    expect(() => new WsPeerTransport({ ...base, limits: { ...LIMITS, reconnectDelayMsMin: 500, reconnectDelayMsMax: 100 } })).toThrow(TypeError);
  });
});
