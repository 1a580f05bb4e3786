/**
 * Operations that are illegal in every order of a key's history, found without a search (so they
 * are reported at once, whatever the size of the history, with the reason in words):
 *
 * - a read of a value that no write on the key could have written (refused writes do not count);
 * - a read, expected or actual revision that an ok write on another key reported (revisions are
 *   unique in a bucket), or a read of a revision some write wrote with another value;
 * - a stale revision: the op names revision x (read, expected, actual) but a write on the key that
 *   reported a higher revision returned before the op began (revisions only go up on a key, so the
 *   key's last revision was already above x); an ok write whose revision is not above one returned
 *   before it began; a successful CAS on revision 0 (no record) after a write returned;
 * - a revision from the future: the op names revision x, written by a write invoked after the op
 *   returned.
 *
 * Each rule is a consequence of the model (model.ts) plus real time, so the search would reject the
 * same histories; it would only take longer, sometimes too long.
 */
import { classifyOp, type Op } from "./history.ts";
import type { KeyState } from "./model.ts";

export interface Impossible {
  op: Op;
  reason: string;
  /** The operation that shows it, if another one does. */
  witness?: Op;
}

export function impossibleOps(
  key: string,
  ops: readonly Op[],
  ambiguous: ReadonlySet<string>,
  reported: ReadonlyMap<number, Op>,
  initial: KeyState,
): Impossible[] {
  const written = new Set<string>();
  if (initial.value !== null) written.add(initial.value);
  for (const op of ops) {
    const cls = classifyOp(op, ambiguous);
    if (op.value !== undefined && op.type !== "get" && (cls === "effect" || cls === "unknown")) written.add(op.value);
  }
  const before = new RevisionsBefore(
    ops.filter((op) => op.outcome === "ok" && op.type !== "get" && op.revision !== undefined),
    initial.revisionExact ? initial.lastRevision : 0,
  );
  const found: Impossible[] = [];

  /** Checks one revision the op names; true if it found a problem. */
  const names = (op: Op, revision: number, what: string): boolean => {
    const writer = reported.get(revision);
    if (writer !== undefined && writer.key !== key) {
      found.push({ op, reason: `its ${what} revision ${revision} belongs to a write on another key`, witness: writer });
      return true;
    }
    const newer = before.highestBefore(op.invokeMs);
    if (newer !== null && newer.revision! > revision) {
      const reason = `its ${what} revision ${revision} is stale: revision ${newer.revision!} of this key had returned before it began`;
      found.push({ op, reason, witness: newer });
      return true;
    }
    if (writer !== undefined && writer !== op && op.completeMs !== null && writer.invokeMs > op.completeMs) {
      found.push({ op, reason: `its ${what} revision ${revision} was written by a write that began after it returned`, witness: writer });
      return true;
    }
    return false;
  };

  for (const op of ops) {
    const cls = classifyOp(op, ambiguous);
    if (cls === "effect" && op.type === "get" && op.readValue !== null && op.readValue !== undefined) {
      const writer = op.revision === undefined ? undefined : reported.get(op.revision);
      if (!written.has(op.readValue)) {
        found.push({ op, reason: "reads a value that no write on this key could have written" });
      } else if (writer !== undefined && writer.key === key && writer.value !== op.readValue) {
        found.push({ op, reason: `reads revision ${op.revision!}, which another write wrote with another value`, witness: writer });
      } else if (op.revision !== undefined) {
        names(op, op.revision, "read");
      }
    }
    if (cls === "effect" && op.expectedRevision !== undefined) names(op, op.expectedRevision, "expected");
    if (cls === "conflict" && op.actualRevision !== undefined) names(op, op.actualRevision, "actual");
    if (cls === "effect" && op.type !== "get" && op.revision !== undefined) {
      const earlier = before.highestBefore(op.invokeMs);
      if (earlier !== null && earlier.revision! >= op.revision) {
        found.push({ op, reason: `its revision ${op.revision} is not above revision ${earlier.revision!}, which returned before it began`, witness: earlier });
      }
    }
  }
  return found;
}

/** The highest-revision ok write of the key that returned before a given time. */
class RevisionsBefore {
  private readonly completeMs: number[] = [];
  private readonly highest: Op[] = [];

  constructor(writes: readonly Op[], private readonly initialRevision: number) {
    let best: Op | null = null;
    for (const write of [...writes].sort((a, b) => a.completeMs! - b.completeMs!)) {
      if (best === null || write.revision! > best.revision!) best = write;
      this.completeMs.push(write.completeMs!);
      this.highest.push(best);
    }
  }

  /** Strictly before `timeMs` (equal times are concurrent). */
  highestBefore(timeMs: number): Op | null {
    let low = 0;
    let high = this.completeMs.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.completeMs[middle]! < timeMs) low = middle + 1;
      else high = middle;
    }
    const op = low > 0 ? this.highest[low - 1]! : null;
    return op !== null && op.revision! > this.initialRevision ? op : null;
  }
}
