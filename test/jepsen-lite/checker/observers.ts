/**
 * Which operations could *observe* an operation of unknown outcome: the facts that keep the
 * linearizability search from drowning in "maybe it happened here" choices.
 *
 * An unknown op u may take effect at any instant after its invocation, or never. Placing it matters
 * only if the operation linearized right after it needs it. Every op o that is legal right after u is
 * either an observer of u (mayObserve below), or legal without u too, leaving an equal state, or a
 * state with a weaker revision bound (which allows everything the other allows). So a linearization
 * in which u is not immediately followed by an observer stays legal with u removed, and the search
 * may insist that an unknown op be followed by one of its observers.
 *
 * The argument, case by case, for o placed right after u (u leaves an inexact revision, see
 * model.ts; an inexact revision can never be pinned to a revision that an ok write reported):
 * - get: legal only if it reads u's value (null for a delete), with no revision or an unreported one.
 * - KEY_EXISTS: needs a live value (u not a delete) and an unknown or unreported actual revision.
 * - WRONG_LAST_REVISION: a different revision; with an actual revision, it must be unreported.
 * - create: needs the key deleted: u a delete or purge. A create after a value write is illegal.
 * - update/delete/purge with an expected revision e: e must be unreported (0 is illegal: u leaves a
 *   record).
 * - put, delete, purge without expected revision: legal without u as well; the state after it is
 *   equal (revision reported) or has a weaker bound (not reported).
 */
import type { Op, OpClass } from "./history.ts";
import type { RevisionSet } from "./model.ts";

/** mayObserve: the observer needs u's value or existence, not a particular revision. */
export const VALUE_OBSERVATION = -1;

function unreported(revision: number, taken: RevisionSet): boolean {
  return revision > 0 && !taken.has(revision);
}

/**
 * 0: `observer` cannot need unknown op `u` right before it. VALUE_OBSERVATION: it may (value or
 * existence). x > 0: it may, if u was given the unreported revision x (read, expected or actual).
 */
export function mayObserve(u: Op, observer: Op, cls: OpClass, taken: RevisionSet): number {
  if (observer === u) return 0;
  if (observer.completeMs !== null && observer.completeMs < u.invokeMs) return 0; // it precedes u
  const removes = u.type === "delete" || u.type === "purge";
  if (cls === "conflict") {
    if (observer.errorCode === "KEY_EXISTS" && removes) return 0;
    if (observer.actualRevision === undefined) return VALUE_OBSERVATION;
    return unreported(observer.actualRevision, taken) ? observer.actualRevision : 0;
  }
  if (observer.expectedRevision !== undefined) {
    return unreported(observer.expectedRevision, taken) ? observer.expectedRevision : 0;
  }
  if (observer.type === "get") {
    if (removes ? observer.readValue !== null : observer.readValue !== u.value) return 0;
    if (observer.revision === undefined) return VALUE_OBSERVATION;
    return unreported(observer.revision, taken) ? observer.revision : 0;
  }
  return observer.type === "create" && removes ? VALUE_OBSERVATION : 0;
}

export interface ObserverIndex {
  /** Per unknown op: definite op index -> what it observes (VALUE_OBSERVATION or a revision). */
  readonly definite: readonly Map<number, number>[];
  /** Per unknown op: unknown op index -> what it observes; only unknown ops that can matter. */
  readonly unknown: readonly Map<number, number>[];
  /** Per unknown op: the latest completion among its definite observers (Infinity if an unknown one). */
  readonly lastObserverMs: Float64Array;
  /** Per unknown op: 1 if some observer could ever need it (transitively through unknown ones). */
  readonly mayMatter: Uint8Array;
}

export function indexObservers(
  definite: readonly Op[],
  definiteClass: readonly OpClass[],
  unknown: readonly Op[],
  taken: RevisionSet,
): ObserverIndex {
  const nu = unknown.length;
  const definiteMaps: Map<number, number>[] = [];
  const unknownMaps: Map<number, number>[] = [];
  const lastObserverMs = new Float64Array(nu).fill(-Infinity);
  for (let u = 0; u < nu; u++) {
    const op = unknown[u]!;
    const byDefinite = new Map<number, number>();
    for (let i = 0; i < definite.length; i++) {
      const seen = mayObserve(op, definite[i]!, definiteClass[i]!, taken);
      if (seen !== 0) {
        byDefinite.set(i, seen);
        lastObserverMs[u] = Math.max(lastObserverMs[u]!, definite[i]!.completeMs!);
      }
    }
    const byUnknown = new Map<number, number>();
    for (let v = 0; v < nu; v++) {
      const seen = mayObserve(op, unknown[v]!, "unknown", taken);
      if (seen !== 0) byUnknown.set(v, seen);
    }
    definiteMaps.push(byDefinite);
    unknownMaps.push(byUnknown);
  }
  // An unknown op matters if a definite op observes it, or an unknown op that matters does.
  const mayMatter = new Uint8Array(nu);
  const observes: number[][] = Array.from({ length: nu }, () => []);
  const work: number[] = [];
  for (let u = 0; u < nu; u++) {
    for (const v of unknownMaps[u]!.keys()) observes[v]!.push(u);
    if (definiteMaps[u]!.size > 0) {
      mayMatter[u] = 1;
      work.push(u);
    }
  }
  while (work.length > 0) {
    for (const u of observes[work.pop()!]!) {
      if (mayMatter[u] === 0) {
        mayMatter[u] = 1;
        work.push(u);
      }
    }
  }
  for (let u = 0; u < nu; u++) {
    for (const v of [...unknownMaps[u]!.keys()]) if (mayMatter[v] === 0) unknownMaps[u]!.delete(v);
    if (unknownMaps[u]!.size > 0) lastObserverMs[u] = Infinity;
  }
  return { definite: definiteMaps, unknown: unknownMaps, lastObserverMs, mayMatter };
}
