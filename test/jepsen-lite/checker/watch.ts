/**
 * Watch checker (KV-SEMANTICS.md, "Watch"): each watcher's deliveries must be in strictly increasing
 * revision order with no duplicate, and must equal the committed log restricted to the watcher's
 * filters and revision window: no gap (every matching committed record in the window delivered)
 * and no phantom (every delivery is a matching committed record, with the same key, operation and
 * value). Ranges the watcher was explicitly told it skipped are reported apart, not as gaps.
 *
 * The committed log is the bucket's full history as the harness reads it at the end (every retained
 * record, any key, any operation). Revisions are the bucket's sequence, so a revision below the log's
 * highest that the log lacks belongs to a record removed by limits: such deliveries cannot be
 * verified and are counted, not failed. Feed the log from a bucket whose history depth retains every
 * record the run wrote, or the gap check is blind to trimmed records.
 */

export type WatchOperation = "PUT" | "DEL" | "PURGE";

export interface CommittedRecord {
  revision: number;
  key: string;
  operation: WatchOperation;
  /** PUT: the value (omit to skip value comparison). */
  value?: string;
}

export interface WatchEvent {
  revision: number;
  key: string;
  operation: WatchOperation;
  /** Omitted for metaOnly watches. */
  value?: string;
  /** false during the initial part. */
  isUpdate?: boolean;
  /** Harness time of delivery (informational). */
  atMs?: number;
}

export interface WatcherLog {
  id: string;
  /** NATS-style key filters (`*` one token, `>` the rest); default [">"]. Several = union. */
  filters?: readonly string[];
  ignoreDeletes?: boolean;
  /**
   * First revision the watcher must deliver (resumeFromRevision, or 1 for include "history").
   * Default: its first delivered revision (or the one after its initial part, see initialLatestOnly).
   */
  startRevision?: number;
  /** Last revision it must deliver (e.g. the log's last revision when it was stopped). Default: its last delivery. */
  endRevision?: number;
  /**
   * include "last": the initial part (isUpdate false) holds only the latest record of each matching
   * key. It is checked as such, and the no-gap window starts after it.
   */
  initialLatestOnly?: boolean;
  events: readonly WatchEvent[];
  /** Revision ranges (inclusive) the watcher was told it skipped (records removed while it was away). */
  skipped?: readonly { fromRevision: number; toRevision: number }[];
}

export interface WatchResult {
  id: string;
  ok: boolean;
  delivered: number;
  /** The revision window checked for gaps, inclusive; null when there is nothing to check. */
  window: { fromRevision: number; toRevision: number } | null;
  /** A revision delivered again. */
  duplicates: WatchEvent[];
  /** Delivered after a higher revision. */
  outOfOrder: { event: WatchEvent; afterRevision: number }[];
  /** Matching committed records in the window never delivered (outside skipped ranges). */
  gaps: CommittedRecord[];
  /** Delivered with a key, operation or value different from the committed record. */
  mismatches: { event: WatchEvent; record: CommittedRecord }[];
  /** Delivered but not for this watcher (filter, ignoreDeletes) or beyond the committed log. */
  unexpected: WatchEvent[];
  /** include "last": an initial event that is not the latest record of its key. */
  staleInitial: { event: WatchEvent; newer: CommittedRecord }[];
  /** Deliveries whose revision the log no longer holds (removed by limits): not verifiable. */
  unverified: number;
  /** Skipped ranges as told, with the matching records in them that were not delivered. */
  skipped: { fromRevision: number; toRevision: number; records: CommittedRecord[] }[];
}

/** NATS subject matching on `.` tokens: `*` = exactly one token, `>` = one or more (last only). */
export function matchesFilter(key: string, filter: string): boolean {
  if (filter === ">") return true;
  const keyTokens = key.split(".");
  const filterTokens = filter.split(".");
  for (let i = 0; i < filterTokens.length; i++) {
    const f = filterTokens[i]!;
    if (f === ">") return keyTokens.length > i;
    if (i >= keyTokens.length) return false;
    if (f !== "*" && f !== keyTokens[i]) return false;
  }
  return keyTokens.length === filterTokens.length;
}

export function checkWatch(log: readonly CommittedRecord[], watcher: WatcherLog): WatchResult {
  const filters = watcher.filters ?? [">"];
  const wanted = (key: string, operation: WatchOperation): boolean =>
    filters.some((f) => matchesFilter(key, f)) && !(watcher.ignoreDeletes === true && operation !== "PUT");
  const byRevision = new Map<number, CommittedRecord>();
  let logMax = 0;
  for (const record of log) {
    byRevision.set(record.revision, record);
    logMax = Math.max(logMax, record.revision);
  }
  const result: WatchResult = {
    id: watcher.id,
    ok: true,
    delivered: watcher.events.length,
    window: null,
    duplicates: [],
    outOfOrder: [],
    gaps: [],
    mismatches: [],
    unexpected: [],
    staleInitial: [],
    unverified: 0,
    skipped: [],
  };

  // Order, duplicates, and each delivery against the log.
  const seen = new Set<number>();
  let highest = -Infinity;
  for (const event of watcher.events) {
    if (seen.has(event.revision)) result.duplicates.push(event);
    else if (event.revision < highest) result.outOfOrder.push({ event, afterRevision: highest });
    seen.add(event.revision);
    highest = Math.max(highest, event.revision);
    const record = byRevision.get(event.revision);
    if (record === undefined) {
      if (event.revision > logMax || !wanted(event.key, event.operation)) result.unexpected.push(event);
      else result.unverified++;
      continue;
    }
    if (!wanted(record.key, record.operation)) result.unexpected.push(event);
    else if (!sameRecord(event, record)) result.mismatches.push({ event, record });
  }

  const initial = watcher.initialLatestOnly === true ? watcher.events.filter((e) => e.isUpdate === false) : [];
  const live = watcher.initialLatestOnly === true ? watcher.events.filter((e) => e.isUpdate !== false) : watcher.events;
  const lastInitial = initial.reduce((max, e) => Math.max(max, e.revision), 0);
  if (watcher.initialLatestOnly === true) checkInitial(log, initial, lastInitial, wanted, result);

  // After an include-"last" initial part every later matching record must arrive live; except
  // with ignoreDeletes, where a key whose latest record was a delete leaves no trace in the initial
  // part, so the window can only start at the first live delivery.
  const afterInitial = watcher.initialLatestOnly === true && watcher.ignoreDeletes !== true;
  const from = watcher.startRevision ?? (afterInitial ? lastInitial + 1 : live[0]?.revision);
  const to = watcher.endRevision ?? (live.length > 0 ? live.reduce((max, e) => Math.max(max, e.revision), 0) : undefined);
  if (from !== undefined && to !== undefined && from <= to) {
    result.window = { fromRevision: from, toRevision: to };
    const ranges = (watcher.skipped ?? []).map((r) => ({ ...r, records: [] as CommittedRecord[] }));
    for (const record of log) {
      if (record.revision < from || record.revision > to || seen.has(record.revision)) continue;
      if (!wanted(record.key, record.operation)) continue;
      const range = ranges.find((r) => record.revision >= r.fromRevision && record.revision <= r.toRevision);
      if (range !== undefined) range.records.push(record);
      else result.gaps.push(record);
    }
    result.gaps.sort((a, b) => a.revision - b.revision);
    result.skipped = ranges;
  }

  result.ok =
    result.duplicates.length === 0 &&
    result.outOfOrder.length === 0 &&
    result.gaps.length === 0 &&
    result.mismatches.length === 0 &&
    result.unexpected.length === 0 &&
    result.staleInitial.length === 0;
  return result;
}

/**
 * include "last": each initial event must be its key's latest record, and every matching key whose
 * latest record is at most the last initial revision must be in the initial part (a later record
 * would have put the key's initial event above that revision). Keys whose latest record the log no
 * longer holds are not judged.
 */
function checkInitial(
  log: readonly CommittedRecord[],
  initial: readonly WatchEvent[],
  lastInitial: number,
  wanted: (key: string, operation: WatchOperation) => boolean,
  result: WatchResult,
): void {
  const latest = new Map<string, CommittedRecord>(); // latest record per key, up to lastInitial
  for (const record of log) {
    if (record.revision > lastInitial) continue;
    const current = latest.get(record.key);
    if (current === undefined || record.revision > current.revision) latest.set(record.key, record);
  }
  const deliveredKeys = new Set<string>();
  for (const event of initial) {
    deliveredKeys.add(event.key);
    const newest = latest.get(event.key);
    if (newest !== undefined && newest.revision > event.revision && wanted(newest.key, newest.operation)) {
      result.staleInitial.push({ event, newer: newest });
    }
  }
  for (const record of latest.values()) {
    if (!deliveredKeys.has(record.key) && wanted(record.key, record.operation)) result.gaps.push(record);
  }
}

function sameRecord(event: WatchEvent, record: CommittedRecord): boolean {
  if (event.key !== record.key || event.operation !== record.operation) return false;
  return event.value === undefined || record.value === undefined || record.operation !== "PUT" || event.value === record.value;
}

export interface WatchesResult {
  ok: boolean;
  watchers: WatchResult[];
}

export function checkWatches(log: readonly CommittedRecord[], watchers: readonly WatcherLog[]): WatchesResult {
  const results = watchers.map((w) => checkWatch(log, w));
  return { ok: results.every((r) => r.ok), watchers: results };
}
