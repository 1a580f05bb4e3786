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
import { FaultProxy } from "./proxy.ts";

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
