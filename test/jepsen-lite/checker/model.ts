/**
 * The sequential specification of one KV key (KV-SEMANTICS.md, "Writes" and "Reads"), as a pure step
 * function for the linearizability search.
 *
 * State: the key's current value (null = no record, or latest record is DEL/PURGE) and its last record
 * revision (0 = no retained record; update with expected revision 0 matches exactly then).
 *
 * Revisions are part of the model: a write's revision must exceed every revision linearized before it
 * on the key, and a read or CAS that reports a revision must match the last record's. A write whose
 * revision the client never learned (outcome unknown) leaves the revision *inexact*: only a lower bound
 * is known. A later read or successful CAS that names the revision pins it. This keeps the model exact
 * where the history says something and permissive where it says nothing (never a false alarm).
 * Revisions are unique in a bucket, so an unreported revision is never one that another write reported
 * (the `taken` set).
 */
import type { Op, OpClass } from "./history.ts";

export interface KeyState {
  /** null: the key does not exist or its latest record is a DEL/PURGE marker. */
  readonly value: string | null;
  /**
   * revisionExact: the last record's revision (0 = no retained record).
   * !revisionExact: a lower bound on it; a record then certainly exists.
   */
  readonly lastRevision: number;
  readonly revisionExact: boolean;
}

/** Revisions that ok writes reported (in the whole bucket): an unreported revision is none of them. */
export interface RevisionSet {
  has(revision: number): boolean;
}

const NO_REVISIONS: RevisionSet = { has: () => false };

export const INITIAL_KEY_STATE: KeyState = { value: null, lastRevision: 0, revisionExact: true };

/** Whether the key has a retained record (update with expected revision 0 needs none). */
export function keyExists(state: KeyState): boolean {
  return !state.revisionExact || state.lastRevision > 0;
}

/**
 * The state if its last revision can be `revision`, else null. Pins an inexact revision. Revision 0
 * means "no retained record", which an inexact state (a record exists) cannot match.
 */
function withRevision(state: KeyState, revision: number, taken: RevisionSet): KeyState | null {
  if (state.revisionExact) return state.lastRevision === revision ? state : null;
  // An inexact revision belongs to a write whose revision nobody reported; revisions are unique in a
  // bucket, so it cannot be one that a completed write reported.
  if (revision < state.lastRevision || taken.has(revision)) return null;
  return { value: state.value, lastRevision: revision, revisionExact: true };
}

/** The state after appending a record with `value`; null when `revision` does not go up. */
function appendRecord(state: KeyState, value: string | null, revision: number | undefined): KeyState | null {
  if (revision === undefined) {
    // Revision not known: it is at least one above the previous one (or its lower bound).
    return { value, lastRevision: state.lastRevision + 1, revisionExact: false };
  }
  // Inexact: the previous revision can be anything >= its bound, so revision > bound is enough.
  if (revision <= state.lastRevision) return null;
  return { value, lastRevision: revision, revisionExact: true };
}

/** Whether the state can have a last revision different from `revision`. */
function canDifferFrom(state: KeyState, revision: number): boolean {
  return !state.revisionExact || state.lastRevision !== revision;
}

/**
 * Applies `op` (classified by classifyOp) at one instant. Returns the new state, or null when the op
 * is illegal in `state`. "effect": completed ok, with its results. "conflict": a definite CAS failure
 * that observed the key. "unknown": took effect, without a known result (the search only asks this
 * of an unknown op it chooses to linearize; one that would have failed is simply never linearized).
 */
export function stepKey(state: KeyState, op: Op, cls: OpClass, taken: RevisionSet = NO_REVISIONS): KeyState | null {
  if (cls === "none") return state;
  if (cls === "conflict") return stepConflict(state, op, taken);
  const known = cls === "effect";
  switch (op.type) {
    case "get": {
      if (!known) return state;
      const read = op.readValue ?? null;
      if (state.value !== read) return null;
      return op.revision === undefined ? state : withRevision(state, op.revision, taken);
    }
    case "put":
      return appendRecord(state, op.value ?? "", known ? op.revision : undefined);
    case "create":
      if (state.value !== null) return null;
      return appendRecord(state, op.value ?? "", known ? op.revision : undefined);
    case "update":
    case "delete":
    case "purge": {
      let current: KeyState | null = state;
      if (op.expectedRevision !== undefined) current = withRevision(state, op.expectedRevision, taken);
      if (current === null) return null;
      const value = op.type === "update" ? (op.value ?? "") : null;
      return appendRecord(current, value, known ? op.revision : undefined);
    }
  }
}

function stepConflict(state: KeyState, op: Op, taken: RevisionSet): KeyState | null {
  let current: KeyState | null = state;
  if (op.errorCode === "KEY_EXISTS") {
    if (op.type !== "create" || state.value === null) return null;
  } else {
    // WRONG_LAST_REVISION: the expected revision did not match.
    const expected = op.expectedRevision;
    if (expected === undefined || !canDifferFrom(state, expected)) return null;
    if (op.actualRevision !== undefined && op.actualRevision === expected) return null;
  }
  if (op.actualRevision !== undefined) current = withRevision(state, op.actualRevision, taken);
  return current;
}

/**
 * A compact, exact key for memoisation. `valueId` interns values to small integers (per search) so
 * the key stays short however long the values are.
 */
export function stateKey(state: KeyState, valueId: (value: string) => number): string {
  const value = state.value === null ? -1 : valueId(state.value);
  return `${state.revisionExact ? "" : "~"}${String(state.lastRevision)}:${String(value)}`;
}
