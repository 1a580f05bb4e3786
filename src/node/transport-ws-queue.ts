/**
 * The per-peer buffers of the WebSocket transport, apart from sockets so they can be reasoned about alone:
 *   - PeerSendQueue: encoded payloads waiting for the socket (bounded in bytes and count), snapshots waiting
 *     to stream, and the packing of both into frames of at most frameBytesMax.
 *   - SnapshotReassembly: the one snapshot being received from a peer, bounded by snapshotBytesMax.
 * Snapshot data is never copied into the queue: chunks are cut from the caller's snapshot as frames are
 * built, i.e. only while the socket has room, so a snapshot of hundreds of MB costs no extra memory.
 */
import type { Message } from "../raft/types.ts";
import { FRAME_OVERHEAD_BYTES_MAX, encodeFrame, encodePayload, protocolError } from "./peer-codec.ts";
import type { ResolvedPeerLimits } from "./transport.ts";

/** Bytes a chunk payload adds around its data ([4, bin32 header]). */
const CHUNK_OVERHEAD_BYTES = 16;
/** Smallest chunk worth appending to a frame that already carries other payloads. */
const CHUNK_BYTES_MIN = 1024;

export interface QueuedPayload {
  readonly encoded: Uint8Array;
  /** A request: its id, so it can be marked written or failed. */
  readonly requestId?: number;
  /** A raft "snap" message sent whole: its group, for onSnapshotStatus. */
  readonly snapGroup?: string;
}

/** A snapshot being streamed. `begun` once its header went out. Invariant: offset <= data.byteLength. */
interface OutgoingSnapshot {
  readonly group: string;
  readonly header: Uint8Array;
  readonly data: Uint8Array;
  offset: number;
  begun: boolean;
}

export interface OutgoingFrame {
  readonly frame: Buffer;
  /** Requests in this frame (written once the frame is handed to the socket). */
  readonly requestIds: readonly number[];
  /** Groups whose snapshot is complete once this frame is written. */
  readonly snapshotGroups: readonly string[];
}

export class PeerSendQueue {
  private items: QueuedPayload[] = [];
  /** Invariant: the sum of items' encoded sizes, <= sendQueueBytesMax. */
  queuedBytes = 0;
  /** Length <= snapshotsQueuedMax; the first one may be in progress. */
  private snapshots: OutgoingSnapshot[] = [];

  constructor(private readonly limits: ResolvedPeerLimits) {}

  hasWork(): boolean {
    return this.items.length > 0 || this.snapshots.length > 0;
  }

  snapshotsQueued(): number {
    return this.snapshots.length;
  }

  /** Appends an encoded payload; false when the queue is at its byte or count limit (the caller drops it). */
  push(item: QueuedPayload): boolean {
    if (this.items.length >= this.limits.sendQueueFramesMax || this.queuedBytes + item.encoded.byteLength > this.limits.sendQueueBytesMax) {
      return false;
    }
    this.items.push(item);
    this.queuedBytes += item.encoded.byteLength;
    return true;
  }

  /** Queues a snapshot to stream; false when snapshotsQueuedMax are already waiting. `header`: an encoded snapshotBegin. */
  pushSnapshot(group: string, header: Uint8Array, data: Uint8Array): boolean {
    if (this.snapshots.length >= this.limits.snapshotsQueuedMax) return false;
    this.snapshots.push({ group, header, data, offset: 0, begun: false });
    return true;
  }

  /** Empties the queue (the link went down). Returns what was dropped so the caller can fail it. */
  drain(): { items: QueuedPayload[]; snapshotGroups: string[] } {
    const items = this.items;
    const snapshotGroups = this.snapshots.map((snapshot) => snapshot.group);
    this.items = [];
    this.queuedBytes = 0;
    this.snapshots = [];
    return { items, snapshotGroups };
  }

  /** Packs the next frame: queued payloads in order, then snapshot header/chunks in the room left. Null when empty. */
  nextFrame(): OutgoingFrame | null {
    const room = this.limits.frameBytesMax - FRAME_OVERHEAD_BYTES_MAX;
    const parts: Uint8Array[] = [];
    const requestIds: number[] = [];
    const snapshotGroups: string[] = [];
    let size = 0;
    let taken = 0;
    while (taken < this.items.length) {
      const next = this.items[taken]!;
      if (size + next.encoded.byteLength > room) break;
      parts.push(next.encoded);
      size += next.encoded.byteLength;
      if (next.requestId !== undefined) requestIds.push(next.requestId);
      if (next.snapGroup !== undefined) snapshotGroups.push(next.snapGroup);
      taken++;
    }
    this.items.splice(0, taken);
    this.queuedBytes -= size;
    this.appendSnapshotPieces(parts, size, room, snapshotGroups);
    return parts.length === 0 ? null : { frame: encodeFrame(parts), requestIds, snapshotGroups };
  }

  private appendSnapshotPieces(parts: Uint8Array[], sizeIn: number, room: number, done: string[]): void {
    let size = sizeIn;
    for (;;) {
      const current = this.snapshots[0];
      if (current === undefined) return;
      if (!current.begun) {
        if (size + current.header.byteLength > room) return;
        parts.push(current.header);
        size += current.header.byteLength;
        current.begun = true;
        continue;
      }
      const remaining = current.data.byteLength - current.offset;
      const chunkBytes = Math.min(remaining, this.limits.snapshotChunkBytes, room - size - CHUNK_OVERHEAD_BYTES);
      if (remaining > 0 && (chunkBytes <= 0 || (chunkBytes < remaining && chunkBytes < CHUNK_BYTES_MIN))) return;
      if (remaining > 0) {
        const encoded = encodePayload({ kind: "snapshotChunk", data: current.data.subarray(current.offset, current.offset + chunkBytes) });
        parts.push(encoded);
        size += encoded.byteLength;
        current.offset += chunkBytes;
      }
      if (current.offset === current.data.byteLength) {
        this.snapshots.shift();
        done.push(current.group);
      }
    }
  }
}

/** A snapshot being received. Invariant: received <= data.byteLength <= snapshotBytesMax. */
interface IncomingSnapshot {
  readonly group: string;
  readonly message: Message;
  readonly data: Uint8Array;
  received: number;
}

export class SnapshotReassembly {
  private incoming: IncomingSnapshot | null = null;

  constructor(private readonly snapshotBytesMax: number) {}

  /** Starts a snapshot announced by snapshotBegin; returns it at once when empty. Throws protocolError. */
  begin(group: string, message: Message, snapshotBytes: number): { group: string; message: Message } | null {
    if (this.incoming !== null) throw protocolError("a snapshot began while another was still streaming");
    if (snapshotBytes > this.snapshotBytesMax) {
      throw protocolError(`snapshot of ${snapshotBytes} bytes exceeds snapshotBytesMax ${this.snapshotBytesMax}`);
    }
    this.incoming = { group, message, data: new Uint8Array(snapshotBytes), received: 0 };
    return this.complete();
  }

  /** Appends the next chunk; returns the whole snap message once complete. Throws protocolError. */
  chunk(data: Uint8Array): { group: string; message: Message } | null {
    const incoming = this.incoming;
    if (incoming === null) throw protocolError("snapshot chunk without a snapshot being streamed");
    if (incoming.received + data.byteLength > incoming.data.byteLength) throw protocolError("snapshot chunk beyond the announced size");
    incoming.data.set(data, incoming.received);
    incoming.received += data.byteLength;
    return this.complete();
  }

  /** Discards a partial snapshot (the connection it came on is gone). */
  reset(): void {
    this.incoming = null;
  }

  private complete(): { group: string; message: Message } | null {
    const incoming = this.incoming;
    if (incoming === null || incoming.received < incoming.data.byteLength) return null;
    this.incoming = null;
    const snapshot = incoming.message.snapshot!;
    return { group: incoming.group, message: { ...incoming.message, snapshot: { metadata: snapshot.metadata, data: incoming.data } } };
  }
}
