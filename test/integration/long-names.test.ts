/**
 * Goal: the longest names KV-SEMANTICS.md allows work end to end on durable storage. A bucket name of
 * 252 characters makes a Raft group name ("b:<bucket>:<index>") of more than 252 bytes, which the log
 * store once refused (200-byte limit), so such a bucket could be created in meta but never written.
 * Method: a 1-node and a 3-node cluster on LevelDB (startCluster with a temporary data dir): create the
 * bucket, write, read back, restart a node (its group is loaded again from disk, snapshot file named
 * from the long group name included), read again.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startCluster, type InProcessCluster } from "../../src/node/embed.ts";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";

let cluster: InProcessCluster | null = null;
let nc: Connection | null = null;

afterEach(async () => {
  await nc?.close();
  nc = null;
  await cluster?.stop();
  cluster = null;
});

const LONGEST_BUCKET = "b".repeat(250) + "_z";

describe("longest names on durable storage", () => {
  it("a 252-character bucket with long keys is written, read, and survives a restart", async () => {
    expect(LONGEST_BUCKET.length).toBe(252);
    cluster = await startCluster({ nodes: 3, logger: "silent", limits: { snapshotEntries: 50, compactionKeepEntries: 10 } });
    nc = await connect({ servers: cluster.urls, timeoutMs: 20_000 });
    const kv = await new Kvm(nc).create(LONGEST_BUCKET, { history: 2, replicas: 3 });
    const key = `k.${"x".repeat(200)}`;
    let last = 0;
    for (let i = 0; i < 120; i++) last = await kv.put(`${key}.${i % 10}`, `v${i}`);
    expect(last).toBe(120);
    expect((await kv.get(`${key}.9`))?.string()).toBe("v119");

    const leader = await cluster.waitForLeader(LONGEST_BUCKET);
    const follower = cluster.ids.find((id) => id !== leader)!;
    await cluster.kill(follower);
    await cluster.restart(follower);
    const status = await kv.status();
    expect(status.values).toBe(20);
    expect((await kv.get(`${key}.0`, { revision: 120 - 9 }))?.string()).toBe("v110");
    const rev = await kv.put(`${key}.0`, "after restart");
    expect(rev).toBe(121);
  }, 60_000);
});
