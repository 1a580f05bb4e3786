/**
 * Long simulator soak: `npm run sim:soak -- --seeds 5000 [--start N] [--profile swarm|test] [--steps N]`.
 *
 * Runs consecutive seeds, prints every failure with its replay command as it happens, and at the end
 * the speed (seeds/s, steps/s), the failures, and how often each fault and each check was exercised
 * (so a fault that never fires, or a checker that never runs, is visible).
 */
import { formatFailure, runSeed, DEFAULT_STEPS, type Profile } from "./seeds.ts";
import { LIVENESS_ELECTION_TIMEOUTS } from "./swarm.ts";

function argument(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = process.argv[at + 1];
  if (value === undefined) throw new TypeError(`--${name} needs a value`);
  return value;
}

const seeds = Number(argument("seeds", "1000"));
const start = Number(argument("start", "1"));
const profile = argument("profile", "swarm") as Profile;
const steps = Number(argument("steps", String(DEFAULT_STEPS)));
if (profile !== "swarm" && profile !== "test") throw new TypeError("--profile must be swarm or test");

const totals = new Map<string, number>();
const add = (key: string, value: number) => totals.set(key, (totals.get(key) ?? 0) + value);
const failures: string[] = [];
let safetySteps = 0;
let livenessStepsMax = 0;
let livenessStepsSum = 0;
/** Liveness time in election timeouts (electionTicks x tickSteps steps), the unit of the bound. */
let livenessTimeoutsMax = 0;
let committedSum = 0;
const started = performance.now();

for (let seed = start; seed < start + seeds; seed++) {
  const { params, result } = runSeed(seed, profile, steps);
  livenessTimeoutsMax = Math.max(livenessTimeoutsMax, result.recoverySteps / (params.electionTicks * params.tickSteps));
  safetySteps += result.steps;
  livenessStepsMax = Math.max(livenessStepsMax, result.livenessSteps);
  livenessStepsSum += result.livenessSteps;
  committedSum += result.committed;
  for (const [key, value] of Object.entries(result.counters)) add(key, value);
  for (const [key, value] of Object.entries(result.checks)) add(`check:${key}`, value);
  for (const [key, value] of Object.entries(result.history)) add(`history:${key}`, value);
  if (!result.ok) {
    const report = formatFailure(seed, profile, result, steps);
    failures.push(report);
    console.log(report);
  }
  const done = seed - start + 1;
  if (done % 500 === 0) {
    const seconds = (performance.now() - started) / 1000;
    console.log(`... ${done} seeds, ${(done / seconds).toFixed(1)} seeds/s, ${failures.length} failures`);
  }
}

const seconds = (performance.now() - started) / 1000;
const table = (prefix: string) =>
  [...totals]
    .filter(([key]) => key.startsWith(prefix))
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([key, value]) => `  ${key.slice(prefix.length).padEnd(28)} ${value}`)
    .join("\n");

console.log(`\nsoak: ${seeds} seeds (${start}..${start + seeds - 1}), profile ${profile}, ${steps} steps each`);
console.log(`time ${seconds.toFixed(1)} s: ${(seeds / seconds).toFixed(1)} seeds/s, ${((safetySteps / seconds) | 0).toLocaleString("en")} safety steps/s`);
console.log(`committed entries per seed (mean) ${(committedSum / seeds).toFixed(1)}; liveness steps mean ${(livenessStepsSum / seeds).toFixed(1)}, max ${livenessStepsMax}; slowest recovery (fresh write committed) ${livenessTimeoutsMax.toFixed(1)} election timeouts (bound ${LIVENESS_ELECTION_TIMEOUTS})`);
console.log(`failures: ${failures.length}`);
console.log(`faults started:\n${table("fault:")}`);
console.log(`faults skipped (nothing to act on):\n${table("fault-skipped:")}`);
console.log(`crash outcomes:\n${table("crash:")}`);
console.log(`network:\n${["sent", "duplicate", "drop:random", "drop:partition", "drop:partition-inflight", "drop:node-down", "drop:inbox", "delay:long", "delay:clog", "reportUnreachable", "reportSnapshot"].map((k) => `  ${k.padEnd(28)} ${totals.get(k) ?? 0}`).join("\n")}`);
console.log(`delivered:\n${table("delivered:")}`);
console.log(`membership changes proposed:\n${table("conf:")}\nmembership changes refused:\n${table("conf-refused:")}`);
console.log(`compactions: ${totals.get("compact") ?? 0}`);
console.log(`proposals refused:\n${table("propose:")}\nread requests refused:\n${table("readIndex:")}`);
console.log(`checks run:\n${table("check:")}`);
console.log(`client history:\n${table("history:")}`);
process.exitCode = failures.length === 0 ? 0 : 1;
