/** KvEntry / KvWatchEntry / KvStatus built from their wire forms. */
import type { WireBucketStatus, WireEntry } from "../shared/protocol.ts";
import { asUint8Array } from "./codec.ts";
import type { KvEntry, KvOperation, KvStatus, KvWatchEntry } from "./types.ts";

const decoder = new TextDecoder();

export class Entry implements KvWatchEntry {
  readonly bucket: string;
  readonly key: string;
  readonly value: Uint8Array;
  readonly revision: number;
  readonly created: Date;
  readonly operation: KvOperation;
  readonly delta: number;
  readonly length: number;
  readonly isUpdate: boolean;

  constructor(wire: WireEntry, isUpdate: boolean) {
    this.bucket = wire.bucket;
    this.key = wire.key;
    this.value = asUint8Array(wire.value);
    this.revision = wire.revision;
    this.created = new Date(wire.created);
    this.operation = wire.operation;
    this.delta = typeof wire.delta === "number" ? wire.delta : 0;
    this.length = typeof wire.length === "number" ? wire.length : this.value.length;
    this.isUpdate = isUpdate;
  }

  string(): string {
    return decoder.decode(this.value);
  }

  json<T = unknown>(): T {
    return JSON.parse(this.string()) as T;
  }
}

/** A get/history entry (isUpdate is only meaningful on watch entries; it is false here). */
export function entryFromWire(wire: WireEntry): KvEntry {
  return new Entry(wire, false);
}

export function watchEntryFromWire(wire: WireEntry, isUpdate: boolean): KvWatchEntry {
  return new Entry(wire, isUpdate);
}

export function statusFromWire(wire: WireBucketStatus): KvStatus {
  return {
    bucket: wire.bucket,
    values: wire.values,
    history: wire.history,
    ttlMs: wire.ttlMs,
    bytes: wire.bytes,
    maxBytes: wire.maxBytes,
    maxValueSize: wire.maxValueSize,
    replicas: wire.replicas,
    storage: wire.storage,
    markerTtlMs: wire.markerTtlMs,
    description: wire.description ?? "",
    metadata: wire.metadata ?? {},
    compression: wire.compression ?? false,
    revision: wire.revision ?? 0,
    leader: wire.leader ?? null,
    ...(typeof wire.replicasRunning === "number" ? { replicasRunning: wire.replicasRunning } : {}),
    replicasInfo: (wire.replicasInfo ?? []).map((r) => ({
      node: r.node,
      current: r.current,
      lag: r.lag,
      leader: r.leader,
      ...(typeof r.voter === "boolean" ? { voter: r.voter } : {}),
    })),
  };
}
