/**
 * bench:checker — how long the linearizability checker takes on one key's history of 10k operations
 * at concurrency 5 and 10, without and with faults (operations that time out, outcome unknown; writes
 * refused before proposing).
 *
 * Histories come from simulateHistory (test/jepsen-lite/checker/simulate.ts): clients run a random
 * mix (30% get, 20% put, 10% create, 20% update, 20% delete/purge; CAS on the current, a stale or
 * revision 0) against a real sequential bucket, with 3 distinct values per key (few values make the
 * search work harder than unique ones). Generation is not timed. Each figure is the median of the
 * runs, each run on a fresh history (seed = run number).
 *
 *   npm run bench:checker
 *   npm run bench:checker -- --ops 20000 --runs 5 --values 3
 */
import os from "node:os";
import { checkKey } from "../test/jepsen-lite/checker/linearizability.ts";
import { simulateHistory } from "../test/jepsen-lite/checker/simulate.ts";

const args = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? Number(args[at + 1]) : fallback;
}
const OPS = option("ops", 10_000);
const RUNS = option("runs", 5);
const VALUES = option("values", 3);

const scenarios = [
  { name: "no faults", unknownRate: 0, refusedRate: 0 },
  { name: "2% timeouts, 1% refused", unknownRate: 0.02, refusedRate: 0.01 },
  { name: "10% timeouts", unknownRate: 0.1, refusedRate: 0 },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

console.log(`bench:checker — one key, ${OPS} ops, ${VALUES} values, median of ${RUNS} runs`);
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"} x${os.cpus().length}, load ${os.loadavg()[0]!.toFixed(1)}`);
console.log("concurrency | scenario                 | verdicts     | states (median) | check ms (median) | ms/1k ops");
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
        values: VALUES,
        unknownRate: scenario.unknownRate,
        refusedRate: scenario.refusedRate,
      });
      const start = performance.now();
      const result = checkKey("k", history);
      times.push(performance.now() - start);
      states.push(result.exploredStates);
      verdicts.set(result.verdict, (verdicts.get(result.verdict) ?? 0) + 1);
    }
    const verdictText = [...verdicts].map(([v, n]) => `${n} ${v}`).join(", ");
    const ms = median(times);
    console.log(
      `${String(processes).padStart(11)} | ${scenario.name.padEnd(24)} | ${verdictText.padEnd(12)} | ${String(median(states)).padStart(15)} | ${ms.toFixed(0).padStart(17)} | ${((ms / OPS) * 1000).toFixed(1).padStart(9)}`,
    );
  }
}
