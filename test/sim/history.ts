/**
 * Client history checker: per-key register linearizability and ReadIndex linearizability.
 *
 * Method. Every write is a `put key=value` with a value unique in the run, so the committed log tells
 * exactly where (if anywhere) each write took effect: the log order is the only candidate order of
 * writes, and a read's result names the write it observed. Linearizability of a register history then
 * reduces to real-time checks against that order (the simple register model; the full WGL search is
 * jepsen-lite's):
 *  - a write acknowledged to its client is committed at the index it was acknowledged with;
 *  - a write reported failed (not ambiguous) never appears in the committed log; no value commits twice;
 *  - a write acknowledged before another write started precedes it in the log;
 *  - a write starts after a read completed lands after the log position that read observed;
 *  - a read observes the latest committed write to its key at or before the point it read (its
 *    replica's applied index), which must cover every write acknowledged before the read started
 *    (ReadIndex linearizability: readState.index >= every acknowledged write index), and must not be
 *    older than what an earlier, completed read of the same key observed.
 */
import type { Entry } from "../../src/raft/types.ts";
import type { CommitListener } from "./checkers.ts";
import type { Register } from "./state-machine.ts";
import { decodeCommand } from "./state-machine.ts";

export interface WriteOp {
  readonly kind: "write";
  readonly client: number;
  readonly key: string;
  readonly value: string;
  readonly invokedAt: number;
  /** Max acknowledged write index when this write started. */
  readonly ackedBound: number;
  /** Max log position observed by a completed read when this write started. */
  readonly readBound: number;
  proposedAt: { index: number; term: number } | null;
  /** Why the node refused the proposal (error code and leader hint), when it did. */
  refusal: string | null;
  outcome: "pending" | "ok" | "failed" | "unknown";
  completedAt: number;
}

export interface ReadOp {
  readonly kind: "read";
  readonly client: number;
  readonly key: string;
  readonly context: string;
  readonly invokedAt: number;
  /** Max index of any write acknowledged before this read started. */
  readonly ackedBound: number;
  /** Max index of a write to this key acknowledged before this read started. */
  readonly keyAckedBound: number;
  /** Max write index a completed read of this key had observed when this read started. */
  readonly keyReadBound: number;
  readIndex: number | null;
  outcome: "pending" | "ok" | "failed";
  observedIndex: number;
  completedAt: number;
}

export interface HistoryCounts {
  writesInvoked: number;
  writesAcked: number;
  writesFailed: number;
  writesUnknown: number;
  readsInvoked: number;
  readsServed: number;
  readsFailed: number;
  readStatesChecked: number;
}

export class HistoryViolation extends Error {
  override readonly name = "HistoryViolation";
}

export class History implements CommitListener {
  readonly counts: HistoryCounts = {
    writesInvoked: 0,
    writesAcked: 0,
    writesFailed: 0,
    writesUnknown: 0,
    readsInvoked: 0,
    readsServed: 0,
    readsFailed: 0,
    readStatesChecked: 0,
  };
  private readonly writesByValue = new Map<string, WriteOp>();
  /** key -> committed write indexes, ascending, with their values. */
  private readonly keyLog = new Map<string, { indexes: number[]; values: string[] }>();
  private readonly committedValues = new Map<string, number>();
  private readonly readsByContext = new Map<string, ReadOp>();
  private ackedMax = 0;
  private readonly keyAckedMax = new Map<string, number>();
  private readonly keyReadMax = new Map<string, number>();
  /** Max replica applied index a completed read was served at. */
  private readPointMax = 0;
  where = () => "";

  private fail(detail: string): never {
    const where = this.where();
    throw new HistoryViolation(`linearizability: ${detail}${where === "" ? "" : ` (${where})`}`);
  }

  // --- writes -------------------------------------------------------------------------------------

  invokeWrite(client: number, key: string, value: string, now: number): WriteOp {
    if (this.writesByValue.has(value)) throw new Error(`value ${value} written twice by the workload`);
    this.counts.writesInvoked++;
    const op: WriteOp = {
      kind: "write",
      client,
      key,
      value,
      invokedAt: now,
      ackedBound: this.ackedMax,
      readBound: this.readPointMax,
      proposedAt: null,
      refusal: null,
      outcome: "pending",
      completedAt: -1,
    };
    this.writesByValue.set(value, op);
    return op;
  }

  writeAcked(op: WriteOp, index: number, now: number): void {
    this.counts.writesAcked++;
    op.outcome = "ok";
    op.completedAt = now;
    const committedAt = this.committedValues.get(op.value);
    if (committedAt !== index) {
      this.fail(`write ${op.key}=${op.value} acknowledged at index ${index} but committed at ${committedAt ?? "no index"}`);
    }
    if (index <= op.ackedBound) {
      this.fail(`write ${op.key}=${op.value} at ${index} was ordered before a write acknowledged (at ${op.ackedBound}) before it started`);
    }
    if (index <= op.readBound) {
      this.fail(`write ${op.key}=${op.value} at ${index} is visible to a read (at ${op.readBound}) completed before it started`);
    }
    if (index > this.ackedMax) this.ackedMax = index;
    if (index > (this.keyAckedMax.get(op.key) ?? 0)) this.keyAckedMax.set(op.key, index);
  }

  /** definite: the write certainly did not and will not take effect (refused, or its slot lost). */
  writeFailed(op: WriteOp, definite: boolean, now: number): void {
    op.completedAt = now;
    if (definite) {
      this.counts.writesFailed++;
      op.outcome = "failed";
      const committedAt = this.committedValues.get(op.value);
      if (committedAt !== undefined) this.fail(`write ${op.key}=${op.value} reported failed but committed at ${committedAt}`);
    } else {
      this.counts.writesUnknown++;
      op.outcome = "unknown";
    }
  }

  committed(entry: Entry): void {
    if (entry.type !== "normal") return;
    const command = decodeCommand(entry.data);
    if (command === null) return;
    const before = this.committedValues.get(command.value);
    if (before !== undefined) this.fail(`value ${command.value} committed twice (${before} and ${entry.index})`);
    this.committedValues.set(command.value, entry.index);
    const op = this.writesByValue.get(command.value);
    if (op !== undefined && op.outcome === "failed") this.fail(`write ${op.key}=${op.value} reported failed but committed at ${entry.index}`);
    let log = this.keyLog.get(command.key);
    if (log === undefined) {
      log = { indexes: [], values: [] };
      this.keyLog.set(command.key, log);
    }
    const last = log.indexes[log.indexes.length - 1];
    if (last !== undefined && last >= entry.index) throw new Error(`committed entries reported out of order: ${entry.index} after ${last}`);
    log.indexes.push(entry.index);
    log.values.push(command.value);
  }

  // --- reads --------------------------------------------------------------------------------------

  invokeRead(client: number, key: string, context: string, now: number): ReadOp {
    this.counts.readsInvoked++;
    const op: ReadOp = {
      kind: "read",
      client,
      key,
      context,
      invokedAt: now,
      ackedBound: this.ackedMax,
      keyAckedBound: this.keyAckedMax.get(key) ?? 0,
      keyReadBound: this.keyReadMax.get(key) ?? 0,
      readIndex: null,
      outcome: "pending",
      observedIndex: -1,
      completedAt: -1,
    };
    this.readsByContext.set(context, op);
    return op;
  }

  readOf(context: string): ReadOp | undefined {
    return this.readsByContext.get(context);
  }

  /** A read state came back for `op` (possibly a duplicate): it must cover every acknowledged write. */
  readStateObserved(op: ReadOp, readIndex: number): void {
    this.counts.readStatesChecked++;
    if (readIndex < op.ackedBound) {
      this.fail(`read ${op.context} got read index ${readIndex}, below write index ${op.ackedBound} acknowledged before the read started`);
    }
    if (op.readIndex === null) op.readIndex = readIndex;
  }

  /** The read was served from a replica that had applied `appliedIndex` and held `register`. */
  readServed(op: ReadOp, register: Register | null, appliedIndex: number, now: number): void {
    this.counts.readsServed++;
    op.outcome = "ok";
    op.completedAt = now;
    const observed = register === null ? 0 : register.index;
    op.observedIndex = observed;
    // The replica's answer must be the latest committed write to the key at or before its read point.
    const log = this.keyLog.get(op.key);
    let expectedIndex = 0;
    let expectedValue: string | null = null;
    if (log !== undefined) {
      let low = 0;
      let high = log.indexes.length - 1;
      while (low <= high) {
        const mid = (low + high) >> 1;
        if (log.indexes[mid]! <= appliedIndex) {
          expectedIndex = log.indexes[mid]!;
          expectedValue = log.values[mid]!;
          low = mid + 1;
        } else high = mid - 1;
      }
    }
    if (observed !== expectedIndex || (register !== null && register.value !== expectedValue)) {
      this.fail(
        `read ${op.context} of ${op.key} at applied ${appliedIndex} returned ${register === null ? "nothing" : `${register.value}@${register.index}`}, the log says ${expectedValue === null ? "nothing" : `${expectedValue}@${expectedIndex}`}`,
      );
    }
    if (observed < op.keyAckedBound) {
      this.fail(`read ${op.context} of ${op.key} returned the write at ${observed}, older than the write at ${op.keyAckedBound} acknowledged before it started`);
    }
    if (observed < op.keyReadBound) {
      this.fail(`read ${op.context} of ${op.key} returned the write at ${observed}, older than what a read completed before it saw (${op.keyReadBound})`);
    }
    if (observed > (this.keyReadMax.get(op.key) ?? 0)) this.keyReadMax.set(op.key, observed);
    if (appliedIndex > this.readPointMax) this.readPointMax = appliedIndex;
  }

  readFailed(op: ReadOp, now: number): void {
    this.counts.readsFailed++;
    op.outcome = "failed";
    op.completedAt = now;
  }
}
