/**
 * Node-side watchers: each serves one client watch from this node's replica of the bucket. The
 * initial part is read from the state machine and registration happens in the same synchronous
 * step, so no applied event can fall between them; later events arrive from apply in log order.
 * Each watcher is bounded by its session's buffer: one that cannot keep up is ended with
 * WATCH_OVERFLOW carrying the revision to resume from.
 */
import type { KvRecord, WatchEvent } from "../kv/types.ts";
import type { WireEntry } from "../shared/protocol.ts";
import { matchFilter } from "../kv/index.ts";
import type { WireError } from "../shared/protocol.ts";

/** A state machine record as clients receive it (`delta` as in NATS: matching records still pending). */
export function toWire(bucket: string, record: KvRecord, delta: number): WireEntry {
  return {
    bucket,
    key: record.key,
    value: record.value,
    length: record.value.length,
    revision: record.revision,
    created: record.created,
    operation: record.operation,
    delta,
  };
}

export interface WatchSink {
  /** Queue entries for the client; returns false (and sends nothing) when the client's buffer is over its limit. */
  entries(watchId: number, entries: WireEntry[]): boolean;
  initialized(watchId: number, revision: number): void;
  skipped(watchId: number, fromRevision: number, toRevision: number): void;
  ended(watchId: number, error: WireError): void;
}

export interface WatchSpec {
  readonly bucket: string;
  readonly filters: readonly string[];
  readonly ignoreDeletes: boolean;
  readonly metaOnly: boolean;
}

export class Watcher {
  /** Highest revision delivered (or covered by the initial part). */
  lastRevision = 0;
  ended = false;

  constructor(
    readonly id: number,
    readonly spec: WatchSpec,
    readonly sink: WatchSink,
    readonly onEnd: (w: Watcher) => void,
  ) {}

  matches(record: KvRecord): boolean {
    if (this.spec.ignoreDeletes && record.operation !== "PUT") return false;
    for (const f of this.spec.filters) if (matchFilter(f, record.key)) return true;
    return false;
  }

  toWire(record: KvRecord, delta: number, isUpdate: boolean): WireEntry {
    const entry = toWire(this.spec.bucket, record, delta);
    entry.isUpdate = isUpdate;
    if (this.spec.metaOnly) entry.value = new Uint8Array(0);
    return entry;
  }

  /** Sends the initial part (already filtered by the state machine) and marks the watch live. */
  start(records: readonly KvRecord[], revision: number, resumeFrom: number | undefined, firstRetained: number): void {
    if (resumeFrom !== undefined && resumeFrom < firstRetained && resumeFrom <= revision) {
      this.sink.skipped(this.id, resumeFrom, Math.min(firstRetained, revision + 1) - 1);
    }
    const wanted = records.filter((r) => !this.spec.ignoreDeletes || r.operation === "PUT");
    const CHUNK = 512;
    for (let i = 0; i < wanted.length; i += CHUNK) {
      const chunk = wanted.slice(i, i + CHUNK).map((r, j) => this.toWire(r, wanted.length - (i + j) - 1, false));
      if (!this.sink.entries(this.id, chunk)) {
        // Nothing of this chunk was sent: resume from its first record.
        this.end({ code: "WATCH_OVERFLOW", message: "watcher could not keep up", data: { resumeFromRevision: chunk[0]!.revision } });
        return;
      }
    }
    // A resume point beyond the bucket's revision: records before it are not wanted, live ones either.
    this.lastRevision = resumeFrom !== undefined ? Math.max(revision, resumeFrom - 1) : revision;
    this.sink.initialized(this.id, revision);
  }

  /** Live events from apply, in revision order. */
  deliver(events: readonly WatchEvent[]): void {
    if (this.ended) return;
    let batch: WireEntry[] | null = null;
    for (const e of events) {
      if (e.record.revision <= this.lastRevision) continue;
      if (this.matches(e.record)) (batch ??= []).push(this.toWire(e.record, 0, true));
      this.lastRevision = e.record.revision;
    }
    if (batch && !this.sink.entries(this.id, batch)) {
      this.end({ code: "WATCH_OVERFLOW", message: "watcher could not keep up", data: { resumeFromRevision: batch[0]!.revision } });
    }
  }

  end(error: WireError): void {
    if (this.ended) return;
    this.ended = true;
    this.sink.ended(this.id, error);
    this.onEnd(this);
  }

  /** Ends silently (client asked to stop). */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(this);
  }
}
