/**
 * Unique-appends checker: every acknowledged write must be readable at the end (lost = 0), nothing may
 * be readable that nobody wrote, and nothing may be applied twice.
 *
 * Workload contract: every write carries a value unique on its key (for example `${process}-${n}`),
 * and the final read can show every acknowledged write: one key per write (read with get), or a
 * bucket history depth at least the number of writes per key (read with history). Deletes and purges
 * make "lost" undecidable, so keys that saw one are skipped and listed.
 */
import { DEFAULT_AMBIGUOUS_ERROR_CODES, classifyOp, type Op } from "./history.ts";

/** One record of the final state: from `history(key)`/a `>` history, or from a final get. */
export interface FinalRecord {
  key: string;
  /** null for DEL/PURGE records or a get that found nothing. */
  value: string | null;
  revision?: number;
  operation?: "PUT" | "DEL" | "PURGE";
}

export interface AppendsOptions {
  ambiguousErrorCodes?: ReadonlySet<string>;
  /** Findings of each kind kept (the counts are exact). */
  limit?: number;
}

export interface AppendsResult {
  ok: boolean;
  /** Acknowledged (ok) writes with a value. */
  acknowledged: number;
  /** Acknowledged writes found in the final read. */
  present: number;
  /** Writes of unknown outcome found in the final read (they happened; informational). */
  recoveredUnknown: number;
  lostCount: number;
  /** Acknowledged but absent from the final read. */
  lost: Op[];
  phantomCount: number;
  /** Values in the final read that no write (of any outcome) on that key attempted. */
  phantoms: FinalRecord[];
  /** Values present more often than they were attempted: a write applied twice. */
  duplicates: { key: string; value: string; records: FinalRecord[]; attempts: Op[] }[];
  /** Writes that definitely failed (refused, or a CAS conflict) yet are present. */
  failedButPresent: { op: Op; record: FinalRecord }[];
  /** Present, but not at the revision the acknowledgement reported. */
  revisionMismatches: { op: Op; records: FinalRecord[] }[];
  /** Values written more than once on one key: the workload broke the uniqueness contract. */
  nonUniqueValues: { key: string; value: string }[];
  /** Keys with a delete or purge attempt: not judged for lost writes. */
  skippedKeys: string[];
}

const groupKey = (key: string, value: string): string => JSON.stringify([key, value]);

export function checkAppends(history: readonly Op[], final: readonly FinalRecord[], options: AppendsOptions = {}): AppendsResult {
  const ambiguous = options.ambiguousErrorCodes ?? DEFAULT_AMBIGUOUS_ERROR_CODES;
  const limit = options.limit ?? 100;
  const skipped = new Set<string>();
  const attempts = new Map<string, Op[]>();
  for (const op of history) {
    if (op.type === "delete" || op.type === "purge") skipped.add(op.key);
    if (op.value === undefined || op.type === "get") continue;
    const k = groupKey(op.key, op.value);
    const list = attempts.get(k) ?? [];
    list.push(op);
    attempts.set(k, list);
  }
  const present = new Map<string, FinalRecord[]>();
  for (const record of final) {
    if (record.value === null || (record.operation !== undefined && record.operation !== "PUT")) continue;
    const k = groupKey(record.key, record.value);
    const list = present.get(k) ?? [];
    list.push(record);
    present.set(k, list);
  }

  const result: AppendsResult = {
    ok: true,
    acknowledged: 0,
    present: 0,
    recoveredUnknown: 0,
    lostCount: 0,
    lost: [],
    phantomCount: 0,
    phantoms: [],
    duplicates: [],
    failedButPresent: [],
    revisionMismatches: [],
    nonUniqueValues: [],
    skippedKeys: [...skipped].sort(),
  };
  for (const [k, ops] of attempts) {
    const [key, value] = JSON.parse(k) as [string, string];
    const records = present.get(k) ?? [];
    const acked = ops.filter((op) => op.outcome === "ok");
    if (ops.length > 1) result.nonUniqueValues.push({ key, value });
    result.acknowledged += acked.length;
    if (records.length > 0) {
      result.present += acked.length;
      if (acked.length === 0) {
        const definiteFailure = ops.every((op) => op.outcome === "fail" && classifyOp(op, ambiguous) !== "unknown");
        if (definiteFailure) result.failedButPresent.push({ op: ops[0]!, record: records[0]! });
        else result.recoveredUnknown++;
      }
      if (records.length > ops.length) result.duplicates.push({ key, value, records, attempts: ops });
      if (ops.length === 1 && acked.length === 1 && acked[0]!.revision !== undefined) {
        const withRevision = records.filter((r) => r.revision !== undefined);
        if (withRevision.length > 0 && !withRevision.some((r) => r.revision === acked[0]!.revision)) {
          result.revisionMismatches.push({ op: acked[0]!, records });
        }
      }
    } else if (!skipped.has(key)) {
      result.lostCount += acked.length;
      for (const op of acked) if (result.lost.length < limit) result.lost.push(op);
    }
  }
  for (const [k, records] of present) {
    if (attempts.has(k)) continue;
    result.phantomCount += records.length;
    for (const record of records) if (result.phantoms.length < limit) result.phantoms.push(record);
  }
  result.duplicates = result.duplicates.slice(0, limit);
  result.failedButPresent = result.failedButPresent.slice(0, limit);
  result.revisionMismatches = result.revisionMismatches.slice(0, limit);
  result.ok =
    result.lostCount === 0 &&
    result.phantomCount === 0 &&
    result.duplicates.length === 0 &&
    result.failedButPresent.length === 0 &&
    result.revisionMismatches.length === 0;
  return result;
}

/** FinalRecords from the ok gets of a final read (one get per key). */
export function finalRecordsFromReads(reads: readonly Op[]): FinalRecord[] {
  const records: FinalRecord[] = [];
  for (const op of reads) {
    if (op.type !== "get" || op.outcome !== "ok") continue;
    const record: FinalRecord = { key: op.key, value: op.readValue ?? null };
    if (op.revision !== undefined) record.revision = op.revision;
    records.push(record);
  }
  return records;
}
