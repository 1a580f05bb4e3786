/**
 * Goal: the Raft core stays safe under every fault the simulator injects, and live once faults stop.
 * Method: SIM_SEEDS (default 200) seeds of the "test" profile, each a 3- or 5-node cluster run for
 * 2,000 steps with every fault kind scheduled at least once (partitions symmetric, one-way and
 * bridged, drops, duplicates, reordering, clogged links, crashes losing unsynced writes, pauses, disk
 * stalls, compaction and snapshots, leadership transfers, membership changes) and the checkers run
 * after every step, followed by the liveness phase. A failing seed prints its replay command; the
 * first failure is also shrunk by fast-check and the smallest failing params are printed.
 */
import { describe, expect, it } from "vitest";
import { describeParams } from "./params.ts";
import { DEFAULT_STEPS, formatFailure, runSeed, shrinkSeed } from "./seeds.ts";

const SEEDS = Number(process.env.SIM_SEEDS ?? 200);
const FIRST_SEED = Number(process.env.SIM_FIRST_SEED ?? 1);

describe("simulator seeds (profile test)", () => {
  let shrunkOne = false;
  const totals = { steps: 0, committed: 0, leaders: 0, crashes: 0, snapshots: 0, readsServed: 0, writesAcked: 0 };

  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
    it(`seed ${seed}`, () => {
      const { params, result } = runSeed(seed, "test");
      totals.steps += result.steps;
      totals.committed += result.committed;
      totals.leaders += result.checks.leadersSeen;
      totals.snapshots += result.checks.snapshotsChecked;
      totals.readsServed += result.history.readsServed;
      totals.writesAcked += result.history.writesAcked;
      for (const [key, value] of Object.entries(result.counters)) if (key.startsWith("crash:")) totals.crashes += value;
      if (!result.ok) {
        let report = `${formatFailure(seed, "test", result)}\n  params: ${describeParams(params)}`;
        if (!shrunkOne) {
          shrunkOne = true;
          const shrunk = shrinkSeed(seed, "test");
          if (shrunk !== null) {
            report += `\n  shrunk: ${describeParams(shrunk.params)}\n  ${shrunk.result.failure?.message ?? ""}\n  replay shrunk: PARAMS='${JSON.stringify(shrunk.params)}' npm run sim`;
          }
        }
        console.error(report);
      }
      expect(result.failure, formatFailure(seed, "test", result)).toBeNull();
      expect(result.steps).toBe(DEFAULT_STEPS);
      // Every run must have done real work, or its "no violation" would mean little.
      expect(result.checks.leadersSeen).toBeGreaterThan(0);
      expect(result.checks.committedEntries).toBeGreaterThan(0);
    });
  }

  it("exercised what it claims (totals over all seeds)", () => {
    expect(totals.steps).toBe(SEEDS * DEFAULT_STEPS);
    expect(totals.crashes).toBeGreaterThan(0);
    expect(totals.snapshots).toBeGreaterThan(0);
    expect(totals.readsServed).toBeGreaterThan(0);
    expect(totals.writesAcked).toBeGreaterThan(0);
  });
});
