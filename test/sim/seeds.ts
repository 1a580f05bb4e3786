/**
 * Seeds, profiles, replay commands and shrinking: the glue between a seed number and a simulation.
 *
 * Profiles: "test" is what `npm test` runs (every fault kind in every run, 2,000 steps); "swarm" lets
 * each seed also switch whole fault kinds off and run the network clean (used by the soak).
 */
import fc from "fast-check";
import { paramsForSeed, simParamsArbitrary, type ArbitraryOptions, type SimParams } from "./params.ts";
import { runSim, type RunOptions, type SimResult } from "./swarm.ts";

export type Profile = "test" | "swarm";

export const DEFAULT_STEPS = 2_000;

export function profileOptions(profile: Profile, steps = DEFAULT_STEPS): ArbitraryOptions {
  return { steps, allFaults: profile === "test" };
}

export function replayCommand(seed: number, profile: Profile, steps = DEFAULT_STEPS): string {
  const env = [`SEED=${seed}`];
  if (profile !== "test") env.push(`PROFILE=${profile}`);
  if (steps !== DEFAULT_STEPS) env.push(`STEPS=${steps}`);
  return `${env.join(" ")} npm run sim`;
}

export function runSeed(seed: number, profile: Profile, steps = DEFAULT_STEPS, options: RunOptions = {}): { params: SimParams; result: SimResult } {
  const params = paramsForSeed(seed, profileOptions(profile, steps));
  return { params, result: runSim(params, options) };
}

/**
 * Lets fast-check shrink a failing seed: the first value fc.assert checks with this seed is the
 * seed's own params, so the failure reproduces, then fast-check simplifies it (fewer faults, lower
 * rates, fewer clients...) while it keeps failing the same way. Returns the smallest failing params.
 */
export function shrinkSeed(seed: number, profile: Profile, steps = DEFAULT_STEPS, options: RunOptions = {}): { params: SimParams; result: SimResult } | null {
  const arbitrary = simParamsArbitrary(profileOptions(profile, steps));
  const firstFailure = runSeed(seed, profile, steps, options).result.failure;
  if (firstFailure === null) return null;
  const check = firstFailure.message.split(":")[0];
  const details = fc.check(
    fc.property(arbitrary, (params) => {
      const failure = runSim(params, options).failure;
      // Shrink toward the same kind of failure (same checker), not any failure.
      return failure === null || failure.kind !== firstFailure.kind || failure.message.split(":")[0] !== check;
    }),
    { seed, numRuns: 1 },
  );
  const counterexample = details.counterexample?.[0];
  if (!details.failed || counterexample === undefined) return null;
  return { params: counterexample, result: runSim(counterexample, options) };
}

/** Human-readable failure report: the seed first, because the seed is the whole bug report. */
export function formatFailure(seed: number, profile: Profile, result: SimResult, steps = DEFAULT_STEPS): string {
  const failure = result.failure;
  if (failure === null) return `seed ${seed}: ok`;
  return [
    `SIM FAILURE seed=${seed} profile=${profile} (${failure.kind})`,
    `  ${failure.message.split("\n").join("\n  ")}`,
    `  replay: ${replayCommand(seed, profile, steps)}`,
    `  shrink: SHRINK=1 ${replayCommand(seed, profile, steps)}`,
  ].join("\n");
}
