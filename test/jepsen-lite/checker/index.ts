/**
 * The checkers jepsen-lite runs on a finished run. The harness records operations (history.ts), then:
 *
 *   const report = checkHistory(ops);                       // linearizability per key + revision order
 *   if (report.verdict !== "ok") writeFailureTimelines(outDir, ops, report);
 *   console.log(summarizeHistory(report));
 *   checkAppends(ops, finalRecords);                        // unique-appends workload
 *   checkWatches(committedLog, watcherLogs);                // watch workload
 *
 * or, from a shell: `npx tsx test/jepsen-lite/checker/cli.ts history.jsonl --out dir`.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { assertValidHistory, describeOp, splitByKey, type Op } from "./history.ts";
import { checkLinearizability, type CheckOptions, type HistoryResult, type Verdict } from "./linearizability.ts";
import { checkRevisionOrder, type RevisionFindings } from "./revisions.ts";
import { writeTimeline } from "./timeline.ts";

export * from "./history.ts";
export { checkKey, checkLinearizability, revisionsReported, DEFAULT_MAX_STATES_PER_KEY } from "./linearizability.ts";
export type { CheckOptions, HistoryResult, KeyFailure, KeyResult, Verdict } from "./linearizability.ts";
export { INITIAL_KEY_STATE, stepKey, type KeyState } from "./model.ts";
export { checkRevisionOrder, type RevisionFindings } from "./revisions.ts";
export { checkAppends, finalRecordsFromReads, type AppendsResult, type FinalRecord } from "./appends.ts";
export {
  checkWatch,
  checkWatches,
  matchesFilter,
  type CommittedRecord,
  type WatchEvent,
  type WatcherLog,
  type WatchResult,
  type WatchesResult,
} from "./watch.ts";
export { renderTimeline, writeTimeline, type TimelineOptions } from "./timeline.ts";
export { HistoryBuilder } from "./builder.ts";
export { simulateHistory, type SimulateOptions } from "./simulate.ts";

export interface HistoryReport {
  /** fail if any key is not linearizable or a revision fact is broken; unknown if a search gave up. */
  verdict: Verdict;
  linearizability: HistoryResult;
  revisions: RevisionFindings;
  /** Operations per type and outcome, for the run summary. */
  counts: Record<string, { ok: number; fail: number; unknown: number }>;
}

/** Validates the history (throws TypeError when malformed), then runs every history checker. */
export function checkHistory(ops: readonly Op[], options: CheckOptions = {}): HistoryReport {
  assertValidHistory(ops);
  const linearizability = checkLinearizability(ops, options);
  const revisions = checkRevisionOrder(ops);
  const verdict: Verdict = !revisions.ok ? "fail" : linearizability.verdict;
  const counts: HistoryReport["counts"] = {};
  for (const op of ops) {
    const c = (counts[op.type] ??= { ok: 0, fail: 0, unknown: 0 });
    c[op.outcome]++;
  }
  return { verdict, linearizability, revisions, counts };
}

/** A few lines for a person: verdict, counts, and what is wrong where. */
export function summarizeHistory(report: HistoryReport): string {
  const lines = [`verdict: ${report.verdict}`];
  for (const [type, c] of Object.entries(report.counts)) {
    lines.push(`  ${type.padEnd(6)} ok ${c.ok}, fail ${c.fail}, unknown ${c.unknown}`);
  }
  for (const key of report.linearizability.keys) {
    const states = `${key.exploredStates} states`;
    const ops = `${key.definiteOps} definite + ${key.unknownOps} unknown ops`;
    lines.push(`key ${JSON.stringify(key.key)}: ${key.verdict} (${ops}, ${states})${key.reason === undefined ? "" : ` ${key.reason}`}`);
    const failure = key.failure ?? key.deepest;
    if (failure !== undefined) {
      lines.push(`  ${failure.reason}`);
      lines.push(`  prefix of ${failure.linearizedPrefix.length} ops linearizable; then none of these can come next:`);
      for (const op of failure.unlinearizable) lines.push(`    ${describeOp(op)}`);
    }
  }
  for (const d of report.revisions.duplicates) {
    lines.push(`revision ${d.revision} reported by several writes: ${d.ops.map((op) => `#${op.id}`).join(", ")}`);
  }
  for (const v of report.revisions.realTimeViolations) {
    lines.push(`revision order: ${describeOp(v.earlier)} returned before ${describeOp(v.later)} started`);
  }
  return lines.join("\n");
}

/**
 * Writes `timeline-<key>.html` into `dir` for every key that failed, and for every key whose search
 * gave up (showing the deepest point it reached); returns the paths.
 */
export function writeFailureTimelines(dir: string, ops: readonly Op[], report: HistoryReport): string[] {
  mkdirSync(dir, { recursive: true });
  const byKey = splitByKey(ops);
  const paths: string[] = [];
  for (const key of report.linearizability.keys) {
    const failure = key.failure ?? key.deepest;
    if (failure === undefined) continue;
    const name = key.key.replace(/[^a-zA-Z0-9_=.-]/g, "_");
    const path = join(dir, `timeline-${name}${paths.some((p) => p.endsWith(`-${name}.html`)) ? `-${paths.length}` : ""}.html`);
    const verdict = key.verdict === "fail" ? "not linearizable" : "unknown (search gave up)";
    writeTimeline(path, byKey.get(key.key) ?? [], { failure, title: `key ${JSON.stringify(key.key)}: ${verdict}` });
    paths.push(path);
  }
  return paths;
}
