/**
 * Goal: keys() and history() page through kv.keys / kv.history with afterRevision cursors, yield each
 * key once even when it is rewritten during the iteration, carry delta, and stop fetching when the loop
 * breaks early. Also the rest of the bucket handle's calls and their request shapes.
 * Method: one fake server (test/support/fake-server.ts) whose model answers pages; requests recorded.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";
import type { KV, KvEntry } from "../../src/client/types.ts";
import { FakeServer } from "../support/fake-server.ts";

const servers: FakeServer[] = [];
const connections: Connection[] = [];

async function setup(): Promise<{ server: FakeServer; kv: KV; nc: Connection }> {
  const server = await FakeServer.start();
  servers.push(server);
  server.kv.bucket("b");
  const nc = await connect({ servers: server.url, pingIntervalMs: 0 });
  connections.push(nc);
  return { server, nc, kv: await new Kvm(nc).open("b") };
}

afterEach(async () => {
  for (const nc of connections.splice(0)) await nc.close();
  for (const s of servers.splice(0)) await s.kill();
});

describe("keys()", () => {
  it("pages with afterRevision cursors and yields every live key once", async () => {
    const { server, kv } = await setup();
    for (const key of ["a.1", "a.2", "b.1", "a.3", "a.4", "a.5"]) server.kv.write("b", key, "v");
    server.kv.write("b", "a.2", "", "DEL");
    const keys: string[] = [];
    for await (const key of kv.keys("a.>", { pageSize: 2 })) keys.push(key);
    expect(keys).toEqual(["a.1", "a.3", "a.4", "a.5"]);
    const pages = server.ops("kv.keys");
    expect(pages.map((p) => p["afterRevision"])).toEqual([0, 4]);
    expect(pages.every((p) => p["limit"] === 2 && JSON.stringify(p["filters"]) === '["a.>"]')).toBe(true);
  });

  it("accepts no filter (every key) and several filters (a union)", async () => {
    const { server, kv } = await setup();
    for (const key of ["a", "b.x", "c"]) server.kv.write("b", key, "v");
    const all: string[] = [];
    for await (const key of kv.keys()) all.push(key);
    expect(all).toEqual(["a", "b.x", "c"]);
    const some: string[] = [];
    for await (const key of kv.keys(["b.*", "c"])) some.push(key);
    expect(some).toEqual(["b.x", "c"]);
    expect(server.ops("kv.keys").map((p) => p["filters"])).toEqual([[">"], ["b.*", "c"]]);
  });

  it("yields a key rewritten during the iteration only once", async () => {
    const { server, kv } = await setup();
    for (const key of ["a", "b", "c", "d"]) server.kv.write("b", key, "v");
    const keys: string[] = [];
    for await (const key of kv.keys(">", { pageSize: 2 })) {
      keys.push(key);
      if (key === "a") server.kv.write("b", "a", "rewritten"); // moves "a" behind the cursor's next page
    }
    expect(keys).toEqual(["a", "b", "c", "d"]);
  });

  it("stops fetching pages when the loop breaks early", async () => {
    const { server, kv } = await setup();
    for (let i = 0; i < 10; i++) server.kv.write("b", `k${i}`, "v");
    const keys: string[] = [];
    for await (const key of kv.keys(">", { pageSize: 2 })) {
      keys.push(key);
      if (keys.length === 3) break;
    }
    expect(keys).toEqual(["k0", "k1", "k2"]);
    expect(server.ops("kv.keys")).toHaveLength(2);
  });

  it("yields nothing for an empty bucket", async () => {
    const { kv } = await setup();
    const keys: string[] = [];
    for await (const key of kv.keys()) keys.push(key);
    expect(keys).toEqual([]);
  });
});

describe("history()", () => {
  it("pages through every retained record of the key, oldest first, with delta", async () => {
    const { server, kv } = await setup();
    server.kv.write("b", "k", "1");
    server.kv.write("b", "other", "x");
    server.kv.write("b", "k", "2");
    server.kv.write("b", "k", "", "DEL");
    server.kv.write("b", "k", "3");
    const entries: KvEntry[] = [];
    for await (const e of kv.history({ key: "k", pageSize: 2 })) entries.push(e);
    expect(entries.map((e) => `${e.revision}:${e.operation}:${e.string()}:${e.delta}`)).toEqual(["1:PUT:1:3", "3:PUT:2:2", "4:DEL::1", "5:PUT:3:0"]);
    expect(server.ops("kv.history").map((p) => p["afterRevision"])).toEqual([0, 3]);
  });

  it("stops fetching pages when the loop breaks early", async () => {
    const { server, kv } = await setup();
    for (let i = 0; i < 10; i++) server.kv.write("b", "k", String(i));
    for await (const e of kv.history({ pageSize: 3 })) {
      if (e.revision === 2) break;
    }
    expect(server.ops("kv.history")).toHaveLength(1);
  });
});

describe("bucket handle calls", () => {
  it("put/create/update/delete/purge return revisions and send the documented fields", async () => {
    const { server, kv } = await setup();
    expect(await kv.put("a.b", "value")).toBe(1);
    expect(await kv.put("bin", new Uint8Array([0, 255]))).toBe(2);
    expect(await kv.create("lock", "me", { ttlMs: 30_000 })).toBe(3);
    expect(await kv.update("lock", "you", 3)).toBe(4);
    expect(await kv.delete("a.b", { revision: 1 })).toBe(5);
    expect(await kv.purge("bin")).toBe(6);
    expect([...(server.ops("kv.put")[1]!["value"] as Uint8Array)]).toEqual([0, 255]);
    expect(server.ops("kv.create")[0]).toMatchObject({ bucket: "b", key: "lock", ttlMs: 30_000 });
    expect(server.ops("kv.update")[0]).toMatchObject({ key: "lock", revision: 3 });
    expect(server.ops("kv.delete")[0]).toMatchObject({ key: "a.b", revision: 1 });
    expect("revision" in server.ops("kv.purge")[0]!).toBe(false);
    expect("ttlMs" in server.ops("kv.put")[0]!).toBe(false);
  });

  it("get returns an entry (string/json helpers) or null, and passes revision/includeDeleted/consistency", async () => {
    const { server, kv } = await setup();
    await kv.put("j", JSON.stringify({ n: 1 }));
    const e = await kv.get("j", { consistency: "stale" });
    expect(e?.json()).toEqual({ n: 1 });
    expect(e).toMatchObject({ bucket: "b", key: "j", revision: 1, operation: "PUT", delta: 0, length: 7 });
    expect(await kv.get("missing")).toBeNull();
    await kv.delete("j");
    expect(await kv.get("j")).toBeNull();
    expect((await kv.get("j", { includeDeleted: true }))?.operation).toBe("DEL");
    expect((await kv.get("j", { revision: 1 }))?.string()).toBe('{"n":1}');
    expect(server.ops("kv.get").map((r) => [r["consistency"], r["includeDeleted"], r["revision"]])).toEqual([
      ["stale", undefined, undefined],
      [undefined, undefined, undefined],
      [undefined, undefined, undefined],
      [undefined, true, undefined],
      [undefined, undefined, 1],
    ]);
  });

  it("status, purgeDeletes (default 30 min) and purgeBucket", async () => {
    const { server, kv } = await setup();
    await kv.put("k", "v");
    const status = await kv.status();
    expect(status).toMatchObject({ bucket: "b", values: 1, revision: 1, history: 1, storage: "file", leader: "n1" });
    expect(status.replicasInfo).toEqual([{ node: "n1", current: true, lag: 0, leader: true }]);
    expect(await kv.purgeDeletes()).toBe(0);
    await kv.purgeDeletes({ olderThanMs: -1 });
    expect(server.ops("kv.purgeDeletes").map((r) => r["olderThanMs"])).toEqual([30 * 60 * 1000, -1]);
    await kv.purgeBucket();
    expect(server.ops("kv.purgeBucket")).toHaveLength(1);
  });

  it("Kvm create/list/update/status/destroy", async () => {
    const { server, nc } = await setup();
    const kvm = new Kvm(nc);
    const created = await kvm.create("new", { history: 5, ttlMs: 0, maxBytes: -1, replicas: 3, storage: "file", description: "d", metadata: { a: "b" } });
    expect(created.bucket).toBe("new");
    expect(server.ops("bucket.create")[0]!["config"]).toEqual({ history: 5, ttlMs: 0, maxBytes: -1, replicas: 3, storage: "file", description: "d", metadata: { a: "b" } });
    expect((await kvm.list()).map((s) => s.bucket).sort()).toEqual(["b", "new"]);
    await kvm.update("new", { history: 10 });
    expect(server.ops("bucket.update")[0]).toMatchObject({ bucket: "new", config: { history: 10 } });
    expect((await kvm.status("new")).bucket).toBe("new");
    expect(await kvm.destroy("new")).toBe(true);
    await expect(kvm.destroy("new")).rejects.toMatchObject({ code: "BUCKET_NOT_FOUND", message: "bucket not found" });
  });
});
