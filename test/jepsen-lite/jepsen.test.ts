/**
 * The short jepsen-lite profile of `npm test` (about 3 minutes on 2 cores): every workload and every
 * nemesis on 3 real node processes, each run checked for zero violations, plus the negative control,
 * which must report lost writes. Seeds are fixed so a failure replays with the command it prints;
 * the run's output folder is kept when a run fails (its path is in the message).
 * Long runs: `npm run jepsen` (README.md).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expandNemeses } from "./nemesis.ts";
import { DEFAULT_OPTIONS, formatSummary, negativeControlOptions, runJepsen, type JepsenOptions, type RunSummary } from "./runner.ts";

let root: string;
let keep = false;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-jepsen-test-"));
});
afterAll(async () => {
  if (!keep) await rm(root, { recursive: true, force: true });
});

const PROFILE: { name: string; options: Partial<JepsenOptions> }[] = [
  {
    name: "registers + appends under kill -9 (node, leader, majority, whole cluster) and pauses (leader, followers)",
    options: { seed: 101, timeSec: 35, nemesis: ["kill", "kill-all", "pause"], workloads: ["registers", "appends"] },
  },
  {
    name: "every workload under partitions (halves, isolated leader, bridge, one-way)",
    options: { seed: 102, timeSec: 25, nemesis: ["partition"], workloads: ["registers", "appends", "watches"] },
  },
  {
    name: "every workload under disk faults (torn tail, flipped byte) and membership changes",
    options: { seed: 103, timeSec: 25, nemesis: ["disk", "membership"], workloads: ["registers", "appends", "watches"] },
  },
];

/** Shorter episodes than the command line's, so that each run goes through all of its faults. */
const PROFILE_TIMING = { holdMsMin: 1500, holdMsMax: 4000, quietMsMin: 500, quietMsMax: 1500 };

/** Runs quietly; on an unexpected verdict keeps the output folder and prints the progress lines. */
async function run(options: JepsenOptions): Promise<RunSummary> {
  const lines: string[] = [];
  const summary = await runJepsen({ ...options, log: (line) => lines.push(line) });
  if (summary.verdict !== (options.negativeControl ? "fail" : "ok")) {
    keep = true;
    console.log(lines.join("\n"));
  }
  return summary;
}

describe("jepsen-lite short profile (3 nodes, real processes)", () => {
  for (const { name, options } of PROFILE) {
    it(name, async () => {
      const summary = await run({
        ...DEFAULT_OPTIONS,
        rate: 40,
        clients: 8,
        timing: PROFILE_TIMING,
        maxSearchMsPerKey: 20_000,
        outDir: join(root, `seed${options.seed}`),
        ...options,
      });
      const report = formatSummary(summary);
      expect(summary.violations, report).toEqual([]);
      expect(summary.inconclusive, report).toEqual([]);
      expect(summary.verdict, report).toBe("ok");
      // The run did what it claims: every fault of its nemeses was injected, operations completed.
      const { faults, membership } = expandNemeses(options.nemesis!);
      expect(Object.keys(summary.faultsInjected).filter((f) => f !== "membership").sort(), report).toEqual([...faults].sort());
      if (membership) expect(["exercised", "skipped (unknown op)"], report).toContain(summary.membership);
      expect(summary.buckets.every((b) => Object.values(b.counts).some((c) => c.ok > 0)), report).toBe(true);
    });
  }

  it("negative control: durability none + whole-cluster kill -9 makes the checker report lost writes", async () => {
    const summary = await run(negativeControlOptions({ seed: 104, timeSec: 15, outDir: join(root, "negative-control") }));
    const report = formatSummary(summary);
    expect(summary.negativeControl, report).not.toBeNull();
    expect(summary.appends?.lostCount ?? 0, report).toBeGreaterThanOrEqual(1);
    expect(summary.verdict, report).toBe("fail");
  });
});
