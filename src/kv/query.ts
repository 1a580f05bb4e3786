/**
 * Reads over a bucket's record log: keys, history and the initial part of a watch, filtered and in
 * ascending revision order, optionally paged by revision.
 *
 * Two plans. Narrow filters (exact keys, or prefixes such as `a.b.>` / `a.*.c`) visit only the keys in
 * their prefix range of the sorted key index, then sort the selected slots (slot order = revision order).
 * Broad filters (`>`, `*.x`, or a prefix range too large for the first plan to pay off) walk the log from
 * the requested revision on and stop as soon as a page is full.
 */
import { matchAny, matchFilter, type CompiledFilter } from "./names.ts";
import type { RecordLog } from "./record-log.ts";

/** Which records of the matching keys a query selects. */
export type Selection =
  /** The latest record of each key, if it is a PUT (keys()). */
  | "latestPut"
  /** The latest record of each key, whatever its operation (watch include: last). */
  | "latest"
  /** Every retained record (history, watch include: history, resume). */
  | "all";

export interface PageRequest {
  /** Only records with a revision greater than this. */
  readonly afterRevision: number;
  /** At most this many slots (Infinity = all). */
  readonly limit: number;
}

export interface Page {
  /** Selected slots, ascending. */
  readonly slots: Int32Array;
  /** True when nothing after the last slot matches. */
  readonly done: boolean;
}

/** Keys visited by the index plan before it gives up in favour of a log walk. */
function indexPlanBudget(live: number, limit: number): number {
  // Index plan: ~m log m for m candidate keys. Log walk: ~limit * live / m records per page.
  // The index plan wins while m^2 < limit * live.
  const walkCost = limit === Infinity ? live : Math.sqrt(limit * live);
  return Math.max(1024, Math.min(live / 8, walkCost));
}

/** Key ids of the keys matching the filters, via the sorted key index; null when too many to pay off. */
function candidateKeys(log: RecordLog, filters: readonly CompiledFilter[], budget: number): number[] | null {
  for (const f of filters) if (f.all || (!f.exact && f.prefix === "")) return null;
  const ids: number[] = [];
  const seen = filters.length > 1 ? new Set<number>() : null;
  let visited = 0;
  const add = (id: number): void => {
    if (seen !== null) {
      if (seen.has(id)) return;
      seen.add(id);
    }
    ids.push(id);
  };
  for (const f of filters) {
    if (f.exact) {
      const id = log.keyId(f.filter);
      if (id !== -1) add(id);
      continue;
    }
    const complete = log.sorted.scanPrefix(f.prefix, (key, id) => {
      if (matchFilter(f.filter, key)) add(id);
      return ++visited <= budget;
    });
    if (!complete) return null;
  }
  return ids;
}

/** Selects slots of matching records with revision > afterRevision, ascending, at most `limit`. */
export function selectSlots(
  log: RecordLog,
  filters: readonly CompiledFilter[],
  selection: Selection,
  page: PageRequest,
): Page {
  const budget = indexPlanBudget(log.live, page.limit);
  const ids = candidateKeys(log, filters, budget);
  return ids === null ? walkLog(log, filters, selection, page) : fromKeys(log, ids, selection, page);
}

function fromKeys(log: RecordLog, ids: readonly number[], selection: Selection, page: PageRequest): Page {
  const { afterRevision, limit } = page;
  const slots: number[] = [];
  for (const id of ids) {
    const newest = log.newest(id);
    if (selection === "all") {
      for (let slot = log.oldest(id); slot !== -1; slot = log.newer(slot)) {
        if (log.revision(slot) > afterRevision) slots.push(slot);
      }
    } else if (log.revision(newest) > afterRevision) {
      if (selection === "latest" || log.isPut(newest)) slots.push(newest);
    }
  }
  const sorted = Int32Array.from(slots).sort();
  if (sorted.length <= limit) return { slots: sorted, done: true };
  return { slots: sorted.subarray(0, limit), done: false };
}

function walkLog(log: RecordLog, filters: readonly CompiledFilter[], selection: Selection, page: PageRequest): Page {
  const { afterRevision, limit } = page;
  const all = filters.some((f) => f.all);
  const slots: number[] = [];
  const end = log.end;
  for (let slot = log.lowerSlot(afterRevision + 1); slot < end; slot++) {
    const id = log.keyOf(slot);
    if (id === -1) continue;
    if (selection !== "all" && log.newest(id) !== slot) continue;
    if (selection === "latestPut" && !log.isPut(slot)) continue;
    if (!all && !matchAny(filters, log.keyName(id))) continue;
    if (slots.length === limit) return { slots: Int32Array.from(slots), done: false };
    slots.push(slot);
  }
  return { slots: Int32Array.from(slots), done: true };
}
