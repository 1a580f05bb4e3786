/**
 * Bucket-wide revision facts, across keys (the per-key search cannot see them): a revision is the
 * bucket's sequence number, so no two acknowledged writes share one, and a write that was
 * acknowledged before another was invoked has the smaller revision (writes are linearizable per
 * bucket, and revision order is log order). One history = one bucket.
 */
import type { Op } from "./history.ts";

export interface RevisionFindings {
  ok: boolean;
  /** Acknowledged writes that report the same revision. */
  duplicates: { revision: number; ops: Op[] }[];
  /** `earlier` returned before `later` was invoked, yet its revision is not smaller. */
  realTimeViolations: { earlier: Op; later: Op }[];
}

/** Lists at most `limit` findings of each kind (the first ones in time). */
export function checkRevisionOrder(ops: readonly Op[], limit = 100): RevisionFindings {
  const writes = ops.filter((op) => op.outcome === "ok" && op.type !== "get" && op.revision !== undefined);

  const byRevision = new Map<number, Op[]>();
  for (const op of writes) {
    const list = byRevision.get(op.revision!) ?? [];
    list.push(op);
    byRevision.set(op.revision!, list);
  }
  const duplicates = [...byRevision.entries()]
    .filter(([, list]) => list.length > 1)
    .sort(([a], [b]) => a - b)
    .slice(0, limit)
    .map(([revision, list]) => ({ revision, ops: list }));

  // Sweep by invocation; `done` holds writes completed strictly before the current invocation.
  const byInvoke = [...writes].sort((a, b) => a.invokeMs - b.invokeMs);
  const byComplete = [...writes].sort((a, b) => a.completeMs! - b.completeMs!);
  const realTimeViolations: { earlier: Op; later: Op }[] = [];
  let highest: Op | null = null;
  let next = 0;
  for (const later of byInvoke) {
    while (next < byComplete.length && byComplete[next]!.completeMs! < later.invokeMs) {
      const done = byComplete[next++]!;
      if (highest === null || done.revision! > highest.revision!) highest = done;
    }
    if (highest !== null && highest.revision! >= later.revision! && realTimeViolations.length < limit) {
      realTimeViolations.push({ earlier: highest, later });
    }
  }
  return { ok: duplicates.length === 0 && realTimeViolations.length === 0, duplicates, realTimeViolations };
}
