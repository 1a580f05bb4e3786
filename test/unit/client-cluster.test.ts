/**
 * Goal: the client against real cairn nodes (src/node through startCluster, in this process, in memory):
 * the protocol as the server implements it, the error codes it returns, and the two failovers the issue
 * promises — writes in flight while the client's node dies are applied exactly once, and a watch
 * resumes on another node with no gap and no duplicate.
 * Method: a 3-node in-process cluster per test; the client connects to n1 first (noRandomize) and n1
 * is killed mid-run. Every assertion is on outcomes (revisions, histories), never on timing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startCluster, type InProcessCluster } from "../../src/node/embed.ts";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";
import type { KvWatchEntry } from "../../src/client/types.ts";
import { CairnError } from "../../src/shared/errors.ts";

let cluster: InProcessCluster | null = null;
let nc: Connection | null = null;

async function setup(): Promise<{ cluster: InProcessCluster; nc: Connection; kvm: Kvm }> {
  cluster = await startCluster({ nodes: 3, inMemory: true, logger: "silent" });
  nc = await connect({ servers: cluster.urls, timeoutMs: 15_000, noRandomize: true, reconnectDelayMsMin: 10, reconnectDelayMsMax: 200 });
  return { cluster, nc, kvm: new Kvm(nc) };
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CairnError) return error.code;
    throw error;
  }
  return "OK";
}

afterEach(async () => {
  await nc?.close();
  await cluster?.stop();
  nc = null;
  cluster = null;
});

describe("client against real nodes", () => {
  it("every bucket and key call, with the server's error codes", async () => {
    const { kvm } = await setup();
    const kv = await kvm.create("b", { history: 3 });
    expect(await code(kvm.create("b", { history: 3 }))).toBe("OK");
    expect(await code(kvm.create("b", { history: 4 }))).toBe("BUCKET_EXISTS");
    expect(await code(kvm.open("missing"))).toBe("BUCKET_NOT_FOUND");
    expect(await code(kvm.create("r5", { replicas: 5 }))).toBe("INVALID_CONFIG");

    expect(await kv.put("a.1", "one")).toBe(1);
    expect(await kv.create("lock", "me")).toBe(2);
    expect(await code(kv.create("lock", "you"))).toBe("KEY_EXISTS");
    expect(await kv.update("lock", "you", 2)).toBe(3);
    expect(await code(kv.update("lock", "again", 2))).toBe("WRONG_LAST_REVISION");
    expect((await kv.get("lock"))?.string()).toBe("you");
    expect((await kv.get("lock", { consistency: "stale" }))?.revision).toBe(3);
    expect((await kv.get("lock", { revision: 2 }))?.string()).toBe("me");
    expect(await kv.delete("lock")).toBe(4);
    expect(await kv.get("lock")).toBeNull();
    expect((await kv.get("lock", { includeDeleted: true }))?.operation).toBe("DEL");
    expect(await kv.create("lock", "after delete")).toBe(5);
    expect(await kv.purge("a.1")).toBe(6);

    const keys: string[] = [];
    for await (const key of kv.keys()) keys.push(key);
    expect(keys).toEqual(["lock"]);
    const history: string[] = [];
    for await (const e of kv.history({ key: "lock" })) history.push(`${e.revision}:${e.operation}`);
    expect(history).toEqual(["3:PUT", "4:DEL", "5:PUT"]);

    const status = await kv.status();
    expect(status).toMatchObject({ bucket: "b", history: 3, revision: 6, replicas: 3 });
    expect(status.replicasInfo).toHaveLength(3);
    expect((await kvm.update("b", { history: 10 })).history).toBe(10);
    expect(await code(kvm.update("b", { storage: "memory" }))).toBe("INVALID_CONFIG");
    expect((await kvm.list()).map((s) => s.bucket)).toEqual(["b"]);
    expect(await kv.purgeDeletes({ olderThanMs: -1 })).toBeGreaterThanOrEqual(1);
    await kv.purgeBucket();
    expect(await kv.put("z", "1")).toBe(7);
    expect(await kvm.destroy("b")).toBe(true);
    expect(await code(kvm.destroy("b"))).toBe("BUCKET_NOT_FOUND");
  });

  it("writes in flight while the client's node dies are applied exactly once", async () => {
    const { cluster, nc, kvm } = await setup();
    const kv = await kvm.create("w", { history: 64 });
    expect(nc.info?.node).toBe("n1");
    const writes: Promise<number>[] = [];
    for (let i = 0; i < 40; i++) {
      writes.push(kv.put("k", String(i)));
      if (i === 20) await cluster.kill("n1");
    }
    const revisions = await Promise.all(writes);
    expect(new Set(revisions).size).toBe(40);
    const values: string[] = [];
    for await (const e of kv.history({ key: "k" })) values.push(e.string());
    // Every write appears once: none lost, none applied twice by a retry.
    expect(values.sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 40 }, (_, i) => String(i)));
    expect(nc.info?.node).not.toBe("n1");
  });

  it("a watch resumes on another node after its node dies: no gap, no duplicate", async () => {
    const { cluster, nc, kvm } = await setup();
    const kv = await kvm.create("c", { history: 64 });
    for (let i = 1; i <= 5; i++) await kv.put("a", String(i));
    const watcher = await kv.watch({ include: "history" });
    const seen: KvWatchEntry[] = [];
    const consumed = (async () => {
      for await (const e of watcher) {
        seen.push(e);
        if (seen.length === 30) break;
      }
    })();
    for (let i = 6; i <= 15; i++) await kv.put("a", String(i));
    expect(nc.info?.node).toBe("n1");
    await cluster.kill("n1");
    for (let i = 16; i <= 30; i++) await kv.put(i % 2 === 0 ? "a" : "b", String(i));
    await consumed;
    expect(seen.map((e) => e.revision)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(seen.map((e) => e.string())).toEqual(Array.from({ length: 30 }, (_, i) => String(i + 1)));
    expect(seen.slice(5).every((e) => e.isUpdate)).toBe(true);
  });

  it("iterators that stop early release nothing on the server and the connection stays usable", async () => {
    const { kvm } = await setup();
    const kv = await kvm.create("it");
    for (let i = 0; i < 30; i++) await kv.put(`k${i}`, "v");
    let n = 0;
    for await (const _ of kv.keys(">", { pageSize: 5 })) if (++n === 7) break;
    n = 0;
    for await (const _ of kv.history({ pageSize: 5 })) if (++n === 3) break;
    const w = await kv.watch();
    for await (const _ of w) break;
    expect(await kv.put("after", "ok")).toBe(31);
  });
});
