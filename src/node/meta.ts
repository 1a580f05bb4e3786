/**
 * The meta state machine: replicated on every node through the "meta" Raft group. It holds which
 * buckets exist, the configuration each was created with, and the placement of each bucket's
 * replicas. Deterministic: placement is decided at apply time from the state alone, so every node
 * reaches the same placement. Bucket *configuration changes* are not recorded here: they go through
 * the bucket's own group (its state machine is authoritative for the current config), which keeps
 * an update atomic with the history trimming it causes. The one exception is the replica count: a
 * `bucketReplicas` entry records the bucket's configured `replicas` here and decides its new placement
 * (a change of the same kind as a removal, see below and docs/membership.md).
 *
 * Membership (see docs/membership.md): `members` are the nodes of the cluster config that currently
 * belong to the cluster, `removed` the ones taken out with `cluster.removeNode`. A removal or re-add
 * is one `nodeRemove` / `nodeAdd` entry that decides, at apply time, the new placement of every
 * affected bucket and records the change as in progress; the group leaders then reconcile their Raft
 * configurations toward it (src/node/membership.ts) and the meta leader ends it with
 * `membershipDone`. One change at a time: another is refused (retryable) until then. A bucket's
 * replica count changed by `bucket.update` (`bucketReplicas`) is such a change too: it grows the
 * placement (members hosting fewest replicas first) or shrinks it (keeping the replicas the proposer
 * prefers: the group's leader, then the most up-to-date), and the same loop then moves the group.
 */
import { Packr } from "msgpackr";
import { REPLICAS_MAX } from "../kv/index.ts";
import type { BucketConfig } from "../kv/types.ts";
import { CairnError, type ErrorCode } from "../shared/errors.ts";
import { assert } from "../shared/assert.ts";

export interface MetaBucket {
  readonly bucket: string;
  /** Raft group id of the bucket: unique per incarnation, so a re-created bucket never meets old messages. */
  readonly group: string;
  readonly createConfig: BucketConfig;
  /**
   * Configured replica count: createConfig.replicas until a bucket.update changes it. The placement
   * may hold fewer (a removal shrank the bucket) while members are missing.
   */
  readonly replicas: number;
  /** Replica node ids, as they should be now (membership changes move and shrink it). */
  readonly placement: readonly string[];
  /**
   * The group's voters at index 0 (the placement at creation; initial[0] is the preferred first
   * leader). A replica restarting on a log without a snapshot replays conf changes from here.
   */
  readonly initial: readonly string[];
  /** Nodes ever taken out of this bucket's placement: if they come back they join blank (learner, snapshot). */
  readonly left: readonly string[];
  readonly createdAt: number;
}

/** A membership change in progress (at most one). */
export interface MembershipChange {
  /** Increases by one per change; `completedSeq` reaches it when the change is done. */
  readonly seq: number;
  /** remove / add a node; or change the replica count of one bucket (bucket.update). */
  readonly type: "remove" | "add" | "replicas";
  /** The node removed or added ("" for a replicas change). */
  readonly nodeId: string;
  /** A replicas change: the bucket, and its new replica count. */
  readonly bucket?: string;
  readonly replicas?: number;
  /** Buckets whose placement this change altered: their groups must match it before it completes. */
  readonly buckets: readonly string[];
  readonly startedAt: number;
}

/** The membership part of the meta state. */
export interface MembershipView {
  readonly members: readonly string[];
  readonly removed: readonly string[];
  readonly change: MembershipChange | null;
  readonly completedSeq: number;
}

export type MetaCommand =
  | { readonly type: "bucketCreate"; readonly bucket: string; readonly config: BucketConfig }
  | { readonly type: "bucketDelete"; readonly bucket: string }
  | { readonly type: "nodeRemove"; readonly nodeId: string }
  | { readonly type: "nodeAdd"; readonly nodeId: string }
  /**
   * bucket.update changing `replicas`. `prefer`: replicas to keep first when shrinking, as the proposer
   * saw the group (its leader, then the most up-to-date); a hint only, validated at apply time.
   */
  | { readonly type: "bucketReplicas"; readonly bucket: string; readonly replicas: number; readonly prefer?: readonly string[] }
  | { readonly type: "membershipDone"; readonly seq: number };

export interface MetaEnvelope {
  readonly now: number;
  readonly requestId?: string;
  readonly command: MetaCommand;
}

export type MetaResult =
  | { readonly ok: true; readonly bucket: MetaBucket | null; readonly existed: boolean; readonly change?: MembershipChange }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number", moreTypes: false, bundleStrings: false });

/**
 * Version 2 adds membership (removed, change, completedSeq) and MetaBucket.initial/left; version 3
 * MetaBucket.replicas (replica count changes). 1 and 2 still restore.
 */
const SNAPSHOT_VERSION = 3;

/** Replicas a bucket of `replicas` needs at least: a majority of its configured count. */
export function replicasNeeded(replicas: number): number {
  return Math.floor(replicas / 2) + 1;
}

/**
 * May `nodeId` create its replica of `bucket` from the bucket's index-0 image with the initial voters
 * (true), or must it join blank and wait for the leader's snapshot (false)? Only an initial replica
 * that never left: one added later, or one coming back, was never part of the index-0 configuration
 * as it stands in the other replicas' logs.
 */
export function bootstrapsAt(bucket: MetaBucket, nodeId: string): boolean {
  return bucket.initial.includes(nodeId) && !bucket.left.includes(nodeId);
}

/** Start of the (retryable, UNAVAILABLE) message refusing a change while another is in progress. */
export const CHANGE_IN_PROGRESS = "a membership change is in progress";

/** A change in words, for messages and logs: "remove n3", "replicas of bucket b to 3". */
export function describeChange(change: Pick<MembershipChange, "type" | "nodeId" | "bucket" | "replicas">): string {
  return change.type === "replicas" ? `replicas of bucket ${change.bucket} to ${change.replicas}` : `${change.type} ${change.nodeId}`;
}

/** Most entries of a bucketReplicas `prefer` hint looked at (a bucket has at most 5 replicas). */
const PREFER_ENTRIES_MAX = 16;

type ErrorResult = Extract<MetaResult, { ok: false }>;

function refused(code: ErrorCode, message: string): ErrorResult {
  return { ok: false, code, message };
}

export class MetaStateMachine {
  private members: string[];
  private removed: string[] = [];
  private change: MembershipChange | null = null;
  private completedSeq = 0;
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

  membership(): MembershipView {
    return { members: this.members, removed: this.removed, change: this.change, completedSeq: this.completedSeq };
  }

  /** Removed, and the removal finished: its groups no longer include it anywhere. */
  isRemovedAndDone(nodeId: string): boolean {
    return this.removed.includes(nodeId) && this.change?.nodeId !== nodeId;
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
    // "Another change is in progress" is retried with the same request id: never remember it.
    const retryable = !result.ok && result.code === "UNAVAILABLE";
    if (envelope.requestId !== undefined && !retryable) {
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
        const placement = this.place(command.bucket, command.config.replicas);
        const bucket: MetaBucket = {
          bucket: command.bucket,
          group: `b:${command.bucket}:${index}`,
          createConfig: command.config,
          replicas: command.config.replicas,
          placement,
          initial: placement,
          left: [],
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
      case "nodeRemove":
        return this.nodeRemove(command.nodeId, envelope.now);
      case "nodeAdd":
        return this.nodeAdd(command.nodeId, envelope.now);
      case "bucketReplicas":
        return this.bucketReplicas(command.bucket, command.replicas, command.prefer, envelope.now);
      case "membershipDone":
        if (this.change !== null && this.change.seq === command.seq) {
          this.completedSeq = command.seq;
          this.change = null;
        }
        return { ok: true, bucket: null, existed: false };
    }
  }

  /**
   * What a change request gets before its own rules apply, or null: the same change in progress
   * (the caller waits for it); the node already as asked (success, nothing to do: requests are
   * idempotent, also across request ids); another change in progress (retryable UNAVAILABLE).
   */
  precheck(type: MembershipChange["type"], nodeId: string): MetaResult | null {
    if (this.change !== null && this.change.type === type && this.change.nodeId === nodeId) return { ok: true, bucket: null, existed: true, change: this.change };
    const already = type === "remove" ? this.removed.includes(nodeId) : this.members.includes(nodeId);
    if (already) return { ok: true, bucket: null, existed: true };
    return this.inProgress();
  }

  /** Another change in progress: the retryable refusal; else null. */
  private inProgress(): ErrorResult | null {
    if (this.change !== null) return refused("UNAVAILABLE", `${CHANGE_IN_PROGRESS} (${describeChange(this.change)}); retry when it completes`);
    return null;
  }

  /**
   * What a replica count change gets before its own rules apply, or null (as precheck): the same
   * change in progress (the caller waits for it); the count already as asked (success, nothing to
   * do); another change in progress (retryable UNAVAILABLE); no such bucket.
   */
  precheckReplicas(bucket: string, replicas: number): MetaResult | null {
    const b = this.buckets.get(bucket);
    const c = this.change;
    if (c !== null && c.type === "replicas" && c.bucket === bucket && c.replicas === replicas) return { ok: true, bucket: b ?? null, existed: true, change: c };
    if (!b) return refused("BUCKET_NOT_FOUND", "bucket not found");
    if (b.replicas === replicas) return { ok: true, bucket: b, existed: true };
    return this.inProgress();
  }

  /**
   * Takes `nodeId` out: each bucket with a replica there moves it to a member that does not host the
   * bucket (fewest replicas first), else shrinks, as long as it keeps a majority of its configured
   * replicas. Refused as a whole when any bucket would not.
   */
  private nodeRemove(nodeId: string, now: number): MetaResult {
    const pending = this.precheck("remove", nodeId);
    if (pending) return pending;
    if (!this.members.includes(nodeId)) return refused("NODE_NOT_FOUND", `node ${nodeId} is not a node of this cluster`);
    if (this.members.length === 1) return refused("MEMBERSHIP_CHANGE_REFUSED", `node ${nodeId} is the last member of the cluster`);
    const members = this.members.filter((m) => m !== nodeId);
    const hosted = this.hostedCounts(members);
    const moved: MetaBucket[] = [];
    for (const b of this.list()) {
      const at = b.placement.indexOf(nodeId);
      if (at < 0) continue;
      const spares = members.filter((m) => !b.placement.includes(m));
      spares.sort((x, y) => hosted.get(x)! - hosted.get(y)! || fnv1a(b.bucket + "/" + x) - fnv1a(b.bucket + "/" + y) || (x < y ? -1 : 1));
      const spare = spares[0];
      let placement: string[];
      if (spare !== undefined) {
        placement = [...b.placement];
        placement[at] = spare;
        hosted.set(spare, hosted.get(spare)! + 1);
      } else {
        placement = b.placement.filter((m) => m !== nodeId);
        const needed = replicasNeeded(b.replicas);
        if (placement.length < needed) {
          return refused(
            "MEMBERSHIP_CHANGE_REFUSED",
            `removing ${nodeId} would leave bucket ${b.bucket} with ${placement.length} of its ${b.replicas} replicas (it needs at least ${needed}) and no other node can host it`,
          );
        }
      }
      moved.push({ ...b, placement, left: b.left.includes(nodeId) ? b.left : [...b.left, nodeId] });
    }
    for (const b of moved) this.buckets.set(b.bucket, b);
    this.members = members;
    this.removed = [...this.removed, nodeId].sort();
    return this.startChange("remove", nodeId, moved, now);
  }

  /** Brings a removed node back; every bucket below its configured replica count gets a replica there. */
  private nodeAdd(nodeId: string, now: number): MetaResult {
    const pending = this.precheck("add", nodeId);
    if (pending) return pending;
    if (!this.removed.includes(nodeId)) return refused("NODE_NOT_FOUND", `node ${nodeId} is not a node of this cluster`);
    const grown: MetaBucket[] = [];
    for (const b of this.list()) {
      if (b.placement.length >= b.replicas || b.placement.includes(nodeId)) continue;
      grown.push({ ...b, placement: [...b.placement, nodeId] });
    }
    for (const b of grown) this.buckets.set(b.bucket, b);
    this.members = [...this.members, nodeId].sort();
    this.removed = this.removed.filter((m) => m !== nodeId);
    return this.startChange("add", nodeId, grown, now);
  }

  /**
   * Sets a bucket's configured replica count and decides its new placement. Growing adds the members
   * not hosting it that host fewest replicas (ties by a hash of bucket and member, as creation).
   * Shrinking keeps, in this order, the `prefer` hint's nodes (the leader first: it stays first, the
   * preferred leader), then the placement's own order (placement[0] first); the other replicas leave
   * (recorded in `left`: should one come back, it joins blank). The reconciliation loop then moves
   * the group; the change is done when its voters are exactly the placement.
   */
  private bucketReplicas(bucket: string, replicas: number, prefer: readonly string[] | undefined, now: number): MetaResult {
    if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > REPLICAS_MAX) return refused("INVALID_CONFIG", `replicas must be between 1 and ${REPLICAS_MAX}`);
    const pending = this.precheckReplicas(bucket, replicas);
    if (pending) return pending;
    const b = this.buckets.get(bucket)!;
    if (replicas > this.members.length) return refused("INVALID_CONFIG", `replicas ${replicas} exceeds the cluster size ${this.members.length}`);
    let placement: string[];
    let left = b.left;
    if (replicas >= b.placement.length) {
      const hosted = this.hostedCounts(this.members);
      const spares = this.members.filter((m) => !b.placement.includes(m));
      spares.sort((x, y) => hosted.get(x)! - hosted.get(y)! || fnv1a(bucket + "/" + x) - fnv1a(bucket + "/" + y) || (x < y ? -1 : 1));
      placement = [...b.placement, ...spares.slice(0, replicas - b.placement.length)];
    } else {
      const hint = Array.isArray(prefer) ? prefer.slice(0, PREFER_ENTRIES_MAX).filter((m) => typeof m === "string" && b.placement.includes(m)) : [];
      const order = [...new Set([...hint, ...b.placement])];
      const kept = new Set(order.slice(0, replicas));
      placement = b.placement.filter((m) => kept.has(m));
      const leader = hint[0];
      if (leader !== undefined && placement[0] !== leader) placement = [leader, ...placement.filter((m) => m !== leader)];
      const dropped = b.placement.filter((m) => !kept.has(m));
      left = [...left, ...dropped.filter((m) => !left.includes(m))];
    }
    const changed: MetaBucket = { ...b, replicas, placement, left };
    this.buckets.set(bucket, changed);
    const placementChanged = placement.length !== b.placement.length || placement.some((m, i) => m !== b.placement[i]);
    // Only the count changed (a shrunk bucket set to the replicas it runs on): nothing to move.
    if (!placementChanged) return { ok: true, bucket: changed, existed: false };
    this.change = { seq: this.completedSeq + 1, type: "replicas", nodeId: "", bucket, replicas, buckets: [bucket], startedAt: now };
    return { ok: true, bucket: changed, existed: false, change: this.change };
  }

  private startChange(type: MembershipChange["type"], nodeId: string, buckets: readonly MetaBucket[], now: number): MetaResult {
    this.change = { seq: this.completedSeq + 1, type, nodeId, buckets: buckets.map((b) => b.bucket), startedAt: now };
    return { ok: true, bucket: null, existed: false, change: this.change };
  }

  private hostedCounts(members: readonly string[]): Map<string, number> {
    const hosted = new Map<string, number>();
    for (const m of members) hosted.set(m, 0);
    for (const b of this.buckets.values()) for (const m of b.placement) if (hosted.has(m)) hosted.set(m, hosted.get(m)! + 1);
    return hosted;
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
      removed: this.removed,
      change: this.change,
      completedSeq: this.completedSeq,
      buckets: this.list(),
      seen: [...this.seen.entries()],
    });
  }

  restore(data: Uint8Array): void {
    let image: {
      version: number;
      appliedIndex: number;
      members: string[];
      removed?: string[];
      change?: MembershipChange | null;
      completedSeq?: number;
      buckets: (Omit<MetaBucket, "initial" | "left" | "replicas"> & { initial?: string[]; left?: string[]; replicas?: number })[];
      seen: [string, MetaResult][];
    };
    try {
      image = packr.unpack(data);
    } catch (cause) {
      throw new CairnError("CORRUPT_DATA", "meta snapshot cannot be decoded", {}, { cause });
    }
    if (!image || ![1, 2, SNAPSHOT_VERSION].includes(image.version) || !Array.isArray(image.buckets)) {
      throw new CairnError("CORRUPT_DATA", "meta snapshot has an unknown format");
    }
    this.appliedIndex = image.appliedIndex;
    this.members = image.members;
    this.removed = image.removed ?? [];
    this.change = image.change ?? null;
    this.completedSeq = image.completedSeq ?? 0;
    this.buckets.clear();
    // Version 1 predates membership changes: the placement then was still the initial one. Before
    // version 3 the replica count could not change: it is the one the bucket was created with.
    for (const b of image.buckets) {
      this.buckets.set(b.bucket, { ...b, replicas: b.replicas ?? b.createConfig.replicas, initial: b.initial ?? b.placement, left: b.left ?? [] });
    }
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
