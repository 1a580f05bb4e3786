/**
 * Goal: the client against real cairn nodes (src/node through startCluster, in this process, in memory):
 * every API call and error code (the shared suite of test/support/client-api-suite.ts, which also runs
 * against node processes), and the two failovers the issue promises — writes in flight while the
 * client's node dies are applied exactly once, and a watch resumes on another node with no gap and no
 * duplicate.
 * Method: a 3-node in-process cluster per test; the client connects to n1 first (noRandomize) and n1
 * is killed mid-run. Every assertion is on outcomes (revisions, histories), never on timing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startCluster, type InProcessCluster } from "../../src/node/embed.ts";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";
import type { KvWatchEntry } from "../../src/client/types.ts";
import { checkErrorCodes, checkEveryCall, type ClientTarget } from "../support/client-api-suite.ts";
import { freePort } from "../support/process-cluster.ts";

let cluster: InProcessCluster | null = null;
let nc: Connection | null = null;

async function setup(): Promise<{ cluster: InProcessCluster; nc: Connection; kvm: Kvm }> {
  cluster = await startCluster({ nodes: 3, inMemory: true, logger: "silent" });
  nc = await connect({ servers: cluster.urls, timeoutMs: 15_000, noRandomize: true, reconnectDelayMsMin: 10, reconnectDelayMsMax: 200 });
  return { cluster, nc, kvm: new Kvm(nc) };
}

/** The shared API suite's view of a 3-node in-process cluster (no token). */
async function inProcessTarget(): Promise<ClientTarget> {
  cluster = await startCluster({ nodes: 3, inMemory: true, logger: "silent" });
  const c = cluster;
  return {
    ids: c.ids,
    urls: c.urls,
    pause: (id) => c.pause(id),
    resume: (id) => c.resume(id),
    deadUrl: async () => `ws://127.0.0.1:${await freePort()}`,
  };
}

afterEach(async () => {
  await nc?.close();
  await cluster?.stop();
  nc = null;
  cluster = null;
});

describe("client against real nodes", () => {
  // The same bodies run against separate node processes in test/integration/client-process.test.ts.
  it("every call and option of the API", async () => {
    await checkEveryCall(await inProcessTarget());
  });

  it("every error code a client can meet, with NATS's wording", async () => {
    await checkErrorCodes(await inProcessTarget());
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
