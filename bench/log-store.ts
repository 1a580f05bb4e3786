/**
 * Log store write throughput: fsynced batches/s and entries/s for batches of 1, 64 and 1024 small
 * entries (one group), a group-commit batch (16 groups x 64 entries in one write), and the same with
 * durability "none" for comparison. Each figure is the median of ROUNDS timed rounds after a warm-up.
 *
 *   npm run bench:store            # LevelLogStore in a fresh directory under os.tmpdir()
 *   BENCH_DIR=/data npm run bench:store   # on another disk
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Entry } from "../src/raft/types.ts";
import { openLevelLogStore } from "../src/node/log-store-level.ts";
import type { GroupWrite, LogStore, LogStoreDurability } from "../src/node/log-store.ts";

const ROUNDS = 7;
const ENTRY_DATA_BYTES = 100;
/** Each timed round writes about this many entries (at least MIN_BATCHES batches). */
const ROUND_ENTRIES = 20_000;
const MIN_BATCHES = 50;

interface Scenario {
  readonly name: string;
  readonly groups: number;
  readonly entriesPerGroup: number;
  readonly durability: LogStoreDurability;
}

const SCENARIOS: readonly Scenario[] = [
  { name: "1 entry", groups: 1, entriesPerGroup: 1, durability: "fsync" },
  { name: "64 entries", groups: 1, entriesPerGroup: 64, durability: "fsync" },
  { name: "1024 entries", groups: 1, entriesPerGroup: 1024, durability: "fsync" },
  { name: "16 groups x 64", groups: 16, entriesPerGroup: 64, durability: "fsync" },
  { name: "1 entry", groups: 1, entriesPerGroup: 1, durability: "none" },
  { name: "64 entries", groups: 1, entriesPerGroup: 64, durability: "none" },
  { name: "1024 entries", groups: 1, entriesPerGroup: 1024, durability: "none" },
];

const payload = new Uint8Array(ENTRY_DATA_BYTES).fill(0x61);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function runScenario(root: string, scenario: Scenario): Promise<{ batchesPerSec: number; entriesPerSec: number; batchMsP50: number }> {
  const dir = await mkdtemp(join(root, "scenario-"));
  const store: LogStore = await openLevelLogStore({ dir, durability: scenario.durability });
  const lastIndex = new Map<string, number>();
  const groups = Array.from({ length: scenario.groups }, (_, i) => `b:bench-${i}`);
  const entriesPerBatch = scenario.groups * scenario.entriesPerGroup;
  const batchesPerRound = Math.max(MIN_BATCHES, Math.ceil(ROUND_ENTRIES / entriesPerBatch));

  const nextBatch = (): GroupWrite[] =>
    groups.map((group) => {
      const last = lastIndex.get(group) ?? 0;
      const entries: Entry[] = new Array(scenario.entriesPerGroup);
      for (let i = 0; i < scenario.entriesPerGroup; i++) entries[i] = { index: last + 1 + i, term: 1, type: "normal", data: payload };
      lastIndex.set(group, last + scenario.entriesPerGroup);
      return { group, hardState: { term: 1, vote: "n1", commit: last }, entries, snapshot: null };
    });

  const round = async (): Promise<{ seconds: number; batchMs: number[] }> => {
    const batchMs: number[] = [];
    const start = performance.now();
    for (let b = 0; b < batchesPerRound; b++) {
      const batch = nextBatch();
      const t0 = performance.now();
      await store.write(batch, { sync: true });
      batchMs.push(performance.now() - t0);
    }
    return { seconds: (performance.now() - start) / 1000, batchMs };
  };

  await round(); // warm-up: JIT, LevelDB memtable, file system
  const rates: number[] = [];
  const latencies: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const { seconds, batchMs } = await round();
    rates.push(batchesPerRound / seconds);
    latencies.push(median(batchMs));
  }
  await store.close();
  await rm(dir, { recursive: true, force: true });
  const batchesPerSec = median(rates);
  return { batchesPerSec, entriesPerSec: batchesPerSec * entriesPerBatch, batchMsP50: median(latencies) };
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(process.env["BENCH_DIR"] ?? tmpdir(), "cairn-bench-store-"));
  console.log(`log store bench: LevelLogStore in ${root}, ${ENTRY_DATA_BYTES}-byte entries, median of ${ROUNDS} rounds`);
  console.log("durability  batch              batches/s    entries/s   batch p50 ms");
  try {
    for (const scenario of SCENARIOS) {
      const result = await runScenario(root, scenario);
      console.log(
        `${scenario.durability.padEnd(10)}  ${scenario.name.padEnd(16)} ${result.batchesPerSec.toFixed(0).padStart(11)} ` +
          `${result.entriesPerSec.toFixed(0).padStart(12)} ${result.batchMsP50.toFixed(3).padStart(14)}`,
      );
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
