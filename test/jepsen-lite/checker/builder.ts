/**
 * Write histories by hand, for tests and bug reports: one call per operation, ids assigned in order.
 *
 *   const b = new HistoryBuilder();
 *   b.put(1, [0, 10], "a", { revision: 1 });
 *   b.get(2, [12, 15], "a", { revision: 1 });
 *   b.create(3, [20, 30], "b", { fail: "KEY_EXISTS", actualRevision: 1 });
 *   b.put(4, [40, null], "c");                       // unknown outcome
 *   checkLinearizability(b.ops);
 *
 * Times are [invokeMs, completeMs]; completeMs null = unknown outcome (unless a `fail` is given).
 */
import type { Op, OpType } from "./history.ts";

export type Span = readonly [invokeMs: number, completeMs: number | null];

export interface Result {
  /** ok: the revision reported. */
  revision?: number;
  /** Failed with this code (KEY_EXISTS, WRONG_LAST_REVISION, UNAVAILABLE, TIMEOUT, ...). */
  fail?: string;
  actualRevision?: number;
  key?: string;
  node?: string;
}

export class HistoryBuilder {
  readonly ops: Op[] = [];
  private nextId = 0;

  constructor(private readonly defaultKey = "k") {}

  get(process: number, span: Span, readValue: string | null, result: Result = {}): Op {
    const op = this.add(process, "get", span, result);
    if (op.outcome === "ok") op.readValue = readValue;
    return op;
  }

  put(process: number, span: Span, value: string, result: Result = {}): Op {
    return this.add(process, "put", span, result, value);
  }

  create(process: number, span: Span, value: string, result: Result = {}): Op {
    return this.add(process, "create", span, result, value);
  }

  update(process: number, span: Span, value: string, expectedRevision: number, result: Result = {}): Op {
    return this.add(process, "update", span, result, value, expectedRevision);
  }

  delete(process: number, span: Span, result: Result & { expectedRevision?: number } = {}): Op {
    return this.add(process, "delete", span, result, undefined, result.expectedRevision);
  }

  purge(process: number, span: Span, result: Result & { expectedRevision?: number } = {}): Op {
    return this.add(process, "purge", span, result, undefined, result.expectedRevision);
  }

  private add(
    process: number,
    type: OpType,
    [invokeMs, completeMs]: Span,
    result: Result,
    value?: string,
    expectedRevision?: number,
  ): Op {
    const outcome = result.fail !== undefined ? "fail" : completeMs === null ? "unknown" : "ok";
    const op: Op = { id: this.nextId++, process, type, key: result.key ?? this.defaultKey, invokeMs, completeMs, outcome };
    if (value !== undefined) op.value = value;
    if (expectedRevision !== undefined) op.expectedRevision = expectedRevision;
    if (outcome === "ok" && result.revision !== undefined) op.revision = result.revision;
    if (result.fail !== undefined) op.errorCode = result.fail;
    if (result.actualRevision !== undefined) op.actualRevision = result.actualRevision;
    if (result.node !== undefined) op.node = result.node;
    this.ops.push(op);
    return op;
  }
}
