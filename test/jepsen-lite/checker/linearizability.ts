/**
 * Linearizability checker for KV histories: the Wing & Gong search with Lowe's memoisation (wgl.ts),
 * run per key (P-compositionality, Horn & Kroening 2015: a history is linearizable iff every per-key
 * sub-history is) against the sequential model of one key (model.ts).
 *
 * Operations are sorted into: definite (completed ok, or a CAS conflict that observed the key: both
 * must be linearized), unknown (timeout, connection lost, ambiguous error: may take effect at any
 * instant after invocation, or never) and dropped (reads that did not complete; refusals before
 * proposing such as UNAVAILABLE). See classifyOp in history.ts.
 *
 * The search is bounded (maxStatesPerKey); a key whose search hits the bound gets verdict "unknown".
 */
import {
  DEFAULT_AMBIGUOUS_ERROR_CODES,
  assertValidHistory,
  classifyOp,
  describeOp,
  splitByKey,
  type Op,
  type OpClass,
} from "./history.ts";
import { INITIAL_KEY_STATE, type KeyState } from "./model.ts";
import { impossibleOps } from "./impossible.ts";
import { indexObservers } from "./observers.ts";
import { KeySearch, type SearchFailure } from "./wgl.ts";

export type Verdict = "ok" | "fail" | "unknown";

export interface CheckOptions {
  /**
   * Named limit: distinct (linearized set, state) pairs explored per key before the search gives up
   * with verdict "unknown". Also bounds the cache's memory.
   */
  maxStatesPerKey?: number;
  /**
   * Named limit: wall-clock milliseconds per key before the search gives up with verdict
   * "unknown" (default: none; the state limit alone bounds it, deterministically).
   */
  maxSearchMsPerKey?: number;
  /** Error codes whose failure leaves the outcome unknown (default DEFAULT_AMBIGUOUS_ERROR_CODES). */
  ambiguousErrorCodes?: ReadonlySet<string>;
  /** State of every key before the history starts (default: absent, revision 0). */
  initialState?: KeyState;
  /**
   * The ok writes of the whole bucket by the revision they reported (revisions are bucket-wide and
   * unique). checkLinearizability computes it from the whole history; checkKey alone defaults to
   * its own ops.
   */
  reportedRevisions?: ReadonlyMap<number, Op>;
}

export const DEFAULT_MAX_STATES_PER_KEY = 2_000_000;

/** Why a key is not linearizable: the longest prefix found and the ops that cannot follow it. */
export type KeyFailure = {
  key: string;
  /** In words: why no linearization exists. */
  reason: string;
  /** Operations that show why, when the failure was found without a search (see impossible.ts). */
  witnesses?: Op[];
} & SearchFailure;

export interface KeyResult {
  key: string;
  verdict: Verdict;
  /** Operations checked (after dropping no-ops), definite and unknown. */
  definiteOps: number;
  unknownOps: number;
  droppedOps: number;
  /** Distinct (set, state) pairs explored. */
  exploredStates: number;
  /** Why the verdict is "unknown". */
  reason?: string;
  /** When ok: op ids in a legal linearization order (unknown ops that took effect included). */
  linearization?: number[];
  /** When fail. */
  failure?: KeyFailure;
  /**
   * When unknown: the deepest dead end the search reached before giving up (its prefix and the ops
   * that could not follow it). Not a proof: a likely place to look.
   */
  deepest?: KeyFailure;
}

export interface HistoryResult {
  /** fail if any key fails; else unknown if any key is unknown; else ok. */
  verdict: Verdict;
  keys: KeyResult[];
}

/** Checks one key's sub-history. `ops` must all have the same key and be well formed. */
export function checkKey(key: string, ops: readonly Op[], options: CheckOptions = {}): KeyResult {
  const ambiguous = options.ambiguousErrorCodes ?? DEFAULT_AMBIGUOUS_ERROR_CODES;
  const byInvoke = (a: Op, b: Op): number => a.invokeMs - b.invokeMs || a.id - b.id;
  const definiteWithClass: { op: Op; cls: OpClass }[] = [];
  const unknown: Op[] = [];
  let dropped = 0;
  for (const op of ops) {
    const cls = classifyOp(op, ambiguous);
    if (cls === "effect" || cls === "conflict") definiteWithClass.push({ op, cls });
    else if (cls === "unknown") unknown.push(op);
    else dropped++;
  }
  // Definite ops are indexed in invocation order: the search's cache key relies on it.
  definiteWithClass.sort((a, b) => byInvoke(a.op, b.op));
  const definite = definiteWithClass.map((d) => d.op);
  const definiteClass = definiteWithClass.map((d) => d.cls);
  unknown.sort(byInvoke);
  const taken = options.reportedRevisions ?? revisionsReported(ops);
  const initial = options.initialState ?? INITIAL_KEY_STATE;
  const impossible = impossibleOps(key, ops, ambiguous, taken, initial);
  if (impossible.length > 0) {
    // Illegal wherever they are placed: no search needed, and the reason is plain.
    const first = impossible.reduce((a, b) => (b.op.completeMs! < a.op.completeMs! ? b : a));
    const failure: KeyFailure = {
      key,
      reason: impossible.map((i) => `${describeOp(i.op)}: ${i.reason}${i.witness === undefined ? "" : ` (${describeOp(i.witness)})`}`).join("; "),
      linearizedPrefix: [],
      stateAfterPrefix: initial,
      unlinearizable: impossible.map((i) => i.op),
      blockedBy: first.op,
      pendingUnknown: [],
      witnesses: impossible.flatMap((i) => (i.witness === undefined ? [] : [i.witness])),
    };
    return { key, verdict: "fail", definiteOps: definite.length, unknownOps: unknown.length, droppedOps: dropped, exploredStates: 0, failure };
  }
  const observers = indexObservers(definite, definiteClass, unknown, taken);
  const maxStates = options.maxStatesPerKey ?? DEFAULT_MAX_STATES_PER_KEY;
  const deadlineMs = options.maxSearchMsPerKey === undefined ? Infinity : performance.now() + options.maxSearchMsPerKey;
  const search = new KeySearch(definite, definiteClass, unknown, observers, taken, initial, maxStates, deadlineMs);
  const outcome = search.run();
  const base = {
    key,
    definiteOps: definite.length,
    unknownOps: unknown.length,
    droppedOps: dropped,
    exploredStates: outcome.exploredStates,
  };
  switch (outcome.verdict) {
    case "ok":
      return { ...base, verdict: "ok", linearization: outcome.linearization.map((op) => op.id) };
    case "fail":
      return { ...base, verdict: "fail", failure: { key, reason: SEARCH_FAILURE, ...outcome.failure } };
    case "unknown":
      return {
        ...base,
        verdict: "unknown",
        ...(outcome.deepest === null ? {} : { deepest: { key, reason: GAVE_UP, ...outcome.deepest } }),
        reason:
          outcome.exploredStates > maxStates
            ? `search gave up after ${String(maxStates)} states (maxStatesPerKey)`
            : `search gave up after ${String(options.maxSearchMsPerKey)} ms (maxSearchMsPerKey)`,
      };
  }
}

/**
 * The ok writes by the revision they reported (the first, if several report one: checkRevisionOrder
 * flags that). Revisions are unique in a bucket, so an unreported revision is none of these.
 */
export function revisionsReported(ops: readonly Op[]): Map<number, Op> {
  const reported = new Map<number, Op>();
  for (const op of ops) {
    if (op.outcome === "ok" && op.type !== "get" && op.revision !== undefined && !reported.has(op.revision)) {
      reported.set(op.revision, op);
    }
  }
  return reported;
}

const GAVE_UP =
  "the search gave up; this is the deepest point it reached: after this prefix, none of these operations could come next in any order it tried";

const SEARCH_FAILURE =
  "no order of the operations is legal: after the longest linearizable prefix, none of the operations that must come next is legal";

/**
 * Checks a whole history (one bucket): validates it, splits it per key and checks every key.
 * Throws a TypeError on a malformed history (a harness bug, not a verdict).
 */
export function checkLinearizability(ops: readonly Op[], options: CheckOptions = {}): HistoryResult {
  assertValidHistory(ops);
  const keys: KeyResult[] = [];
  const keyOptions: CheckOptions = { ...options, reportedRevisions: options.reportedRevisions ?? revisionsReported(ops) };
  for (const [key, keyOps] of splitByKey(ops)) keys.push(checkKey(key, keyOps, keyOptions));
  const verdict: Verdict = keys.some((k) => k.verdict === "fail")
    ? "fail"
    : keys.some((k) => k.verdict === "unknown")
      ? "unknown"
      : "ok";
  return { verdict, keys };
}
