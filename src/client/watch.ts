/**
 * A watch: an async iterator over one bucket's changes that survives the loss of its node.
 *
 * Invariants:
 * - Entries reach the buffer in strictly increasing revision order: `lastRevision` is the highest
 *   revision accepted, and anything at or below it is dropped (a resumed server-side watch may resend).
 * - The buffer never holds more than bufferEntriesMax entries: when a push would exceed it, the watch
 *   stops on the server and the iterator ends, after the entries already buffered, with WATCH_OVERFLOW
 *   carrying `resumeFromRevision` = lastRevision + 1.
 * - When the socket carrying the watch is lost (or the server ends it with a retryable code), the watch
 *   re-issues `watch.start` on whatever connection comes next, with resumeFromRevision = lastRevision + 1
 *   once the initial part is complete (see startRequest for the cases before that).
 * - `watch.skipped` (records that limits removed while the watcher was away) goes to `onSkipped`, and
 *   lastRevision moves past the skipped range.
 */
import { CairnError } from "../shared/errors.ts";
import type { Push, WireEntry } from "../shared/protocol.ts";
import { errorFromWire } from "./codec.ts";
import { isRetryableCode, type Connection, type Link, type RequestBody, type WatchSink } from "./connection.ts";
import { watchEntryFromWire } from "./entry.ts";
import type { KvSkippedRange, KvWatchEntry, KvWatcher, KvWatchInclude } from "./types.ts";

export const WATCH_BUFFER_ENTRIES_DEFAULT = 10_000;

export interface WatchSpec {
  readonly bucket: string;
  readonly filters: string[];
  readonly include: KvWatchInclude;
  readonly ignoreDeletes: boolean;
  readonly metaOnly: boolean;
  readonly resumeFromRevision: number | undefined;
  readonly bufferEntriesMax: number;
  readonly onSkipped: ((range: KvSkippedRange) => void) | undefined;
}

interface Consumer {
  resolve(result: IteratorResult<KvWatchEntry>): void;
  reject(error: unknown): void;
}

const noop = (): void => undefined;

export class Watcher implements KvWatcher, WatchSink {
  readonly initialized: Promise<void>;
  private resolveInitialized!: () => void;
  private rejectInitialized!: (error: unknown) => void;
  /** Entries not yet consumed are buffer[head..]. Invariant: buffer.length - head <= bufferEntriesMax. */
  private buffer: KvWatchEntry[] = [];
  private head = 0;
  private readonly consumers: Consumer[] = [];
  private last = 0;
  private isInitialized = false;
  /** Set once no entry will be added any more; the error (if any) is thrown after the buffer drains. */
  private ending: { error: CairnError | null; delivered: boolean } | null = null;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  private attached: { link: Link; watchId: number } | null = null;
  private resuming = false;
  /** The bucket revision the first server-side watch started at (from its watch.start answer). */
  private startRevision: number | undefined;
  /** Every entry is a live change: "updates" (its resumed catch-up included), or any watch once initialized. */
  private readonly onlyUpdates: boolean;

  constructor(
    private readonly conn: Connection,
    private readonly spec: WatchSpec,
  ) {
    this.initialized = new Promise<void>((resolve, reject) => {
      this.resolveInitialized = resolve;
      this.rejectInitialized = reject;
    });
    // Callers need not await `initialized`; a rejection must not count as unhandled.
    this.initialized.catch(noop);
    this.onlyUpdates = spec.include === "updates" && spec.resumeFromRevision === undefined;
  }

  get lastRevision(): number {
    return this.last;
  }

  /** Issues the first watch.start (retried like any call until timeoutMs); throws when it fails. */
  async start(timeoutMs: number | undefined): Promise<void> {
    await this.conn.request("watch.start", this.startRequest(), {
      timeoutMs,
      onOk: (result, link) => this.attach(link, result.watchId, result.revision),
    });
  }

  /**
   * What to ask for when (re)starting. Once initialized: everything after the last revision accepted.
   * Before that: "history" (or an explicit resumeFromRevision) continues after the last entry; "last"
   * starts over (the latest record of each key, entries already delivered dropped by revision);
   * "updates" continues after the revision the server reported in its first `watch.start` answer, so
   * changes made while the watch was away are replayed (without that answer, the watch() call has not
   * returned yet and starting over is correct).
   */
  private startRequest(): RequestBody<"watch.start"> {
    const base = {
      bucket: this.spec.bucket,
      filters: this.spec.filters,
      include: this.spec.include,
      ignoreDeletes: this.spec.ignoreDeletes,
      metaOnly: this.spec.metaOnly,
    };
    if (this.isInitialized) return { ...base, resumeFromRevision: this.last + 1 };
    if (this.spec.resumeFromRevision !== undefined) return { ...base, resumeFromRevision: Math.max(this.spec.resumeFromRevision, this.last + 1) };
    if (this.spec.include === "history" && this.last > 0) return { ...base, resumeFromRevision: this.last + 1 };
    if (this.spec.include === "updates" && this.startRevision !== undefined) {
      return { ...base, resumeFromRevision: Math.max(this.startRevision, this.last) + 1 };
    }
    return base;
  }

  /** Runs synchronously with the watch.start response, before any push of the new watch. */
  private attach(link: Link, watchId: number, revision: number | undefined): void {
    if (this.stopped || this.ending) {
      this.conn.requestOnLink(link, "watch.stop", { watchId }).catch(noop);
      return;
    }
    if (this.startRevision === undefined && typeof revision === "number" && Number.isSafeInteger(revision) && revision >= 0) {
      this.startRevision = revision;
    }
    this.attached = { link, watchId };
    link.watches.set(watchId, this);
  }

  private detach(): { link: Link; watchId: number } | null {
    const attached = this.attached;
    if (attached) {
      attached.link.watches.delete(attached.watchId);
      this.attached = null;
    }
    return attached;
  }

  // ---- WatchSink ------------------------------------------------------------------------------

  onPush(push: Push): void {
    switch (push.push) {
      case "watch.entries":
        this.accept(push.entries);
        return;
      case "watch.initialized":
        if (!this.isInitialized) {
          this.isInitialized = true;
          // Live entries after this push have greater revisions (docs/protocol.md): resume after it.
          if (typeof push.revision === "number" && push.revision > this.last) this.last = push.revision;
          this.resolveInitialized();
        }
        return;
      case "watch.skipped":
        if (push.toRevision > this.last) this.last = push.toRevision;
        try {
          this.spec.onSkipped?.({ fromRevision: push.fromRevision, toRevision: push.toRevision });
        } catch {
          // A throwing callback must not break the watch.
        }
        return;
      case "watch.ended": {
        this.detach();
        const error = errorFromWire(push.error);
        if (isRetryableCode(error.code) || error.code === "CONNECTION_CLOSED") this.resume();
        else if (error.code === "WATCH_OVERFLOW") this.finish(this.overflowError(error.message));
        else this.finish(error);
        return;
      }
    }
  }

  onLinkLost(): void {
    this.attached = null;
    this.resume();
  }

  onClosed(): void {
    this.attached = null;
    this.finish(new CairnError("CONNECTION_CLOSED"));
  }

  // ---- buffer ---------------------------------------------------------------------------------

  private size(): number {
    return this.buffer.length - this.head;
  }

  private accept(entries: readonly WireEntry[]): void {
    if (this.stopped || this.ending || !Array.isArray(entries)) return;
    for (const wire of entries) {
      if (typeof wire?.revision !== "number" || wire.revision <= this.last) continue;
      const entry = watchEntryFromWire(wire, this.isInitialized || this.onlyUpdates || wire.isUpdate === true);
      const consumer = this.consumers.shift();
      if (consumer) {
        this.last = wire.revision;
        consumer.resolve({ value: entry, done: false });
        continue;
      }
      if (this.size() >= this.spec.bufferEntriesMax) {
        const attached = this.detach();
        if (attached) this.conn.requestOnLink(attached.link, "watch.stop", { watchId: attached.watchId }).catch(noop);
        this.finish(this.overflowError(`watcher could not keep up: more than ${this.spec.bufferEntriesMax} entries buffered`));
        return;
      }
      this.last = wire.revision;
      this.buffer.push(entry);
    }
  }

  private overflowError(message: string): CairnError {
    return new CairnError("WATCH_OVERFLOW", `${message}; resume from revision ${this.last + 1}`, { resumeFromRevision: this.last + 1 });
  }

  /** No more entries will come: consumers get the rest of the buffer, then the error (or the end). */
  private finish(error: CairnError | null): void {
    if (this.ending || this.stopped) return;
    this.ending = { error, delivered: false };
    this.detach();
    if (error && !this.isInitialized) this.rejectInitialized(error);
    else this.resolveInitialized();
    while (this.consumers.length > 0) this.deliverEnd(this.consumers.shift()!);
  }

  private deliverEnd(consumer: Consumer): void {
    const ending = this.ending!;
    if (ending.error && !ending.delivered) {
      ending.delivered = true;
      consumer.reject(ending.error);
    } else consumer.resolve({ value: undefined, done: true });
  }

  /** Re-issues watch.start until attached again, stopped, or a non-retryable failure. */
  private resume(): void {
    if (this.resuming || this.stopped || this.ending) return;
    this.resuming = true;
    void (async () => {
      try {
        for (let attempt = 0; !this.attached && !this.stopped && !this.ending; attempt++) {
          try {
            await this.start(undefined);
          } catch (error) {
            if (!(error instanceof CairnError)) {
              this.finish(new CairnError("INTERNAL", `watch resume failed: ${String(error)}`, {}, { cause: error }));
              return;
            }
            if (error.code !== "TIMEOUT" && error.code !== "UNAVAILABLE") {
              this.finish(error);
              return;
            }
            await this.conn.sleep(this.conn.backoffMs(attempt, 25, 2000));
          }
        }
      } finally {
        this.resuming = false;
      }
    })();
  }

  // ---- consumer side --------------------------------------------------------------------------

  private next(): Promise<IteratorResult<KvWatchEntry>> {
    if (this.stopped) return Promise.resolve({ value: undefined, done: true });
    if (this.size() > 0) {
      const entry = this.buffer[this.head]!;
      this.head++;
      if (this.head === this.buffer.length) {
        this.buffer = [];
        this.head = 0;
      } else if (this.head >= 1024 && this.head * 2 >= this.buffer.length) {
        this.buffer = this.buffer.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value: entry, done: false });
    }
    return new Promise<IteratorResult<KvWatchEntry>>((resolve, reject) => {
      const consumer = { resolve, reject };
      if (this.ending) this.deliverEnd(consumer);
      else this.consumers.push(consumer);
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<KvWatchEntry> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.stop();
        return { value: undefined, done: true };
      },
    };
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopped = true;
    this.buffer = [];
    this.head = 0;
    for (const consumer of this.consumers.splice(0)) consumer.resolve({ value: undefined, done: true });
    this.resolveInitialized();
    const attached = this.detach();
    this.stopping = attached
      ? this.conn.requestOnLink(attached.link, "watch.stop", { watchId: attached.watchId }).then(noop, noop)
      : Promise.resolve();
    return this.stopping;
  }
}
