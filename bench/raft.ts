/**
 * bench:raft — the consensus core's own cost: committed entries per second through a 3-node
 * in-memory cluster with no I/O (messages handed over by reference, MemoryStorage as the "disk"),
 * with 1 and with 64 proposals per round, and heap retained per million log entries.
 *
 * A round: the leader takes `batch` proposals, then every node runs its Ready loop and messages are
 * delivered until the cluster is quiet. Throughput counts entries the leader hands out as committed.
 * Each scenario runs several times; the median is reported.
 *
 *   npm run bench:raft                 # all scenarios
 *   npm run bench:raft -- --runs 3     # fewer runs
 */
import { MemoryStorage, RaftCore, type Message, type NodeId, type RaftConfig } from "../src/raft/index.ts";

const args = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? Number(args[at + 1]) : fallback;
}
const RUNS = option("runs", 5);
const PAYLOAD_BYTES = 64;

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface BenchNode {
  id: NodeId;
  core: RaftCore;
  storage: MemoryStorage;
  inbox: Message[];
}

class Cluster {
  readonly nodes: BenchNode[];
  private readonly byId = new Map<NodeId, BenchNode>();
  committedOnLeader = 0;
  leader!: BenchNode;

  constructor(size: number) {
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    this.nodes = ids.map((id, i) => {
      const storage = new MemoryStorage({ confState: { voters: ids, learners: [] } });
      const config: RaftConfig = {
        id,
        electionTicks: 10,
        heartbeatTicks: 1,
        preVote: true,
        checkQuorum: true,
        random: seeded(i + 1),
        applied: 0,
        messageBytesMax: 1024 * 1024,
        inflightMessagesMax: 256,
        inflightBytesMax: 0,
        uncommittedBytesMax: 0,
      };
      const node = { id, core: new RaftCore(config, storage), storage, inbox: [] };
      this.byId.set(id, node);
      return node;
    });
    this.nodes[0]!.core.campaign();
    this.settle();
    this.leader = this.nodes[0]!;
    if (this.leader.core.status().role !== "leader") throw new Error("bench: no leader");
  }

  private route(messages: readonly Message[]): void {
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      this.byId.get(m.to)!.inbox.push(m);
    }
  }

  /** One node's Ready loop. Returns whether it produced anything. */
  private processNode(node: BenchNode): boolean {
    let any = false;
    const core = node.core;
    while (core.hasReady()) {
      any = true;
      const rd = core.ready();
      this.route(rd.messagesBeforePersist);
      if (rd.snapshot !== null) node.storage.applySnapshot(rd.snapshot);
      if (rd.entries.length > 0) node.storage.append(rd.entries);
      if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
      this.route(rd.messages);
      if (node === this.leader) this.committedOnLeader += rd.committedEntries.length;
      core.advance(rd);
    }
    return any;
  }

  /** Runs Ready loops and deliveries until nothing moves. */
  settle(): void {
    for (;;) {
      let moved = false;
      for (const node of this.nodes) if (this.processNode(node)) moved = true;
      for (const node of this.nodes) {
        if (node.inbox.length === 0) continue;
        moved = true;
        const inbox = node.inbox;
        node.inbox = [];
        for (let i = 0; i < inbox.length; i++) node.core.step(inbox[i]!);
      }
      if (!moved) return;
    }
  }

  tick(): void {
    for (const node of this.nodes) node.core.tick();
  }
}

const payloads = Array.from({ length: 1024 }, (_, i) => {
  const b = new Uint8Array(PAYLOAD_BYTES);
  b.fill(i & 0xff);
  return b;
});

function throughput(batch: number, entries: number): number {
  const cluster = new Cluster(3);
  const leader = cluster.leader.core;
  const base = cluster.committedOnLeader;
  const rounds = Math.ceil(entries / batch);
  const start = performance.now();
  let p = 0;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < batch; i++) leader.propose(payloads[p++ & 1023]!);
    cluster.settle();
    if ((round & 63) === 63) {
      cluster.tick(); // heartbeats flow as they would with a real clock
      cluster.settle();
    }
  }
  const seconds = (performance.now() - start) / 1000;
  const committed = cluster.committedOnLeader - base;
  if (committed < rounds * batch) throw new Error(`bench: only ${committed} of ${rounds * batch} committed`);
  return committed / seconds;
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g !== undefined) {
    g();
    g();
  }
}

/** Heap retained per million entries held in all three replicas' logs (entries shared in-process). */
function memoryPerMillion(): { clusterMiB: number; storageMiB: number } {
  const count = 1_000_000;
  gc();
  const before = process.memoryUsage().heapUsed;
  const cluster = new Cluster(3);
  const leader = cluster.leader.core;
  let p = 0;
  for (let round = 0; round < count / 64; round++) {
    for (let i = 0; i < 64; i++) leader.propose(payloads[p++ & 1023]!);
    cluster.settle();
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  const clusterMiB = (after - before) / (1024 * 1024) / (count / 1_000_000);
  // One MemoryStorage holding a million entries it alone references (the shape a real node has:
  // entries decoded from the wire are its own objects), payloads shared.
  gc();
  const before2 = process.memoryUsage().heapUsed;
  const storage = new MemoryStorage({ confState: { voters: ["n1"], learners: [] } });
  const chunk: { term: number; index: number; type: "normal"; data: Uint8Array }[] = [];
  for (let i = 1; i <= count; i++) {
    chunk.push({ term: 1, index: i, type: "normal", data: payloads[i & 1023]! });
    if (chunk.length === 1024) {
      storage.append(chunk);
      chunk.length = 0;
    }
  }
  storage.append(chunk);
  gc();
  const storageMiB = (process.memoryUsage().heapUsed - before2) / (1024 * 1024);
  if (cluster.committedOnLeader < count || storage.lastIndex() !== count) throw new Error("bench: memory run incomplete");
  return { clusterMiB, storageMiB };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function scenario(name: string, batch: number, entries: number, target: number): void {
  throughput(batch, Math.min(entries, 20_000)); // warm up the JIT
  const results: number[] = [];
  for (let i = 0; i < RUNS; i++) results.push(throughput(batch, entries));
  const m = median(results);
  const runs = results.map((r) => Math.round(r).toLocaleString("en-US")).join(", ");
  console.log(`${name}: median ${Math.round(m).toLocaleString("en-US")} entries/s (target ${target.toLocaleString("en-US")}) ${m >= target ? "OK" : "BELOW TARGET"}  [runs: ${runs}]`);
}

console.log(`bench:raft — 3 voters in memory, ${PAYLOAD_BYTES}-byte payloads, ${RUNS} runs per scenario, node ${process.version}`);
scenario("batch 64", 64, 640_000, 300_000);
scenario("batch  1", 1, 100_000, 50_000);
if ((globalThis as { gc?: () => void }).gc === undefined) {
  console.log("memory: skipped (run with node --expose-gc, as npm run bench:raft does)");
} else {
  const { clusterMiB, storageMiB } = memoryPerMillion();
  console.log(`memory: ${clusterMiB.toFixed(1)} MiB heap per million entries retained by the 3-node cluster (entries shared by reference in-process, payloads excluded)`);
  console.log(`memory: ${storageMiB.toFixed(1)} MiB heap per million entries in one MemoryStorage (entry objects + log array, payloads excluded)`);
}
