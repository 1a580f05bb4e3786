/**
 * Goal: prove the simulator's checkers are not vacuous. Each test plants one classic bug in the
 * driver or the disk (never in the core) and requires that some seed among the first few dozen
 * fails with the expected kind of violation.
 * Method: the swarm with RunOptions.bugs set; seeds are fixed, so each test is deterministic.
 */
import { describe, expect, it } from "vitest";
import { paramsForSeed } from "./params.ts";
import { profileOptions, shrinkSeed } from "./seeds.ts";
import { runSim, type RunOptions } from "./swarm.ts";

const SEEDS_MAX = 60;

function firstFailure(bugs: NonNullable<RunOptions["bugs"]>): { seed: number; message: string } | null {
  for (let seed = 1; seed <= SEEDS_MAX; seed++) {
    const result = runSim(paramsForSeed(seed, profileOptions("test")), { bugs });
    if (result.failure !== null) return { seed, message: result.failure.message };
  }
  return null;
}

describe("mutants: each planted bug is caught", () => {
  it("acknowledging appends and votes before they are durable (checklist item 2)", () => {
    const failure = firstFailure({ ackBeforePersist: true });
    expect(failure?.message).toMatch(/^(commit-durability|vote-safety|committed-lost|leader-completeness|election-safety|log-matching)/);
  });

  it("an fsync that does not sync (the NATS default, nats-server#7564)", () => {
    const failure = firstFailure({ fsyncLies: true });
    expect(failure?.message).toMatch(/^(commit-durability|committed-lost|leader-completeness|durability)/);
  });

  it("a vote that is not persisted", () => {
    const failure = firstFailure({ forgetVotes: true });
    expect(failure?.message).toMatch(/^(durability|vote-safety|election-safety)/);
  });

  it("reads served from local state without ReadIndex (checklist item 4)", () => {
    const failure = firstFailure({ staleReads: true });
    expect(failure?.message).toMatch(/^linearizability/);
  });
});

describe("shrinking", () => {
  it("fast-check shrinks a failing seed to a simpler run that fails the same way", () => {
    // Short swarm-profile runs: shrinking re-runs the simulation many times, and the swarm profile
    // lets it switch whole fault kinds off.
    const bugs = { staleReads: true };
    const steps = 400;
    let seed = 1;
    while (runSim(paramsForSeed(seed, profileOptions("swarm", steps)), { bugs }).failure === null) seed++;
    const original = paramsForSeed(seed, profileOptions("swarm", steps));
    const shrunk = shrinkSeed(seed, "swarm", steps, { bugs });
    expect(shrunk).not.toBeNull();
    expect(shrunk!.result.failure?.message).toMatch(/^linearizability/);
    const weight = (p: typeof original) => p.faults.length + p.clients + p.keys + p.dropPermille + p.dupPermille + p.nodes;
    expect(weight(shrunk!.params)).toBeLessThan(weight(original));
    // The shrunk params replay: same failure again.
    expect(runSim(shrunk!.params, { bugs }).failure).toEqual(shrunk!.result.failure);
  });
});
