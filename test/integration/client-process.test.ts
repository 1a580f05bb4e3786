/**
 * Goal: the client (src/client) against separate node processes, as users run it (issue 5): every API
 * call and error code (the suite shared with the in-process test), TTL and expiry markers end to end,
 * iterators and watches that end early release what the server held for them, WATCH_OVERFLOW under
 * real socket backpressure, and failover of a write stream and of a watch when their node is kill -9'd
 * or SIGSTOPped: every write ends ok or TIMEOUT, acknowledged ones are applied exactly once, TIMEOUT ones
 * at most once, and the watch delivers the bucket's history with no gap and no duplicate.
 * Method: one 3-node cluster of real processes on loopback (test/support/process-cluster.ts) with a
 * client token and a small per-socket watch buffer; faults by the pids this test started. Server-side
 * resources are read from `cluster.status` (per node: connections, watches, requests in progress,
 * most bytes queued to one client socket).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";
import type { ConnectOptions, KvEntry, KvSkippedRange, KvWatchEntry } from "../../src/client/types.ts";
import { decodeFrame, encodeFrame, type DecodedFrame } from "../../src/client/codec.ts";
import { CairnError } from "../../src/shared/errors.ts";
import type { Push, WireClientStats, WireClusterStatus } from "../../src/shared/protocol.ts";
import { checkErrorCodes, checkEveryCall, collect, connectTo, expectSameRevisions, waitFor, type ClientTarget } from "../support/client-api-suite.ts";
import { freePort, ProcessCluster } from "../support/process-cluster.ts";

const TOKEN = "client-process-token";
/** Per client socket (limits.watchBufferBytesMax): small, so the overflow test needs only a few MiB. */
const WATCH_BUFFER_BYTES_MAX = 256 * 1024;
const IDS = ["n1", "n2", "n3"] as const;

let cluster: ProcessCluster;
const connections: Connection[] = [];

function target(): ClientTarget {
  return {
    ids: IDS,
    urls: cluster.urls,
    token: TOKEN,
    pause: (id) => cluster.stopSignal(id),
    resume: (id) => cluster.contSignal(id),
    deadUrl: async () => `ws://127.0.0.1:${await freePort()}`,
  };
}

function open(options: Partial<ConnectOptions> = {}): Promise<Connection> {
  return connectTo(target(), options, connections);
}

function urlOf(id: string): string {
  return cluster.node(id).clientUrl;
}

async function clientStats(nc: Connection, id: string): Promise<WireClientStats> {
  const status = (await nc.request("cluster.status", {})) as WireClusterStatus;
  const clients = status.nodes.find((n) => n.id === id)?.clients;
  if (!clients) throw new Error(`cluster.status has no client stats for ${id}: ${JSON.stringify(status.nodes)}`);
  return clients;
}

beforeAll(async () => {
  cluster = await ProcessCluster.start({ nodes: 3, clientToken: TOKEN, limits: { watchBufferBytesMax: WATCH_BUFFER_BYTES_MAX } });
});

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => undefined);
  await cluster?.stop();
});

describe("client against 3 node processes", () => {
  it("every call and option of the API", async () => {
    await checkEveryCall(target());
  });

  it("every error code a client can meet, with NATS's wording (TIMEOUT: two nodes SIGSTOPped)", async () => {
    await checkErrorCodes(target());
  });

  it("TTL and expiry markers: proposed by the bucket leader, seen by watchers and history, identical on every replica", async () => {
    const nc = await open();
    const kvm = new Kvm(nc);
    // Bucket ttl 1.5 s with 1 s markers; per-key TTLs in a bucket whose markers live 30 s.
    const aged = await kvm.create("ttl-bucket", { history: 5, ttlMs: 1500, markerTtlMs: 1000 });
    const keyed = await kvm.create("ttl-keys", { history: 5, markerTtlMs: 30_000 });
    expect((await aged.status()).ttlMs).toBe(1500);
    const agedWatch = await aged.watch({ include: "updates" });
    const keyedWatch = await keyed.watch({ include: "updates" });
    const agedSeen: KvWatchEntry[] = [];
    const keyedSeen: KvWatchEntry[] = [];
    const agedDone = (async () => {
      for await (const e of agedWatch) agedSeen.push(e);
    })();
    const keyedDone = (async () => {
      for await (const e of keyedWatch) keyedSeen.push(e);
    })();
    for (const done of [agedDone, keyedDone]) done.catch(() => undefined); // awaited at the end

    const oldPut = await aged.put("old", "v1");
    const lock = await keyed.create("lock", "me", { ttlMs: 1000 });
    const keep = await keyed.put("keep", "forever");
    const shortPurge = await keyed.purge("gone", { ttlMs: 1000 });
    expect(await keyed.create("renewed", "a", { ttlMs: 1000 })).toBe(shortPurge + 1);
    const renewed = await keyed.put("renewed", "b"); // a later write without TTL makes the key permanent

    // Expiry of the latest record appends a PURGE marker (a new revision) that watchers and history see.
    const agedMarker = await waitFor("the bucket-ttl expiry marker of 'old'", async () => {
      const m = await aged.get("old", { includeDeleted: true });
      return m?.operation === "PURGE" ? m : undefined;
    });
    expect(agedMarker.revision).toBe(oldPut + 1);
    expect(await aged.get("old")).toBeNull();
    const lockMarker = await waitFor("the per-key expiry marker of 'lock'", async () => {
      const m = await keyed.get("lock", { includeDeleted: true });
      return m?.operation === "PURGE" ? m : undefined;
    });
    expect(lockMarker.revision).toBeGreaterThan(renewed);
    expect((await collect(keyed.history({ key: "lock" }))).map((e) => [e.revision, e.operation])).toEqual([[lockMarker.revision, "PURGE"]]);
    // create succeeds on a key whose latest record is a marker.
    expect(await keyed.create("lock", "mine now")).toBeGreaterThan(lockMarker.revision);

    // The purge marker with its own TTL goes silently after 1 s (the bucket's markers live 30 s).
    await waitFor("the purge marker of 'gone' to expire", async () => ((await keyed.get("gone", { includeDeleted: true })) === null ? true : undefined));
    // The bucket-ttl marker goes after markerTtl, silently.
    await waitFor("the expiry marker of 'old' to go", async () => ((await aged.get("old", { includeDeleted: true })) === null ? true : undefined));
    expect(await collect(aged.history())).toEqual([]);
    expect((await keyed.get("keep"))?.revision).toBe(keep);
    expect((await keyed.get("renewed"))?.string()).toBe("b");
    expect(await collect(keyed.keys())).toEqual(expect.arrayContaining(["keep", "renewed", "lock"]));

    // Watchers saw the writes and the markers, never the silent removals.
    const finalAged = (await aged.status()).revision;
    const finalKeyed = (await keyed.status()).revision;
    await waitFor("watchers to reach the last revisions", async () =>
      // (What the loops consumed, not lastRevision: that counts entries still buffered for them.)
      (agedSeen.at(-1)?.revision ?? 0) >= finalAged && (keyedSeen.at(-1)?.revision ?? 0) >= finalKeyed ? true : undefined,
    );
    expect(agedSeen.map((e) => `${e.revision}:${e.operation}:${e.key}`)).toEqual([`${oldPut}:PUT:old`, `${oldPut + 1}:PURGE:old`]);
    expect(keyedSeen.filter((e) => e.key === "lock").map((e) => e.operation)).toEqual(["PUT", "PURGE", "PUT"]);
    expect(keyedSeen.find((e) => e.key === "lock" && e.operation === "PURGE")?.revision).toBe(lockMarker.revision);
    expect(keyedSeen.filter((e) => e.key === "gone").map((e) => e.operation)).toEqual(["PURGE"]);
    await agedWatch.stop();
    await keyedWatch.stop();
    await Promise.all([agedDone, keyedDone]);

    // Every replica holds the same records, markers and their leader timestamps included: expiry is a
    // replicated command from the bucket leader, not each replica's clock.
    const views: string[] = [];
    for (const id of IDS) {
      const one = await open({ servers: [urlOf(id)], discoverServers: false });
      const replica = await new Kvm(one).open("ttl-keys");
      const snapshot = await waitFor(`replica ${id} to apply revision ${finalKeyed}`, async () => {
        const records = await collect(replica.history({ consistency: "stale" }));
        return records.some((r) => r.revision >= finalKeyed) ? records : undefined;
      });
      views.push(JSON.stringify(snapshot.map((r) => [r.revision, r.key, r.operation, r.created.getTime(), r.string()])));
      await one.close();
    }
    expect(views[1]).toBe(views[0]);
    expect(views[2]).toBe(views[0]);
  });

  it("iterators and watches that end early release what the server held for them", async () => {
    const id = "n2";
    const nc = await open({ servers: [urlOf(id)], discoverServers: false });
    const kv = await new Kvm(nc).create("early", { history: 5 });
    for (let i = 0; i < 30; i++) await kv.put(`k.${String(i).padStart(2, "0")}`, String(i));
    const before = await clientStats(nc, id);
    const sent = vi.spyOn(nc, "request");
    const pages = (op: string) => sent.mock.calls.filter((call) => call[0] === op).length;

    // keys(): breaking after 7 keys of pages of 5 fetched exactly 2 pages; history(): 1 page.
    let n = 0;
    for await (const _ of kv.keys(">", { pageSize: 5 })) if (++n === 7) break;
    expect(pages("kv.keys")).toBe(2);
    n = 0;
    for await (const _ of kv.history({ pageSize: 5 })) if (++n === 3) break;
    expect(pages("kv.history")).toBe(1);
    sent.mockRestore();

    // Each way of leaving a watch ends it on the server before the call returns.
    for (const include of ["last", "history", "updates"] as const) {
      const w = await kv.watch({ include });
      expect((await clientStats(nc, id)).watches, include).toBe(before.watches + 1);
      if (include === "updates") await kv.put("k.live", "x");
      for await (const _ of w) break;
      expect((await clientStats(nc, id)).watches, include).toBe(before.watches);
    }
    const thrown = await kv.watch();
    await expect(
      (async () => {
        for await (const _ of thrown) throw new Error("consumer failed");
      })(),
    ).rejects.toThrow("consumer failed");
    expect((await clientStats(nc, id)).watches).toBe(before.watches);
    const stopped = await kv.watch({ include: "updates" });
    await stopped.stop();
    expect((await clientStats(nc, id)).watches).toBe(before.watches);

    // Closing a connection releases its watches and the connection itself.
    const other = await open({ servers: [urlOf(id)], discoverServers: false });
    const otherKv = await new Kvm(other).open("early");
    for (let i = 0; i < 5; i++) await otherKv.watch({ key: `k.${i}.>`, include: "updates" });
    expect(await clientStats(nc, id)).toMatchObject({ watches: before.watches + 5, connections: before.connections + 1 });
    await other.close();
    await waitFor("the server to drop the closed connection and its watches", async () => {
      const s = await clientStats(nc, id);
      return s.watches === before.watches && s.connections === before.connections ? s : undefined;
    });
    // Nothing is left in progress but this status request itself.
    expect((await clientStats(nc, id)).requestsInProgress).toBe(1);
    expect(typeof (await kv.put("after", "ok"))).toBe("number");
  });

  it("WATCH_OVERFLOW under real backpressure: a socket that stops reading loses its watch, nothing else does", async () => {
    const id = "n3";
    const nc = await open({ servers: [urlOf(id)], discoverServers: false });
    const kv = await new Kvm(nc).create("flood", { history: 1 });
    const start = await kv.put("flood.start", "0");
    const base = await clientStats(nc, id);
    // A healthy watcher on the same node (metaOnly: its entries are small and it keeps reading).
    const skipped: KvSkippedRange[] = [];
    const connection: string[] = [];
    void (async () => {
      for await (const event of nc.status()) connection.push(event.type);
    })();
    const healthy = await kv.watch({ include: "updates", metaOnly: true, onSkipped: (range) => skipped.push(range) });
    const healthySeen: number[] = [];
    const healthyDone = (async () => {
      for await (const e of healthy) healthySeen.push(e.revision);
    })();
    healthyDone.catch(() => undefined); // awaited at the end
    // A raw protocol client that stops reading its socket right after its watch started.
    const raw = await RawWatchClient.open(urlOf(id), TOKEN, "flood");
    const before = await clientStats(nc, id);
    expect(before.watches).toBe(base.watches + 2);

    // Write 64 KiB values until the server ends the raw watch (bounded: 64 MiB at most).
    const value = new Uint8Array(64 * 1024).fill(0x61);
    let writes = 0;
    let stats = before;
    while (stats.watches === base.watches + 2) {
      if (writes >= 1024) throw new Error(`no WATCH_OVERFLOW after ${writes} writes of 64 KiB: ${JSON.stringify(stats)}`);
      await Promise.all(Array.from({ length: 8 }, (_, i) => kv.put(`flood.${i}`, value)));
      writes += 8;
      stats = await clientStats(nc, id);
    }
    expect(stats.watches).toBe(base.watches + 1);
    // Bounded: what the node queues to the stalled socket stays within the limit plus one frame, also
    // while writes go on.
    const frameSlack = 2 * value.length;
    expect(stats.bufferedBytesMax).toBeLessThanOrEqual(WATCH_BUFFER_BYTES_MAX + frameSlack);
    for (let i = 0; i < 8; i++) await Promise.all(Array.from({ length: 8 }, (_, j) => kv.put(`flood.${j}`, value)));
    const after = await clientStats(nc, id);
    expect(after.bufferedBytesMax).toBeLessThanOrEqual(WATCH_BUFFER_BYTES_MAX + frameSlack);
    expect(after.watches).toBe(base.watches + 1);

    // The stalled client reads again: every entry up to the overflow, in order, then WATCH_OVERFLOW
    // with the revision to resume from.
    const pushes = await raw.drain();
    const ended = pushes.at(-1);
    expect(ended?.push).toBe("watch.ended");
    const error = (ended as Extract<Push, { push: "watch.ended" }>).error;
    expect(error.code).toBe("WATCH_OVERFLOW");
    const delivered = pushes.flatMap((p) => (p.push === "watch.entries" ? p.entries.map((e) => e.revision) : []));
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered).toEqual(Array.from({ length: delivered.length }, (_, i) => start + 1 + i));
    expect(error.data?.resumeFromRevision).toBe(delivered.at(-1)! + 1);
    raw.close();

    // The node and the other watcher are unaffected: every revision reached it, no error.
    const last = await kv.put("flood.end", "1");
    await waitFor("the healthy watcher to consume the last write", async () => ((healthySeen.at(-1) ?? 0) >= last ? true : undefined));
    // (Had its connection dropped, the resumed watch could not replay overwritten records: those
    // would show in `skipped`.)
    const missing = Array.from({ length: last - start }, (_, i) => start + 1 + i).filter((r) => !healthySeen.includes(r));
    expect({ missing, skipped, connection }).toEqual({ missing: [], skipped: [], connection: [] });
    expect(healthySeen).toEqual(Array.from({ length: last - start }, (_, i) => start + 1 + i));
    await healthy.stop();
    await healthyDone;
    expect((await kv.get("flood.end"))?.revision).toBe(last);
  });

  for (const fault of ["kill -9", "SIGSTOP"] as const) {
    it(`${fault} of the bucket leader serving a write stream and a watch: ok or TIMEOUT, exactly once, no gap`, async () => {
      await failover(fault);
    });
  }
});

/**
 * A write stream (4 lanes, unique values) and an "updates" watch, both through the bucket leader,
 * which then gets the fault; writes go on through the others. Checks every outcome against the
 * bucket's history and the watch's delivery against the same history.
 */
async function failover(fault: "kill -9" | "SIGSTOP"): Promise<void> {
  try {
    await failoverRun(fault);
  } catch (error) {
    // The nodes' last log lines say what a failed failover looked like from inside.
    for (const id of IDS) console.error(`--- ${id} (${cluster.node(id).process ? "running" : "exited"}) ---\n${cluster.node(id).log.slice(-25).join("\n")}`);
    throw error;
  }
}

async function failoverRun(fault: "kill -9" | "SIGSTOP"): Promise<void> {
  const name = fault === "kill -9" ? "failover-kill" : "failover-stop";
  const admin = await open();
  const adminKv = await new Kvm(admin).create(name, { history: 64, replicas: 3 });
  const victim = await waitFor("a bucket leader", async () => (await adminKv.status()).leader ?? undefined);
  const others = IDS.filter((id) => id !== victim);
  // pingIntervalMs: a stopped node keeps its sockets open; the ping notices it.
  const nc = await open({ servers: [urlOf(victim), ...others.map(urlOf)], noRandomize: true, pingIntervalMs: 300, timeoutMs: 10_000 });
  expect(nc.info?.node).toBe(victim);
  const kv = await new Kvm(nc).open(name);
  // Half the lanes write through the other nodes: records keep coming while the victim's clients
  // fail over, so the resumed watch has to catch up.
  const bystander = await open({ servers: others.map(urlOf), noRandomize: true, timeoutMs: 10_000 });
  const bystanderKv = await new Kvm(bystander).open(name);
  const watcher = await kv.watch({ include: "updates" });
  const delivered: KvWatchEntry[] = [];
  const watching = (async () => {
    for await (const e of watcher) delivered.push(e);
  })();
  watching.catch(() => undefined); // awaited below; no unhandled rejection if the test fails first

  const LANES = 4;
  const PER_LANE_MAX = 60; // under the bucket's history of 64: the history keeps every record
  const outcomes = new Map<string, number | "TIMEOUT">();
  const failures: unknown[] = [];
  let acked = 0;
  let stopAfter = Number.POSITIVE_INFINITY;
  const lane = async (l: number): Promise<void> => {
    for (let i = 0; i < PER_LANE_MAX && acked < stopAfter; i++) {
      const value = `lane${l}-${i}`;
      try {
        outcomes.set(value, await (l % 2 === 0 ? kv : bystanderKv).put(`w.${l}`, value));
        acked++;
      } catch (error) {
        if (error instanceof CairnError && error.code === "TIMEOUT") outcomes.set(value, "TIMEOUT");
        else failures.push(error);
      }
    }
  };
  const lanes = Array.from({ length: LANES }, (_, l) => lane(l));
  const victimLanes = Math.ceil(LANES / 2);
  await waitFor("writes before the fault", async () => (acked >= 40 ? true : undefined), 30_000, 5);
  const ackedAtFault = acked;
  if (fault === "kill -9") await cluster.kill9(victim);
  else cluster.stopSignal(victim);
  stopAfter = ackedAtFault + 80;
  try {
    await Promise.all(lanes);
    expect(nc.info?.node).not.toBe(victim);
  } finally {
    // Whatever happened, the victim runs again for the tests that follow.
    if (fault === "SIGSTOP") cluster.contSignal(victim);
    else await cluster.restart(victim);
  }
  expect(failures).toEqual([]);
  expect(acked).toBeGreaterThan(ackedAtFault);
  // Let the victim work off whatever it still held (a thawed node may process old frames: their
  // request ids are deduplicated), then read the outcome.
  const probe = await open({ servers: [urlOf(victim)], discoverServers: false });
  const fence = await adminKv.put("fence", "after the fault", { timeoutMs: 30_000 });
  await waitFor(`${victim} to apply revision ${fence} and finish its requests`, async () => {
    const seen = await (await new Kvm(probe).open(name)).get("fence", { consistency: "stale" });
    if (seen?.revision !== fence) return undefined;
    return (await clientStats(probe, victim)).requestsInProgress === 1 ? true : undefined;
  });
  const history = await collect(adminKv.history({ key: "w.>" }));
  const counts = new Map<string, KvEntry[]>();
  for (const e of history) counts.set(e.string(), [...(counts.get(e.string()) ?? []), e]);
  for (const [value, outcome] of outcomes) {
    const copies = counts.get(value) ?? [];
    if (outcome === "TIMEOUT") expect(copies.length, `${value} (TIMEOUT)`).toBeLessThanOrEqual(1);
    else expect(copies.map((e) => e.revision), `${value} (acknowledged)`).toEqual([outcome]);
  }
  for (const value of counts.keys()) expect(outcomes.has(value), `unexpected value ${value}`).toBe(true);
  const timeouts = [...outcomes.values()].filter((o) => o === "TIMEOUT").length;

  // The watch resumed elsewhere and delivered exactly the bucket's history: no gap, no duplicate.
  const all = await collect(adminKv.history());
  const lastRevision = all.at(-1)!.revision;
  // Consumed by the loop, not just buffered (stop() drops the buffer).
  await waitFor("the watcher to deliver the last revision", async () => ((delivered.at(-1)?.revision ?? 0) >= lastRevision ? true : undefined));
  await watcher.stop();
  await watching;
  expectSameRevisions(delivered, all);
  console.log(
    `${fault} of ${victim}: ${outcomes.size} writes (${victimLanes} of ${LANES} lanes through it), ${acked} acknowledged ` +
      `(${ackedAtFault} before the fault), ${timeouts} TIMEOUT; watch delivered ${delivered.length} entries`,
  );
  await probe.close();
  // No node died on the way (a thawed leader working off stale frames once crashed here).
  expect(IDS.filter((id) => cluster.node(id).process === null)).toEqual([]);
}

/** A protocol client on a raw socket that stops reading right after its watch started. */
class RawWatchClient {
  private readonly frames: DecodedFrame[] = [];
  private waiting: (() => void) | null = null;

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      const frame = decodeFrame(new Uint8Array(data));
      this.frames.push(frame);
      // Stop reading at once when the watch.start answer arrives: the kernel buffers, then the
      // server's socket buffer, fill up behind it.
      if (frame.kind === "response" && frame.frame.id === 2) ws.pause();
      this.waiting?.();
    });
  }

  static async open(url: string, token: string, bucket: string): Promise<RawWatchClient> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const client = new RawWatchClient(ws);
    ws.send(encodeFrame({ id: 1, op: "hello", version: 1, token }));
    ws.send(encodeFrame({ id: 2, op: "watch.start", bucket, filters: [">"], include: "updates", ignoreDeletes: false, metaOnly: false }));
    await client.until("the watch.start answer", () => client.frames.some((f) => f.kind === "response" && f.frame.id === 2));
    const answer = client.frames.find((f) => f.kind === "response" && f.frame.id === 2)!;
    if (answer.kind !== "response" || !answer.frame.ok) throw new Error(`watch.start failed: ${JSON.stringify(answer)}`);
    return client;
  }

  private async until(what: string, done: () => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`raw client: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Reads again until the watch ended; returns the watch's pushes in order. */
  async drain(): Promise<Push[]> {
    this.ws.resume();
    const pushes = () => this.frames.flatMap((f) => (f.kind === "push" ? [f.frame] : []));
    await this.until("watch.ended", () => pushes().some((p) => p.push === "watch.ended"));
    return pushes();
  }

  close(): void {
    this.ws.terminate();
  }
}
