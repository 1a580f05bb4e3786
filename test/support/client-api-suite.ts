/**
 * One test body for the client's whole API and its error codes, run against any 3-node target: the
 * in-process cluster (test/unit/client-cluster.test.ts) and separate node processes
 * (test/integration/client-process.test.ts). The target says how to connect and how to freeze a node.
 *
 * Every bucket has a fresh name per run, so revisions are predictable. Assertions are on outcomes
 * (revisions, entries, codes, messages), never on timing; waits poll a condition with a bound.
 */
import { expect, vi } from "vitest";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";
import type { ConnectOptions, ConnectionStatus, KV, KvEntry, KvWatchEntry, KvWatcher } from "../../src/client/types.ts";
import { CairnError } from "../../src/shared/errors.ts";

export interface ClientTarget {
  /** Node ids, in the order of `urls`. */
  readonly ids: readonly string[];
  readonly urls: readonly string[];
  /** When the nodes require a client token: UNAUTHORIZED is checked too. */
  readonly token?: string;
  /** Freeze a node (SIGSTOP or the in-process equivalent) and thaw it. */
  pause(id: string): void;
  resume(id: string): void;
  /** A ws URL on which nothing listens. */
  deadUrl(): Promise<string>;
}

const text = (s: string) => new TextEncoder().encode(s);

/** Connects with the target's token; the caller closes (or passes `track`). */
export async function connectTo(target: ClientTarget, options: Partial<ConnectOptions> = {}, track?: Connection[]): Promise<Connection> {
  const nc = await connect({
    servers: [...target.urls],
    timeoutMs: 15_000,
    reconnectDelayMsMin: 10,
    reconnectDelayMsMax: 200,
    ...(target.token !== undefined ? { token: target.token } : {}),
    ...options,
  });
  track?.push(nc);
  return nc;
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown> | (() => Promise<unknown>)): Promise<CairnError> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    if (error instanceof CairnError) return error;
    throw error;
  }
  throw new Error("expected a CairnError, the call succeeded");
}

/** Polls `probe` until it returns a value other than undefined (bounded). */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`);
}

/** Takes exactly n entries from a watcher iterator (never more). */
export async function take(iterator: AsyncIterator<KvWatchEntry>, n: number): Promise<KvWatchEntry[]> {
  const out: KvWatchEntry[] = [];
  for (let i = 0; i < n; i++) {
    const { value, done } = await iterator.next();
    if (done) break;
    out.push(value);
  }
  return out;
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const short = (e: KvEntry) => `${e.revision}:${e.operation}:${e.key}${e.operation === "PUT" ? `=${e.string()}` : ""}`;

let runs = 0;
function bucketName(prefix: string): string {
  return `${prefix}-${process.pid}-${++runs}`;
}

/**
 * Every call and option of the API block of issue 5 (connect, Kvm, KV, KvEntry, KvStatus, watch),
 * with the semantics of KV-SEMANTICS.md.
 */
export async function checkEveryCall(target: ClientTarget): Promise<void> {
  // connect: servers as one comma-separated string, every option.
  const nc = await connect({
    servers: target.urls.join(","),
    timeoutMs: 15_000,
    name: "api-suite",
    noRandomize: true,
    discoverServers: true,
    reconnectDelayMsMin: 10,
    reconnectDelayMsMax: 200,
    pingIntervalMs: 1000,
    ...(target.token !== undefined ? { token: target.token } : {}),
  });
  const statusEvents: ConnectionStatus[] = [];
  const statusDone = (async () => {
    for await (const event of nc.status()) statusEvents.push(event);
  })();
  try {
    expect(nc.state).toBe("connected");
    expect(nc.isClosed()).toBe(false);
    expect(nc.timeoutMs).toBe(15_000);
    expect(nc.getServer()).toBe(target.urls[0]);
    expect(nc.info?.node).toBe(target.ids[0]);
    expect(nc.info?.version).toBe(1);
    for (const url of target.urls) expect(nc.getServers()).toContain(url);

    // Kvm: create with every option, idempotent create, open, status, list, update.
    const kvm = new Kvm(nc);
    const name = bucketName("api");
    const options = {
      history: 5,
      ttlMs: 0,
      maxBytes: -1,
      maxValueSize: -1,
      replicas: 3,
      storage: "file" as const,
      markerTtlMs: 0,
      description: "the API block",
      metadata: { owner: "suite" },
      compression: false,
    };
    const kv = await kvm.create(name, options);
    expect(kv.bucket).toBe(name);
    await kvm.create(name, options, { timeoutMs: 10_000 });
    const created = await kv.status({ timeoutMs: 10_000 });
    expect(created).toMatchObject({
      bucket: name,
      values: 0,
      history: 5,
      ttlMs: 0,
      bytes: 0,
      maxBytes: -1,
      maxValueSize: -1,
      replicas: 3,
      storage: "file",
      markerTtlMs: 0,
      description: "the API block",
      metadata: { owner: "suite" },
      compression: false,
      revision: 0,
    });
    expect(target.ids).toContain(created.leader);
    expect(created.replicasInfo.map((r) => r.node).sort()).toEqual([...target.ids].sort());
    expect(created.replicasInfo.filter((r) => r.leader).map((r) => r.node)).toEqual([created.leader]);
    expect((await kvm.open(name, { timeoutMs: 10_000 })).bucket).toBe(name);
    expect((await kvm.status(name, { timeoutMs: 10_000 })).bucket).toBe(name);
    expect((await kvm.list({ timeoutMs: 10_000 })).map((s) => s.bucket)).toContain(name);
    const updated = await kvm.update(name, { history: 10, description: "updated" }, { timeoutMs: 10_000 });
    expect(updated).toMatchObject({ history: 10, description: "updated", metadata: { owner: "suite" }, storage: "file" });

    // put (string and bytes) → revision; get → KvEntry with every field.
    expect(await kv.put("a.b", "value")).toBe(1);
    expect(await kv.put("a.c", text("bytes"))).toBe(2);
    expect(await kv.put("cfg", JSON.stringify({ n: 1, s: "x" }))).toBe(3);
    const e = await kv.get("a.b");
    expect(e).not.toBeNull();
    expect(e!.bucket).toBe(name);
    expect(e!.key).toBe("a.b");
    expect(e!.value).toEqual(text("value"));
    expect(e!.revision).toBe(1);
    expect(e!.created).toBeInstanceOf(Date);
    expect(Number.isFinite(e!.created.getTime())).toBe(true);
    expect(e!.operation).toBe("PUT");
    expect(e!.delta).toBe(0);
    expect(e!.length).toBe(5);
    expect(e!.string()).toBe("value");
    expect((await kv.get("cfg"))!.json()).toEqual({ n: 1, s: "x" });
    expect(() => e!.json()).toThrow(SyntaxError);
    expect(await kv.get("missing")).toBeNull();

    // get options: revision, includeDeleted, consistency (stale reads the replica of the connected node).
    expect(await kv.put("a.b", "second")).toBe(4);
    expect((await kv.get("a.b", { revision: 1 }))?.string()).toBe("value");
    expect(await kv.get("a.b", { revision: 2 })).toBeNull(); // revision 2 belongs to a.c
    expect((await kv.get("a.b", { consistency: "linearizable", timeoutMs: 10_000 }))?.revision).toBe(4);
    const stale = await waitFor("a stale read to see revision 4", async () => {
      const s = await kv.get("a.b", { consistency: "stale" });
      return s?.revision === 4 ? s : undefined;
    });
    expect(stale.string()).toBe("second");

    // create as a lock, update as compare-and-swap.
    const lock = await kv.create("lock", "me");
    expect(lock).toBe(5);
    const cas = await kv.update("lock", "you", lock);
    expect(cas).toBe(6);
    expect(await kv.update("lock", "again", cas, { timeoutMs: 10_000 })).toBe(7);

    // delete / purge, with and without an expected revision.
    expect(await kv.delete("lock", { revision: 7 })).toBe(8);
    expect(await kv.get("lock")).toBeNull();
    const marker = await kv.get("lock", { includeDeleted: true });
    expect(marker).toMatchObject({ operation: "DEL", revision: 8, length: 0 });
    expect(await kv.create("lock", "after delete")).toBe(9);
    expect(await kv.delete("a.c")).toBe(10);
    expect(await kv.purge("a.b", { revision: 4 })).toBe(11);
    expect(await kv.purge("never.written")).toBe(12);
    expect((await kv.get("a.b", { includeDeleted: true }))?.operation).toBe("PURGE");
    expect(await kv.get("a.b", { revision: 1 })).toBeNull(); // purged away

    // keys(): no filter, one filter, several; paging; stale.
    for (let i = 0; i < 7; i++) await kv.put(`k.${i}`, String(i));
    await kv.put("b", "bee");
    const everyKey = ["cfg", "lock", ...Array.from({ length: 7 }, (_, i) => `k.${i}`), "b"];
    expect((await collect(kv.keys())).sort()).toEqual([...everyKey].sort());
    expect(await collect(kv.keys("k.>", { pageSize: 2 }))).toEqual(Array.from({ length: 7 }, (_, i) => `k.${i}`));
    expect((await collect(kv.keys(["k.1", "b", "c.*"]))).sort()).toEqual(["b", "k.1"]);
    expect(await collect(kv.keys("nothing.>"))).toEqual([]);
    const revision = (await kv.status()).revision;
    await waitFor("stale keys to catch up", async () => ((await kv.status()).replicasInfo.every((r) => r.lag === 0) ? true : undefined));
    expect((await collect(kv.keys(">", { consistency: "stale", pageSize: 3, timeoutMs: 10_000 }))).sort()).toEqual([...everyKey].sort());

    // history(): one key (markers included), several, the whole bucket, paged.
    expect((await collect(kv.history({ key: "lock" }))).map(short)).toEqual(["5:PUT:lock=me", "6:PUT:lock=you", "7:PUT:lock=again", "8:DEL:lock", "9:PUT:lock=after delete"]);
    expect((await collect(kv.history({ key: "lock" }))).map((h) => h.delta)).toEqual([4, 3, 2, 1, 0]);
    expect((await collect(kv.history({ key: "lock", pageSize: 2 }))).map((h) => h.revision)).toEqual([5, 6, 7, 8, 9]);
    expect((await collect(kv.history({ key: ["a.*", "never.>"] }))).map(short)).toEqual([
      "2:PUT:a.c=bytes",
      "10:DEL:a.c",
      "11:PURGE:a.b",
      "12:PURGE:never.written",
    ]);
    const whole = await collect(kv.history({ pageSize: 4, consistency: "linearizable" }));
    expect(whole.map((h) => h.revision)).toEqual([...whole.map((h) => h.revision)].sort((a, b) => a - b));
    expect(whole.at(-1)!.revision).toBe(revision);
    expect(await collect(kv.history({ key: "missing" }))).toEqual([]);

    // watch: include last / history / updates, ignoreDeletes, metaOnly, resumeFromRevision, onSkipped.
    const last = await kv.watch({ key: "lock", include: "last", timeoutMs: 10_000 });
    await last.initialized;
    const lastIt = last[Symbol.asyncIterator]();
    expect((await take(lastIt, 1)).map((w) => `${short(w)}${w.isUpdate ? "" : " (initial)"}`)).toEqual(["9:PUT:lock=after delete (initial)"]);
    const hist = await kv.watch({ key: "lock", include: "history" });
    const histIt = hist[Symbol.asyncIterator]();
    expect((await take(histIt, 5)).map((w) => w.revision)).toEqual([5, 6, 7, 8, 9]);
    const noDeletes = await kv.watch({ key: "lock", include: "history", ignoreDeletes: true });
    const noDeletesIt = noDeletes[Symbol.asyncIterator]();
    expect((await take(noDeletesIt, 4)).map((w) => w.revision)).toEqual([5, 6, 7, 9]);
    const updates = await kv.watch({ key: ["lock", "other.*"], include: "updates" });
    await updates.initialized;
    expect(updates.lastRevision).toBe(revision);
    const updatesIt = updates[Symbol.asyncIterator]();
    const meta = await kv.watch({ key: "lock", include: "updates", metaOnly: true });
    await meta.initialized;
    const metaIt = meta[Symbol.asyncIterator]();
    const skipped: unknown[] = [];
    const resumed = await kv.watch({ key: "lock", resumeFromRevision: 7, onSkipped: (range) => skipped.push(range), bufferEntriesMax: 100 });
    const resumedIt = resumed[Symbol.asyncIterator]();
    expect((await take(resumedIt, 3)).map((w) => w.revision)).toEqual([7, 8, 9]);
    // A resume point beyond the bucket's revision: nothing before it, also among live changes.
    const future = await kv.watch({ key: "lock", resumeFromRevision: revision + 3 });
    await future.initialized;
    const live = await kv.put("lock", "live value");
    await kv.put("other.1", "o");
    await kv.delete("lock");
    expect((await take(lastIt, 2)).map((w) => `${short(w)}:${w.isUpdate}`)).toEqual([`${live}:PUT:lock=live value:true`, `${live + 2}:DEL:lock:true`]);
    expect((await take(histIt, 1)).map((w) => w.revision)).toEqual([live]);
    expect((await take(noDeletesIt, 1)).map((w) => w.revision)).toEqual([live]); // the DEL that follows is dropped
    expect((await take(updatesIt, 3)).map(short)).toEqual([`${live}:PUT:lock=live value`, `${live + 1}:PUT:other.1=o`, `${live + 2}:DEL:lock`]);
    const [metaEntry] = await take(metaIt, 1);
    expect(metaEntry).toMatchObject({ revision: live, length: "live value".length, isUpdate: true });
    expect(metaEntry!.value.length).toBe(0);
    expect((await take(resumedIt, 1)).map((w) => w.revision)).toEqual([live]);
    expect(skipped).toEqual([]);
    expect((await take(future[Symbol.asyncIterator](), 1)).map(short)).toEqual([`${revision + 3}:DEL:lock`]);
    for (const w of [last, hist, noDeletes, updates, meta, resumed, future]) await w.stop();
    await last.stop(); // idempotent
    expect(await lastIt.next()).toEqual({ value: undefined, done: true });

    // status after writes; purgeDeletes (default keeps recent markers alone; negative removes them all).
    const afterWrites = await kv.status();
    expect(afterWrites.revision).toBe(live + 2);
    expect(afterWrites.values).toBeGreaterThan(0);
    expect(afterWrites.bytes).toBeGreaterThan(0);
    const trimmed = await kv.purgeDeletes();
    expect(trimmed).toBeGreaterThan(0); // the older records of deleted keys; their markers stay
    expect((await kv.get("lock", { includeDeleted: true }))?.operation).toBe("DEL");
    expect((await collect(kv.history({ key: "lock" }))).map((h) => h.operation)).toEqual(["DEL"]);
    expect(await kv.purgeDeletes({ olderThanMs: -1, timeoutMs: 10_000 })).toBeGreaterThan(0);
    expect(await kv.get("lock", { includeDeleted: true })).toBeNull();

    // purgeBucket: everything goes, revisions continue.
    await kv.purgeBucket({ timeoutMs: 10_000 });
    expect(await collect(kv.keys())).toEqual([]);
    expect((await kv.status()).values).toBe(0);
    expect(await kv.put("z", "1")).toBe(live + 3);

    // destroy.
    expect(await kvm.destroy(name, { timeoutMs: 10_000 })).toBe(true);
    expect((await kvm.list()).map((s) => s.bucket)).not.toContain(name);
  } finally {
    await nc.close();
  }
  await statusDone;
  expect(await nc.closed).toBeUndefined();
  expect(nc.isClosed()).toBe(true);
  expect(nc.state).toBe("closed");
  expect(statusEvents.at(-1)).toEqual({ type: "close" });
}

/** Every error code a client can meet, with NATS's wording where it has one. */
export async function checkErrorCodes(target: ClientTarget): Promise<void> {
  const connections: Connection[] = [];
  try {
    const nc = await connectTo(target, { noRandomize: true }, connections);
    const kvm = new Kvm(nc);
    const name = bucketName("errors");
    const kv = await kvm.create(name, { history: 3, maxValueSize: 16 });

    // Argument mistakes: reported before anything is sent.
    const sent = vi.spyOn(nc, "request");
    const local: [string, () => Promise<unknown>][] = [
      ["INVALID_KEY", () => kv.put("a b", "x")],
      ["INVALID_KEY", () => kv.put("a.>", "x")],
      ["INVALID_KEY", () => kv.create(".a", "x")],
      ["INVALID_KEY", () => kv.get("")],
      ["INVALID_KEY", () => kv.delete("a.*")],
      ["INVALID_KEY", () => collect(kv.keys("a..b"))],
      ["INVALID_KEY", () => kv.watch({ key: "a b" })],
      ["INVALID_BUCKET_NAME", () => kvm.create("bad name")],
      ["INVALID_BUCKET_NAME", () => kvm.open("a.b")],
      ["INVALID_CONFIG", () => kvm.create(name, { history: 65 })],
      ["INVALID_CONFIG", () => kvm.create(name, { markerTtlMs: 10 })],
      ["INVALID_OPTION", () => kv.put("k", "v", { ttlMs: -1 })],
      ["INVALID_OPTION", () => kv.get("k", { revision: 0 })],
      ["INVALID_OPTION", () => kv.get("k", { bogus: true } as never)],
      ["INVALID_OPTION", () => kv.watch({ include: "everything" as never })],
      ["INVALID_OPTION", () => collect(kv.keys(">", { pageSize: 0 }))],
      ["INVALID_OPTION", () => collect(kv.history({ consistency: "eventual" as never }))],
      ["INVALID_OPTION", () => kv.update("k", "v", -1)],
      ["INVALID_OPTION", () => connect({ servers: "http://127.0.0.1:1" })],
      ["INVALID_OPTION", () => connect({ servers: [...target.urls], timeoutMs: -5 })],
    ];
    for (const [code, call] of local) expect((await rejection(call)).code, `${code}: ${call.toString()}`).toBe(code);
    expect((await rejection(() => kvm.create(name, { history: 65 }))).message).toBe("history limited to a max of 64");
    expect((await rejection(() => kv.put("a b", "x"))).message).toBe("invalid key");
    expect(sent).not.toHaveBeenCalled();
    sent.mockRestore();

    // Server-side answers.
    expect((await rejection(kvm.open(bucketName("missing")))).code).toBe("BUCKET_NOT_FOUND");
    expect((await rejection(kvm.destroy(bucketName("missing")))).message).toBe("bucket not found");
    const exists = await rejection(kvm.create(name, { history: 4 }));
    expect([exists.code, exists.message]).toEqual(["BUCKET_EXISTS", "bucket name already in use"]);
    expect((await rejection(kvm.create(bucketName("r5"), { replicas: 5 }))).code).toBe("INVALID_CONFIG");
    expect((await rejection(kvm.update(name, { storage: "memory" }))).code).toBe("INVALID_CONFIG");
    // Per-key TTL needs the bucket's markerTtl: refused by the state machine.
    expect((await rejection(kv.create("ttl", "x", { ttlMs: 5000 }))).code).toBe("INVALID_OPTION");

    expect(await kv.create("lock", "me")).toBe(1);
    const taken = await rejection(kv.create("lock", "you"));
    expect([taken.code, taken.message, taken.data.revision]).toEqual(["KEY_EXISTS", "wrong last sequence: 1: key exists", 1]);
    const wrong = await rejection(kv.update("lock", "you", 7));
    expect([wrong.code, wrong.message, wrong.data.revision]).toEqual(["WRONG_LAST_REVISION", "wrong last sequence: 1", 1]);
    expect((await rejection(kv.update("lock", "you", 0))).message).toBe("wrong last sequence: 1");
    expect((await rejection(kv.update("fresh", "v", 3))).message).toBe("wrong last sequence: 0");
    expect((await rejection(kv.delete("lock", { revision: 2 }))).message).toBe("wrong last sequence: 1");
    expect((await rejection(kv.purge("lock", { revision: 2 }))).code).toBe("WRONG_LAST_REVISION");

    const big = await rejection(kv.put("big", "x".repeat(17)));
    expect([big.code, big.message]).toEqual(["VALUE_TOO_LARGE", "message size exceeds maximum allowed"]);
    expect(await kv.put("fits", "x".repeat(16))).toBe(2);

    const full = await kvm.create(bucketName("full"), { maxBytes: 64 });
    await full.put("a", "x".repeat(40));
    const refused = await rejection(full.put("b", "y".repeat(40)));
    expect([refused.code, refused.message]).toEqual(["BUCKET_FULL", "maximum bytes exceeded"]);
    expect(typeof (await full.delete("a"))).toBe("number"); // markers are always accepted

    // A handle to a bucket that was deleted meanwhile.
    const doomed = await kvm.create(bucketName("doomed"));
    await kvm.destroy(doomed.bucket);
    expect((await rejection(doomed.put("k", "v"))).code).toBe("BUCKET_NOT_FOUND");

    // WATCH_OVERFLOW from the client's buffer: a consumer that does not read, the resume revision exact.
    for (let i = 0; i < 5; i++) await kv.put(`w.${i}`, String(i));
    const firstW = (await kv.get("w.0"))!.revision;
    const slow = await kv.watch({ key: "w.>", include: "history", bufferEntriesMax: 3 });
    const overflow = await rejection(slow.initialized);
    expect(overflow.code).toBe("WATCH_OVERFLOW");
    expect(overflow.data.resumeFromRevision).toBe(firstW + 3);
    const slowIt = slow[Symbol.asyncIterator]();
    expect((await take(slowIt, 3)).map((w) => w.revision)).toEqual([firstW, firstW + 1, firstW + 2]);
    expect((await rejection(slowIt.next())).code).toBe("WATCH_OVERFLOW");
    const again = await kv.watch({ key: "w.>", resumeFromRevision: overflow.data.resumeFromRevision! });
    expect((await take(again[Symbol.asyncIterator](), 2)).map((w) => w.revision)).toEqual([firstW + 3, firstW + 4]);
    await again.stop();

    // UNAUTHORIZED: a wrong or missing token.
    if (target.token !== undefined) {
      const refusedHello = await rejection(connect({ servers: [...target.urls], timeoutMs: 5000, token: `${target.token}-wrong` }));
      expect([refusedHello.code, refusedHello.message]).toEqual(["UNAUTHORIZED", "unauthorized: bad or missing token"]);
      expect((await rejection(connect({ servers: [target.urls[0]!], timeoutMs: 5000 }))).code).toBe("UNAUTHORIZED");
    }

    // UNAVAILABLE: no server reachable (nothing was sent).
    const dead = await deadConnect(target);
    expect(dead.code).toBe("UNAVAILABLE");

    // CONNECTION_CLOSED: calls after close, a watch and a write in flight at close.
    const closing = await connectTo(target, {}, connections);
    const closingKv = await new Kvm(closing).open(name);
    const watcher: KvWatcher = await closingKv.watch({ include: "updates" });
    const pendingEntry = watcher[Symbol.asyncIterator]().next();
    const inFlight = closingKv.put("in.flight", "?");
    await closing.close();
    const inFlightError = await rejection(inFlight).catch((error: unknown) => error);
    // The write either completed before close or reports its unknown outcome as CONNECTION_CLOSED.
    if (inFlightError instanceof CairnError) expect(inFlightError.code).toBe("CONNECTION_CLOSED");
    expect((await rejection(pendingEntry)).code).toBe("CONNECTION_CLOSED");
    expect((await rejection(closingKv.get("lock"))).code).toBe("CONNECTION_CLOSED");
    expect((await rejection(new Kvm(closing).list())).code).toBe("CONNECTION_CLOSED");

    // TIMEOUT: a write through a node whose peers are frozen cannot know its outcome. After the thaw
    // it is applied at most once.
    const [first, ...others] = target.ids;
    const lonely = await connectTo(target, { servers: [target.urls[0]!], discoverServers: false }, connections);
    expect(lonely.info?.node).toBe(first);
    const lonelyKv = await new Kvm(lonely).open(name);
    for (const id of others) target.pause(id);
    let timedOut: CairnError;
    try {
      timedOut = await rejection(lonelyKv.put("unknown.outcome", "maybe", { timeoutMs: 1500 }));
    } finally {
      for (const id of others) target.resume(id);
    }
    expect([timedOut.code, timedOut.message]).toEqual(["TIMEOUT", "timeout: the outcome of the operation is unknown"]);
    expect(typeof (await lonelyKv.put("after.thaw", "ok", { timeoutMs: 30_000 }))).toBe("number");
    const copies = (await collect(kv.history({ key: "unknown.outcome" }))).length;
    expect(copies).toBeLessThanOrEqual(1);
  } finally {
    for (const c of connections) await c.close();
  }
}

async function deadConnect(target: ClientTarget): Promise<CairnError> {
  return rejection(connect({ servers: [await target.deadUrl()], timeoutMs: 500, ...(target.token !== undefined ? { token: target.token } : {}) }));
}

/** Revisions delivered by a watch compared with the bucket's history: equal lists = no gap, no duplicate, in order. */
export function expectSameRevisions(delivered: readonly KvEntry[], history: readonly KvEntry[]): void {
  expect(delivered.map(short)).toEqual(history.map(short));
}

export type { KV };
