/**
 * bench:checker — how long the linearizability checker takes on one key's history of 10k operations
 * at concurrency 5 and 10, without and with faults (operations that time out, outcome unknown; writes
 * refused before proposing), and how long it takes to find one stale read in such a history.
 *
 * Histories come from simulateHistory (test/jepsen-lite/checker/simulate.ts): clients run a random
 * mix (30% get, 20% put, 10% create, 20% update, 20% delete/purge; CAS on the current, a stale or
 * revision 0) against a real sequential bucket, with 3 distinct values per key (few values make the
 * search work harder than unique ones). Generation is not timed. Each figure is the median of the
 * runs, each run on a fresh history (seed = run number).
 *
 *   npm run bench:checker
 *   npm run bench:checker -- --ops 20000 --runs 5 --values 3 --foreign 0.1
 */
import os from "node:os";
import { checkKey } from "../test/jepsen-lite/checker/linearizability.ts";
import type { Op } from "../test/jepsen-lite/checker/history.ts";
import { simulateHistory } from "../test/jepsen-lite/checker/simulate.ts";

const args = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? Number(args[at + 1]) : fallback;
}
const OPS = option("ops", 10_000);
const RUNS = option("runs", 5);
const VALUES = option("values", 3);
/**
 * Probability per scheduling step of a write to another key that the history does not record. The
 * harness records every write of the bucket, so revision gaps come only from unknown outcomes:
 * default 0. Unrecorded gaps let unknown ops fit anywhere, which makes the search work harder.
 */
const FOREIGN = option("foreign", 0);

const scenarios = [
  { name: "no faults", unknownRate: 0, refusedRate: 0, stale: false },
  { name: "2% timeouts, 1% refused", unknownRate: 0.02, refusedRate: 0.01, stale: false },
  { name: "10% timeouts", unknownRate: 0.1, refusedRate: 0, stale: false },
  { name: "2% timeouts + stale read", unknownRate: 0.02, refusedRate: 0.01, stale: true },
  // Reads without revisions and unique values: the stale read is no longer evident, the search must
  // rule out every order of what came before it.
  { name: "same, unique values, reads w/o revision", unknownRate: 0.02, refusedRate: 0.01, stale: true, blind: true },
];

/**
 * Makes the first read after the middle of the history that started after a newer write to the
 * key had returned report the record before that write: a stale read only the search can find.
 */
function injectStaleRead(history: Op[]): void {
  const writes = history.filter((op) => op.outcome === "ok" && op.type !== "get" && op.revision !== undefined);
  for (const read of history.slice(history.length / 2)) {
    if (read.type !== "get" || read.outcome !== "ok") continue;
    const done = writes.filter((w) => w.completeMs! < read.invokeMs).sort((a, b) => b.revision! - a.revision!);
    const older = done.slice(1).find((w) => w.value !== undefined);
    if (older === undefined) continue;
    read.readValue = older.value!;
    read.revision = older.revision!;
    return;
  }
  throw new Error("no read to make stale");
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

console.log(`bench:checker — one key, ${OPS} ops, ${VALUES} values, unrecorded writes ${FOREIGN}, median of ${RUNS} runs`);
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.cpus().length}, load ${os.loadavg()[0]!.toFixed(1)}`);
console.log(`concurrency | ${"scenario".padEnd(40)} | verdicts          | states (median) | check ms (median) | ms/1k ops`);
for (const processes of [5, 10]) {
  for (const scenario of scenarios) {
    const times: number[] = [];
    const states: number[] = [];
    const verdicts = new Map<string, number>();
    for (let run = 0; run < RUNS; run++) {
      const history = simulateHistory({
        seed: run + 1,
        processes,
        ops: OPS,
        keys: ["k"],
        values: "blind" in scenario ? 1e9 : VALUES,
        unknownRate: scenario.unknownRate,
        refusedRate: scenario.refusedRate,
        foreignWriteRate: FOREIGN,
      });
      if (scenario.stale) injectStaleRead(history);
      if ("blind" in scenario) for (const op of history) if (op.type === "get") delete op.revision;
      const start = performance.now();
      const result = checkKey("k", history);
      times.push(performance.now() - start);
      states.push(result.exploredStates);
      verdicts.set(result.verdict, (verdicts.get(result.verdict) ?? 0) + 1);
    }
    const verdictText = [...verdicts].map(([v, n]) => `${n} ${v}`).join(", ");
    const ms = median(times);
    console.log(
      `${String(processes).padStart(11)} | ${scenario.name.padEnd(40)} | ${verdictText.padEnd(17)} | ${String(median(states)).padStart(15)} | ${ms.toFixed(0).padStart(17)} | ${((ms / OPS) * 1000).toFixed(1).padStart(9)}`,
    );
  }
}
