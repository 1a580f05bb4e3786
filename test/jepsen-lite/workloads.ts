/**
 * jepsen-lite workloads: client processes that issue operations and record each one as a checker `Op`
 * (checker/history.ts), and watchers that record what they see.
 *
 *   - registers (bucket jl-reg): get / put / create / update (CAS) / delete / purge on a handful of
 *     keys from every client; reads are linearizable. A key takes at most KEY_WRITES_MAX write attempts
 *     before its slot moves on to a fresh key, so the bucket's history depth (64) never trims a record
 *     (the checker does not model trims).
 *   - appends (bucket jl-app): create of a new unique key per write, plus reads of keys written before;
 *     at the end every acknowledged write must be in the bucket (lost = 0).
 *   - watches (bucket jl-watch): puts and deletes on rotating keys; a watcher on every node hosting each
 *     bucket of the run records every event, across its node's kills and pauses.
 *
 * Recording rules (checker/README.md): one outstanding op per process; after an unknown outcome the
 * client continues as a new process; every ok op records its revision, every CAS conflict the actual
 * revision; values are unique (`<process>-<n>`); every write is recorded; times come from one monotonic
 * clock (performance.now(), ms since the run started).
 */
import { Kvm, connect, type Connection } from "../../src/client/index.ts";
import type { KV, KvEntry, KvWatcher } from "../../src/client/types.ts";
import { CairnError } from "../../src/shared/errors.ts";
import type { Prng } from "../support/prng.ts";
import type { CommittedRecord, Op, OpType, WatchEvent, WatcherLog } from "./checker/index.ts";

export type WorkloadName = "registers" | "appends" | "watches";
export const WORKLOAD_NAMES: readonly WorkloadName[] = ["registers", "appends", "watches"];

export const BUCKETS: Record<WorkloadName, string> = { registers: "jl-reg", appends: "jl-app", watches: "jl-watch" };

/** Operations one run records at most; beyond, the clients stop (the run is then reported as such). */
export const HISTORY_OPS_MAX = 1_000_000;
/** Write attempts on one register or watch key before its slot moves to a fresh key (history depth 64). */
export const KEY_WRITES_MAX = 48;
/** Events one watcher records at most. */
export const WATCH_EVENTS_MAX = 1_000_000;
/** Times one watcher re-creates its watch after the watch ended with an error. */
export const WATCH_RESTARTS_MAX = 200;

/** An Op of one bucket (the checker takes one bucket's ops at a time). */
export interface RecordedOp extends Op {
  bucket: string;
}

export class Recorder {
  readonly ops: RecordedOp[] = [];
  private nextId = 1;
  private nextProcess = 1;
  private readonly t0 = performance.now();

  /** ms since the run started, microsecond precision. */
  now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  newProcess(): number {
    return this.nextProcess++;
  }

  full(): boolean {
    return this.ops.length >= HISTORY_OPS_MAX;
  }

  /**
   * Runs one operation and records it. `call` returns the revision (writes) or the entry (get).
   * TIMEOUT and CONNECTION_CLOSED are unknown outcomes (completeMs null); other CairnErrors are definite
   * failures with their code (and the actual revision for CAS conflicts); anything else is unknown.
   */
  async run(
    client: ClientProcess,
    bucket: string,
    type: OpType,
    key: string,
    args: { value?: string; expectedRevision?: number },
    call: () => Promise<number | KvEntry | null>,
  ): Promise<RecordedOp> {
    const op: RecordedOp = {
      id: this.nextId++,
      process: client.process,
      bucket,
      type,
      key,
      ...(args.value !== undefined ? { value: args.value } : {}),
      ...(args.expectedRevision !== undefined ? { expectedRevision: args.expectedRevision } : {}),
      invokeMs: this.now(),
      completeMs: null,
      outcome: "unknown",
    };
    const node = client.conn.info?.node;
    if (node) op.node = node;
    this.ops.push(op);
    try {
      const result = await call();
      op.completeMs = this.now();
      op.outcome = "ok";
      if (type === "get") {
        const entry = result as KvEntry | null;
        op.readValue = entry === null ? null : entry.string();
        if (entry !== null) op.revision = entry.revision;
      } else {
        op.revision = result as number;
      }
    } catch (error) {
      const code = error instanceof CairnError ? error.code : undefined;
      if (code === undefined || code === "TIMEOUT" || code === "CONNECTION_CLOSED") {
        op.errorCode = code ?? "INTERNAL";
        client.process = this.newProcess();
      } else {
        op.completeMs = this.now();
        op.outcome = "fail";
        op.errorCode = code;
        if ((code === "KEY_EXISTS" || code === "WRONG_LAST_REVISION") && typeof (error as CairnError).data.revision === "number") {
          op.actualRevision = (error as CairnError).data.revision!;
        }
        if (code === "INTERNAL") client.process = this.newProcess();
      }
    }
    return op;
  }
}

/** One client connection and the logical process currently issuing on it. */
export interface ClientProcess {
  readonly index: number;
  readonly conn: Connection;
  readonly buckets: Map<string, KV>;
  readonly rng: Prng;
  process: number;
  /** Per key: the last revision this client saw (read, written, or reported by a conflict). */
  readonly seen: Map<string, number>;
  /** Writes issued, for unique values and keys. */
  counter: number;
  /** appends: keys this client attempted. */
  readonly appended: string[];
}

/** Key slots that move to a fresh key after KEY_WRITES_MAX write attempts. */
export class RotatingKeys {
  private readonly generation: number[];
  private readonly attempts: number[];
  readonly used = new Set<string>();

  constructor(
    private readonly prefix: string,
    readonly slots: number,
  ) {
    this.generation = new Array<number>(slots).fill(0);
    this.attempts = new Array<number>(slots).fill(0);
  }

  key(slot: number): string {
    const key = `${this.prefix}.${slot}.${this.generation[slot]!}`;
    this.used.add(key);
    return key;
  }

  /** Counts a write attempt on the slot's current key; returns that key. */
  writeKey(slot: number): string {
    const key = this.key(slot);
    if (++this.attempts[slot]! >= KEY_WRITES_MAX) {
      this.generation[slot]!++;
      this.attempts[slot] = 0;
    }
    return key;
  }
}

export interface WorkloadContext {
  readonly recorder: Recorder;
  readonly registerKeys: RotatingKeys;
  readonly watchKeys: RotatingKeys;
  readonly opTimeoutMs: number;
}

function bucketOf(client: ClientProcess, name: string): KV {
  const kv = client.buckets.get(name);
  if (kv === undefined) throw new Error(`client ${client.index} has no handle for ${name}`);
  return kv;
}

/** A revision to expect: usually the last one seen, sometimes a stale or made-up one (a conflict). */
function expectedRevision(client: ClientProcess, key: string): number {
  const seen = client.seen.get(key) ?? 0;
  if (client.rng.chance(0.1)) return Math.max(0, seen - 1 - client.rng.int(3));
  return seen;
}

function note(client: ClientProcess, op: RecordedOp): void {
  const revision = op.outcome === "ok" ? op.revision : op.actualRevision;
  if (revision !== undefined) client.seen.set(op.key, revision);
}

export async function registersStep(ctx: WorkloadContext, client: ClientProcess): Promise<void> {
  const kv = bucketOf(client, BUCKETS.registers);
  const rng = client.rng;
  const slot = rng.int(ctx.registerKeys.slots);
  const timeoutMs = ctx.opTimeoutMs;
  const bucket = BUCKETS.registers;
  const roll = rng.float();
  let op: RecordedOp;
  if (roll < 0.35) {
    const key = ctx.registerKeys.key(slot);
    op = await ctx.recorder.run(client, bucket, "get", key, {}, () => kv.get(key, { timeoutMs }));
  } else {
    const key = ctx.registerKeys.writeKey(slot);
    const value = `${client.process}-${++client.counter}`;
    if (roll < 0.5) {
      op = await ctx.recorder.run(client, bucket, "put", key, { value }, () => kv.put(key, value, { timeoutMs }));
    } else if (roll < 0.6) {
      op = await ctx.recorder.run(client, bucket, "create", key, { value }, () => kv.create(key, value, { timeoutMs }));
    } else if (roll < 0.85) {
      const revision = expectedRevision(client, key);
      op = await ctx.recorder.run(client, bucket, "update", key, { value, expectedRevision: revision }, () =>
        kv.update(key, value, revision, { timeoutMs }),
      );
    } else {
      const purge = roll >= 0.96;
      const type = purge ? "purge" : "delete";
      if (rng.chance(0.5)) {
        const revision = expectedRevision(client, key);
        op = await ctx.recorder.run(client, bucket, type, key, { expectedRevision: revision }, () =>
          purge ? kv.purge(key, { revision, timeoutMs }) : kv.delete(key, { revision, timeoutMs }),
        );
      } else {
        op = await ctx.recorder.run(client, bucket, type, key, {}, () => (purge ? kv.purge(key, { timeoutMs }) : kv.delete(key, { timeoutMs })));
      }
    }
  }
  note(client, op);
}

export async function appendsStep(ctx: WorkloadContext, client: ClientProcess): Promise<void> {
  const kv = bucketOf(client, BUCKETS.appends);
  const rng = client.rng;
  const timeoutMs = ctx.opTimeoutMs;
  if (client.appended.length > 0 && rng.chance(0.15)) {
    const key = client.appended[rng.int(client.appended.length)]!;
    await ctx.recorder.run(client, BUCKETS.appends, "get", key, {}, () => kv.get(key, { timeoutMs }));
    return;
  }
  const n = ++client.counter;
  const key = `a.${client.index}.${n}`;
  const value = `${client.process}-${n}`;
  client.appended.push(key);
  await ctx.recorder.run(client, BUCKETS.appends, "create", key, { value }, () => kv.create(key, value, { timeoutMs }));
}

export async function watchWritesStep(ctx: WorkloadContext, client: ClientProcess): Promise<void> {
  const kv = bucketOf(client, BUCKETS.watches);
  const timeoutMs = ctx.opTimeoutMs;
  const key = ctx.watchKeys.writeKey(client.rng.int(ctx.watchKeys.slots));
  if (client.rng.chance(0.2)) {
    await ctx.recorder.run(client, BUCKETS.watches, "delete", key, {}, () => kv.delete(key, { timeoutMs }));
    return;
  }
  const value = `${client.process}-${++client.counter}`;
  await ctx.recorder.run(client, BUCKETS.watches, "put", key, { value }, () => kv.put(key, value, { timeoutMs }));
}

export const STEPS: Record<WorkloadName, (ctx: WorkloadContext, client: ClientProcess) => Promise<void>> = {
  registers: registersStep,
  appends: appendsStep,
  watches: watchWritesStep,
};

/**
 * A watcher pinned to one node (its connection knows only that node's URL, so it waits through the
 * node's kills and pauses and resumes there). It records every event; when the watch ends with an error
 * it starts again from the revision after the last one it saw (bounded restarts).
 */
export class NodeWatcher {
  readonly id: string;
  readonly events: WatchEvent[] = [];
  readonly skipped: { fromRevision: number; toRevision: number }[] = [];
  readonly endings: { atMs: number; code: string; message: string }[] = [];
  restarts = 0;
  truncated = false;
  private conn: Connection | null = null;
  private watcher: KvWatcher | null = null;
  private stopping = false;
  private loop: Promise<void> | null = null;

  constructor(
    readonly bucket: string,
    readonly node: string,
    private readonly url: string,
    private readonly recorder: Recorder,
    private readonly timeoutMs: number,
  ) {
    this.id = `${bucket}@${node}`;
  }

  get lastRevision(): number {
    return this.events.length > 0 ? this.events[this.events.length - 1]!.revision : 0;
  }

  /** Connects and starts the watch (include history: every record from revision 1); resolves once initialized. */
  async start(): Promise<void> {
    this.conn = await connect({ servers: [this.url], discoverServers: false, noRandomize: true, timeoutMs: this.timeoutMs, name: `watch-${this.id}` });
    const kv = new Kvm(this.conn);
    const bucket = await kv.open(this.bucket);
    const first = await bucket.watch({ include: "history", onSkipped: (range) => this.skipped.push(range) });
    this.watcher = first;
    await first.initialized;
    this.loop = this.run(bucket, first);
  }

  private async run(bucket: KV, first: KvWatcher): Promise<void> {
    let watcher: KvWatcher | null = first;
    while (!this.stopping) {
      try {
        for await (const e of watcher!) {
          if (this.events.length >= WATCH_EVENTS_MAX) {
            this.truncated = true;
            break;
          }
          const event: WatchEvent = { revision: e.revision, key: e.key, operation: e.operation, isUpdate: e.isUpdate, atMs: this.recorder.now() };
          if (e.operation === "PUT") event.value = e.string();
          this.events.push(event);
        }
        if (this.stopping || this.truncated) return;
        this.endings.push({ atMs: this.recorder.now(), code: "ENDED", message: "the watch ended without an error" });
      } catch (error) {
        if (this.stopping) return;
        const e = error as { code?: string; message?: string };
        this.endings.push({ atMs: this.recorder.now(), code: e.code ?? "ERROR", message: e.message ?? String(error) });
      }
      if (this.restarts >= WATCH_RESTARTS_MAX) return;
      this.restarts++;
      watcher = null;
      for (let attempt = 0; watcher === null && !this.stopping && attempt < WATCH_RESTARTS_MAX; attempt++) {
        try {
          const from = this.lastRevision + 1;
          watcher = await bucket.watch({ include: "history", resumeFromRevision: from, onSkipped: (range) => this.skipped.push(range) });
          this.watcher = watcher;
        } catch {
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      if (watcher === null) return;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.watcher?.stop().catch(() => undefined);
    await this.conn?.close().catch(() => undefined);
    await this.loop;
  }

  /** The checker's view: every event since revision 1, up to endRevision when given. */
  log(endRevision: number | undefined): WatcherLog {
    return {
      id: this.id,
      filters: [">"],
      startRevision: 1,
      ...(endRevision !== undefined ? { endRevision } : {}),
      events: this.events,
      skipped: this.skipped,
    };
  }
}

/** Every retained record of a bucket (linearizable history read), as the checkers want it. */
export async function readCommittedLog(kv: KV, timeoutMs: number): Promise<CommittedRecord[]> {
  const log: CommittedRecord[] = [];
  for await (const e of kv.history({ key: ">", timeoutMs })) {
    const record: CommittedRecord = { revision: e.revision, key: e.key, operation: e.operation };
    if (e.operation === "PUT") record.value = e.string();
    log.push(record);
  }
  return log;
}
