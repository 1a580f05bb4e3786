/**
 * The meta state machine: replicated on every node through the "meta" Raft group. It holds which
 * buckets exist, the configuration each was created with, and the placement of each bucket's
 * replicas. Deterministic: placement is decided at apply time from the state alone, so every node
 * reaches the same placement. Bucket *configuration changes* are not recorded here: they go through
 * the bucket's own group (its state machine is authoritative for the current config), which keeps
 * an update atomic with the history trimming it causes.
 */
import { Packr } from "msgpackr";
import type { BucketConfig } from "../kv/types.ts";
import { CairnError, type ErrorCode } from "../shared/errors.ts";
import { assert } from "../shared/assert.ts";

export interface MetaBucket {
  readonly bucket: string;
  /** Raft group id of the bucket: unique per incarnation, so a re-created bucket never meets old messages. */
  readonly group: string;
  readonly createConfig: BucketConfig;
  /** Replica node ids; placement[0] is the preferred leader. */
  readonly placement: readonly string[];
  readonly createdAt: number;
}

export type MetaCommand =
  | { readonly type: "bucketCreate"; readonly bucket: string; readonly config: BucketConfig }
  | { readonly type: "bucketDelete"; readonly bucket: string };

export interface MetaEnvelope {
  readonly now: number;
  readonly requestId?: string;
  readonly command: MetaCommand;
}

export type MetaResult =
  | { readonly ok: true; readonly bucket: MetaBucket | null; readonly existed: boolean }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number", moreTypes: false, bundleStrings: false });

const SNAPSHOT_VERSION = 1;

export class MetaStateMachine {
  private members: string[];
  private readonly buckets = new Map<string, MetaBucket>();
  /** Request ids already applied (bounded): a retried bucket command returns its first result. */
  private readonly seen = new Map<string, MetaResult>();
  private static readonly SEEN_MAX = 10_000;
  appliedIndex = 0;

  constructor(members: readonly string[]) {
    this.members = [...members].sort();
  }

  getMembers(): readonly string[] {
    return this.members;
  }

  get(bucket: string): MetaBucket | undefined {
    return this.buckets.get(bucket);
  }

  list(): MetaBucket[] {
    return [...this.buckets.values()].sort((a, b) => (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0));
  }

  apply(index: number, envelope: MetaEnvelope): MetaResult {
    assert(index > this.appliedIndex, `meta apply index ${index} <= applied ${this.appliedIndex}`);
    this.appliedIndex = index;
    if (envelope.requestId !== undefined) {
      const prior = this.seen.get(envelope.requestId);
      if (prior) return prior;
    }
    const result = this.applyCommand(index, envelope);
    if (envelope.requestId !== undefined) {
      if (this.seen.size >= MetaStateMachine.SEEN_MAX) {
        const oldest = this.seen.keys().next().value as string;
        this.seen.delete(oldest);
      }
      this.seen.set(envelope.requestId, result);
    }
    return result;
  }

  private applyCommand(index: number, envelope: MetaEnvelope): MetaResult {
    const command = envelope.command;
    switch (command.type) {
      case "bucketCreate": {
        const existing = this.buckets.get(command.bucket);
        if (existing) return { ok: true, bucket: existing, existed: true };
        if (command.config.replicas > this.members.length) {
          const err = new CairnError(
            "INVALID_CONFIG",
            `replicas ${command.config.replicas} exceeds the cluster size ${this.members.length}`,
          );
          return { ok: false, code: err.code, message: err.message };
        }
        const bucket: MetaBucket = {
          bucket: command.bucket,
          group: `b:${command.bucket}:${index}`,
          createConfig: command.config,
          placement: this.place(command.bucket, command.config.replicas),
          createdAt: envelope.now,
        };
        this.buckets.set(command.bucket, bucket);
        return { ok: true, bucket, existed: false };
      }
      case "bucketDelete": {
        const existing = this.buckets.get(command.bucket);
        if (!existing) return { ok: false, code: "BUCKET_NOT_FOUND", message: "bucket not found" };
        this.buckets.delete(command.bucket);
        return { ok: true, bucket: existing, existed: true };
      }
    }
  }

  /**
   * Chooses `replicas` members: fewest replicas hosted first, then fewest preferred leaderships,
   * ties broken by a hash of (bucket, member) so equal clusters spread buckets differently.
   */
  private place(bucket: string, replicas: number): string[] {
    const hosted = new Map<string, number>();
    const leads = new Map<string, number>();
    for (const m of this.members) {
      hosted.set(m, 0);
      leads.set(m, 0);
    }
    for (const b of this.buckets.values()) {
      b.placement.forEach((m, i) => {
        if (hosted.has(m)) hosted.set(m, hosted.get(m)! + 1);
        if (i === 0 && leads.has(m)) leads.set(m, leads.get(m)! + 1);
      });
    }
    const chosen = [...this.members]
      .sort((a, b) => hosted.get(a)! - hosted.get(b)! || fnv1a(bucket + "/" + a) - fnv1a(bucket + "/" + b) || (a < b ? -1 : 1))
      .slice(0, replicas);
    // Preferred leader: the chosen member leading the fewest buckets.
    chosen.sort((a, b) => leads.get(a)! - leads.get(b)! || fnv1a(bucket + "#" + a) - fnv1a(bucket + "#" + b) || (a < b ? -1 : 1));
    return chosen;
  }

  snapshot(): Uint8Array {
    return packr.pack({
      version: SNAPSHOT_VERSION,
      appliedIndex: this.appliedIndex,
      members: this.members,
      buckets: this.list(),
      seen: [...this.seen.entries()],
    });
  }

  restore(data: Uint8Array): void {
    let image: {
      version: number;
      appliedIndex: number;
      members: string[];
      buckets: MetaBucket[];
      seen: [string, MetaResult][];
    };
    try {
      image = packr.unpack(data);
    } catch (cause) {
      throw new CairnError("CORRUPT_DATA", "meta snapshot cannot be decoded", {}, { cause });
    }
    if (!image || image.version !== SNAPSHOT_VERSION || !Array.isArray(image.buckets)) {
      throw new CairnError("CORRUPT_DATA", "meta snapshot has an unknown format");
    }
    this.appliedIndex = image.appliedIndex;
    this.members = image.members;
    this.buckets.clear();
    for (const b of image.buckets) this.buckets.set(b.bucket, b);
    this.seen.clear();
    for (const [k, v] of image.seen) this.seen.set(k, v);
  }
}

/** FNV-1a: a small, stable string hash (placement tie-breaks, spreading retries over replicas). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
