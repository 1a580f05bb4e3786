/**
 * The fault proxy on real WebSockets: one-way cuts drop data messages one way while pings and the other
 * direction flow on the same connection; blackholes drop everything and hold new upgrades until heal;
 * healing needs no reconnect. "Was not delivered" is decided without waiting: after heal a marker
 * message follows on the same TCP stream, so anything forwarded earlier would have arrived before it.
 */
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { EventEmitter } from "node:events";
import { DirectedPipe, FaultProxy, type LinkMode, type LinkStats } from "./proxy.ts";

interface Pair {
  proxy: FaultProxy;
  server: WebSocketServer;
  serverSide: Promise<WebSocket>;
  address: string;
}

let opened: { proxy: FaultProxy; server: WebSocketServer; sockets: WebSocket[] }[] = [];

afterEach(async () => {
  for (const o of opened) {
    for (const s of o.sockets) s.terminate();
    await o.proxy.close();
    await new Promise<void>((resolve) => o.server.close(() => resolve()));
  }
  opened = [];
});

/** A ws server for node "b" and a proxy route a→b in front of it. */
async function setup(): Promise<Pair> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  const proxy = new FaultProxy();
  const address = await proxy.route("a", "b", `127.0.0.1:${port}`);
  const serverSide = new Promise<WebSocket>((resolve) => server.once("connection", resolve));
  opened.push({ proxy, server, sockets: [] });
  return { proxy, server, serverSide, address };
}

function track(ws: WebSocket): WebSocket {
  opened[opened.length - 1]!.sockets.push(ws);
  return ws;
}

/** Collects text messages; `until(text)` resolves once that message has arrived. */
function inbox(ws: WebSocket): { messages: string[]; until(text: string): Promise<void> } {
  const messages: string[] = [];
  const waiters: { text: string; resolve: () => void }[] = [];
  ws.on("message", (data) => {
    const text = data.toString();
    messages.push(text);
    for (const w of waiters.filter((w) => w.text === text)) w.resolve();
  });
  return {
    messages,
    until: (text) =>
      messages.includes(text) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ text, resolve })),
  };
}

/** Polls a condition (bounded: 10 s) — only used to know the proxy has handled bytes already sent. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}

async function connected(address: string): Promise<WebSocket> {
  const ws = track(new WebSocket(`ws://${address}`));
  await once(ws, "open");
  return ws;
}

describe("FaultProxy", () => {
  it("forwards both ways when open, including large fragmented-size messages", async () => {
    const { address, serverSide } = await setup();
    const client = await connected(address);
    const server = track(await serverSide);
    const atServer = inbox(server);
    const atClient = inbox(client);
    const big = "x".repeat(200_000);
    client.send("hello");
    client.send(big);
    server.send("world");
    await atServer.until(big);
    await atClient.until("world");
    expect(atServer.messages).toEqual(["hello", big]);
  });

  it("a one-way cut drops data messages one way only; pings pass; heal needs no reconnect", async () => {
    const { proxy, address, serverSide } = await setup();
    const client = await connected(address);
    const server = track(await serverSide);
    const atServer = inbox(server);
    const atClient = inbox(client);

    proxy.setMode("a", "b", "drop-data");
    client.send("lost-1");
    client.send("lost-2".repeat(50_000));
    server.send("still-flows");
    await atClient.until("still-flows");
    // Control frames pass both ways: a ping from either side is answered.
    client.ping();
    await once(client, "pong");
    server.ping();
    await once(server, "pong");

    proxy.heal();
    client.send("after-heal");
    await atServer.until("after-heal");
    expect(atServer.messages).toEqual(["after-heal"]);
    expect(proxy.stats("a", "b").messagesDropped).toBe(2);
    expect(proxy.stats("b", "a").messagesDropped).toBe(0);
  });

  it("the other direction can be cut alone (acceptor to dialer)", async () => {
    const { proxy, address, serverSide } = await setup();
    const client = await connected(address);
    const server = track(await serverSide);
    const atServer = inbox(server);
    const atClient = inbox(client);
    proxy.setMode("b", "a", "drop-data");
    server.send("lost");
    client.send("flows");
    await atServer.until("flows");
    await until(() => proxy.stats("b", "a").messagesDropped === 1);
    proxy.heal();
    server.send("after-heal");
    await atClient.until("after-heal");
    expect(atClient.messages).toEqual(["after-heal"]);
  });

  it("a blackhole drops pings too, and holds a new connection's upgrade until heal", async () => {
    const { proxy, address, serverSide, server: wss } = await setup();
    const client = await connected(address);
    const server = track(await serverSide);
    const atServer = inbox(server);
    let pongs = 0;
    client.on("pong", () => pongs++);

    proxy.partition([["a"], ["b"]]);
    expect(proxy.cuts()).toEqual(["a>b:blackhole", "b>a:blackhole"]);
    client.ping();
    client.send("lost");
    const second = track(new WebSocket(`ws://${address}`));
    let secondOpen = false;
    second.on("open", () => (secondOpen = true));
    const secondAccepted = new Promise<WebSocket>((resolve) => wss.once("connection", resolve));
    // Heal only once the proxy has seen (and dropped or held) everything sent during the cut.
    await until(() => proxy.stats("a", "b").controlFramesDropped === 1 && proxy.stats("a", "b").messagesDropped === 1 && proxy.heldBytes() > 0);
    expect(secondOpen).toBe(false);

    proxy.heal();
    await once(second, "open");
    track(await secondAccepted);
    client.send("after-heal");
    await atServer.until("after-heal");
    // The ping sent during the blackhole was dropped, so its pong never came; one after heal does.
    expect(pongs).toBe(0);
    client.ping();
    await once(client, "pong");
    expect(atServer.messages).toEqual(["after-heal"]);
    expect(proxy.stats("a", "b").controlFramesDropped).toBe(1);
  });

  it("refuses connections beyond its per-route limit", async () => {
    const { proxy, address } = await setup();
    proxy.partition([["a"], ["b"]]);
    let ended = 0;
    const twoEnded = new Promise<void>((resolve) => {
      for (let i = 0; i < 10; i++) {
        const ws = track(new WebSocket(`ws://${address}`));
        ws.on("error", () => undefined);
        ws.once("close", () => {
          if (++ended === 2) resolve();
        });
      }
    });
    // Two of ten exceed the limit of 8 and are closed by the proxy at once; the rest hang (held).
    await twoEnded;
    expect(proxy.refusedConnections).toBe(2);
  });
});

/** A WebSocket frame (RFC 6455 §5.2), optionally masked as a client sends it. */
function frame(opcode: number, payload: Buffer, fin = true, mask = true): Buffer {
  const length = payload.length;
  const ext = length < 126 ? Buffer.alloc(0) : length < 65536 ? Buffer.alloc(2) : Buffer.alloc(8);
  if (ext.length === 2) ext.writeUInt16BE(length);
  if (ext.length === 8) ext.writeBigUInt64BE(BigInt(length));
  const head = Buffer.from([(fin ? 0x80 : 0) | opcode, (mask ? 0x80 : 0) | (length < 126 ? length : length < 65536 ? 126 : 127)]);
  const key = mask ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0);
  const body = Buffer.from(payload.map((b, i) => (mask ? b ^ key[i % 4]! : b)));
  return Buffer.concat([head, ext, key, body]);
}

/** Feeds `input` to a DirectedPipe in chunks of `chunk` bytes (switching modes at given offsets); returns what it wrote. */
function pipeBytes(input: Buffer, chunk: number, modes: { at: number; mode: LinkMode }[]): { out: Buffer; stats: LinkStats } {
  const src = Object.assign(new EventEmitter(), { pause: () => src, resume: () => src, isPaused: () => false });
  const written: Buffer[] = [];
  const dst = { write: (b: Buffer) => (written.push(Buffer.from(b)), true), once: () => dst, writableLength: 0, destroyed: false };
  const stats: LinkStats = { bytesForwarded: 0, bytesDropped: 0, messagesDropped: 0, controlFramesDropped: 0 };
  let mode: LinkMode = "open";
  new DirectedPipe(src as never, dst as never, () => mode, stats, (why) => {
    throw new Error(why);
  });
  for (let offset = 0; offset < input.length; offset += chunk) {
    for (const m of modes) if (m.at === offset) mode = m.mode;
    src.emit("data", input.subarray(offset, Math.min(input.length, offset + chunk)));
  }
  return { out: Buffer.concat(written), stats };
}

describe("DirectedPipe frame parsing (raw bytes, no socket)", () => {
  const http = Buffer.from("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
  const small = frame(0x2, Buffer.from("small"));
  const medium = frame(0x2, Buffer.alloc(300, 7)); // 16-bit length
  const large = frame(0x1, Buffer.alloc(70_000, 65)); // 64-bit length
  const ping = frame(0x9, Buffer.from("p"));
  const pong = frame(0xa, Buffer.alloc(0), true, false); // unmasked, as a server sends
  // A fragmented message with a ping between its fragments (allowed by RFC 6455 §5.4).
  const fragmented = Buffer.concat([frame(0x2, Buffer.from("frag-1"), false), ping, frame(0x0, Buffer.from("frag-2"), false), frame(0x0, Buffer.from("end"))]);
  const stream = Buffer.concat([http, small, ping, medium, fragmented, large, pong, small]);

  it("forwards every byte unchanged when open, however the stream is split", () => {
    for (const chunk of [1, 2, 3, 7, 64, 1000, stream.length]) {
      expect(pipeBytes(stream, chunk, []).out.equals(stream), `chunk ${chunk}`).toBe(true);
    }
  });

  it("drop-data keeps the upgrade and control frames and drops whole data messages", () => {
    // The upgrade passes while open; the cut starts at the first frame.
    for (const chunk of [1, 5, http.length]) {
      const { out, stats } = pipeBytes(stream, chunk, [{ at: Math.ceil(http.length / chunk) * chunk, mode: "drop-data" }]);
      const expected = Buffer.concat([http, ping, ping, pong]);
      expect(out.equals(expected), `chunk ${chunk}`).toBe(true);
      expect(stats.messagesDropped).toBe(5);
      expect(stats.controlFramesDropped).toBe(0);
    }
  });

  it("a mode change inside a message applies from the next message", () => {
    // Cut after the first fragment was forwarded: the rest of that message still passes.
    const firstFragmentEnd = http.length + frame(0x2, Buffer.from("frag-1"), false).length;
    const input = Buffer.concat([http, fragmented, small]);
    const { out } = pipeBytes(input, 1, [{ at: firstFragmentEnd, mode: "drop-data" }]);
    expect(out.equals(Buffer.concat([http, fragmented])), "the fragmented message is whole, the next one dropped").toBe(true);
  });

  it("blackhole drops control frames too", () => {
    const input = Buffer.concat([http, small, ping, pong]);
    const { out, stats } = pipeBytes(input, 3, [{ at: Math.ceil(http.length / 3) * 3, mode: "blackhole" }]);
    expect(out.equals(http)).toBe(true);
    expect(stats.controlFramesDropped).toBe(2);
  });
});
