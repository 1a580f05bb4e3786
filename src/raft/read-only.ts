/**
 * ReadIndex bookkeeping on the leader (etcd read_only.go, ReadOnlySafe only). Each request records
 * the commit index when it arrived; it is released once a quorum of voters acknowledged a heartbeat
 * carrying its context (or a later request's context: heartbeat rounds are ordered, so an ack for a
 * later request confirms leadership for every earlier one).
 */
import type { NodeId } from "./types.ts";

export interface ReadRequest {
  readonly index: number;
  readonly context: Uint8Array;
  /** Who asked: this node, or the follower to answer with "readIndexResp". */
  readonly from: NodeId;
}

interface PendingRead extends ReadRequest {
  readonly acks: Set<NodeId>;
}

/** Limit on pending reads kept per leader; further requests are dropped (the node times them out). */
export const READ_INDEX_PENDING_MAX = 65_536;

export function contextKey(context: Uint8Array): string {
  let key = "";
  for (let i = 0; i < context.length; i++) key += String.fromCharCode(context[i]!);
  return key;
}

export class ReadOnly {
  private readonly pending = new Map<string, PendingRead>();
  /** Keys in arrival order. */
  private queue: string[] = [];

  get size(): number {
    return this.pending.size;
  }

  /** Adds a request; returns false if its context is already pending or the queue is full. */
  add(request: ReadRequest): boolean {
    const key = contextKey(request.context);
    if (this.pending.has(key) || this.pending.size >= READ_INDEX_PENDING_MAX) return false;
    this.pending.set(key, { ...request, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Records `from`'s ack of `context`; returns the acks so far (undefined if not pending). */
  recvAck(from: NodeId, context: Uint8Array): ReadonlySet<NodeId> | undefined {
    const pending = this.pending.get(contextKey(context));
    if (pending === undefined) return undefined;
    pending.acks.add(from);
    return pending.acks;
  }

  /** Removes and returns every request up to and including the one for `context`. */
  advance(context: Uint8Array): ReadRequest[] {
    const key = contextKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const released: ReadRequest[] = [];
    for (let i = 0; i <= at; i++) {
      const k = this.queue[i]!;
      const pending = this.pending.get(k)!;
      this.pending.delete(k);
      released.push({ index: pending.index, context: pending.context, from: pending.from });
    }
    this.queue = this.queue.slice(at + 1);
    return released;
  }

  /** Context of the newest pending request (heartbeats carry it), if any. */
  lastPendingContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.context;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
