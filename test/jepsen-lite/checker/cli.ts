/**
 * Check a recorded history from a shell:
 *
 *   npx tsx test/jepsen-lite/checker/cli.ts out/run-42/history.jsonl [--out out/run-42] [--max-states 2000000]
 *
 * Prints the summary, writes an HTML timeline for every key that is not linearizable, and exits
 * 0 (ok), 1 (not linearizable, or broken revision facts) or 2 (a search gave up: verdict unknown).
 */
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { checkHistory, readHistoryJsonl, summarizeHistory, writeFailureTimelines } from "./index.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { out: { type: "string" }, "max-states": { type: "string" } },
});
const path = positionals[0];
if (path === undefined) {
  console.error("usage: cli.ts <history.jsonl> [--out dir] [--max-states n]");
  process.exit(64);
}
const ops = readHistoryJsonl(path);
const maxStates = values["max-states"];
const report = checkHistory(ops, maxStates === undefined ? {} : { maxStatesPerKey: Number(maxStates) });
console.log(summarizeHistory(report));
if (report.verdict !== "ok") {
  for (const file of writeFailureTimelines(values.out ?? dirname(path), ops, report)) console.log(`timeline: ${file}`);
}
process.exit(report.verdict === "ok" ? 0 : report.verdict === "fail" ? 1 : 2);
