/**
 * Replays one simulator run: `SEED=<n> npm run sim`.
 *
 * Environment:
 *   SEED     the seed printed by a failure (default: a fresh one, printed)
 *   PROFILE  test (default: what npm test runs) | swarm (what the soak runs)
 *   STEPS    safety-phase steps (default 2000)
 *   TRACE    1: print every trace line; otherwise the last 60 lines are printed on failure
 *   CORES    1: include the cores' own debug log lines in the trace
 *   SHRINK   1: on failure, let fast-check shrink the run and print the smallest failing params
 *   PARAMS   a JSON params object (as printed by SHRINK) to run instead of a seed
 */
import { describeParams, type SimParams } from "./params.ts";
import { DEFAULT_STEPS, formatFailure, runSeed, shrinkSeed, type Profile } from "./seeds.ts";
import { runSim, type SimResult } from "./swarm.ts";

const profile = (process.env.PROFILE ?? "test") as Profile;
if (profile !== "test" && profile !== "swarm") throw new TypeError(`PROFILE must be test or swarm, got ${profile}`);
const steps = process.env.STEPS === undefined ? DEFAULT_STEPS : Number(process.env.STEPS);
const traceAll = process.env.TRACE === "1";
const traceCores = process.env.CORES === "1";
const tail: string[] = [];
const trace = (line: string) => {
  if (traceAll) console.log(line);
  else {
    tail.push(line);
    if (tail.length > 60) tail.shift();
  }
};

function summary(result: SimResult): string {
  return [
    `  safety steps ${result.steps}, liveness steps ${result.livenessSteps} (fresh write committed after ${result.recoverySteps}), max term ${result.maxTerm}, committed ${result.committed}`,
    `  checks ${JSON.stringify(result.checks)}`,
    `  history ${JSON.stringify(result.history)}`,
    `  counters ${JSON.stringify(result.counters)}`,
  ].join("\n");
}

if (process.env.PARAMS !== undefined) {
  const params = JSON.parse(process.env.PARAMS) as SimParams;
  console.log(`params: ${describeParams(params)}`);
  const result = runSim(params, { trace, traceCores });
  if (!traceAll && !result.ok) console.log(tail.join("\n"));
  console.log(result.ok ? "ok" : `FAILURE (${result.failure!.kind}): ${result.failure!.message}`);
  console.log(summary(result));
  process.exitCode = result.ok ? 0 : 1;
} else {
  const seed = process.env.SEED === undefined ? Date.now() % 0x7fffffff : Number(process.env.SEED);
  if (!Number.isSafeInteger(seed)) throw new TypeError(`SEED must be an integer, got ${process.env.SEED}`);
  const started = performance.now();
  const { params, result } = runSeed(seed, profile, steps, { trace, traceCores });
  const ms = performance.now() - started;
  console.log(`seed ${seed} profile ${profile}: ${describeParams(params)}`);
  if (!result.ok) {
    if (!traceAll) console.log(`--- last trace lines ---\n${tail.join("\n")}\n---`);
    console.log(formatFailure(seed, profile, result, steps));
  } else console.log(`ok in ${ms.toFixed(0)} ms`);
  console.log(summary(result));
  if (!result.ok && process.env.SHRINK === "1") {
    const shrunk = shrinkSeed(seed, profile, steps);
    if (shrunk === null) console.log("shrinking did not reproduce the failure");
    else {
      console.log(`shrunk: ${describeParams(shrunk.params)}`);
      console.log(`  ${shrunk.result.failure?.message ?? "?"}`);
      console.log(`  replay: PARAMS='${JSON.stringify(shrunk.params)}' npm run sim`);
    }
  }
  process.exitCode = result.ok ? 0 : 1;
}
