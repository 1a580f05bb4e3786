/**
 * CairnNode: one cluster member. It hosts the meta group (on every node) and one group per bucket
 * it is a replica of, serves client requests from any node (forwarding writes and leader reads to
 * the right leader over the peer transport), and fans watch events out to its own clients.
 */
import { KvStateMachine, normalizeConfig, configUpdateAllowed, validateBucketName, validateKey, validateFilter } from "../kv/index.ts";
import type { ApplyOutcome, BucketConfig, KvCommand, KvEnvelope, KvRecord, KvResult } from "../kv/types.ts";
import type { Entry, Snapshot, SoftState } from "../raft/types.ts";
import { CairnError, type ErrorCode } from "../shared/errors.ts";
import type { BucketConfigInput, Request, WireBucketStatus, WireClientStats, WireClusterStatus, WireEntry } from "../shared/protocol.ts";
import { PROTOCOL_LIMITS } from "../shared/protocol.ts";
import type { NodeLimits, RaftTiming } from "./config.ts";
import { decodeLogPayload, encodeLogPayload } from "./codec.ts";
import type { LogStore } from "./log-store.ts";
import type { Logger } from "./logger.ts";
import { sleep, withDeadline } from "./deadline.ts";
import { Membership, type MembershipRequest } from "./membership.ts";
import { bootstrapsAt, fnv1a, MetaStateMachine, type MetaBucket, type MetaEnvelope, type MetaResult } from "./meta.ts";
import { RaftHost, type GroupStateMachine } from "./raft-host.ts";
import type { PeerTransport } from "./transport.ts";
import { toWire, Watcher, type WatchSink } from "./watch.ts";
import { WatchProxy, type WatchStartRequest } from "./watch-proxy.ts";

export const META_GROUP = "meta";

/** A request without its connection-scoped id: what the node routes and forwards. */
export type NodeRequest = Request extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

export interface CairnNodeOptions {
  readonly nodeId: string;
  /** Meta group voters (every node of the cluster). */
  readonly members: readonly string[];
  readonly store: LogStore;
  readonly transport: PeerTransport;
  readonly timing: RaftTiming;
  readonly limits: NodeLimits;
  readonly logger: Logger;
  readonly requestTimeoutMs: number;
  readonly clock?: () => number;
  /** Client URL of every node (returned in hello so clients learn the cluster). */
  readonly clientUrls: Readonly<Record<string, string>>;
}

interface BucketReplica {
  readonly meta: MetaBucket;
  readonly sm: KvStateMachine;
  readonly watchers: Set<Watcher>;
  expireInFlight: boolean;
}

interface ForwardBody {
  readonly forward: NodeRequest;
  readonly hops: number;
  readonly deadline: number;
}

const RETRYABLE: ReadonlySet<ErrorCode> = new Set(["NOT_LEADER", "PROPOSAL_DROPPED", "UNAVAILABLE"]);
const FORWARD_HOPS_MAX = 3;

export class CairnNode {
  readonly host: RaftHost;
  readonly meta: MetaStateMachine;
  /** Watches on buckets this node holds no replica of, relayed from a replica (watch-proxy.ts). */
  readonly watchProxy: WatchProxy;
  /** Membership changes: cluster.removeNode/addNode and the reconciliation of every group's configuration. */
  readonly membership: Membership;
  private readonly replicas = new Map<string, BucketReplica>();
  private requestSeq = 0;
  private lastStamp = 0;
  private watchSeq = 0;
  private readonly requestIdPrefix: string;
  private closing = false;
  /** Set by the client server: what it holds for clients (reported per node by cluster.status). */
  clientStats: (() => WireClientStats) | null = null;

  constructor(readonly options: CairnNodeOptions) {
    this.meta = new MetaStateMachine(options.members);
    this.host = new RaftHost({
      nodeId: options.nodeId,
      store: options.store,
      transport: options.transport,
      timing: options.timing,
      limits: options.limits,
      logger: options.logger,
    });
    this.membership = new Membership({
      nodeId: options.nodeId,
      configNodes: options.members,
      meta: this.meta,
      host: this.host,
      store: options.store,
      transport: options.transport,
      timing: options.timing,
      logger: options.logger,
      hostedReplicas: () => [...this.replicas.values()].map((r) => ({ group: r.meta.group, bucket: r.meta.bucket })),
      replicaBucket: (group) => this.replicas.get(group)?.meta.bucket,
      openBucket: (bucket) => this.openBucket(bucket),
      releaseReplica: (group, deleteData) => this.releaseReplica(group, deleteData),
      forward: (to, request, hops, deadline) => this.forward(to, request as NodeRequest, hops, deadline),
      metaReadBarrier: (deadline) => this.metaReadBarrier(deadline),
      stamp: () => this.stamp(),
      nextRequestId: () => this.nextRequestId(),
      isClosing: () => this.closing,
    });
    this.host.onTick = () => {
      this.checkExpiry();
      this.membership.tick();
    };
    this.requestIdPrefix = `${options.nodeId}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 8)}:`;
    this.watchProxy = new WatchProxy({
      nodeId: options.nodeId,
      transport: options.transport,
      logger: options.logger,
      requestTimeoutMs: options.requestTimeoutMs,
      streamBufferBytesMax: options.limits.watchBufferBytesMax,
      replicasOf: (bucket) => {
        const meta = this.meta.get(bucket);
        return meta ? { placement: meta.placement, local: this.replicas.has(meta.group) } : null;
      },
      openLocal: (request, sink, beforeStart) => this.startWatch(request, sink, beforeStart, { localOnly: true }),
    });
    options.transport.onRequest(async (from, body) => (WatchProxy.isPeerBody(body) ? this.watchProxy.onPeerRequest(from, body) : this.onForward(body)));
  }

  get id(): string {
    return this.options.nodeId;
  }

  async start(): Promise<void> {
    const metaSm: GroupStateMachine = {
      apply: (entry) => this.applyMeta(entry),
      restore: (snapshot) => this.restoreMeta(snapshot),
      snapshot: () => this.meta.snapshot(),
    };
    const members = [...this.options.members].sort();
    await this.host.openGroup(META_GROUP, metaSm, { voters: members, campaign: members[0] === this.id });
    // Bucket groups this node hosts are (re)opened as the meta state is rebuilt (restore/apply).
    this.host.start();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.watchProxy.close();
    for (const r of this.replicas.values()) {
      for (const w of [...r.watchers]) w.end({ code: "UNAVAILABLE", message: "node shutting down" });
    }
    await this.host.close();
  }

  // ---- meta group -------------------------------------------------------------------------------

  private applyMeta(entry: Entry): MetaResult | undefined {
    const payload = decodeLogPayload(entry.data);
    if (!("meta" in payload)) return undefined;
    const envelope = payload.meta as MetaEnvelope;
    const result = this.meta.apply(entry.index, envelope);
    if (result.ok && result.bucket) {
      if (envelope.command.type === "bucketCreate" && !result.existed) this.openBucket(result.bucket);
      if (envelope.command.type === "bucketDelete") this.dropBucket(result.bucket);
    }
    if (result.ok && envelope.command.type !== "bucketCreate" && envelope.command.type !== "bucketDelete") this.membership.afterMetaChange();
    return result;
  }

  private restoreMeta(snapshot: Snapshot): void {
    this.meta.restore(snapshot.data);
    const wanted = new Set(this.meta.list().map((b) => b.group));
    for (const r of [...this.replicas.values()]) if (!wanted.has(r.meta.group)) this.dropBucket(r.meta);
    for (const b of this.meta.list()) this.openBucket(b);
    this.membership.afterMetaChange();
  }

  private openBucket(bucket: MetaBucket): void {
    if (!bucket.placement.includes(this.id) || this.replicas.has(bucket.group)) return;
    if (!this.membership.mayOpen(bucket.group)) return; // removed, or its old data is still being deleted
    const sm = new KvStateMachine();
    const replica: BucketReplica = { meta: bucket, sm, watchers: new Set(), expireInFlight: false };
    // Bootstrap: every replica starts from the same image, the bucket as created, applied "at"
    // index 1. Index 1 of a fresh group is always its first leader's no-op, which never reaches the
    // state machine, so the group's real entries (index >= 2) follow without a gap.
    const created = sm.apply(1, { now: bucket.createdAt, command: { type: "bucketCreate", bucket: bucket.bucket, config: bucket.createConfig } });
    if (!created.result.ok) this.options.logger.error("bucket bootstrap failed", { bucket: bucket.bucket, result: created.result });
    this.replicas.set(bucket.group, replica);
    const groupSm: GroupStateMachine = {
      apply: (entry) => this.applyKv(replica, entry),
      // (An index-0 snapshot without data carries membership only: the bootstrap image stays.)
      restore: (snapshot) => {
        if (snapshot.data.length === 0) return;
        sm.restore(snapshot.data);
        // The events between the replica's old state and the snapshot are never applied here: end the
        // watchers with a retryable error, so each client resumes from its last revision on the new state
        // (its initial part comes from the retained history) instead of missing them.
        for (const w of [...replica.watchers]) {
          w.end({ code: "UNAVAILABLE", message: "replica restored from a snapshot: resume the watch", data: { resumeFromRevision: w.lastRevision + 1 } });
        }
      },
      // (A snapshot replaces the bootstrap image entirely.)
      snapshot: () => sm.snapshot(),
      onSoftState: (s: SoftState) => {
        if (s.role !== "leader") replica.expireInFlight = false;
      },
    };
    // Index 0 holds the initial placement; a replica added later joins blank and catches up from the
    // leader's snapshot. One this node left (and deleted) also runs recovering until caught up (membership.ts).
    void this.membership
      .leftGroup(bucket.group)
      .then((left) => {
        const join = left || !bootstrapsAt(bucket, this.id);
        if (this.replicas.get(bucket.group) !== replica) return; // released meanwhile
        return this.host.openGroup(bucket.group, groupSm, { voters: bucket.initial, campaign: !join && bucket.initial[0] === this.id, join, recovering: left });
      })
      .catch((error) => this.options.logger.error("cannot open bucket group", { group: bucket.group, error: String(error) }));
  }

  private dropBucket(bucket: MetaBucket): void {
    const replica = this.replicas.get(bucket.group);
    if (!replica) return;
    this.replicas.delete(bucket.group);
    for (const w of [...replica.watchers]) w.end({ code: "BUCKET_NOT_FOUND", message: "bucket not found" });
    void this.host.closeGroup(bucket.group, { deleteData: true });
  }

  /** This node stops holding a replica (membership): its watchers end, its group closes. */
  private releaseReplica(group: string, deleteData: boolean): Promise<void> {
    const replica = this.replicas.get(group);
    if (replica) {
      this.replicas.delete(group);
      const message = `node ${this.id} no longer holds a replica of bucket ${replica.meta.bucket}`;
      for (const w of [...replica.watchers]) w.end({ code: "UNAVAILABLE", message });
    }
    return this.host.closeGroup(group, { deleteData });
  }

  private applyKv(replica: BucketReplica, entry: Entry): KvResult | undefined {
    const payload = decodeLogPayload(entry.data);
    if (!("kv" in payload)) return undefined;
    const outcome: ApplyOutcome = replica.sm.apply(entry.index, payload.kv as KvEnvelope);
    if (outcome.events.length > 0) for (const w of replica.watchers) w.deliver(outcome.events);
    if ((payload.kv as KvEnvelope).command.type === "expire") replica.expireInFlight = false;
    return outcome.result;
  }

  /** The leader stamps each proposal with its clock, kept monotonic (the state machine clamps too). */
  private stamp(): number {
    const now = (this.options.clock ?? Date.now)();
    this.lastStamp = Math.max(this.lastStamp, now);
    return this.lastStamp;
  }

  private nextRequestId(): string {
    return this.requestIdPrefix + (++this.requestSeq).toString(36);
  }

  /** TTL expiry: a bucket leader proposes `expire` when its state machine says something is due. */
  private checkExpiry(): void {
    if (this.closing) return;
    const now = (this.options.clock ?? Date.now)();
    for (const replica of this.replicas.values()) {
      if (replica.expireInFlight) continue;
      const group = this.host.group(replica.meta.group);
      if (!group?.isLeader()) continue;
      const due = replica.sm.nextExpiryAt(replica.meta.bucket);
      if (due === null || due > now) continue;
      replica.expireInFlight = true;
      const envelope: KvEnvelope = { now: this.stamp(), command: { type: "expire", bucket: replica.meta.bucket } };
      this.host.propose(replica.meta.group, encodeLogPayload({ kv: envelope })).catch(() => {
        replica.expireInFlight = false;
      });
    }
  }

  // ---- request routing --------------------------------------------------------------------------

  /** Entry point for client requests (and forwarded ones). Throws CairnError. */
  async handle(request: NodeRequest, options: { hops?: number; deadline?: number; sink?: WatchSink } = {}): Promise<unknown> {
    const hops = options.hops ?? 0;
    const deadline = options.deadline ?? Date.now() + this.options.requestTimeoutMs;
    // A removed node keeps its clients working by forwarding to a member (docs/membership.md).
    if (this.membership.forwardsWhenRemoved(request.op)) return this.membership.forwardToMember(request, hops, deadline);
    switch (request.op) {
      case "hello":
        return { node: this.id, version: 1, servers: Object.values(this.options.clientUrls) };
      case "cluster.status":
        return this.clusterStatus(deadline);
      case "bucket.create":
        return this.bucketCreate(request.bucket, request.config, request.requestId, hops, deadline);
      case "bucket.update":
        return this.bucketUpdate(request.bucket, request.config, request.requestId, hops, deadline, (request as { wait?: unknown }).wait !== false);
      case "bucket.delete": {
        validateBucketName(request.bucket);
        return this.metaWrite({ type: "bucketDelete", bucket: request.bucket }, request.requestId, request, hops, deadline, async () => ({
          deleted: true,
        }));
      }
      case "bucket.status":
        validateBucketName(request.bucket);
        return this.bucketStatus(request.bucket, request, hops, deadline);
      case "bucket.list":
        return this.bucketList(hops, deadline);
      case "kv.put":
      case "kv.create":
      case "kv.update":
      case "kv.delete":
      case "kv.purge":
      case "kv.purgeDeletes":
      case "kv.purgeBucket":
        return this.kvWrite(request, hops, deadline);
      case "kv.get":
      case "kv.keys":
      case "kv.history":
        return this.kvRead(request, hops, deadline);
      case "ping":
        return { pong: true };
      case "cluster.removeNode":
      case "cluster.addNode":
        return this.membership.request(request as MembershipRequest, hops, deadline);
      case "watch.start":
      case "watch.stop":
        throw new CairnError("INVALID_REQUEST", "watch requests are handled by the session");
    }
  }

  private async onForward(body: unknown): Promise<unknown> {
    if (body && typeof body === "object" && (body as { localStatus?: unknown }).localStatus === true) return this.localGroupsStatus();
    if (Membership.isPeerBody(body)) return this.membership.onPeerRequest(body);
    const b = body as ForwardBody;
    if (!b || typeof b !== "object" || typeof b.forward !== "object" || typeof b.hops !== "number" || typeof b.deadline !== "number") {
      throw new CairnError("INVALID_REQUEST", "malformed forwarded request");
    }
    if (b.hops > FORWARD_HOPS_MAX) throw new CairnError("UNAVAILABLE", "too many forwarding hops");
    return this.handle(b.forward, { hops: b.hops, deadline: Math.min(b.deadline, Date.now() + this.options.requestTimeoutMs) });
  }

  /**
   * Forwards a request to a peer. One attempt waits at most a few election timeouts (a stale
   * leader behind a partition must not eat the whole deadline); a timed-out attempt is reported as
   * retryable PROPOSAL_DROPPED-like UNAVAILABLE only when the caller's deadline still leaves time, and the
   * retry carries the same request id, so a write that did land is answered from the dedupe window.
   */
  private async forward(to: string, request: NodeRequest, hops: number, deadline: number): Promise<unknown> {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new CairnError("TIMEOUT");
    const electionMs = this.options.timing.tickMs * this.options.timing.electionTicks;
    const attemptMs = Math.min(remaining, Math.max(1000, 4 * electionMs));
    const body: ForwardBody = { forward: request, hops: hops + 1, deadline: Math.min(deadline, Date.now() + attemptMs) };
    try {
      return await this.options.transport.request(to, body, attemptMs);
    } catch (error) {
      if (error instanceof CairnError && error.code === "TIMEOUT" && Date.now() < deadline - 10) {
        throw new CairnError("UNAVAILABLE", `no answer from ${to} within ${attemptMs} ms; retrying`, {}, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Runs `local` when this node leads `groupId`, else forwards to the leader it knows (or a member
   * of `placement` when it hosts no replica), retrying retryable errors with backoff until the
   * deadline. `write` decides the deadline error: TIMEOUT (outcome unknown) or UNAVAILABLE.
   */
  private async viaLeader<T>(
    groupId: string,
    placement: readonly string[],
    request: NodeRequest,
    hops: number,
    deadline: number,
    write: boolean,
    local: () => Promise<T>,
  ): Promise<T | unknown> {
    let attempt = 0;
    let lastError: unknown = null;
    for (;;) {
      if (this.closing) throw new CairnError("UNAVAILABLE", "node shutting down");
      const group = this.host.group(groupId);
      try {
        if (group?.isLeader()) return await this.withDeadline(local(), deadline, write);
        const target = group ? group.leader : placement[(attempt + fnv1a(this.id)) % placement.length];
        if (target && target !== this.id && hops < FORWARD_HOPS_MAX) {
          return await this.forward(target, request, hops, deadline);
        }
      } catch (error) {
        if (!(error instanceof CairnError) || !RETRYABLE.has(error.code)) throw error;
        lastError = error;
      }
      attempt++;
      const wait = this.retryDelayMs(attempt);
      if (Date.now() + wait >= deadline) {
        if (write) throw new CairnError("TIMEOUT", "timeout: the outcome of the write is unknown", {}, { cause: lastError });
        throw new CairnError("UNAVAILABLE", `no leader for ${groupId} reachable before the deadline`, {}, { cause: lastError });
      }
      await sleep(wait);
    }
  }

  /** Backoff between attempts to reach a leader: from 2 ticks, doubling, at most 500 ms. */
  private retryDelayMs(attempt: number): number {
    return Math.min(this.options.timing.tickMs * 2 ** Math.min(attempt, 4), 500);
  }

  private withDeadline<T>(promise: Promise<T>, deadline: number, write: boolean): Promise<T> {
    return withDeadline(promise, deadline, () =>
      write ? new CairnError("TIMEOUT", "timeout: the outcome of the write is unknown") : new CairnError("UNAVAILABLE", "timeout"),
    );
  }


  /**
   * Proposes a meta command on the meta leader and runs `finish` there with its result. When this
   * node is not the leader, the whole client request is forwarded and the leader's final answer
   * returned, so both paths yield the same client-shaped result.
   */
  private metaWrite(
    command: MetaEnvelope["command"],
    requestId: string | undefined,
    request: NodeRequest,
    hops: number,
    deadline: number,
    finish: (result: MetaResult) => Promise<unknown>,
  ): Promise<unknown> {
    const id = requestId ?? this.nextRequestId();
    const forwarded = { ...request, requestId: id } as NodeRequest;
    return this.viaLeader(META_GROUP, this.options.members, forwarded, hops, deadline, true, async () => {
      const envelope: MetaEnvelope = { now: this.stamp(), requestId: id, command };
      const result = (await this.host.propose(META_GROUP, encodeLogPayload({ meta: envelope }))) as MetaResult;
      if (!result.ok) throw new CairnError(result.code, result.message);
      return finish(result);
    });
  }

  private bucketOrThrow(bucket: string): MetaBucket {
    const b = this.meta.get(bucket);
    if (!b) throw new CairnError("BUCKET_NOT_FOUND", "bucket not found");
    return b;
  }

  private async bucketCreate(name: string, input: BucketConfigInput, requestId: string | undefined, hops: number, deadline: number) {
    validateBucketName(name);
    const config = normalizeConfig(input as Partial<BucketConfig>, this.options.members.length);
    const request: NodeRequest = { op: "bucket.create", bucket: name, config: input, ...(requestId ? { requestId } : {}) };
    return this.metaWrite({ type: "bucketCreate", bucket: name, config }, requestId, request, hops, deadline, async (result) => {
      const status = (await this.bucketStatus(name, { op: "bucket.status", bucket: name }, hops, deadline)) as WireBucketStatus;
      if (result.ok && result.existed && !sameConfig(statusConfig(status), config)) {
        throw new CairnError("BUCKET_EXISTS", "bucket name already in use");
      }
      return status;
    });
  }

  /**
   * bucket.update: merges `input` onto the current configuration. A change of `replicas` first goes
   * through the meta group (the bucket's configured count and new placement, a membership change:
   * refused with UNAVAILABLE while another is in progress), then the whole configuration through the
   * bucket's group; the answer comes once the group runs on exactly its new placement (as
   * cluster.removeNode, docs/membership.md), so the status returned shows it. A retry (same request
   * id) of an update whose replica change already started waits for it. `wait` false: the internal
   * hop to the bucket leader, which does not wait.
   */
  private async bucketUpdate(name: string, input: BucketConfigInput, requestId: string | undefined, hops: number, deadline: number, wait = true) {
    validateBucketName(name);
    await this.metaReadBarrier(deadline);
    this.bucketOrThrow(name);
    const status = (await this.bucketStatus(name, { op: "bucket.status", bucket: name }, hops, deadline)) as WireBucketStatus;
    const current = statusConfig(status);
    // (Bounds replicas by the nodes of the cluster config; by the current members below.)
    const next = normalizeConfig({ ...current, ...(input as Partial<BucketConfig>) }, this.options.members.length);
    configUpdateAllowed(current, next);
    const id = requestId ?? this.nextRequestId();
    let seq = 0;
    if (next.replicas !== current.replicas) {
      const members = this.meta.membership().members.length;
      if (next.replicas > members) throw new CairnError("INVALID_CONFIG", `replicas ${next.replicas} exceeds the cluster size ${members}`);
      seq = await this.membership.changeReplicas(name, next.replicas, preferredReplicas(status), id, deadline);
    } else if (wait && (input as Partial<BucketConfig>).replicas !== undefined) {
      seq = this.membership.pendingReplicasChange(name, next.replicas);
    }
    const request = { op: "bucket.update", bucket: name, config: next, requestId: id, wait: false } as NodeRequest;
    await this.kvWrite(request, hops, deadline, { type: "bucketUpdate", bucket: name, config: next });
    if (seq > 0 && wait) await this.membership.waitDone(seq, deadline);
    return this.bucketStatus(name, { op: "bucket.status", bucket: name }, hops, deadline);
  }

  /** Linearizable view of the meta state: a read barrier through the meta group (every node hosts it). */
  private metaReadBarrier(deadline: number): Promise<void> {
    return this.readBarrier(META_GROUP, deadline);
  }

  private async readBarrier(groupId: string, deadline: number): Promise<void> {
    let attempt = 0;
    for (;;) {
      const perTry = Math.min(deadline - Date.now(), this.options.timing.tickMs * this.options.timing.electionTicks * 2);
      if (perTry <= 0) throw new CairnError("UNAVAILABLE", `no leader for ${groupId} confirmed a read before the deadline`);
      try {
        await this.withDeadline(this.host.readBarrier(groupId), Date.now() + perTry, false);
        return;
      } catch (error) {
        if (!(error instanceof CairnError) || !RETRYABLE.has(error.code)) throw error;
        attempt++;
        await sleep(this.retryDelayMs(attempt));
      }
    }
  }

  private async bucketList(hops: number, deadline: number): Promise<WireBucketStatus[]> {
    await this.metaReadBarrier(deadline);
    const out: WireBucketStatus[] = [];
    for (const b of this.meta.list()) {
      try {
        out.push((await this.bucketStatus(b.bucket, { op: "bucket.status", bucket: b.bucket }, hops, deadline)) as WireBucketStatus);
      } catch (error) {
        if (error instanceof CairnError && error.code === "BUCKET_NOT_FOUND") continue;
        throw error;
      }
    }
    return out;
  }

  /** Status comes from the bucket leader (it knows each replica's lag). */
  private async bucketStatus(name: string, request: NodeRequest, hops: number, deadline: number): Promise<unknown> {
    let meta = this.meta.get(name);
    if (!meta) {
      await this.metaReadBarrier(deadline);
      meta = this.meta.get(name);
    }
    if (!meta) throw new CairnError("BUCKET_NOT_FOUND", "bucket not found");
    const m = meta;
    return this.viaLeader(m.group, m.placement, request, hops, deadline, false, async () => {
      await this.readBarrier(m.group, deadline);
      return this.localStatus(m);
    });
  }

  private localStatus(meta: MetaBucket): WireBucketStatus {
    const replica = this.replicas.get(meta.group);
    if (!replica) throw new CairnError("UNAVAILABLE", "no local replica");
    const s = replica.sm.status(meta.bucket);
    const group = this.host.group(meta.group);
    const raft = group?.core.status();
    const voters = raft?.confState.voters ?? [];
    const replicasInfo = meta.placement.map((node) => {
      const p = raft?.progress?.[node];
      const lag = p ? Math.max(0, (raft?.lastIndex ?? 0) - p.match) : node === this.id ? 0 : -1;
      return { node, current: lag === 0, lag, leader: node === raft?.leader, voter: voters.includes(node) };
    });
    return {
      bucket: meta.bucket,
      values: s.values,
      bytes: s.bytes,
      revision: s.revision,
      history: s.config.history,
      ttlMs: s.config.ttlMs,
      maxBytes: s.config.maxBytes,
      maxValueSize: s.config.maxValueSize,
      // The configured count is the meta state's (a bucket.update records it there first).
      replicas: meta.replicas,
      storage: s.config.storage,
      markerTtlMs: s.config.markerTtlMs,
      description: s.config.description,
      metadata: { ...s.config.metadata },
      compression: s.config.compression,
      leader: raft?.leader ?? null,
      replicasRunning: voters.length,
      replicasInfo,
    };
  }

  private toCommand(request: NodeRequest): KvCommand {
    switch (request.op) {
      case "kv.put":
        return { type: "put", bucket: request.bucket, key: validateKey(request.key), value: this.checkValue(request.value), ...ttl(request.ttlMs) };
      case "kv.create":
        return { type: "create", bucket: request.bucket, key: validateKey(request.key), value: this.checkValue(request.value), ...ttl(request.ttlMs) };
      case "kv.update":
        return {
          type: "update",
          bucket: request.bucket,
          key: validateKey(request.key),
          value: this.checkValue(request.value),
          revision: checkRevision(request.revision),
          ...ttl(request.ttlMs),
        };
      case "kv.delete":
        return { type: "delete", bucket: request.bucket, key: validateKey(request.key), ...(request.revision !== undefined ? { revision: checkRevision(request.revision) } : {}) };
      case "kv.purge":
        return {
          type: "purge",
          bucket: request.bucket,
          key: validateKey(request.key),
          ...(request.revision !== undefined ? { revision: checkRevision(request.revision) } : {}),
          ...ttl(request.ttlMs),
        };
      case "kv.purgeDeletes":
        if (typeof request.olderThanMs !== "number" || !Number.isFinite(request.olderThanMs)) {
          throw new CairnError("INVALID_OPTION", "olderThanMs must be a number");
        }
        return { type: "purgeDeletes", bucket: request.bucket, olderThanMs: request.olderThanMs };
      case "kv.purgeBucket":
        return { type: "purgeBucket", bucket: request.bucket };
      default:
        throw new CairnError("INVALID_REQUEST", `not a write: ${request.op}`);
    }
  }

  private checkValue(value: unknown): Uint8Array {
    if (!(value instanceof Uint8Array)) throw new CairnError("INVALID_REQUEST", "value must be bytes");
    if (value.length > this.options.limits.valueBytesMax) throw new CairnError("VALUE_TOO_LARGE", "message size exceeds maximum allowed");
    return value;
  }

  private async kvWrite(request: NodeRequest, hops: number, deadline: number, commandOverride?: KvCommand): Promise<unknown> {
    const bucketName = (request as { bucket: string }).bucket;
    validateBucketName(bucketName);
    const command = commandOverride ?? this.toCommand(request);
    let meta = this.meta.get(bucketName);
    if (!meta) {
      await this.metaReadBarrier(deadline);
      meta = this.bucketOrThrow(bucketName);
    }
    const requestId = (request as { requestId?: string }).requestId ?? this.nextRequestId();
    const forwarded = { ...request, requestId } as NodeRequest;
    const m = meta;
    const result = (await this.viaLeader(m.group, m.placement, forwarded, hops, deadline, true, async () => {
      const envelope: KvEnvelope = { now: this.stamp(), requestId, command };
      return this.host.propose(m.group, encodeLogPayload({ kv: envelope }));
    })) as KvResult | { revision?: number; removed?: number };
    // A forwarded request comes back already shaped as the client result.
    if (!("ok" in result)) return result;
    if (!result.ok) throw new CairnError(result.code, result.message, result.revision !== undefined ? { revision: result.revision } : {});
    switch (command.type) {
      case "purgeDeletes":
        return { removed: "count" in result ? result.count : 0 };
      case "purgeBucket":
        return { purged: true };
      case "bucketUpdate":
        return { updated: true };
      default:
        return { revision: "revision" in result ? result.revision : 0 };
    }
  }

  private async kvRead(request: NodeRequest & { bucket: string; consistency?: "linearizable" | "stale" }, hops: number, deadline: number): Promise<unknown> {
    validateBucketName(request.bucket);
    let meta = this.meta.get(request.bucket);
    if (!meta && request.consistency !== "stale") {
      await this.metaReadBarrier(deadline);
      meta = this.meta.get(request.bucket);
    }
    if (!meta) throw new CairnError("BUCKET_NOT_FOUND", "bucket not found");
    // A replica this node is leaving (placement moved on, membership.ts) no longer follows the group.
    const replica = meta.placement.includes(this.id) ? this.replicas.get(meta.group) : undefined;
    if (!replica) {
      // No local replica: ask a replica (it serves linearizably through its own read barrier).
      if (hops >= FORWARD_HOPS_MAX) throw new CairnError("UNAVAILABLE", "too many forwarding hops");
      let lastError: unknown = null;
      for (let i = 0; i < meta.placement.length; i++) {
        const target = meta.placement[(i + fnv1a(this.id)) % meta.placement.length]!;
        try {
          return await this.forward(target, request, hops, deadline);
        } catch (error) {
          if (!(error instanceof CairnError) || !RETRYABLE.has(error.code)) throw error;
          lastError = error;
        }
      }
      throw lastError instanceof CairnError ? lastError : new CairnError("UNAVAILABLE");
    }
    if (request.consistency !== "stale") await this.readBarrier(meta.group, deadline);
    return this.localRead(replica, request);
  }

  private localRead(replica: BucketReplica, request: NodeRequest): unknown {
    const bucket = replica.meta.bucket;
    const sm = replica.sm;
    switch (request.op) {
      case "kv.get": {
        validateKey(request.key);
        const options: { revision?: number; includeDeleted?: boolean } = {};
        if (request.revision !== undefined) options.revision = checkRevision(request.revision);
        if (request.includeDeleted !== undefined) options.includeDeleted = request.includeDeleted === true;
        const record = sm.get(bucket, request.key, options);
        return { entry: record ? toWire(bucket, record, 0) : null };
      }
      case "kv.keys": {
        const filters = checkFilters(request.filters);
        const page = sm.keys(bucket, filters, pageOptions(request.afterRevision, request.limit));
        return page;
      }
      case "kv.history": {
        const filters = checkFilters(request.filters);
        const page = sm.history(bucket, filters, pageOptions(request.afterRevision, request.limit));
        const n = page.records.length;
        return { entries: page.records.map((r, i) => toWire(bucket, r, page.done ? n - i - 1 : n - i)), lastRevision: page.lastRevision, done: page.done };
      }
      default:
        throw new CairnError("INVALID_REQUEST", `not a read: ${request.op}`);
    }
  }

  // ---- watches ----------------------------------------------------------------------------------

  /**
   * Starts a watch served from this node's replica, or relayed from a replica on another node when
   * this one holds none (watch-proxy.ts; `localOnly`: throw UNAVAILABLE instead, for the streams this
   * node serves to proxies). Returns the watcher (the session keeps it to stop it).
   */
  async startWatch(
    request: Extract<NodeRequest, { op: "watch.start" }>,
    sink: WatchSink,
    beforeStart: (watchId: number, revision: number) => void,
    options: { localOnly?: boolean } = {},
  ): Promise<Watcher> {
    validateBucketName(request.bucket);
    const filters = checkFilters(request.filters.length === 0 ? [">"] : request.filters);
    if (!["last", "history", "updates"].includes(request.include)) throw new CairnError("INVALID_OPTION", "include must be last, history or updates");
    let meta = this.meta.get(request.bucket);
    if (!meta) {
      await this.metaReadBarrier(Date.now() + this.options.requestTimeoutMs);
      meta = this.bucketOrThrow(request.bucket);
    }
    const replica = this.replicas.get(meta.group);
    if (!replica) {
      if (options.localOnly === true) {
        throw new CairnError("UNAVAILABLE", `node ${this.id} holds no replica of bucket ${meta.bucket}; watch from one of: ${meta.placement.join(", ")}`);
      }
      const forward: WatchStartRequest = {
        op: "watch.start",
        bucket: meta.bucket,
        filters,
        include: request.include,
        ignoreDeletes: request.ignoreDeletes === true,
        metaOnly: request.metaOnly === true,
        ...(request.resumeFromRevision !== undefined ? { resumeFromRevision: checkRevision(request.resumeFromRevision) } : {}),
      };
      const spec = { bucket: meta.bucket, filters, ignoreDeletes: forward.ignoreDeletes, metaOnly: forward.metaOnly };
      return this.watchProxy.start(++this.watchSeq, forward, spec, meta.placement, sink, beforeStart);
    }
    const watcher = new Watcher(
      ++this.watchSeq,
      { bucket: meta.bucket, filters, ignoreDeletes: request.ignoreDeletes === true, metaOnly: request.metaOnly === true },
      sink,
      (w) => replica.watchers.delete(w),
    );
    if (replica.watchers.size >= 100_000) throw new CairnError("UNAVAILABLE", "too many watchers on this bucket");
    const startOptions =
      request.resumeFromRevision !== undefined
        ? { include: request.include, resumeFromRevision: checkRevision(request.resumeFromRevision) }
        : { include: request.include };
    // Synchronous from here: the initial part and registration happen between two applies.
    const initial = replica.sm.watchInitial(meta.bucket, filters, startOptions);
    const status = replica.sm.status(meta.bucket);
    replica.watchers.add(watcher);
    beforeStart(watcher.id, initial.revision);
    watcher.start(initial.records, initial.revision, request.resumeFromRevision, status.firstRevision || status.revision + 1);
    return watcher;
  }

  /** This node's view of each group it hosts (one row of `cairn cluster status` per group and node). */
  localGroupsStatus(): {
    node: string;
    groups: { group: string; bucket: string | null; role: string; leader: string | null; term: number; commit: number; applied: number; lastIndex: number }[];
    clients?: WireClientStats;
  } {
    const groups = [];
    for (const g of this.host.allGroups()) {
      const s = g.core.status();
      const bucket = this.replicas.get(g.id)?.meta.bucket ?? null;
      groups.push({ group: g.id, bucket, role: s.role, leader: s.leader, term: s.term, commit: s.commit, applied: g.applied, lastIndex: s.lastIndex });
    }
    return { node: this.id, groups, ...(this.clientStats ? { clients: this.clientStats() } : {}) };
  }

  /** Cluster-wide view for `cairn cluster status`: every reachable node reports its groups. */
  async clusterStatus(deadline: number): Promise<WireClusterStatus> {
    const views = [this.localGroupsStatus()];
    const reachable = new Set([this.id]);
    const timeoutMs = Math.max(1, Math.min(2000, deadline - Date.now()));
    await Promise.all(
      this.options.members
        .filter((m) => m !== this.id)
        .map(async (peer) => {
          try {
            views.push((await this.options.transport.request(peer, { localStatus: true }, timeoutMs)) as ReturnType<CairnNode["localGroupsStatus"]>);
            reachable.add(peer);
          } catch {
            /* unreachable: reported as such */
          }
        }),
    );
    const byGroup = new Map<string, WireClusterStatus["groups"][number]>();
    for (const view of views) {
      for (const g of view.groups) {
        const name = g.bucket ?? g.group;
        let row = byGroup.get(g.group);
        if (!row) {
          row = { group: name, leader: null, term: 0, members: [] };
          byGroup.set(g.group, row);
        }
        if (g.term >= row.term) {
          row.term = g.term;
          if (g.leader) row.leader = g.leader;
        }
        row.members.push({ node: view.node, role: g.role, commit: g.commit, applied: g.applied, lag: 0 });
      }
    }
    for (const row of byGroup.values()) {
      const top = Math.max(...row.members.map((m) => m.applied));
      for (const m of row.members) m.lag = top - m.applied;
      row.members.sort((a, b) => (a.node < b.node ? -1 : 1));
    }
    const { membership } = await this.membership.statusFields(deadline);
    return {
      node: this.id,
      nodes: this.options.members.map((id) => {
        const clients = views.find((v) => v.node === id)?.clients;
        const member = !membership.removed.includes(id);
        return { id, url: this.options.clientUrls[id] ?? "", reachable: reachable.has(id), ...(clients ? { clients } : {}), member };
      }),
      membership,
      groups: [...byGroup.values()].sort((a, b) => (a.group === "meta" ? -1 : b.group === "meta" ? 1 : a.group < b.group ? -1 : 1)),
    };
  }
}

// ---- helpers ---------------------------------------------------------------------------------------

function ttl(ttlMs: number | undefined): { ttlMs?: number } {
  if (ttlMs === undefined) return {};
  if (typeof ttlMs !== "number" || !Number.isInteger(ttlMs) || ttlMs <= 0) throw new CairnError("INVALID_OPTION", "ttlMs must be a positive integer");
  return { ttlMs };
}

function checkRevision(revision: unknown): number {
  if (typeof revision !== "number" || !Number.isSafeInteger(revision) || revision < 0) {
    throw new CairnError("INVALID_OPTION", "revision must be a non-negative integer");
  }
  return revision;
}

function checkFilters(filters: unknown): string[] {
  if (!Array.isArray(filters) || filters.length > 256) throw new CairnError("INVALID_OPTION", "filters must be an array of at most 256 filters");
  return filters.length === 0 ? [">"] : filters.map((f) => validateFilter(f));
}

function pageOptions(afterRevision: unknown, limit: unknown): { afterRevision?: number; limit: number } {
  const out: { afterRevision?: number; limit: number } = { limit: PROTOCOL_LIMITS.pageEntriesDefault };
  if (afterRevision !== undefined) out.afterRevision = checkRevision(afterRevision);
  if (limit !== undefined) {
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1) throw new CairnError("INVALID_OPTION", "limit must be a positive integer");
    out.limit = Math.min(limit, PROTOCOL_LIMITS.pageEntriesMax);
  }
  return out;
}

/** The replicas a shrink keeps first: the leader, then the others by how far behind they are (unknown last). */
function preferredReplicas(s: WireBucketStatus): string[] {
  const behind = (lag: number) => (lag < 0 ? Number.MAX_SAFE_INTEGER : lag);
  const others = s.replicasInfo.filter((r) => r.node !== s.leader).sort((a, b) => behind(a.lag) - behind(b.lag));
  return [...(s.leader !== null ? [s.leader] : []), ...others.map((r) => r.node)];
}

function statusConfig(s: WireBucketStatus): BucketConfig {
  return {
    description: s.description,
    history: s.history,
    ttlMs: s.ttlMs,
    maxBytes: s.maxBytes,
    maxValueSize: s.maxValueSize,
    replicas: s.replicas,
    storage: s.storage,
    markerTtlMs: s.markerTtlMs,
    metadata: s.metadata,
    compression: s.compression,
  };
}

function sameConfig(a: BucketConfig, b: BucketConfig): boolean {
  const norm = (c: BucketConfig) =>
    JSON.stringify({ ...c, metadata: Object.fromEntries(Object.entries(c.metadata).sort(([x], [y]) => (x < y ? -1 : 1))) });
  return norm(a) === norm(b);
}

