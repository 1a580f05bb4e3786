/**
 * bench:cluster — the issue-4 figures of a real cluster: node processes on loopback (the spawning of
 * test/support/process-cluster.ts), the real client (src/client), Raft timing of cluster.config.ts.
 *
 *   1. puts/s with 64 writes in flight on a 3-node cluster (R3 bucket, 64-byte values), with the client
 *      connected to a follower and to the leader, durability fsync and none; p50/p99 latency.
 *   2. catch-up of a node 100,000 writes behind: kill -9 a follower, write 100k keys, restart it, time
 *      until its applied index of the bucket group equals the leader's (read through cluster.status).
 *      Two configurations: the default compaction thresholds (the leader compacts its log, the node
 *      must install a snapshot) and thresholds above 100k (the node replays the log). Which path ran is
 *      read from the restarted node's log ("snapshot installed").
 *   3. failover: kill -9 of the bucket leader -> first acknowledged write through a survivor.
 *
 * Every figure is the median over rounds; nothing is asserted. The load average is printed at the start
 * and the end: on a shared machine, compare runs only at similar load.
 *
 *   npm run bench:cluster
 *   npm run bench:cluster -- --only puts --rounds 5 --seconds 5
 *   npm run bench:cluster -- --only catchup --keys 100000 --catchup-rounds 3
 *   npm run bench:cluster -- --only failover --failover-rounds 7
 */
import os from "node:os";
import { connect, Kvm, type Connection } from "../src/client/index.ts";
import { DEFAULT_LIMITS, DEFAULT_TIMING } from "../src/node/config.ts";
import type { WireClusterStatus } from "../src/shared/protocol.ts";
import { ProcessCluster } from "../test/support/process-cluster.ts";

const args = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? Number(args[at + 1]) : fallback;
}
function stringOption(name: string, fallback: string): string {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback;
}

const ONLY = new Set(stringOption("only", "puts,catchup,failover").split(","));
/** Rounds per puts figure, and seconds of load per round (after a warm-up of WARMUP_SECONDS). */
const ROUNDS = option("rounds", 3);
const SECONDS = option("seconds", 4);
const WARMUP_SECONDS = 1;
const IN_FLIGHT = option("inflight", 64);
const VALUE_BYTES = 64;
/** Distinct keys the put load cycles through (history 1: the bucket stays this size). */
const PUT_KEYS = 10_000;
const CATCHUP_KEYS = option("keys", 100_000);
const CATCHUP_ROUNDS = option("catchup-rounds", 3);
const FAILOVER_ROUNDS = option("failover-rounds", 5);
/** Upper bounds of every wait in this bench (a stuck cluster ends the bench, it does not hang it). */
const CATCHUP_WAIT_MS = 300_000;
const WRITE_TIMEOUT_MS = 30_000;
const STATUS_POLL_MS = 20;

const TIMING = { tickMs: DEFAULT_TIMING.tickMs, heartbeatTicks: DEFAULT_TIMING.heartbeatTicks, electionTicks: DEFAULT_TIMING.electionTicks };

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const fmt = (n: number, digits = 0) => n.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const summary: string[] = [];
function report(line: string): void {
  summary.push(line);
  console.log(line);
}

async function open(urls: string[]): Promise<Connection> {
  return connect({ servers: urls, timeoutMs: WRITE_TIMEOUT_MS, noRandomize: true, discoverServers: false });
}

async function withCluster<T>(options: Parameters<typeof ProcessCluster.start>[0], body: (c: ProcessCluster) => Promise<T>): Promise<T> {
  const cluster = await ProcessCluster.start(options);
  try {
    return await body(cluster);
  } catch (error) {
    for (const n of cluster.nodes.values()) console.error(`--- ${n.id} (last lines)\n${n.log.slice(-15).join("\n")}`);
    throw error;
  } finally {
    await cluster.stop();
  }
}

/** Runs IN_FLIGHT writers for `seconds`; returns puts/s and the latency of every put (ms). */
async function putLoad(kv: Awaited<ReturnType<Kvm["open"]>>, seconds: number, offset: number): Promise<{ rate: number; latencies: number[] }> {
  const value = new Uint8Array(VALUE_BYTES).fill(0x61);
  const latencies: number[] = [];
  let next = offset;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        const key = `k.${next++ % PUT_KEYS}`;
        const t = performance.now();
        await kv.put(key, value);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { rate: latencies.length / ((performance.now() - start) / 1000), latencies };
}

async function putsBench(durability: "fsync" | "none"): Promise<void> {
  await withCluster({ nodes: 3, durability, raft: TIMING }, async (cluster) => {
    const admin = await open(cluster.urls);
    try {
      const kv = await new Kvm(admin).create("bench", { replicas: 3, history: 1 });
      const leader = (await kv.status()).leader!;
      const follower = [...cluster.nodes.keys()].find((id) => id !== leader)!;
      for (const [role, id] of [["follower", follower], ["leader", leader]] as const) {
        const nc = await open([cluster.node(id).clientUrl]);
        try {
          const bkv = await new Kvm(nc).open("bench");
          await putLoad(bkv, WARMUP_SECONDS, 0);
          const rates: number[] = [];
          const p50s: number[] = [];
          const p99s: number[] = [];
          for (let r = 0; r < ROUNDS; r++) {
            const { rate, latencies } = await putLoad(bkv, SECONDS, r * 7919);
            latencies.sort((a, b) => a - b);
            rates.push(rate);
            p50s.push(quantile(latencies, 0.5));
            p99s.push(quantile(latencies, 0.99));
            console.log(`  round ${r + 1}: ${fmt(rate)} puts/s, p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p99 ${quantile(latencies, 0.99).toFixed(1)} ms  (load ${load()})`);
          }
          const stillLeader = (await bkv.status()).leader;
          report(
            `puts, ${IN_FLIGHT} in flight, R3, ${VALUE_BYTES} B, durability ${durability.padEnd(5)}, via ${role.padEnd(8)}: ` +
              `${fmt(median(rates)).padStart(7)} puts/s  p50 ${median(p50s).toFixed(1).padStart(6)} ms  p99 ${median(p99s).toFixed(1).padStart(6)} ms` +
              `  (median of ${ROUNDS} x ${SECONDS} s${stillLeader === leader ? "" : `; leader moved to ${stillLeader}`})`,
          );
        } finally {
          await nc.close();
        }
      }
    } finally {
      await admin.close();
    }
  });
}

/** The bucket group's applied index on each node (cluster.status as the CLI reads it). */
async function appliedByNode(nc: Connection, bucket: string): Promise<Map<string, number>> {
  const status = (await nc.request("cluster.status", {}, { timeoutMs: WRITE_TIMEOUT_MS })) as WireClusterStatus;
  const group = status.groups.find((g) => g.group === bucket);
  return new Map((group?.members ?? []).map((m) => [m.node, m.applied]));
}

async function catchupRound(path: "snapshot" | "log replay", round: number): Promise<{ ms: number; fromListenMs: number; installed: boolean; behind: number }> {
  // Replay: thresholds above the write count, so the leader keeps every entry the node misses.
  const limits =
    path === "snapshot"
      ? {}
      : { snapshotEntries: CATCHUP_KEYS * 4, compactionKeepEntries: CATCHUP_KEYS * 2 };
  return withCluster({ nodes: 3, durability: "fsync", raft: TIMING, limits }, async (cluster) => {
    const admin = await open(cluster.urls);
    try {
      const kv = await new Kvm(admin).create("catchup", { replicas: 3, history: 1 });
      const leader = (await kv.status()).leader!;
      const lagging = [...cluster.nodes.keys()].find((id) => id !== leader)!;
      const viaLeader = await open([cluster.node(leader).clientUrl]);
      try {
        const lkv = await new Kvm(viaLeader).open("catchup");
        await lkv.put("before", "1");
        await cluster.kill9(lagging);
        const before = (await appliedByNode(viaLeader, "catchup")).get(leader) ?? 0;
        const value = new Uint8Array(VALUE_BYTES).fill(0x62);
        let next = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: IN_FLIGHT }, async () => {
            while (next < CATCHUP_KEYS) await lkv.put(`r${round}.k${next++}`, value);
          }),
        );
        const writeSeconds = (performance.now() - t0) / 1000;
        const target = (await appliedByNode(viaLeader, "catchup")).get(leader) ?? 0;
        console.log(`  ${path} round ${round + 1}: wrote ${fmt(CATCHUP_KEYS)} keys in ${writeSeconds.toFixed(1)} s; node ${lagging} is ${fmt(target - before)} entries behind`);
        const logStart = cluster.node(lagging).log.length;
        const start = performance.now();
        cluster.spawn(lagging);
        await cluster.waitListening(lagging, 60_000);
        const listening = performance.now();
        const deadline = start + CATCHUP_WAIT_MS;
        for (;;) {
          const applied = await appliedByNode(viaLeader, "catchup").catch(() => new Map<string, number>());
          const leaderApplied = applied.get(leader) ?? target;
          if ((applied.get(lagging) ?? -1) >= leaderApplied) break;
          if (performance.now() > deadline) throw new Error(`node ${lagging} did not catch up within ${CATCHUP_WAIT_MS} ms`);
          await sleep(STATUS_POLL_MS);
        }
        const done = performance.now();
        const installed = cluster.node(lagging).log.slice(logStart).some((line) => line.includes("snapshot installed"));
        return { ms: done - start, fromListenMs: done - listening, installed, behind: target - before };
      } finally {
        await viaLeader.close();
      }
    } finally {
      await admin.close();
    }
  });
}

async function catchupBench(): Promise<void> {
  for (const path of ["snapshot", "log replay"] as const) {
    const runs = [];
    for (let r = 0; r < CATCHUP_ROUNDS; r++) {
      const run = await catchupRound(path, r);
      console.log(
        `  ${path} round ${r + 1}: caught up ${fmt(run.ms)} ms after restart (${fmt(run.fromListenMs)} ms after it listened); snapshot installed: ${run.installed}  (load ${load()})`,
      );
      runs.push(run);
    }
    const installed = runs.filter((r) => r.installed).length;
    const limits =
      path === "snapshot"
        ? `snapshotEntries ${fmt(DEFAULT_LIMITS.snapshotEntries)}, compactionKeepEntries ${fmt(DEFAULT_LIMITS.compactionKeepEntries)} (defaults)`
        : `snapshotEntries ${fmt(CATCHUP_KEYS * 4)}, compactionKeepEntries ${fmt(CATCHUP_KEYS * 2)}`;
    report(
      `catch-up, ${fmt(median(runs.map((r) => r.behind)))} entries behind, ${limits}: ${fmt(median(runs.map((r) => r.ms)))} ms from restart ` +
        `(${fmt(median(runs.map((r) => r.fromListenMs)))} ms from listening); path: ${installed === runs.length ? "snapshot install" : installed === 0 ? "log replay" : `mixed (${installed}/${runs.length} installed a snapshot)`}` +
        `  (median of ${runs.length})`,
    );
  }
}

async function failoverBench(): Promise<void> {
  await withCluster({ nodes: 3, durability: "fsync", raft: TIMING }, async (cluster) => {
    const admin = await open(cluster.urls);
    try {
      const kv = await new Kvm(admin).create("failover", { replicas: 3, history: 1 });
      await kv.put("warm", "1");
      const times: number[] = [];
      for (let r = 0; r < FAILOVER_ROUNDS; r++) {
        const leader = (await kv.status()).leader!;
        const survivors = [...cluster.nodes.keys()].filter((id) => id !== leader);
        const nc = await open(survivors.map((id) => cluster.node(id).clientUrl));
        try {
          const skv = await new Kvm(nc).open("failover");
          await skv.put("ready", String(r));
          const t0 = performance.now();
          await cluster.kill9(leader);
          await skv.put("after", String(r), { timeoutMs: WRITE_TIMEOUT_MS });
          const ms = performance.now() - t0;
          times.push(ms);
          console.log(`  round ${r + 1}: kill -9 of ${leader} -> first acknowledged write ${fmt(ms)} ms  (load ${load()})`);
          // Bring it back and wait until it has caught up before the next round.
          cluster.spawn(leader);
          await cluster.waitListening(leader, 60_000);
          const deadline = performance.now() + CATCHUP_WAIT_MS;
          for (;;) {
            const applied = await appliedByNode(nc, "failover").catch(() => new Map<string, number>());
            const top = Math.max(...applied.values());
            if (applied.size === 3 && applied.get(leader) === top) break;
            if (performance.now() > deadline) throw new Error(`node ${leader} did not rejoin within ${CATCHUP_WAIT_MS} ms`);
            await sleep(50);
          }
        } finally {
          await nc.close();
        }
      }
      const electionMs = TIMING.tickMs * TIMING.electionTicks;
      report(
        `failover: kill -9 of the bucket leader -> first acknowledged write: median ${fmt(median(times))} ms, min ${fmt(Math.min(...times))}, max ${fmt(Math.max(...times))}` +
          `  (${times.length} rounds; election timeout ${electionMs}-${2 * electionMs} ms)`,
      );
    } finally {
      await admin.close();
    }
  });
}

console.log(`bench:cluster on ${os.cpus().length} CPUs, node ${process.version}; load average ${load()}`);
console.log(`raft timing: tick ${TIMING.tickMs} ms, heartbeat ${TIMING.heartbeatTicks} ticks, election ${TIMING.electionTicks} ticks`);
if (ONLY.has("puts")) {
  await putsBench("fsync");
  await putsBench("none");
}
if (ONLY.has("catchup")) await catchupBench();
if (ONLY.has("failover")) await failoverBench();
console.log(`\nsummary (load average at the end ${load()}):`);
for (const line of summary) console.log(`  ${line}`);
