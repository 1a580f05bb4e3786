/**
 * ReadIndex bookkeeping on the leader (etcd read_only.go, ReadOnlySafe only).
 *
 * Each request records the commit index when it arrived and gets a sequence number from a counter
 * that never goes back. The heartbeats sent for it carry that number (not the caller's context), and
 * a follower's ack of number s confirms leadership for every request numbered <= s: those
 * heartbeats left after the requests arrived. A request is released once a quorum of voters acked
 * its number or a later one. Caller contexts therefore need not be unique, and a delayed ack from an
 * earlier round can never confirm a later request.
 */
import { quorumIndex } from "./quorum.ts";
import type { NodeId } from "./types.ts";

export interface ReadRequest {
  readonly index: number;
  readonly context: Uint8Array;
  /** Who asked: this node, or the follower to answer with "readIndexResp". */
  readonly from: NodeId;
}

interface PendingRead extends ReadRequest {
  readonly seq: number;
}

/** Limit on pending reads kept per leader; further requests are dropped (the node times them out). */
export const READ_INDEX_PENDING_MAX = 65_536;

/** Heartbeat context for sequence number `seq` (8 bytes, big-endian). */
export function encodeReadSeq(seq: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, seq);
  return out;
}

/** The sequence number in a heartbeat context, or -1 if it is not one of ours. */
export function decodeReadSeq(context: Uint8Array): number {
  if (context.byteLength !== 8) return -1;
  const seq = new DataView(context.buffer, context.byteOffset, 8).getFloat64(0);
  return Number.isSafeInteger(seq) && seq > 0 ? seq : -1;
}

export class ReadOnly {
  /** Pending requests in arrival (= seq) order. */
  private queue: PendingRead[] = [];
  /** Monotonic for the core's lifetime, so numbers are never reused across terms either. */
  private lastSeq = 0;
  /** Highest sequence number each peer acknowledged. */
  private readonly acked = new Map<NodeId, number>();
  private readonly scratch: number[] = [];

  get size(): number {
    return this.queue.length;
  }

  /** Adds a request and returns the heartbeat context confirming it, or null if too many are pending. */
  add(request: ReadRequest): Uint8Array | null {
    if (this.queue.length >= READ_INDEX_PENDING_MAX) return null;
    const seq = ++this.lastSeq;
    this.queue.push({ ...request, seq });
    return encodeReadSeq(seq);
  }

  /**
   * Records `from`'s ack of a heartbeat context and returns the requests now confirmed by a quorum
   * of `voters` (`self` acknowledges everything it sent).
   */
  recvAck(from: NodeId, context: Uint8Array, voters: readonly NodeId[], self: NodeId): ReadRequest[] {
    const seq = decodeReadSeq(context);
    if (seq < 0 || this.queue.length === 0) return [];
    if (seq > (this.acked.get(from) ?? 0)) this.acked.set(from, seq);
    const scratch = this.scratch;
    scratch.length = 0;
    for (const id of voters) scratch.push(id === self ? this.lastSeq : (this.acked.get(id) ?? 0));
    const confirmed = quorumIndex(scratch);
    let released = 0;
    while (released < this.queue.length && this.queue[released]!.seq <= confirmed) released++;
    if (released === 0) return [];
    const out: ReadRequest[] = this.queue.slice(0, released).map((p) => ({ index: p.index, context: p.context, from: p.from }));
    this.queue = this.queue.slice(released);
    return out;
  }

  /** Heartbeat context for the newest pending request, if any. */
  lastPendingContext(): Uint8Array | undefined {
    const last = this.queue[this.queue.length - 1];
    return last === undefined ? undefined : encodeReadSeq(last.seq);
  }

  /** Drops every pending request (leadership lost). The sequence counter keeps counting. */
  reset(): void {
    this.queue = [];
    this.acked.clear();
  }
}
