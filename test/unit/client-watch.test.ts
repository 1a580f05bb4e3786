/**
 * Goal: the client watch: initial part then live entries with isUpdate, `initialized`, resume on another
 * node after the first dies (resumeFromRevision = last delivered + 1, no gap, no duplicate even when
 * the new node resends), watch.skipped surfaced through onSkipped, the bounded buffer ending with
 * WATCH_OVERFLOW + resumeFromRevision, stop()/break sending watch.stop, server-side endings.
 * Method: fake servers sharing one FakeKv (test/support/fake-server.ts); the test writes records
 * straight into the shared model, which pushes them to live watches like committed writes would.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";
import type { KV, KvSkippedRange, KvWatchEntry, KvWatcher } from "../../src/client/types.ts";
import { CairnError } from "../../src/shared/errors.ts";
import { FakeKv, FakeServer } from "../support/fake-server.ts";

const servers: FakeServer[] = [];
const connections: Connection[] = [];

async function cluster(count: number): Promise<FakeServer[]> {
  const kv = new FakeKv();
  kv.bucket("b");
  const list: FakeServer[] = [];
  for (let i = 1; i <= count; i++) list.push(await FakeServer.start({ kv, node: `n${i}` }));
  servers.push(...list);
  return list;
}

async function open(urls: string[]): Promise<{ nc: Connection; kv: KV }> {
  const nc = await connect({ servers: urls, noRandomize: true, pingIntervalMs: 0, reconnectDelayMsMin: 5, reconnectDelayMsMax: 20 });
  connections.push(nc);
  return { nc, kv: await new Kvm(nc).open("b") };
}

/** Takes exactly n entries from the watcher (bounded: never more). */
async function take(iterator: AsyncIterator<KvWatchEntry>, n: number): Promise<KvWatchEntry[]> {
  const out: KvWatchEntry[] = [];
  for (let i = 0; i < n; i++) {
    const { value, done } = await iterator.next();
    if (done) break;
    out.push(value);
  }
  return out;
}

function summary(entries: KvWatchEntry[]): string[] {
  return entries.map((e) => `${e.revision}:${e.operation}:${e.key}=${e.string()}${e.isUpdate ? "" : " (initial)"}`);
}

afterEach(async () => {
  for (const nc of connections.splice(0)) await nc.close();
  for (const s of servers.splice(0)) await s.kill();
});

describe("watch", () => {
  it("delivers the latest value of each key, signals initialized, then live updates", async () => {
    const [a] = await cluster(1);
    a!.kv.write("b", "x", "1");
    a!.kv.write("b", "y", "2");
    a!.kv.write("b", "x", "3");
    const { kv } = await open([a!.url]);
    const w = await kv.watch();
    await w.initialized;
    const it = w[Symbol.asyncIterator]();
    expect(summary(await take(it, 2))).toEqual(["2:PUT:y=2 (initial)", "3:PUT:x=3 (initial)"]);
    a!.kv.write("b", "z", "4");
    a!.kv.write("b", "x", "", "DEL");
    expect(summary(await take(it, 2))).toEqual(["4:PUT:z=4", "5:DEL:x="]);
    expect(w.lastRevision).toBe(5);
    await w.stop();
  });

  it("sends filters and options as given, and delivers created/delta/length", async () => {
    const [a] = await cluster(1);
    a!.kv.write("b", "a.1", "hello");
    a!.kv.write("b", "b.1", "skip");
    const { kv } = await open([a!.url]);
    const w = await kv.watch({ key: ["a.>", "c.*"], include: "history", ignoreDeletes: true, metaOnly: true });
    const start = a!.ops("watch.start")[0]!;
    expect(start).toMatchObject({ bucket: "b", filters: ["a.>", "c.*"], include: "history", ignoreDeletes: true, metaOnly: true });
    expect(start["resumeFromRevision"]).toBeUndefined();
    const [entry] = await take(w[Symbol.asyncIterator](), 1);
    expect(entry).toMatchObject({ bucket: "b", key: "a.1", revision: 1, operation: "PUT", delta: 0, length: 5, isUpdate: false });
    expect(entry!.value).toEqual(new Uint8Array(0));
    expect(entry!.created).toBeInstanceOf(Date);
    await w.stop();
  });

  it("resumes on another node after its node dies: no gap, no duplicate", async () => {
    const [a, b] = await cluster(2);
    a!.kv.write("b", "k", "1");
    const { nc, kv } = await open([a!.url, b!.url]);
    const w = await kv.watch({ include: "history" });
    const it = w[Symbol.asyncIterator]();
    a!.kv.write("b", "k", "2");
    a!.kv.write("b", "k", "3");
    expect(summary(await take(it, 3))).toEqual(["1:PUT:k=1 (initial)", "2:PUT:k=2", "3:PUT:k=3"]);
    await a!.kill();
    // Written while the watcher is away: must arrive exactly once after the resume.
    a!.kv.write("b", "k", "4");
    a!.kv.write("b", "j", "5");
    const resumed = await b!.waitForRequest((r) => r.op === "watch.start");
    expect(resumed["resumeFromRevision"]).toBe(4);
    a!.kv.write("b", "k", "6");
    const after = await take(it, 3);
    expect(summary(after)).toEqual(["4:PUT:k=4", "5:PUT:j=5", "6:PUT:k=6"]);
    expect(after.every((e) => e.isUpdate)).toBe(true);
    expect(nc.info?.node).toBe("n2");
    await w.stop();
  });

  it("an updates watch whose socket drops before watch.initialized resumes after the revision it started at", async () => {
    const [a] = await cluster(1);
    a!.kv.write("b", "k", "1");
    let dropped = false;
    // The first watch.start is answered (start revision 1), then the socket dies before any push.
    a!.handler = (r, conn) => {
      if (r.op !== "watch.start" || dropped) return undefined;
      dropped = true;
      conn.send({ id: r.id, ok: true, result: { watchId: conn.newWatchId(), revision: a!.kv.bucket("b").revision } });
      return "drop";
    };
    const { kv } = await open([a!.url]);
    const w = await kv.watch({ include: "updates" });
    // Written after watch() returned, while the server-side watch never went live.
    a!.kv.write("b", "k", "2");
    a!.kv.write("b", "j", "3");
    a!.dropConnections();
    const resumed = await a!.waitForRequest((r) => r.op === "watch.start" && r["resumeFromRevision"] !== undefined);
    expect(resumed["resumeFromRevision"]).toBe(2);
    expect(resumed["include"]).toBe("updates");
    await w.initialized;
    a!.kv.write("b", "k", "4");
    const it = w[Symbol.asyncIterator]();
    expect(summary(await take(it, 3))).toEqual(["2:PUT:k=2", "3:PUT:j=3", "4:PUT:k=4"]);
    await w.stop();
  });

  it("drops entries at or below the last delivered revision when a resumed node resends them", async () => {
    const [a, b] = await cluster(2);
    // n2 ignores resumeFromRevision and replays the whole history (a misbehaving or racing node).
    b!.handler = (r) => {
      if (r.op === "watch.start") delete r["resumeFromRevision"];
      if (r.op === "watch.start") r["include"] = "history";
      return undefined;
    };
    const { kv } = await open([a!.url, b!.url]);
    const w = await kv.watch({ include: "updates" });
    await w.initialized;
    const it = w[Symbol.asyncIterator]();
    a!.kv.write("b", "k", "1");
    a!.kv.write("b", "k", "2");
    expect(summary(await take(it, 2))).toEqual(["1:PUT:k=1", "2:PUT:k=2"]);
    await a!.kill();
    await b!.waitForRequest((r) => r.op === "watch.start");
    b!.kv.write("b", "k", "3");
    expect(summary(await take(it, 1))).toEqual(["3:PUT:k=3"]);
    await w.stop();
  });

  it("reports records removed by limits while it was away through onSkipped, and goes on", async () => {
    const [a, b] = await cluster(2);
    const skipped: KvSkippedRange[] = [];
    const { kv } = await open([a!.url, b!.url]);
    const w = await kv.watch({ include: "updates", onSkipped: (range) => skipped.push(range) });
    const it = w[Symbol.asyncIterator]();
    a!.kv.write("b", "k", "1");
    expect(summary(await take(it, 1))).toEqual(["1:PUT:k=1"]);
    await a!.kill();
    a!.kv.write("b", "k", "2");
    a!.kv.write("b", "k", "3");
    a!.kv.write("b", "k", "4");
    a!.kv.trim("b", (r) => r.revision <= 3); // history limit removed 2 and 3 before the watcher came back
    expect(summary(await take(it, 1))).toEqual(["4:PUT:k=4"]);
    expect(skipped).toEqual([{ fromRevision: 2, toRevision: 3 }]);
    expect(w.lastRevision).toBe(4);
    await w.stop();
  });

  it("resumes after the server ends the watch with a retryable error (node shutting down)", async () => {
    const [a] = await cluster(1);
    const { kv } = await open([a!.url]);
    const w = await kv.watch({ include: "updates" });
    const it = w[Symbol.asyncIterator]();
    a!.kv.write("b", "k", "1");
    expect(summary(await take(it, 1))).toEqual(["1:PUT:k=1"]);
    const start = a!.ops("watch.start")[0]!;
    const conn = [...a!.conns][0]!;
    for (const watch of [...a!.kv.watches]) if (watch.conn === conn) a!.kv.watches.delete(watch);
    conn.push({ push: "watch.ended", watchId: 1, error: { code: "UNAVAILABLE", message: "node shutting down" } });
    const restart = await a!.waitForRequest((r) => r.op === "watch.start" && r.id !== start.id);
    expect(restart["resumeFromRevision"]).toBe(2);
    a!.kv.write("b", "k", "2");
    expect(summary(await take(it, 1))).toEqual(["2:PUT:k=2"]);
    await w.stop();
  });

  it("ends with the server's error when the watch ends for good (bucket deleted)", async () => {
    const [a] = await cluster(1);
    const { kv } = await open([a!.url]);
    const w = await kv.watch({ include: "updates" });
    await w.initialized;
    [...a!.conns][0]!.push({ push: "watch.ended", watchId: 1, error: { code: "BUCKET_NOT_FOUND", message: "bucket not found" } });
    const it = w[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toMatchObject({ code: "BUCKET_NOT_FOUND" });
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it("is bounded: a consumer that falls behind gets the buffered entries, then WATCH_OVERFLOW with resumeFromRevision", async () => {
    const [a] = await cluster(1);
    for (let i = 1; i <= 5; i++) a!.kv.write("b", `k${i}`, String(i));
    const { kv } = await open([a!.url]);
    const w = await kv.watch({ include: "history", bufferEntriesMax: 3 });
    // The initial part (5 records) cannot fit: initialized rejects with the overflow.
    const overflow = await w.initialized.then(
      () => null,
      (error: unknown) => error as CairnError,
    );
    expect(overflow?.code).toBe("WATCH_OVERFLOW");
    expect(overflow?.data.resumeFromRevision).toBe(4);
    const it = w[Symbol.asyncIterator]();
    expect(summary(await take(it, 3)).map((s) => s.split(":")[0])).toEqual(["1", "2", "3"]);
    await expect(it.next()).rejects.toMatchObject({ code: "WATCH_OVERFLOW", data: { resumeFromRevision: 4 } });
    expect(await it.next()).toMatchObject({ done: true });
    const stop = await a!.waitForRequest((r) => r.op === "watch.stop");
    expect(stop["watchId"]).toBe(1);
    // The error's revision resumes exactly where the consumer stopped.
    const again = await kv.watch({ resumeFromRevision: overflow!.data.resumeFromRevision! });
    expect(summary(await take(again[Symbol.asyncIterator](), 2)).map((s) => s.split(":")[0])).toEqual(["4", "5"]);
    await again.stop();
  });

  it("a WATCH_OVERFLOW from the server ends the watch after the delivered entries, with the revision to resume from", async () => {
    const [a] = await cluster(1);
    const { kv } = await open([a!.url]);
    const w = await kv.watch({ include: "updates" });
    await w.initialized;
    a!.kv.write("b", "k", "1");
    a!.kv.write("b", "k", "2");
    const conn = [...a!.conns][0]!;
    for (const watch of [...a!.kv.watches]) if (watch.conn === conn) a!.kv.watches.delete(watch);
    conn.push({ push: "watch.ended", watchId: 1, error: { code: "WATCH_OVERFLOW", message: "watcher could not keep up", data: { resumeFromRevision: 3 } } });
    const it = w[Symbol.asyncIterator]();
    expect(summary(await take(it, 2))).toEqual(["1:PUT:k=1", "2:PUT:k=2"]);
    await expect(it.next()).rejects.toMatchObject({ code: "WATCH_OVERFLOW", data: { resumeFromRevision: 3 } });
    expect(await it.next()).toEqual({ value: undefined, done: true });
    // The watch ended for good: not resumed (a round trip later, the server saw no second watch.start).
    await kv.get("k");
    expect(a!.ops("watch.start")).toHaveLength(1);
  });

  it("stop() sends watch.stop for its watch id, ends the iteration and is idempotent", async () => {
    const [a] = await cluster(1);
    const { kv } = await open([a!.url]);
    const w = await kv.watch({ include: "updates" });
    const it = w[Symbol.asyncIterator]();
    const pending = it.next();
    await w.stop();
    await w.stop();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(a!.ops("watch.stop").map((r) => r["watchId"])).toEqual([1]);
    expect(a!.kv.watches.size).toBe(0);
    a!.kv.write("b", "k", "after stop");
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it("breaking out of for-await stops the watch on the server", async () => {
    const [a] = await cluster(1);
    a!.kv.write("b", "k", "1");
    a!.kv.write("b", "j", "2");
    const { kv } = await open([a!.url]);
    const w: KvWatcher = await kv.watch();
    const seen: number[] = [];
    for await (const e of w) {
      seen.push(e.revision);
      break;
    }
    expect(seen).toEqual([1]);
    expect(a!.ops("watch.stop")).toHaveLength(1);
    expect(a!.kv.watches.size).toBe(0);
  });

  it("ends with CONNECTION_CLOSED when the connection is closed", async () => {
    const [a] = await cluster(1);
    const { nc, kv } = await open([a!.url]);
    const w = await kv.watch({ include: "updates" });
    const it = w[Symbol.asyncIterator]();
    const pending = it.next();
    await nc.close();
    await expect(pending).rejects.toMatchObject({ code: "CONNECTION_CLOSED" });
  });

  it("forces isUpdate after initialization even when a resumed node marks its catch-up as initial", async () => {
    const [a, b] = await cluster(2);
    const { kv } = await open([a!.url, b!.url]);
    const w = await kv.watch({ include: "updates" });
    await w.initialized;
    await a!.kill();
    a!.kv.write("b", "k", "1");
    const it = w[Symbol.asyncIterator]();
    const [entry] = await take(it, 1);
    // n2 sends revision 1 as part of the resumed watch's initial part (isUpdate false on the wire).
    expect(b!.ops("watch.start")[0]!["resumeFromRevision"]).toBe(1);
    expect(entry).toMatchObject({ revision: 1, isUpdate: true });
    await w.stop();
  });
});
