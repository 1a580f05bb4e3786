/**
 * `npm run jepsen -- [options]`: jepsen-lite on real processes (README.md in this folder).
 *
 *   --nodes 3|5            cluster size (default 3)
 *   --time <s>             seconds of workload and faults (default 60)
 *   --nemesis <list>       kill,kill-all,pause,partition,membership,disk or single faults such as
 *                          kill-leader, partition-bridge (default kill,pause,partition,membership,disk;
 *                          "none" for no faults)
 *   --workload <list>      registers,appends,watches or all (default all)
 *   --seed <n>             schedule seed (default: from the clock; always printed)
 *   --rate <ops/s>         target operations per second over all clients (default 50)
 *   --clients <n>          client connections, spread over the nodes (default 10)
 *   --durability fsync|none
 *   --out <dir>            output directory (default out/jepsen/<time>-seed<N>; with --runs, one
 *                          subdirectory per run)
 *   --runs <n>             n runs with seeds seed, seed+1, ...; prints a table of verdicts
 *   --negative-control     durability none + kill -9 of the whole cluster + appends: must FAIL with
 *                          lost writes
 * Exit status: 0 all runs ok, 1 a violation, 2 inconclusive (a search gave up, no recovery, ...).
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_OPTIONS, negativeControlOptions, runJepsen, type JepsenOptions, type RunSummary } from "./runner.ts";
import { WORKLOAD_NAMES, type WorkloadName } from "./workloads.ts";
import { expandNemeses } from "./nemesis.ts";

function fail(message: string): never {
  process.stderr.write(`jepsen: ${message}\n`);
  process.exit(64);
}

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) fail(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

const { values } = parseArgs({
  options: {
    nodes: { type: "string" },
    time: { type: "string" },
    nemesis: { type: "string" },
    workload: { type: "string" },
    seed: { type: "string" },
    rate: { type: "string" },
    clients: { type: "string" },
    durability: { type: "string" },
    out: { type: "string" },
    runs: { type: "string" },
    "negative-control": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write("usage: npm run jepsen -- [--nodes 3|5] [--time s] [--nemesis list] [--workload list|all] [--seed n] [--rate ops/s] [--clients n] [--durability fsync|none] [--out dir] [--runs n] [--negative-control]\n");
  process.exit(0);
}

const nodes = positiveInt(values.nodes, "nodes", DEFAULT_OPTIONS.nodes);
if (nodes !== 3 && nodes !== 5) fail("--nodes must be 3 or 5");
const seed = values.seed === undefined ? Date.now() % 1_000_000_000 : Number(values.seed);
if (!Number.isSafeInteger(seed) || seed < 0) fail(`--seed must be a non-negative integer, got ${JSON.stringify(values.seed)}`);
const workloadText = values.workload ?? "all";
const workloads = (workloadText === "all" ? [...WORKLOAD_NAMES] : workloadText.split(",").map((w) => w.trim())) as WorkloadName[];
for (const w of workloads) if (!WORKLOAD_NAMES.includes(w)) fail(`unknown workload ${JSON.stringify(w)} (registers, appends, watches, all)`);
const nemesisText = values.nemesis ?? DEFAULT_OPTIONS.nemesis.join(",");
const nemesis = nemesisText === "none" ? [] : nemesisText.split(",").map((n) => n.trim()).filter((n) => n.length > 0);
try {
  expandNemeses(nemesis);
} catch (error) {
  fail((error as Error).message);
}
const durability = values.durability ?? "fsync";
if (durability !== "fsync" && durability !== "none") fail("--durability must be fsync or none");

const base: JepsenOptions = {
  ...DEFAULT_OPTIONS,
  nodes,
  timeSec: positiveInt(values.time, "time", DEFAULT_OPTIONS.timeSec),
  nemesis,
  workloads,
  seed,
  rate: positiveInt(values.rate, "rate", DEFAULT_OPTIONS.rate),
  clients: positiveInt(values.clients, "clients", DEFAULT_OPTIONS.clients),
  durability,
};
const runs = positiveInt(values.runs, "runs", 1);
const outRoot = values.out === undefined ? undefined : resolve(values.out);

const summaries: RunSummary[] = [];
const aborted: { run: number; seed: number; reason: string }[] = [];
for (let i = 0; i < runs; i++) {
  const runSeed = seed + i;
  const common = { seed: runSeed, ...(outRoot !== undefined ? { outDir: runs > 1 ? join(outRoot, `run${i + 1}-seed${runSeed}`) : outRoot } : {}) };
  const options: JepsenOptions = values["negative-control"]
    ? negativeControlOptions({ nodes, rate: base.rate, clients: base.clients, ...(values.time !== undefined ? { timeSec: base.timeSec } : {}), ...common })
    : { ...base, ...common };
  if (runs > 1) process.stdout.write(`\n==== run ${i + 1}/${runs} ====\n`);
  try {
    summaries.push(await runJepsen(options));
  } catch (error) {
    process.stderr.write(`run ${i + 1} (seed ${runSeed}) aborted: ${(error as Error).stack ?? String(error)}\n`);
    aborted.push({ run: i + 1, seed: runSeed, reason: String((error as Error).message ?? error).split("\n")[0]! });
    process.exitCode = 2;
  }
}

if (runs > 1) {
  process.stdout.write("\n==== verdicts ====\n");
  const header = ["run", "seed", "ops", "faults", "linearizable", "lost", "watch gaps/dups", "anomalies", "verdict"];
  const rows = summaries.map((s, i) => [
    String(i + 1),
    String(s.seed),
    String(s.ops),
    String(Object.values(s.faultsInjected).reduce((a, b) => a + b, 0)),
    s.buckets.map((b) => b.linearizability).join("/"),
    String(s.appends?.lostCount ?? "-"),
    s.watches ? `${s.watches.gaps}/${s.watches.duplicates}` : "-",
    String(s.anomalies.length + s.unexpectedExits.length),
    s.verdict.toUpperCase(),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => "| " + cells.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ") + " |";
  process.stdout.write([line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n");
  for (const a of aborted) process.stdout.write(`run ${a.run} (seed ${a.seed}) ABORTED: ${a.reason}\n`);
}

const negative = values["negative-control"] === true;
const anyFail = summaries.some((s) => s.verdict === "fail");
const anyUnknown = summaries.some((s) => s.verdict === "unknown");
if (negative) {
  // The control must fail with lost writes; exit status follows the run's verdict (1), as asked.
  process.exitCode = anyFail ? 1 : 2;
} else if (anyFail) process.exitCode = 1;
else if (anyUnknown || summaries.length < runs) process.exitCode = 2;
process.exit();
