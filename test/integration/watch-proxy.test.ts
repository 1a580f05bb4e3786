/**
 * Goal: a watch on a node that holds no replica of the bucket is served by that node, relayed from a
 * replica (issue 4, src/node/watch-proxy.ts), with the semantics of a local watch: initial values then
 * every event in order, resumable, bounded (WATCH_OVERFLOW with the resume revision), moved to another
 * replica without a gap or a duplicate when its replica dies, and released on the replica when stopped.
 * Method: a 5-node in-process cluster (startCluster, in memory, fault API); the real client, and a raw
 * protocol client where the test must see every push (a client-side resume would hide proxy mistakes).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connect, Kvm, type Connection, type KvWatchEntry, type KvWatcher } from "../../src/client/index.ts";
import { decodeFrame, encodeFrame } from "../../src/client/codec.ts";
import { startCluster, type InProcessCluster } from "../../src/node/embed.ts";
import { PROTOCOL_VERSION, type Push, type Response } from "../../src/shared/protocol.ts";

/** Upper bound of every wait in this file (conditions are polled, never slept on). */
const WAIT_MS = 20_000;
/** Small per-socket (and per-stream) watch buffer, so the overflow case needs only a few MB. */
const WATCH_BUFFER_BYTES = 256 * 1024;

async function waitUntil(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A protocol client that records every push (docs/protocol.md). */
class RawClient {
  readonly pushes: Push[] = [];
  private readonly responses = new Map<number, Response>();
  private nextId = 1;
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      const decoded = decodeFrame(new Uint8Array(data));
      if (decoded.kind === "push") this.pushes.push(decoded.frame);
      else if (decoded.kind === "response") this.responses.set(decoded.frame.id, decoded.frame);
    });
  }

  static async open(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const client = new RawClient(ws);
    const hello = await client.request({ op: "hello", version: PROTOCOL_VERSION });
    expect(hello.ok).toBe(true);
    return client;
  }

  async request(body: Record<string, unknown>): Promise<Response> {
    const id = this.nextId++;
    this.ws.send(encodeFrame({ id, ...body }));
    await waitUntil(`response ${id}`, () => this.responses.has(id));
    return this.responses.get(id)!;
  }

  entries(watchId: number): { revision: number; key: string; isUpdate?: boolean }[] {
    return this.pushes.flatMap((p) => (p.push === "watch.entries" && p.watchId === watchId ? p.entries : []));
  }

  of(watchId: number, kind: Push["push"]): Push[] {
    return this.pushes.filter((p) => p.watchId === watchId && p.push === kind);
  }

  close(): void {
    this.ws.terminate();
  }
}

describe("watch proxy (5 in-process nodes)", () => {
  let cluster: InProcessCluster;
  const conns: Connection[] = [];
  const raws: RawClient[] = [];
  const url = (id: string) => cluster.urls[cluster.ids.indexOf(id)]!;
  const nodeOf = (id: string) => cluster.nodes.get(id)!.node;
  const placement = (bucket: string) => nodeOf(cluster.ids.find((id) => cluster.nodes.has(id))!).meta.get(bucket)!.placement;
  const proxiesOn = (id: string, bucket: string) => nodeOf(id).watchProxy.stats().proxies.filter((p) => p.bucket === bucket);
  const streamsOn = (id: string, bucket: string) => nodeOf(id).watchProxy.stats().streams.filter((s) => s.bucket === bucket);
  const clientAt = async (ids: readonly string[]) => {
    const nc = await connect({ servers: ids.map(url), timeoutMs: 15_000, discoverServers: false, noRandomize: true });
    conns.push(nc);
    return new Kvm(nc);
  };
  const rawAt = async (id: string) => {
    const raw = await RawClient.open(url(id));
    raws.push(raw);
    return raw;
  };

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 5, inMemory: true, limits: { watchBufferBytesMax: WATCH_BUFFER_BYTES } });
  });

  afterAll(async () => {
    for (const r of raws) r.close();
    for (const c of conns) await c.close().catch(() => undefined);
    await cluster?.stop();
  });

  it("serves an R1 bucket's watch from each of the 4 other nodes as the replica serves it, resumable, released on stop", async () => {
    const kv = await (await clientAt(cluster.ids)).create("one", { replicas: 1, history: 10 });
    for (let i = 0; i < 5; i++) await kv.put(`k.${i}`, `v${i}`);
    await kv.put("k.0", "again");
    const [replica] = placement("one");
    const others = cluster.ids.filter((id) => id !== replica);
    expect(others).toHaveLength(4);

    const watch = async (id: string): Promise<{ id: string; watcher: KvWatcher; seen: KvWatchEntry[] }> => {
      const watcher = await (await (await clientAt([id])).open("one")).watch({ include: "last" });
      const seen: KvWatchEntry[] = [];
      void (async () => {
        for await (const e of watcher) seen.push(e);
      })().catch(() => undefined);
      return { id, watcher, seen };
    };
    const local = await watch(replica!);
    const proxied = await Promise.all(others.map(watch));
    for (const id of others) expect(proxiesOn(id, "one")).toHaveLength(1);
    expect(streamsOn(replica!, "one")).toHaveLength(4);

    let last = 0;
    for (let i = 0; i < 20; i++) last = i % 7 === 3 ? await kv.delete(`k.${i % 5}`) : await kv.put(`k.${i % 6}`, `w${i}`);
    const shape = (seen: KvWatchEntry[]) => seen.map((e) => `${e.key}@${e.revision}:${e.operation}:${e.isUpdate}:${e.delta}`);
    await waitUntil("every watcher at the last revision", () => [local, ...proxied].every((w) => w.seen.at(-1)?.revision === last));
    const expected = shape(local.seen);
    expect(local.seen.filter((e) => !e.isUpdate).map((e) => e.key)).toEqual(["k.1", "k.2", "k.3", "k.4", "k.0"]);
    expect(local.seen.filter((e) => e.isUpdate)).toHaveLength(20);
    for (const w of proxied) expect(shape(w.seen), `watch via ${w.id}`).toEqual(expected);

    // Resumable: from a revision, every retained record from there, through the proxy.
    const resumed = await (await (await clientAt([others[0]!])).open("one")).watch({ resumeFromRevision: last - 4 });
    const got: number[] = [];
    for await (const e of resumed) {
      got.push(e.revision);
      if (e.revision === last) break;
    }
    expect(got).toEqual([last - 4, last - 3, last - 2, last - 1, last]);

    // Stopping releases the replica's side.
    for (const w of [local, ...proxied]) await w.watcher.stop();
    await waitUntil("streams released on the replica", () => streamsOn(replica!, "one").length === 0);
    for (const id of others) expect(proxiesOn(id, "one")).toHaveLength(0);
  });

  it("moves to another replica when its replica is killed: one watch, no gap, no duplicate", async () => {
    await (await clientAt(cluster.ids)).create("three", { replicas: 3, history: 64 });
    const replicas = placement("three");
    const [proxy, writerNode] = cluster.ids.filter((id) => !replicas.includes(id));
    const raw = await rawAt(proxy!);
    const started = await raw.request({ op: "watch.start", bucket: "three", filters: [">"], include: "history", ignoreDeletes: false, metaOnly: false });
    expect(started.ok).toBe(true);
    const watchId = (started as { result: { watchId: number } }).result.watchId;
    const [state] = proxiesOn(proxy!, "three");
    const target = state!.peer!;
    expect(replicas).toContain(target);

    const writer = await (await clientAt([writerNode!])).open("three");
    const acked: number[] = [];
    for (let i = 0; i < 30; i++) acked.push(await writer.put(`k.${i % 10}`, `a${i}`));
    await cluster.kill(target);
    for (let i = 30; i < 90; i++) acked.push(await writer.put(`k.${i % 10}`, `b${i}`, { timeoutMs: 15_000 }));
    await waitUntil("the last write through the proxy", () => raw.entries(watchId).at(-1)?.revision === acked.at(-1));

    const revisions = raw.entries(watchId).map((e) => e.revision);
    expect(revisions).toEqual(acked); // every write once, in order (history watch of a fresh bucket)
    expect(raw.of(watchId, "watch.ended")).toEqual([]);
    expect(raw.of(watchId, "watch.initialized")).toHaveLength(1);
    const [moved] = proxiesOn(proxy!, "three");
    expect(moved!.reopens).toBeGreaterThanOrEqual(1);
    expect(moved!.peer).not.toBe(target);
    expect(replicas).toContain(moved!.peer);

    // The client going away releases both sides.
    raw.close();
    await waitUntil("proxy released", () => proxiesOn(proxy!, "three").length === 0);
    await waitUntil("stream released", () => streamsOn(moved!.peer!, "three").length === 0);
    await cluster.restart(target);
  });

  it("ends a watch whose client cannot keep up with WATCH_OVERFLOW carrying the revision to resume from", async () => {
    // 32 keys x history 64 retain every write of the loop below, so the resume finds its revision.
    const kv = await (await clientAt(cluster.ids)).create("big", { replicas: 1, history: 64 });
    const [replica] = placement("big");
    const proxy = cluster.ids.find((id) => id !== replica && cluster.nodes.has(id))!;
    const raw = await rawAt(proxy);
    const started = await raw.request({ op: "watch.start", bucket: "big", filters: [">"], include: "updates", ignoreDeletes: false, metaOnly: false });
    const watchId = (started as { result: { watchId: number } }).result.watchId;
    await waitUntil("proxy open", () => proxiesOn(proxy, "big").length === 1);
    // The client stops reading; writes go on until the proxy gives up on it (bounded).
    const socket = (raw.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const value = new Uint8Array(64 * 1024).fill(7);
    let last = 0;
    for (let i = 0; i < 2000 && proxiesOn(proxy, "big").length > 0; i++) last = await kv.put(`k.${i % 32}`, value);
    expect(proxiesOn(proxy, "big")).toHaveLength(0);
    socket.resume();
    await waitUntil("watch.ended", () => raw.of(watchId, "watch.ended").length === 1);
    const [ended] = raw.of(watchId, "watch.ended") as Extract<Push, { push: "watch.ended" }>[];
    expect(ended!.error.code).toBe("WATCH_OVERFLOW");
    const delivered = raw.entries(watchId).map((e) => e.revision);
    for (let i = 1; i < delivered.length; i++) expect(delivered[i]).toBe(delivered[i - 1]! + 1);
    const initialized = raw.of(watchId, "watch.initialized")[0] as Extract<Push, { push: "watch.initialized" }>;
    const resumeFrom = ended!.error.data!.resumeFromRevision!;
    expect(resumeFrom).toBe((delivered.at(-1) ?? initialized.revision) + 1);
    expect(resumeFrom).toBeLessThanOrEqual(last);
    await waitUntil("stream released on the replica", () => streamsOn(replica!, "big").length === 0);

    // Resuming there continues exactly after what was delivered.
    const again = await (await (await clientAt([proxy])).open("big")).watch({ resumeFromRevision: resumeFrom, include: "updates" });
    const first = await again[Symbol.asyncIterator]().next();
    expect(first.value?.revision).toBe(resumeFrom);
    await again.stop();
  });

  it("bounds what a replica buffers for a proxy that falls behind: WATCH_OVERFLOW with the revision to resume from", async () => {
    const kv = await (await clientAt(cluster.ids)).create("slow", { replicas: 1, history: 64 });
    const [replica] = placement("slow");
    const proxy = cluster.ids.find((id) => id !== replica && cluster.nodes.has(id))!;
    const raw = await rawAt(proxy);
    const started = await raw.request({ op: "watch.start", bucket: "slow", filters: [">"], include: "updates", ignoreDeletes: false, metaOnly: false });
    const watchId = (started as { result: { watchId: number } }).result.watchId;
    await waitUntil("stream open", () => streamsOn(replica!, "slow").length === 1);
    // The replica's answers to the proxy's polls crawl: its stream buffer fills up (bounded loop).
    cluster.hub.delay(replica!, proxy, 1000);
    const value = new Uint8Array(64 * 1024).fill(9);
    let last = 0;
    try {
      for (let i = 0; i < 200 && !streamsOn(replica!, "slow")[0]?.ended; i++) last = await kv.put(`k.${i % 32}`, value);
      expect(streamsOn(replica!, "slow")[0]?.ended ?? true).toBe(true);
    } finally {
      cluster.hub.delay(replica!, proxy, 0);
    }
    await waitUntil("watch.ended", () => raw.of(watchId, "watch.ended").length === 1);
    const [ended] = raw.of(watchId, "watch.ended") as Extract<Push, { push: "watch.ended" }>[];
    expect(ended!.error.code).toBe("WATCH_OVERFLOW");
    const delivered = raw.entries(watchId).map((e) => e.revision);
    for (let i = 1; i < delivered.length; i++) expect(delivered[i]).toBe(delivered[i - 1]! + 1);
    const initialized = raw.of(watchId, "watch.initialized")[0] as Extract<Push, { push: "watch.initialized" }>;
    expect(ended!.error.data!.resumeFromRevision).toBe((delivered.at(-1) ?? initialized.revision) + 1);
    expect(ended!.error.data!.resumeFromRevision).toBeLessThanOrEqual(last);
    await waitUntil("stream and proxy released", () => streamsOn(replica!, "slow").length === 0 && proxiesOn(proxy, "slow").length === 0);
  });
});
