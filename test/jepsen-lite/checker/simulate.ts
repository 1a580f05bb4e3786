/**
 * Generates histories that are linearizable by construction: concurrent clients run a random schedule
 * against a real, sequential, in-memory KV bucket (one revision counter for the whole bucket, CAS as
 * KV-SEMANTICS.md says). Each operation takes effect at one instant between its invocation and its
 * completion; some time out (outcome unknown) after taking effect or without ever taking effect; some
 * are refused before taking effect (UNAVAILABLE). Used by the checker's property tests and benchmark.
 *
 * This bucket is written independently of model.ts on purpose: a test that checks the model against
 * itself proves nothing.
 */
import type { Op, OpType } from "./history.ts";

/** mulberry32: a small seeded PRNG, so a seed reproduces a history exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SimulateOptions {
  seed: number;
  /** Concurrent clients. */
  processes: number;
  /** Operations invoked in total. */
  ops: number;
  keys?: readonly string[];
  /** Distinct values per key (small = many equal values, which makes the search work harder). */
  values?: number;
  /** Probability that an operation times out (outcome unknown); half of those never take effect. */
  unknownRate?: number;
  /** Probability that a write is refused before proposing (fail UNAVAILABLE). */
  refusedRate?: number;
  /** Probability that a write to some other key (not in the history) bumps the bucket revision. */
  foreignWriteRate?: number;
  /** Whether failures carry actualRevision (ErrorData.revision). */
  reportActualRevision?: boolean;
}

interface Stored {
  value: string | null;
  revision: number; // 0 = no record
}

interface Pending {
  op: Op;
  applied: boolean;
  /** Decided at invocation: the op times out; `lost` = it never takes effect. */
  timesOut: boolean;
  lost: boolean;
}

const TYPES: readonly OpType[] = ["get", "get", "get", "put", "put", "create", "update", "update", "delete", "purge"];

export function simulateHistory(options: SimulateOptions): Op[] {
  const rand = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const keys = options.keys ?? ["k"];
  const valueCount = options.values ?? 3;
  const unknownRate = options.unknownRate ?? 0.05;
  const refusedRate = options.refusedRate ?? 0.02;
  const foreignWriteRate = options.foreignWriteRate ?? 0.1;
  const reportActual = options.reportActualRevision ?? true;

  const store = new Map<string, Stored>();
  let bucketRevision = 0;
  const read = (key: string): Stored => store.get(key) ?? { value: null, revision: 0 };

  const history: Op[] = [];
  const pending = new Map<number, Pending>(); // by lane
  const processOfLane = new Map<number, number>();
  let nextProcess = options.processes;
  let invoked = 0;
  let nextId = 0;
  let now = 0;

  const invoke = (lane: number): void => {
    const type = pick(TYPES);
    const key = pick(keys);
    const current = read(key);
    const op: Op = {
      id: nextId++,
      process: processOfLane.get(lane) ?? lane,
      type,
      key,
      invokeMs: now,
      completeMs: null,
      outcome: "unknown",
    };
    if (type === "put" || type === "create" || type === "update") op.value = `v${String(Math.floor(rand() * valueCount))}`;
    const expectRevision = type === "update" || ((type === "delete" || type === "purge") && rand() < 0.5);
    if (expectRevision) {
      // Mostly the current revision (a CAS that may win), sometimes a stale or absent one.
      const r = rand();
      op.expectedRevision = r < 0.6 ? current.revision : r < 0.8 ? Math.max(0, current.revision - 1) : 0;
    }
    const timesOut = rand() < unknownRate;
    pending.set(lane, { op, applied: false, timesOut, lost: timesOut && rand() < 0.5 });
    invoked++;
  };

  const apply = (p: Pending): void => {
    p.applied = true;
    const { op } = p;
    if (p.lost) return;
    if (op.type !== "get" && !p.timesOut && rand() < refusedRate) {
      op.outcome = "fail";
      op.errorCode = "UNAVAILABLE";
      return;
    }
    const current = read(op.key);
    const write = (value: string | null): void => {
      bucketRevision++;
      store.set(op.key, { value, revision: bucketRevision });
      op.outcome = "ok";
      op.revision = bucketRevision;
    };
    const conflict = (code: string): void => {
      op.outcome = "fail";
      op.errorCode = code;
      if (reportActual) op.actualRevision = current.revision;
    };
    switch (op.type) {
      case "get":
        op.outcome = "ok";
        op.readValue = current.value;
        if (current.value !== null) op.revision = current.revision;
        return;
      case "put":
        return write(op.value!);
      case "create":
        return current.value === null ? write(op.value!) : conflict("KEY_EXISTS");
      case "update":
      case "delete":
      case "purge":
        if (op.expectedRevision !== undefined && op.expectedRevision !== current.revision) {
          return conflict("WRONG_LAST_REVISION");
        }
        return write(op.type === "update" ? op.value! : null);
    }
  };

  const complete = (lane: number, p: Pending): void => {
    pending.delete(lane);
    const { op } = p;
    if (p.timesOut) {
      // The client never learns the result: strip it.
      op.outcome = "unknown";
      op.completeMs = null;
      delete op.revision;
      delete op.readValue;
      delete op.errorCode;
      delete op.actualRevision;
      // A crashed client is replaced by a new process (as Jepsen does), so lanes never overlap.
      processOfLane.set(lane, nextProcess++);
    } else {
      op.completeMs = now;
    }
    history.push(op);
  };

  const lanes = Array.from({ length: options.processes }, (_, i) => i);
  while (invoked < options.ops || pending.size > 0) {
    now += Math.floor(rand() * 3); // 0 sometimes: equal timestamps happen on a real clock too.
    if (rand() < foreignWriteRate) bucketRevision++;
    const lane = pick(lanes);
    const p = pending.get(lane);
    if (p === undefined) {
      if (invoked < options.ops) invoke(lane);
    } else if (!p.applied) {
      apply(p);
    } else {
      complete(lane, p);
    }
  }
  return history.sort((a, b) => a.id - b.id);
}
