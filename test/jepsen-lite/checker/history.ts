/**
 * The history format shared by the jepsen-lite harness (writer) and the checkers (readers): one
 * operation per line of JSONL, one file per bucket. An operation is recorded once, when it completes
 * or when the harness gives up on it, with both its invocation and completion times.
 *
 * Times are milliseconds on one monotonic clock owned by the harness (performance.now()); they only
 * need to be comparable with each other. Equal times are treated as concurrent (never as "before"),
 * so a coarse clock can only make the checker more permissive, never raise a false alarm.
 */
import { readFileSync, writeFileSync } from "node:fs";

export type OpType = "get" | "put" | "create" | "update" | "delete" | "purge";

export type Outcome = "ok" | "fail" | "unknown";

export interface Op {
  /** Unique within the history. */
  id: number;
  /** Client/process id; a process has at most one outstanding operation. */
  process: number;
  type: OpType;
  key: string;
  /** put/create/update: the value written. */
  value?: string;
  /** update (required), delete/purge (optional): the expected last revision; 0 = no retained record. */
  expectedRevision?: number;
  invokeMs: number;
  /** null = never completed (outcome "unknown"). */
  completeMs: number | null;
  /** unknown = timeout / connection lost: the operation may or may not have taken effect. */
  outcome: Outcome;
  /** ok writes: the revision assigned. ok get: the revision of the record read (absent when null). */
  revision?: number;
  /** ok get: the value read; null when the key is missing or deleted. */
  readValue?: string | null;
  /** fail: the error code (src/shared/errors.ts), e.g. KEY_EXISTS, WRONG_LAST_REVISION, UNAVAILABLE. */
  errorCode?: string;
  /**
   * fail with KEY_EXISTS / WRONG_LAST_REVISION, optional: the key's actual last revision that the
   * error reported (CairnError.data.revision). When present the checker holds the model to it.
   */
  actualRevision?: number;
  /** The node the client sent the operation to (informational). */
  node?: string;
}

export const WRITE_TYPES: ReadonlySet<OpType> = new Set(["put", "create", "update", "delete", "purge"]);
const OP_TYPES: ReadonlySet<string> = new Set(["get", "put", "create", "update", "delete", "purge"]);
const OUTCOMES: ReadonlySet<string> = new Set(["ok", "fail", "unknown"]);

/** Failures that are definite non-effects *decided by the state machine*: they observed the key. */
export const CONFLICT_ERROR_CODES: ReadonlySet<string> = new Set(["KEY_EXISTS", "WRONG_LAST_REVISION"]);

/**
 * Failures that do not tell whether the operation took effect. A "fail" with one of these codes (or
 * with no code at all) is checked as "unknown". Every other code is a definite refusal before the
 * operation was proposed (UNAVAILABLE, NOT_LEADER, INVALID_KEY, VALUE_TOO_LARGE, ...): a no-op.
 */
export const DEFAULT_AMBIGUOUS_ERROR_CODES: ReadonlySet<string> = new Set(["TIMEOUT", "CONNECTION_CLOSED", "INTERNAL"]);

/**
 * How the checkers treat an operation:
 * - "effect": completed ok; took effect exactly once, between invocation and completion.
 * - "conflict": definite CAS failure; took no effect but observed the key at some instant.
 * - "unknown": may have taken effect at any instant after invocation, or never.
 * - "none": a no-op for the checkers (refused before proposing; or a read that did not complete).
 */
export type OpClass = "effect" | "conflict" | "unknown" | "none";

export function classifyOp(op: Op, ambiguousErrorCodes: ReadonlySet<string> = DEFAULT_AMBIGUOUS_ERROR_CODES): OpClass {
  if (op.outcome === "ok") return "effect";
  const isRead = op.type === "get";
  if (op.outcome === "unknown") return isRead ? "none" : "unknown";
  // outcome "fail"
  const code = op.errorCode;
  if (code !== undefined && CONFLICT_ERROR_CODES.has(code)) return "conflict";
  if (code === undefined || ambiguousErrorCodes.has(code)) return isRead ? "none" : "unknown";
  return "none";
}

export function isWrite(op: Op): boolean {
  return WRITE_TYPES.has(op.type);
}

/**
 * Problems that make a history unusable (harness bugs): the checkers refuse such a history rather
 * than give a verdict about it. Returns one message per problem (empty = well formed).
 */
export function validateHistory(ops: readonly Op[]): string[] {
  const problems: string[] = [];
  const ids = new Set<number>();
  for (const op of ops) {
    const where = `op ${String(op.id)}`;
    if (!Number.isInteger(op.id)) problems.push(`${where}: id must be an integer`);
    if (ids.has(op.id)) problems.push(`${where}: duplicate id`);
    ids.add(op.id);
    if (!Number.isInteger(op.process)) problems.push(`${where}: process must be an integer`);
    if (!OP_TYPES.has(op.type)) problems.push(`${where}: unknown type ${String(op.type)}`);
    if (typeof op.key !== "string") problems.push(`${where}: key must be a string`);
    if (!OUTCOMES.has(op.outcome)) problems.push(`${where}: unknown outcome ${String(op.outcome)}`);
    if (!Number.isFinite(op.invokeMs)) problems.push(`${where}: invokeMs must be a finite number`);
    if (op.completeMs !== null) {
      if (!Number.isFinite(op.completeMs)) problems.push(`${where}: completeMs must be a number or null`);
      else if (op.completeMs < op.invokeMs) problems.push(`${where}: completeMs < invokeMs`);
    }
    if (op.outcome !== "unknown" && op.completeMs === null) problems.push(`${where}: ${op.outcome} op without completeMs`);
    if ((op.type === "put" || op.type === "create" || op.type === "update") && typeof op.value !== "string") {
      problems.push(`${where}: ${op.type} without a value`);
    }
    if (op.type === "update" && op.expectedRevision === undefined) problems.push(`${where}: update without expectedRevision`);
    if (op.expectedRevision !== undefined && !(Number.isInteger(op.expectedRevision) && op.expectedRevision >= 0)) {
      problems.push(`${where}: expectedRevision must be an integer >= 0`);
    }
    if (op.expectedRevision !== undefined && (op.type === "get" || op.type === "put" || op.type === "create")) {
      problems.push(`${where}: ${op.type} cannot carry expectedRevision`);
    }
    if (op.revision !== undefined && !(Number.isInteger(op.revision) && op.revision >= 0)) {
      problems.push(`${where}: revision must be an integer >= 0`);
    }
    if (op.outcome === "ok" && op.type === "get" && op.readValue === undefined) problems.push(`${where}: ok get without readValue`);
    if (op.outcome === "ok" && isWrite(op) && op.revision === 0) problems.push(`${where}: ok write with revision 0`);
    if (op.outcome === "fail" && op.errorCode === "KEY_EXISTS" && op.type !== "create") {
      problems.push(`${where}: KEY_EXISTS on a ${op.type}`);
    }
    if (op.outcome === "fail" && op.errorCode === "WRONG_LAST_REVISION" && op.expectedRevision === undefined) {
      problems.push(`${where}: WRONG_LAST_REVISION on an operation without expectedRevision`);
    }
  }
  return problems;
}

/** Throws a TypeError listing the problems when the history is malformed. */
export function assertValidHistory(ops: readonly Op[]): void {
  const problems = validateHistory(ops);
  if (problems.length > 0) {
    const shown = problems.slice(0, 20).join("\n  ");
    const more = problems.length > 20 ? `\n  ... and ${String(problems.length - 20)} more` : "";
    throw new TypeError(`malformed history (${String(problems.length)} problems):\n  ${shown}${more}`);
  }
}

/** Parses JSONL (blank lines ignored). Throws with the line number on invalid JSON. */
export function parseHistoryJsonl(text: string): Op[] {
  const ops: Op[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    try {
      ops.push(JSON.parse(line) as Op);
    } catch (error) {
      throw new TypeError(`history line ${String(i + 1)}: invalid JSON`, { cause: error });
    }
  }
  return ops;
}

/** One JSON object per line, trailing newline. */
export function formatHistoryJsonl(ops: readonly Op[]): string {
  return ops.map((op) => JSON.stringify(op)).join("\n") + (ops.length > 0 ? "\n" : "");
}

export function readHistoryJsonl(path: string): Op[] {
  return parseHistoryJsonl(readFileSync(path, "utf8"));
}

export function writeHistoryJsonl(path: string, ops: readonly Op[]): void {
  writeFileSync(path, formatHistoryJsonl(ops));
}

/**
 * Per-key sub-histories (P-compositionality: a history is linearizable iff each per-key one is).
 * Keys come out in first-appearance order; each sub-history keeps the input order.
 */
export function splitByKey(ops: readonly Op[]): Map<string, Op[]> {
  const byKey = new Map<string, Op[]>();
  for (const op of ops) {
    let list = byKey.get(op.key);
    if (list === undefined) {
      list = [];
      byKey.set(op.key, list);
    }
    list.push(op);
  }
  return byKey;
}

/** A short human-readable description, e.g. `#12 p3 update(k, "v", rev=4) -> ok rev=5`. */
export function describeOp(op: Op): string {
  const args: string[] = [JSON.stringify(op.key)];
  if (op.value !== undefined) args.push(JSON.stringify(op.value));
  if (op.expectedRevision !== undefined) args.push(`rev=${String(op.expectedRevision)}`);
  let result: string = op.outcome;
  if (op.outcome === "ok") {
    if (op.type === "get") result += ` ${op.readValue === null ? "null" : JSON.stringify(op.readValue)}`;
    if (op.revision !== undefined) result += ` rev=${String(op.revision)}`;
  } else if (op.outcome === "fail") {
    result += ` ${op.errorCode ?? "(no code)"}`;
    if (op.actualRevision !== undefined) result += ` actual=${String(op.actualRevision)}`;
  }
  return `#${String(op.id)} p${String(op.process)} ${op.type}(${args.join(", ")}) -> ${result}`;
}
