/**
 * Goal (issue 4, start-up safety, real processes): a node process stopped with SIGTERM hands its
 * leaderships to another node before it exits 0, and the writes in flight complete or fail cleanly; a
 * node whose store is damaged (a byte flipped in the middle of its LevelDB log, a damaged snapshot
 * file) exits non-zero with one line naming the group and what is damaged while the other two keep
 * serving; and the repairs the jepsen-lite harness uses bring a node back safely: its data directory
 * wiped, or the tail of its newest LevelDB log cut, it rejoins recovering (no votes) and catches up
 * with every acknowledged write.
 * Method: a 3-process cluster (test/support/process-cluster.ts), the real client, signals to the pids
 * this test started, bytes damaged on disk while the node is stopped. Waits are on conditions.
 */
import { cp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection, type KV } from "../../src/client/index.ts";
import { scanLog } from "../../src/node/log-store-leveldb-verify.ts";
import type { WireClusterStatus } from "../../src/shared/protocol.ts";
import { ProcessCluster } from "../support/process-cluster.ts";

const IDS = ["n1", "n2", "n3"];
const WAIT_MS = 30_000;

async function until(what: string, done: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves with the exit code of a process this test started (bounded). */
function exitOf(child: ChildProcess, timeoutMs = WAIT_MS): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe("start-up safety of node processes", () => {
  let cluster: ProcessCluster;
  const conns: Connection[] = [];
  /** Every acknowledged write: key -> revision. */
  const acked = new Map<string, number>();
  let bucketGroup = "";

  const kvAt = async (ids: readonly string[]): Promise<KV> => {
    const nc = await connect({ servers: ids.map((id) => cluster.node(id).clientUrl), timeoutMs: 15_000, discoverServers: false, noRandomize: true });
    conns.push(nc);
    return new Kvm(nc).open("safe");
  };
  const write = async (kv: KV, key: string) => acked.set(key, await kv.put(key, `v-${key}`, { timeoutMs: 15_000 }));
  const logOf = (id: string) => cluster.node(id).log.join("\n");
  /** Groups and leader terms as node `id` sees them. */
  const groupsAt = async (id: string) => {
    const nc = await connect({ servers: [cluster.node(id).clientUrl], timeoutMs: 15_000, discoverServers: false });
    try {
      return ((await nc.request("cluster.status", {})) as WireClusterStatus).groups;
    } finally {
      await nc.close();
    }
  };
  /** Waits until `id` serves every acknowledged write from its own replica (stale reads there). */
  const caughtUp = async (id: string) => {
    const local = await kvAt([id]);
    const [lastKey, lastRevision] = [...acked].at(-1)!;
    await until(`${id} caught up`, async () => (await local.get(lastKey, { consistency: "stale", timeoutMs: 2000 }).catch(() => null))?.revision === lastRevision);
    for (const [key, revision] of acked) expect((await local.get(key, { consistency: "stale" }))?.revision, `${id} ${key}`).toBe(revision);
  };
  const levelFiles = async (id: string, pattern: RegExp) =>
    (await readdir(join(cluster.node(id).dataDir, "level"))).filter((n) => pattern.test(n)).map((n) => join(cluster.node(id).dataDir, "level", n));

  beforeAll(async () => {
    // Small snapshot interval: the bucket group has a snapshot file on every node.
    cluster = await ProcessCluster.start({ nodes: 3, limits: { snapshotEntries: 30, compactionKeepEntries: 10 } });
    const nc = await connect({ servers: cluster.urls, timeoutMs: 15_000 });
    conns.push(nc);
    await new Kvm(nc).create("safe", { replicas: 3, history: 5 });
    const kv = await kvAt(IDS);
    for (let i = 0; i < 60; i++) await write(kv, `setup.${i}`);
  });

  afterAll(async () => {
    for (const c of conns) await c.close().catch(() => undefined);
    await cluster?.stop();
  });

  it("SIGTERM: the node hands its leaderships over before it exits 0; writes in flight complete or fail cleanly", async () => {
    const leader = (await (await kvAt(IDS)).status()).leader!;
    const writer = await kvAt([leader, ...IDS.filter((id) => id !== leader)]);
    const child = cluster.node(leader).process!;
    const outcomes: Array<{ key: string; revision?: number; code?: string }> = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop && i < 200; i++) {
        const key = `term.${w}.${i}`;
        try {
          outcomes.push({ key, revision: await writer.put(key, "x", { timeoutMs: 15_000 }) });
        } catch (error) {
          outcomes.push({ key, code: (error as { code?: string }).code ?? String(error) });
        }
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    await until("writes flowing", () => outcomes.length >= 40);
    const signalled = Date.now();
    process.kill(child.pid!, "SIGTERM");
    expect(await exitOf(child)).toBe(0);
    const stopMs = Date.now() - signalled;
    stop = true;
    await Promise.all(workers);

    // Before exiting it saw each group it led taken over, at a term the survivors still report: the
    // hand-off elected the successor, not an election timeout after the exit.
    const handed = [...logOf(leader).matchAll(/handed leadership of group (\S+) to (n\d) at term (\d+)/g)].map((m) => ({ group: m[1]!, to: m[2]!, term: Number(m[3]) }));
    const bucket = handed.find((h) => h.group.startsWith("b:safe:"));
    expect(bucket, logOf(leader).slice(-2000)).toBeDefined();
    bucketGroup = bucket!.group;
    expect(logOf(leader)).not.toMatch(/no successor took over/);
    const survivor = IDS.find((id) => id !== leader)!;
    const seen = await groupsAt(survivor);
    for (const h of handed) {
      const row = seen.find((g) => (h.group === "meta" ? g.group === "meta" : g.group === "safe"))!;
      expect(row, h.group).toMatchObject({ leader: h.to, term: h.term });
    }
    expect(cluster.node(leader).log.at(-1)).toMatch(/node n\d stopped/);
    console.log(`graceful stop: SIGTERM to exit of the leader ${leader}: ${stopMs} ms (groups handed off: ${handed.map((h) => `${h.group}->${h.to}`).join(", ")})`);

    // Every write either got its revision (and is there) or failed with a coded, retryable error.
    expect(outcomes.filter((o) => o.revision !== undefined).length).toBeGreaterThan(40);
    for (const o of outcomes) {
      if (o.revision !== undefined) acked.set(o.key, o.revision);
      else expect(o.code, o.key).toMatch(/^(TIMEOUT|UNAVAILABLE|CONNECTION_CLOSED|NOT_LEADER|PROPOSAL_DROPPED)$/);
    }
    const check = await kvAt(IDS.filter((id) => id !== leader));
    for (const o of outcomes) if (o.revision !== undefined) expect((await check.get(o.key))?.revision, o.key).toBe(o.revision);

    await cluster.restart(leader);
    await caughtUp(leader);
  });

  it("a byte flipped in the middle of a LevelDB log: exit 1 naming the group; a damaged snapshot file: exit 1 naming group and file; the others keep serving", async () => {
    const leader = (await (await kvAt(IDS)).status()).leader!;
    // The follower with the longest LevelDB log (the other may have restarted recently).
    const followers = IDS.filter((id) => id !== leader);
    const logBytes = async (id: string) => (await Promise.all((await levelFiles(id, /\.log$/)).map(async (f) => (await stat(f)).size))).reduce((a, b) => a + b, 0);
    const sizes = await Promise.all(followers.map(logBytes));
    const victim = sizes[0]! >= sizes[1]! ? followers[0]! : followers[1]!;
    const survivors = await kvAt(IDS.filter((id) => id !== victim));
    for (let i = 0; i < 30; i++) await write(survivors, `before.damage.${i}`);
    await caughtUp(victim);
    await cluster.kill9(victim);
    const pristine = `${cluster.node(victim).dataDir}.pristine`;
    await cp(cluster.node(victim).dataDir, pristine, { recursive: true });

    // A flip LevelDB's own recovery would drop silently: inside a record, with intact records after it.
    const logs = await Promise.all((await levelFiles(victim, /\.log$/)).map(async (f) => ({ f, size: (await stat(f)).size })));
    const log = logs.sort((a, b) => b.size - a.size)[0]?.f;
    const bytes = await readFile(log!);
    const offset = Array.from({ length: 80 }, (_, i) => Math.floor((bytes.length * (10 + i)) / 100)).find((o) => {
      const copy = Buffer.from(bytes);
      copy[o] = copy[o]! ^ 0x5a;
      return scanLog(copy).kind === "corrupt";
    });
    expect(offset, `log of ${bytes.length} bytes`).toBeDefined();
    bytes[offset!] = bytes[offset!]! ^ 0x5a;
    await writeFile(log!, bytes);
    cluster.spawn(victim);
    const damaged = cluster.node(victim).process!;
    for (let i = 0; i < 5; i++) await write(survivors, `during.log.${i}`);
    expect(await exitOf(damaged)).toBe(1);
    expect(cluster.node(victim).log.at(-1)).toMatch(
      /^error: \[CORRUPT_DATA\] LevelDB log .*\.log is damaged: record checksum mismatch at offset \d+, followed by an intact record at offset \d+; the damaged write holds group (meta|b:safe:\d+) /,
    );

    // The bucket group's snapshot file damaged instead: the node opens, finds it, and stops.
    await rm(cluster.node(victim).dataDir, { recursive: true });
    await cp(pristine, cluster.node(victim).dataDir, { recursive: true });
    const snapshots = (await readdir(join(cluster.node(victim).dataDir, "snapshots"))).filter((n) => n.startsWith("b%3Asafe"));
    expect(snapshots).toHaveLength(1);
    const snapshotPath = join(cluster.node(victim).dataDir, "snapshots", snapshots[0]!);
    const snapshot = await readFile(snapshotPath);
    snapshot[snapshot.length - 5] = snapshot[snapshot.length - 5]! ^ 0x5a;
    await writeFile(snapshotPath, snapshot);
    cluster.node(victim).log.length = 0;
    cluster.spawn(victim);
    const damagedSnapshot = cluster.node(victim).process!;
    for (let i = 0; i < 5; i++) await write(survivors, `during.snapshot.${i}`);
    expect(await exitOf(damagedSnapshot)).toBe(1);
    expect(cluster.node(victim).log.at(-1)).toMatch(
      new RegExp(`^error: \\[CORRUPT_DATA\\] group ${bucketGroup}: snapshot file b%3Asafe%3A\\d+-\\d+-\\d+\\.snap \\(index \\d+\\) .*damaged: body checksum mismatch`),
    );
    // (That the damaged group gets no Raft core, so never campaigns or votes: test/unit/raft-host-damage.test.ts.)
    await rm(pristine, { recursive: true, force: true });

    // The jepsen-lite repair: wipe the damaged node's data directory. It comes back empty, recovers
    // from the leaders without voting first, and holds every acknowledged write.
    await rm(cluster.node(victim).dataDir, { recursive: true });
    cluster.node(victim).log.length = 0;
    const wipedAt = Date.now();
    cluster.spawn(victim);
    await cluster.waitListening(victim);
    await caughtUp(victim);
    console.log(`wiped node ${victim}: spawn to serving all ${acked.size} acknowledged keys from its own replica: ${Date.now() - wipedAt} ms`);
    expect(logOf(victim)).toMatch(/may have lost acknowledged state \(the data directory is empty/);
    expect(logOf(victim)).toMatch(/the cluster has history|meta group has history/);
    await until("victim recovered both groups", () => /group meta recovered/.test(logOf(victim)) && new RegExp(`group ${bucketGroup} recovered`).test(logOf(victim)));
  });

  it("the tail of a stopped node's newest LevelDB log cut off: it restarts recovering and catches up", async () => {
    for (const id of IDS) {
      if (cluster.node(id).process === null) {
        cluster.spawn(id);
        await cluster.waitListening(id);
      }
    }
    const leader = (await (await kvAt(IDS)).status()).leader!;
    const victim = IDS.find((id) => id !== leader)!;
    const kv = await kvAt(IDS.filter((id) => id !== victim));
    for (let i = 0; i < 20; i++) await write(kv, `tail.${i}`);
    await caughtUp(victim);
    await cluster.kill9(victim);
    const logs = await levelFiles(victim, /\.log$/);
    const newest = logs.sort().at(-1)!;
    const size = (await stat(newest)).size;
    await truncate(newest, size - Math.min(200, Math.floor(size / 4)));
    for (let i = 0; i < 5; i++) await write(kv, `tail.after.${i}`);
    cluster.node(victim).log.length = 0;
    cluster.spawn(victim);
    await cluster.waitListening(victim);
    await caughtUp(victim);
    expect(logOf(victim)).toMatch(/may have lost acknowledged state \(torn tail\(s\) truncated on open: LevelDB log .*: torn tail of \d+ byte\(s\)/);
    await until("victim recovered both groups", () => /group meta recovered/.test(logOf(victim)) && new RegExp(`group ${bucketGroup} recovered`).test(logOf(victim)));
    // And it is a voter again: the group survives losing its leader with the recovered node in the majority.
    await cluster.kill9(leader);
    const rest = await kvAt(IDS.filter((id) => id !== leader));
    await write(rest, "after.leader.kill");
    await cluster.restart(leader);
  });
});
