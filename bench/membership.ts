/**
 * bench:membership — how long membership changes take (docs/membership.md), on in-process clusters
 * (startCluster, memory transport and storage, Raft timing of cluster.config.ts's default: 50 ms ticks).
 *
 *   1. 3 nodes, one R3 bucket with --keys keys: remove a follower (the bucket shrinks to 2 replicas),
 *      then re-add it (it comes back blank and catches up through the leader's snapshot).
 *   2. 5 nodes, one R3 bucket with --keys keys: remove one of its replicas (the replica moves to a spare
 *      node: learner, catch-up, promotion, then removal).
 *
 * Each figure is the time from the request to its answer (the change is complete then), median over
 * --rounds rounds. Nothing is asserted; the load average is printed: compare runs at similar load.
 *
 *   npx tsx bench/membership.ts [--keys 20000] [--rounds 3]
 */
import os from "node:os";
import { connect, Kvm } from "../src/client/index.ts";
import { DEFAULT_TIMING } from "../src/node/config.ts";
import { startCluster } from "../src/node/embed.ts";

const args = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
}
const KEYS = option("keys", 20_000);
const ROUNDS = option("rounds", 3);
/** Writes in flight while loading the keys. */
const LOAD_WINDOW = 64;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timed<T>(f: () => Promise<T>): Promise<number> {
  const start = performance.now();
  await f();
  return performance.now() - start;
}

async function round(nodes: 3 | 5): Promise<Record<string, number>> {
  const cluster = await startCluster({ nodes, inMemory: true, raft: DEFAULT_TIMING });
  const nc = await connect({ servers: cluster.urls, timeoutMs: 60_000 });
  try {
    const kv = await new Kvm(nc).create("bench", { replicas: 3, history: 1 });
    const value = "x".repeat(64);
    for (let next = 0; next < KEYS; ) {
      const batch = [];
      for (let i = 0; i < LOAD_WINDOW && next < KEYS; i++, next++) batch.push(kv.put(`k.${next}`, value));
      await Promise.all(batch);
    }
    const meta = cluster.nodes.get(cluster.ids[0]!)!.node.meta;
    const placement = meta.get("bench")!.placement;
    const leader = await cluster.waitForLeader("bench");
    const victim = placement.find((id) => id !== leader)!;
    const out: Record<string, number> = {};
    if (nodes === 3) {
      out["remove follower (shrink)"] = await timed(() => nc.request("cluster.removeNode", { nodeId: victim }, { timeoutMs: 120_000 }));
      out["re-add (snapshot catch-up)"] = await timed(() => nc.request("cluster.addNode", { nodeId: victim }, { timeoutMs: 120_000 }));
    } else {
      out["remove replica (move to a spare)"] = await timed(() => nc.request("cluster.removeNode", { nodeId: victim }, { timeoutMs: 120_000 }));
    }
    return out;
  } finally {
    await nc.close();
    await cluster.stop();
  }
}

console.log(`bench:membership  keys ${KEYS}, rounds ${ROUNDS}, tick ${DEFAULT_TIMING.tickMs} ms, election ${DEFAULT_TIMING.electionTicks} ticks, load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
for (const nodes of [3, 5] as const) {
  const samples = new Map<string, number[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, ms] of Object.entries(await round(nodes))) samples.set(name, [...(samples.get(name) ?? []), ms]);
  }
  for (const [name, values] of samples) console.log(`  ${nodes} nodes  ${name.padEnd(34)} median ${median(values).toFixed(0).padStart(6)} ms  (${values.map((v) => v.toFixed(0)).join(", ")})`);
}
console.log(`load at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
