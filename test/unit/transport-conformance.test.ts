/**
 * Goal: MemoryPeerTransport is a faithful twin of WsPeerTransport for everything the node driver relies on,
 * so node tests over the memory hub say something about the real cluster.
 * Method: one suite (the abstract-level conformance pattern) run against both implementations through a
 * factory that builds three connected transports and can cut and restore the link between two of them.
 */
import { afterEach, describe, expect, it } from "vitest";
import { CairnError } from "../../src/shared/errors.ts";
import type { Message } from "../../src/raft/types.ts";
import type { PeerTransport } from "../../src/node/transport.ts";
import { MemoryPeerHub } from "../../src/node/transport-memory.ts";
import { WsPeerTransport } from "../../src/node/transport-ws.ts";
import { entry, message, snapshot, waitFor } from "../support/peer-fixtures.ts";

interface Harness {
  nodes: Record<"n1" | "n2" | "n3", PeerTransport>;
  /** Takes the n1 <-> n2 link down (both sides see it), then back up. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

type Factory = () => Promise<Harness>;

const IDS = ["n1", "n2", "n3"] as const;

const memoryFactory: Factory = async () => {
  const hub = new MemoryPeerHub();
  const nodes: Harness["nodes"] = { n1: hub.transport("n1"), n2: hub.transport("n2"), n3: hub.transport("n3") };
  return {
    nodes,
    cut: () => hub.partition("n1", "n2"),
    restore: () => hub.heal(),
    close: async () => {
      for (const id of IDS) await nodes[id].close();
      hub.close();
    },
  };
};

const wsFactory: Factory = async () => {
  const limits = { frameBytesMax: 64 * 1024, sendQueueBytesMax: 4 << 20, reconnectDelayMsMin: 10, reconnectDelayMsMax: 50 };
  const transports = IDS.map(
    (id) => new WsPeerTransport({ nodeId: id, listen: { host: "127.0.0.1", port: 0 }, peers: {}, clusterSecret: "conformance", limits }),
  );
  const urls: Record<string, string> = {};
  for (const [i, id] of IDS.entries()) urls[id] = `ws://127.0.0.1:${(await transports[i]!.start()).port}`;
  const nodes = { n1: transports[0]!, n2: transports[1]!, n3: transports[2]! };
  for (const id of IDS) nodes[id].setPeers(urls);
  const allUp = () => IDS.every((id) => Object.values(nodes[id].stats().peers).every((p) => p.connected));
  await waitFor(allUp, 5000, "full mesh");
  return {
    nodes,
    // n1 dials n2: pointing n1 at a dead port closes the connection (both sides see it) and keeps n2 a peer.
    cut: () => nodes.n1.setPeers({ ...urls, n2: "ws://127.0.0.1:1" }),
    restore: () => nodes.n1.setPeers(urls),
    close: async () => {
      for (const id of IDS) await nodes[id].close();
    },
  };
};

function conformance(name: string, factory: Factory): void {
  describe(`PeerTransport conformance: ${name}`, () => {
    let harness: Harness | null = null;
    afterEach(async () => {
      await harness?.close();
      harness = null;
    });

    async function setup(): Promise<Harness> {
      harness = await factory();
      return harness;
    }

    it("delivers every group's messages in order, from the authenticated sender, batched per turn", async () => {
      const { nodes } = await setup();
      const got: { from: string; group: string; message: Message }[] = [];
      nodes.n2.onRaft((from, group, m) => got.push({ from, group, message: m }));
      for (let i = 0; i < 100; i++) nodes.n1.send("n2", { kind: "raft", group: `g${i % 4}`, message: message({ index: i, entries: [entry(i + 1)] }) });
      nodes.n3.send("n2", { kind: "raft", group: "g0", message: message({ from: "n3", index: 1000 }) });
      await waitFor(() => got.length === 101);
      const fromN1 = got.filter((r) => r.from === "n1");
      expect(fromN1.map((r) => r.message.index)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      expect(fromN1[7]).toEqual({ from: "n1", group: "g3", message: message({ index: 7, entries: [entry(8)] }) });
      expect(got.find((r) => r.from === "n3")!.message.index).toBe(1000);
      expect(nodes.n1.stats().peers["n2"]!.framesSent).toBe(1);
    });

    it("RPC: result, the responder's error code, timeout, unknown peer", async () => {
      const { nodes } = await setup();
      nodes.n2.onRequest(async (from, body) => {
        if ((body as { fail?: boolean }).fail) throw new CairnError("NOT_LEADER", "not leader", { leaderHint: "n3" });
        if ((body as { hang?: boolean }).hang) return new Promise(() => {});
        return { from, echo: body };
      });
      await expect(nodes.n1.request("n2", { x: [1, "y", Uint8Array.of(2)] }, 2000)).resolves.toEqual({ from: "n1", echo: { x: [1, "y", Uint8Array.of(2)] } });
      await expect(nodes.n1.request("n2", { fail: true }, 2000)).rejects.toMatchObject({ code: "NOT_LEADER", data: { leaderHint: "n3" } });
      await expect(nodes.n1.request("n2", { hang: true }, 20)).rejects.toMatchObject({ code: "TIMEOUT" });
      await expect(nodes.n1.request("n9", {}, 2000)).rejects.toMatchObject({ code: "UNAVAILABLE" });
      await expect(nodes.n1.request("n2", { bad: new Map() }, 2000)).rejects.toBeInstanceOf(TypeError);
    });

    it("a cut link is reported down on both sides, drops and fails fast, and comes back up", async () => {
      const h = await setup();
      const states: string[] = [];
      h.nodes.n1.onPeerState((peer, up) => states.push(`n1:${peer}:${up}`));
      h.nodes.n2.onPeerState((peer, up) => states.push(`n2:${peer}:${up}`));
      h.cut();
      await waitFor(() => states.length === 2);
      expect(states.sort()).toEqual(["n1:n2:false", "n2:n1:false"]);
      const droppedBefore = h.nodes.n1.stats().peers["n2"]!.dropped;
      h.nodes.n1.send("n2", { kind: "raft", group: "g", message: message() });
      expect(h.nodes.n1.stats().peers["n2"]).toMatchObject({ connected: false, dropped: droppedBefore + 1, queuedBytes: 0 });
      await expect(h.nodes.n1.request("n2", {}, 2000)).rejects.toMatchObject({ code: "UNAVAILABLE" });
      // n3 is unaffected.
      const got: number[] = [];
      h.nodes.n3.onRaft((_from, _group, m) => got.push(m.index));
      h.nodes.n1.send("n3", { kind: "raft", group: "g", message: message({ to: "n3", index: 3 }) });
      await waitFor(() => got.length === 1);
      h.restore();
      await waitFor(() => states.length === 4);
      expect(states.slice(2).sort()).toEqual(["n1:n2:true", "n2:n1:true"]);
    });

    it("refuses invalid payloads at send without throwing, and counts them", async () => {
      const { nodes } = await setup();
      expect(() => nodes.n1.send("n2", { kind: "raft", group: "g", message: message({ term: Number.NaN }) })).not.toThrow();
      expect(() => nodes.n1.send("n2", { kind: "request", requestId: 1, body: () => 1 })).not.toThrow();
      expect(nodes.n1.stats().peers["n2"]!.dropped).toBe(2);
    });

    it("reports a delivered snapshot", async () => {
      const { nodes } = await setup();
      const status: boolean[] = [];
      nodes.n1.onSnapshotStatus((peer, group, ok) => status.push(peer === "n2" && group === "g" && ok));
      const data = new Uint8Array(300_000).map((_, i) => i % 251);
      const got: Message[] = [];
      nodes.n2.onRaft((_from, _group, m) => got.push(m));
      nodes.n1.send("n2", { kind: "raft", group: "g", message: message({ type: "snap", snapshot: snapshot(data) }) });
      await waitFor(() => got.length === 1 && status.length === 1);
      expect(Buffer.from(got[0]!.snapshot!.data).equals(Buffer.from(data))).toBe(true);
      expect(status).toEqual([true]);
    });

    it("close() rejects pending requests with UNAVAILABLE and is idempotent", async () => {
      const h = await setup();
      h.nodes.n2.onRequest(() => new Promise(() => {}));
      const pending = h.nodes.n1.request("n2", {}, 60_000).catch((error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await h.nodes.n1.close();
      await h.nodes.n1.close();
      expect(await pending).toMatchObject({ code: "UNAVAILABLE" });
    });
  });
}

conformance("memory", memoryFactory);
conformance("ws", wsFactory);
