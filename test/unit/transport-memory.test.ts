/**
 * Goal: MemoryPeerTransport keeps the PeerTransport contract (delivery in order, validated copies, RPC
 * with errors, bounded queues, peer up/down) and its hub's fault controls do what they say.
 * Method: a hub with two or three transports; assertions on what the handlers received and on stats().
 */
import { afterEach, describe, expect, it } from "vitest";
import { CairnError } from "../../src/shared/errors.ts";
import type { Message } from "../../src/raft/types.ts";
import { MemoryPeerHub, MemoryPeerTransport } from "../../src/node/transport-memory.ts";
import { entry, message, recordingLogger, snapshot, waitFor } from "../support/peer-fixtures.ts";

const opened: { close(): unknown }[] = [];

function cluster(ids: string[], hubOptions: ConstructorParameters<typeof MemoryPeerHub>[0] = {}) {
  const hub = new MemoryPeerHub(hubOptions);
  opened.push(hub);
  const nodes = new Map<string, MemoryPeerTransport>();
  const received = new Map<string, { from: string; group: string; message: Message }[]>();
  const states = new Map<string, [string, boolean][]>();
  for (const id of ids) {
    const t = hub.transport(id);
    opened.push(t);
    nodes.set(id, t);
    received.set(id, []);
    states.set(id, []);
    t.onRaft((from, group, m) => received.get(id)!.push({ from, group, message: m }));
    t.onPeerState((peer, up) => states.get(id)!.push([peer, up]));
  }
  return { hub, nodes, received, states, node: (id: string) => nodes.get(id)! };
}

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

describe("MemoryPeerTransport", () => {
  it("delivers raft messages of several groups in order, as validated copies", async () => {
    const c = cluster(["n1", "n2"]);
    const data = new Uint8Array([1, 2, 3]);
    const sent = message({ entries: [entry(1, data)] });
    for (let i = 0; i < 5; i++) c.node("n1").send("n2", { kind: "raft", group: i % 2 === 0 ? "a" : "b", message: { ...sent, index: i } });
    data[0] = 99; // encoded at send(): a later mutation by the sender does not travel
    await waitFor(() => c.received.get("n2")!.length === 5);
    const got = c.received.get("n2")!;
    expect(got.map((r) => r.message.index)).toEqual([0, 1, 2, 3, 4]);
    expect(got.map((r) => r.group)).toEqual(["a", "b", "a", "b", "a"]);
    expect(got[0]!.from).toBe("n1");
    expect(got[0]!.message.entries[0]!.data).toEqual(new Uint8Array([1, 2, 3]));
    expect(got[0]!.message).not.toBe(sent);
    // All five went out in one batch (one event-loop turn).
    expect(c.node("n1").stats().peers["n2"]!.framesSent).toBe(1);
    expect(c.node("n2").stats().peers["n1"]!.framesReceived).toBe(1);
  });

  it("reports peers up when both sides are attached, and down on partition, up again on heal", async () => {
    const c = cluster(["n1", "n2", "n3"]);
    expect(c.node("n1").stats().peers["n2"]!.connected).toBe(true);
    c.hub.partition("n1", ["n2", "n3"]);
    expect(c.states.get("n1")).toEqual([["n2", true], ["n3", true], ["n2", false], ["n3", false]]);
    expect(c.states.get("n2")!.slice(-1)).toEqual([["n1", false]]);
    c.node("n1").send("n2", { kind: "raft", group: "g", message: message() });
    expect(c.node("n1").stats().peers["n2"]!.dropped).toBe(1);
    c.hub.heal();
    expect(c.states.get("n1")!.slice(-2)).toEqual([["n2", true], ["n3", true]]);
    c.node("n1").send("n2", { kind: "raft", group: "g", message: message() });
    await waitFor(() => c.received.get("n2")!.length === 1);
  });

  it("isolate cuts a node from everyone; messages in flight on a cut link are lost", async () => {
    const c = cluster(["n1", "n2", "n3"]);
    c.hub.delay("*", "*", 30);
    c.node("n1").send("n2", { kind: "raft", group: "g", message: message() });
    await new Promise((resolve) => setImmediate(resolve)); // flushed into the hub, now delayed
    expect(c.hub.stats().deliveriesScheduled).toBe(1);
    c.hub.isolate("n2");
    await waitFor(() => c.hub.stats().deliveriesScheduled === 0);
    expect(c.received.get("n2")).toEqual([]);
    expect(c.hub.stats().payloadsLost).toBe(1);
    expect(c.hub.linkUp("n1", "n3")).toBe(true);
    expect(c.hub.linkUp("n2", "n3")).toBe(false);
  });

  it("one-way drop loses one direction only and keeps the link up", async () => {
    const c = cluster(["n1", "n2"]);
    c.hub.dropOneWay("n1", "n2");
    c.node("n1").send("n2", { kind: "raft", group: "g", message: message() });
    c.node("n2").send("n1", { kind: "raft", group: "g", message: message({ from: "n2", to: "n1" }) });
    await waitFor(() => c.received.get("n1")!.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(c.received.get("n2")).toEqual([]);
    expect(c.node("n1").stats().peers["n2"]!.connected).toBe(true);
    expect(c.hub.stats().payloadsLost).toBe(1);
  });

  it("keeps each link FIFO when the delay shrinks", async () => {
    const c = cluster(["n1", "n2"]);
    c.hub.delay("n1", "n2", 40);
    c.node("n1").send("n2", { kind: "raft", group: "g", message: message({ index: 1 }) });
    await new Promise((resolve) => setImmediate(resolve));
    c.hub.delay("n1", "n2", 0);
    c.node("n1").send("n2", { kind: "raft", group: "g", message: message({ index: 2 }) });
    await waitFor(() => c.received.get("n2")!.length === 2);
    expect(c.received.get("n2")!.map((r) => r.message.index)).toEqual([1, 2]);
  });

  it("loss with a seeded random drops about the given share", async () => {
    let seed = 1;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const c = cluster(["n1", "n2"], { random });
    c.hub.loss("n1", "n2", 0.5);
    for (let i = 0; i < 200; i++) {
      c.node("n1").send("n2", { kind: "raft", group: "g", message: message({ index: i }) });
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => c.hub.stats().payloadsLost + c.hub.stats().payloadsDelivered === 200);
    const got = c.received.get("n2")!.length;
    expect(got).toBeGreaterThan(50);
    expect(got).toBeLessThan(150);
  });

  it("refuses messages whose from/to do not match the link, and invalid payloads at send", async () => {
    const { logger, lines } = recordingLogger();
    const hub = new MemoryPeerHub();
    opened.push(hub);
    const a = hub.transport({ nodeId: "n1", logger });
    const b = hub.transport({ nodeId: "n2", logger });
    opened.push(a, b);
    const got: Message[] = [];
    b.onRaft((_from, _group, m) => got.push(m));
    a.send("n2", { kind: "raft", group: "g", message: message({ from: "n3" }) }); // spoofed sender
    a.send("n2", { kind: "raft", group: "g", message: message({ term: -1 }) }); // invalid: refused at send
    a.send("n2", { kind: "raft", group: "", message: message() }); // invalid group
    a.send("n2", { kind: "raft", group: "g", message: message({ index: 7 }) });
    await waitFor(() => got.length === 1);
    expect(got[0]!.index).toBe(7);
    expect(a.stats().peers["n2"]!.dropped).toBe(2);
    expect(lines.some((l) => l.level === "error" && /wrong from\/to/.test(l.msg))).toBe(true);
  });

  it("request/response: result, handler error with its code, timeout, unreachable", async () => {
    const c = cluster(["n1", "n2"]);
    c.node("n2").onRequest(async (from, body) => {
      const b = body as { op: string };
      if (b.op === "echo") return { from, body };
      if (b.op === "fail") throw new CairnError("NOT_LEADER", "not leader", { leaderHint: "n3" });
      if (b.op === "crash") throw new Error("boom");
      return new Promise(() => {}); // never answers
    });
    await expect(c.node("n1").request("n2", { op: "echo", v: new Uint8Array([1]) }, 1000)).resolves.toEqual({
      from: "n1",
      body: { op: "echo", v: new Uint8Array([1]) },
    });
    const failed = await c.node("n1").request("n2", { op: "fail" }, 1000).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(CairnError);
    expect((failed as CairnError).code).toBe("NOT_LEADER");
    expect((failed as CairnError).data.leaderHint).toBe("n3");
    await expect(c.node("n1").request("n2", { op: "crash" }, 1000)).rejects.toMatchObject({ code: "INTERNAL" });
    await expect(c.node("n1").request("n2", { op: "hang" }, 30)).rejects.toMatchObject({ code: "TIMEOUT" });
    await expect(c.node("n1").request("n9", { op: "echo" }, 1000)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await expect(c.node("n1").request("n2", { when: new Date() }, 1000)).rejects.toBeInstanceOf(TypeError);
    c.hub.partition("n1", "n2");
    await expect(c.node("n1").request("n2", { op: "echo" }, 1000)).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });

  it("a request whose link is cut after sending fails at once with TIMEOUT (outcome unknown)", async () => {
    const c = cluster(["n1", "n2"]);
    c.node("n2").onRequest(() => new Promise(() => {}));
    const pending = c.node("n1").request("n2", { op: "slow" }, 60_000);
    await new Promise((resolve) => setImmediate(resolve));
    c.hub.partition("n1", "n2");
    await expect(pending).rejects.toMatchObject({ code: "TIMEOUT" });
  });

  it("bounds the send queue in bytes and payloads and counts drops", async () => {
    const hub = new MemoryPeerHub();
    opened.push(hub);
    const a = hub.transport({ nodeId: "n1", limits: { sendQueueBytesMax: 10_000, sendQueueFramesMax: 5 } });
    const b = hub.transport("n2");
    opened.push(a, b);
    let count = 0;
    b.onRaft(() => count++);
    for (let i = 0; i < 10; i++) a.send("n2", { kind: "raft", group: "g", message: message({ index: i }) });
    expect(a.stats().peers["n2"]!.dropped).toBe(5);
    const big = message({ entries: [entry(1, new Uint8Array(6000))] });
    await waitFor(() => count === 5);
    a.send("n2", { kind: "raft", group: "g", message: big });
    a.send("n2", { kind: "raft", group: "g", message: big });
    expect(a.stats().peers["n2"]!.dropped).toBe(6);
    expect(a.stats().peers["n2"]!.queuedBytes).toBeLessThanOrEqual(10_000);
  });

  it("carries a snapshot whole and reports its status", async () => {
    const c = cluster(["n1", "n2"]);
    const status: [string, string, boolean][] = [];
    c.node("n1").onSnapshotStatus((peer, group, ok) => status.push([peer, group, ok]));
    const data = new Uint8Array(100_000).map((_, i) => i & 0xff);
    c.node("n1").send("n2", { kind: "raft", group: "g", message: message({ type: "snap", snapshot: snapshot(data) }) });
    await waitFor(() => c.received.get("n2")!.length === 1);
    expect(Buffer.from(c.received.get("n2")![0]!.message.snapshot!.data).equals(Buffer.from(data))).toBe(true);
    expect(status).toEqual([["n2", "g", true]]);
    c.hub.partition("n1", "n2");
    c.node("n1").send("n2", { kind: "raft", group: "h", message: message({ type: "snap", snapshot: snapshot(data) }) });
    await waitFor(() => status.length === 2);
    expect(status[1]).toEqual(["n2", "h", false]);
  });

  it("setPeers removes a peer (link down both ways) and a node only talks to its configured peers", async () => {
    const hub = new MemoryPeerHub();
    opened.push(hub);
    const a = hub.transport({ nodeId: "n1", peers: { n2: "x", n3: "x" } });
    const b = hub.transport({ nodeId: "n2", peers: { n1: "x" } });
    const d = hub.transport({ nodeId: "n3", peers: { n2: "x" } }); // does not list n1
    opened.push(a, b, d);
    expect(a.stats().peers).toMatchObject({ n2: { connected: true }, n3: { connected: false } });
    a.setPeers({ n3: "x" });
    expect(Object.keys(a.stats().peers)).toEqual(["n3"]);
    expect(b.stats().peers["n1"]!.connected).toBe(false);
  });

  it("a closed transport detaches; the id can be attached again (restart)", async () => {
    const c = cluster(["n1", "n2"]);
    expect(() => c.hub.transport("n2")).toThrow(TypeError);
    await c.node("n2").close();
    expect(c.states.get("n1")!.slice(-1)).toEqual([["n2", false]]);
    const again = c.hub.transport("n2");
    opened.push(again);
    expect(c.states.get("n1")!.slice(-1)).toEqual([["n2", true]]);
    await expect(c.node("n2").start()).rejects.toBeInstanceOf(TypeError);
  });
});
