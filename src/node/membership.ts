/**
 * Cluster membership changes in the node layer: `cluster.removeNode` / `cluster.addNode`, and the
 * reconciliation loop that makes every Raft group's configuration follow the meta state.
 *
 * The meta state (meta.ts) records what membership should be: `members`, `removed`, each bucket's
 * `placement`, and the one change in progress. This module makes the Raft configurations follow it,
 * one conf change at a time, always from a group's leader (the meta leader for the meta group, each
 * bucket's leader for its group), every few ticks, so it survives leader changes and restarts by
 * construction: whoever leads next looks at the same committed state and carries on.
 *
 *   bucket group   add every placement node missing as a learner; promote a learner once it is
 *                  streaming and within LEARNER_CATCH_UP_ENTRIES of the leader; only when every
 *                  placement node is a voter, remove the voters not in the placement (itself last:
 *                  the core hands leadership over before stepping down).
 *   meta group     every member is a voter or a learner; learners are promoted (caught up) while
 *                  fewer than META_VOTERS_MAX members vote (never demoted); a removed node leaves
 *                  the meta group last, once every bucket the change touched matches its placement.
 *   completion     the meta leader then proposes `membershipDone`; the request answers.
 *
 * A bucket.update changing `replicas` is a change of the same kind (meta `bucketReplicas`, started
 * here through the meta leader, waited for by the node): the bucket's placement grows or shrinks and
 * the bucket group follows it as above. Voters that leave go unreachable ones first, and none whose
 * removal would leave fewer reachable voters than a quorum (the change waits instead).
 *
 * A node learns it is removed from its own meta log (the removal entry, then its own removal from
 * the meta configuration), or, when it missed that (down or cut off), by asking peers once it has
 * heard from no meta leader for a while: a peer answers only after a meta read barrier, so a stale
 * peer cannot talk a member into deleting its data. A removed node then stops serving as a replica
 * and forwards every client request to a member (choice: keep its clients working, like a proxy,
 * instead of refusing them; see docs/membership.md). Peers drop its vote requests in every group
 * once its removal is done (etcd drops removed members' traffic), so it cannot disturb elections.
 *
 * Data of groups a node no longer belongs to is deleted (LogStore.deleteGroup). The node id is
 * reused when it comes back (RAFT-CHECKLIST item 18 warns why that is dangerous: a node that forgot
 * what it acknowledged and voted could, asked by a lagging candidate that still counts it, help elect
 * a leader without committed entries). So before deleting, the node records durably that it left the
 * group (node metadata `left:<group>`); a replica of a group it left opens blank, joins as a learner
 * (the leader sends its snapshot) and runs in the Raft core's recovering mode (no votes, no
 * campaigns) until it has caught up with a leader of the current term, which is when the mark is
 * cleared. A replica is deleted only after ORPHAN_SILENCE_ELECTIONS election timeouts without any
 * Raft message for that group: a leader sends to every member of its configuration, so silence means
 * no configuration still includes it.
 */
import { createHash } from "node:crypto";
import type { ConfChange, ConfState, ProgressStatus } from "../raft/types.ts";
import { CairnError } from "../shared/errors.ts";
import { WRITE_OPS, type RequestOp, type WireMembership } from "../shared/protocol.ts";
import type { RaftTiming } from "./config.ts";
import { encodeLogPayload } from "./codec.ts";
import type { LogStore } from "./log-store.ts";
import { LOG_STORE_LIMITS } from "./log-store-codec.ts";
import type { Logger } from "./logger.ts";
import { sleep, withDeadline } from "./deadline.ts";
import { CHANGE_IN_PROGRESS, describeChange, fnv1a, type MembershipChange, type MembershipView, type MetaBucket, type MetaEnvelope, type MetaResult, type MetaStateMachine } from "./meta.ts";
import type { Group, RaftHost } from "./raft-host.ts";
import type { PeerTransport } from "./transport.ts";

/** Named limits and cadences of the membership machinery. */
export const MEMBERSHIP_LIMITS = {
  /** Ticks between reconciliation rounds. */
  reconcileEveryTicks: 5,
  /** Conf changes proposed in one round, all groups together (each group has at most one pending anyway). */
  proposalsPerRoundMax: 16,
  /** A learner streaming within this many entries of the leader's last index is promoted. */
  learnerCatchUpEntries: 64,
  /** Voters the meta group is grown to (members beyond stay learners). */
  metaVotersMax: 5,
  /** Election timeouts without any message for a group before a replica no longer wanted is deleted. */
  orphanSilenceElections: 2,
  /** Election timeouts without a meta leader before asking peers whether this node was removed. */
  probeAfterElections: 2,
  /** Election timeouts between two such questions. */
  probeEveryElections: 4,
  /** Ticks between two looks at a change a request waits for. */
  waitPollTicks: 2,
  /** Largest node id accepted in a request (UTF-16 code units). */
  nodeIdLengthMax: 256,
} as const;

const META_GROUP = "meta";
const FORWARD_HOPS_MAX = 3;
const RETRYABLE = new Set(["NOT_LEADER", "PROPOSAL_DROPPED", "UNAVAILABLE"]);
/** Ops a removed node still answers itself; everything else it forwards to a member. */
const LOCAL_WHEN_REMOVED = new Set(["hello", "ping", "cluster.status", "watch.start", "watch.stop"]);

/** A client request as the node routes it (see NodeRequest in node.ts). */
export interface MembershipRequest {
  readonly op: "cluster.removeNode" | "cluster.addNode";
  readonly nodeId: unknown;
  readonly requestId?: string;
  /** Internal (forwarded to the meta leader): start the change and answer at once. */
  readonly wait?: boolean;
}

/** Peer-to-peer questions (transport requests), answered by onPeerRequest. */
export type MembershipPeerBody =
  | { readonly membership: "view" }
  | { readonly membership: "groupConf"; readonly group: string }
  /** To the meta leader: start a bucket's replica count change (answers `{ started }` at once). */
  | {
      readonly membership: "replicas";
      readonly bucket: string;
      readonly replicas: number;
      readonly prefer: readonly string[];
      readonly requestId: string;
    };

interface PeerView {
  readonly view: MembershipView;
  readonly metaConf: ConfState;
}

interface GroupConfAnswer {
  readonly hosted: boolean;
  readonly leader?: boolean;
  readonly term?: number;
  readonly voters?: readonly string[];
  readonly learners?: readonly string[];
}

/** What the membership machinery needs from its node. */
export interface MembershipHost {
  readonly nodeId: string;
  /** Every node of the cluster config (the only ids a change may name). */
  readonly configNodes: readonly string[];
  readonly meta: MetaStateMachine;
  readonly host: RaftHost;
  readonly store: LogStore;
  readonly transport: PeerTransport;
  readonly timing: RaftTiming;
  readonly logger: Logger;
  /** Group ids of the bucket replicas this node holds, with their bucket names. */
  hostedReplicas(): Iterable<{ group: string; bucket: string }>;
  /** The bucket whose replica this group is, if this node holds it. */
  replicaBucket(group: string): string | undefined;
  /** Opens this node's replica of the bucket (no-op when not placed here or already open). */
  openBucket(bucket: MetaBucket): void;
  /** Stops serving the replica (its watchers end) and closes its group, deleting the data when asked. */
  releaseReplica(group: string, deleteData: boolean): Promise<void>;
  forward(to: string, request: unknown, hops: number, deadline: number): Promise<unknown>;
  metaReadBarrier(deadline: number): Promise<void>;
  stamp(): number;
  nextRequestId(): string;
  isClosing(): boolean;
}

export class Membership {
  private ticks = 0;
  private roundScheduled = false;
  private leaderlessTicks = 0;
  private lastProbeTick = Number.NEGATIVE_INFINITY;
  private probing = false;
  /** A peer said (after a meta read barrier) that this node's removal is done; cleared when our meta log moves again. */
  private removedByPeer: { view: MembershipView; appliedIndex: number } | null = null;
  /** Closes in flight: a group is not reopened before its data is gone. */
  private readonly closing = new Map<string, Promise<void>>();
  /** Meta leader: the change whose buckets all matched their placement (only then may the node leave meta). */
  private convergedSeq = 0;
  private checking = false;
  /** Groups opened in recovering mode because this node left them: the mark is cleared once recovered. */
  private readonly recoveringLeft = new Map<string, { seenRecovered: boolean }>();

  constructor(private readonly h: MembershipHost) {
    // Once a node's removal is done, its (pre-)vote requests are dropped in every group: it cannot
    // disturb an election even if it missed its removal. Only those: node ids come back, and a member
    // whose meta state lags must still hear a re-added leader to catch up. A removed node drops nothing.
    h.host.acceptFrom = (from, message) =>
      (message.type !== "vote" && message.type !== "preVote") || !h.meta.isRemovedAndDone(from) || this.isRemoved();
  }

  private get electionMs(): number {
    return this.h.timing.tickMs * this.h.timing.electionTicks;
  }

  // ---- this node's standing -----------------------------------------------------------------------

  /** This node is out of the cluster (its removal reached it): it serves no replica and forwards clients. */
  isRemoved(): boolean {
    const self = this.h.nodeId;
    if (this.removedByPeer !== null) {
      if (this.h.meta.appliedIndex <= this.removedByPeer.appliedIndex) return true;
      // Our meta log moves again: a leader talks to us (re-added); our own log decides from here.
      this.removedByPeer = null;
    }
    const view = this.h.meta.membership();
    if (!view.removed.includes(self)) return false;
    if (view.change?.nodeId !== self) return true;
    // Our removal is in progress: we are out once the meta group no longer includes us (its last step).
    return !this.inMetaConf();
  }

  private inMetaConf(): boolean {
    const g = this.h.host.group(META_GROUP);
    if (!g) return false;
    return g.confState.voters.includes(this.h.nodeId) || g.confState.learners.includes(this.h.nodeId);
  }

  /** May this node open its replica of `group` now? (Not while removed, nor before an earlier close finished.) */
  mayOpen(group: string): boolean {
    return !this.closing.has(group) && !this.isRemoved();
  }

  /** The client request must be forwarded to a member (this node was removed). */
  forwardsWhenRemoved(op: string): boolean {
    return !LOCAL_WHEN_REMOVED.has(op) && this.isRemoved();
  }

  // ---- requests -----------------------------------------------------------------------------------

  /**
   * `cluster.removeNode` / `cluster.addNode`: starts the change through the meta leader, then waits
   * until it is complete. While another change is in progress: UNAVAILABLE at once (nothing started;
   * the client retries until its deadline). The same change again joins the wait.
   */
  async request(request: MembershipRequest, hops: number, deadline: number): Promise<WireMembership | { started: number }> {
    const nodeId = request.nodeId;
    if (typeof nodeId !== "string" || nodeId.length === 0 || nodeId.length > MEMBERSHIP_LIMITS.nodeIdLengthMax) {
      throw new CairnError("INVALID_OPTION", "nodeId must be the id of a node of the cluster config");
    }
    if (!this.h.configNodes.includes(nodeId)) {
      throw new CairnError("NODE_NOT_FOUND", `node ${nodeId} is not in the cluster config (nodes: ${this.h.configNodes.join(", ")})`);
    }
    const type = request.op === "cluster.removeNode" ? "remove" : "add";
    const requestId = request.requestId ?? this.h.nextRequestId();
    const forwarded = { op: request.op, nodeId, requestId, wait: false };
    const send = (target: string) => this.h.forward(target, forwarded, hops, deadline) as Promise<{ started: number }>;
    const started = await this.viaMetaLeader(send, hops, deadline, () => this.start(type, nodeId, requestId));
    if (request.wait === false) return started;
    return this.waitDone(started.started, deadline);
  }

  /**
   * bucket.update changing a bucket's replica count: starts the change through the meta leader and
   * answers its seq at once (0: nothing to wait for; the caller waits with waitDone). Refused like a
   * node change while another change is in progress (UNAVAILABLE, nothing started). `prefer`: the
   * replicas to keep first when shrinking (meta.ts bucketReplicas).
   */
  async changeReplicas(bucket: string, replicas: number, prefer: readonly string[], requestId: string, deadline: number): Promise<number> {
    const body: MembershipPeerBody = { membership: "replicas", bucket, replicas, prefer, requestId };
    const send = async (target: string) => {
      const remaining = deadline - Date.now();
      const attemptMs = Math.min(remaining, Math.max(1000, 4 * this.electionMs));
      try {
        return (await this.h.transport.request(target, body, attemptMs)) as { started: number };
      } catch (error) {
        // No answer within one attempt (a stale leader): retried while the deadline leaves time.
        if (error instanceof CairnError && error.code === "TIMEOUT" && Date.now() < deadline - 10) {
          throw new CairnError("UNAVAILABLE", `no answer from ${target} within ${attemptMs} ms; retrying`, {}, { cause: error });
        }
        throw error;
      }
    };
    const started = await this.viaMetaLeader(send, 0, deadline, () => this.startReplicas(bucket, replicas, prefer, requestId));
    return started.started;
  }

  /** The seq of the replica count change of `bucket` to `replicas` in progress, else 0 (a retried bucket.update waits for it). */
  pendingReplicasChange(bucket: string, replicas: number): number {
    const c = this.h.meta.membership().change;
    return c !== null && c.type === "replicas" && c.bucket === bucket && c.replicas === replicas ? c.seq : 0;
  }

  private start(type: "remove" | "add", nodeId: string, requestId: string): Promise<{ started: number }> {
    // Another change in progress: refused without writing to the log (apply refuses it the same way).
    const early = this.h.meta.precheck(type, nodeId);
    const command = type === "remove" ? ({ type: "nodeRemove", nodeId } as const) : ({ type: "nodeAdd", nodeId } as const);
    return this.propose(early, command, requestId);
  }

  private startReplicas(bucket: string, replicas: number, prefer: readonly string[], requestId: string): Promise<{ started: number }> {
    const early = this.h.meta.precheckReplicas(bucket, replicas);
    return this.propose(early, { type: "bucketReplicas", bucket, replicas, prefer }, requestId);
  }

  /** Proposes a change on the meta leader (unless `early` refuses it as in progress); answers its seq (0: nothing to do). */
  private async propose(early: MetaResult | null, command: MetaEnvelope["command"], requestId: string): Promise<{ started: number }> {
    if (early !== null && !early.ok && early.code === "UNAVAILABLE") throw new CairnError(early.code, early.message);
    const envelope: MetaEnvelope = { now: this.h.stamp(), requestId, command };
    const result = (await this.h.host.propose(META_GROUP, encodeLogPayload({ meta: envelope }))) as MetaResult;
    if (!result.ok) throw new CairnError(result.code, result.message);
    // Already as asked: nothing to wait for.
    if (!result.change) return { started: 0 };
    if (result.existed) return { started: result.change.seq };
    this.h.logger.info("membership change started", { change: describeChange(result.change), seq: result.change.seq, buckets: result.change.buckets });
    this.scheduleRound();
    return { started: result.change.seq };
  }

  /** Runs `local` on the meta leader (here, or by sending to the leader it knows with `send`), retrying retryable errors until the deadline. */
  private async viaMetaLeader(
    send: (target: string) => Promise<{ started: number }>,
    hops: number,
    deadline: number,
    local: () => Promise<{ started: number }>,
  ): Promise<{ started: number }> {
    let last: unknown = null;
    for (let attempt = 0; ; attempt++) {
      if (this.h.isClosing()) throw new CairnError("UNAVAILABLE", "node shutting down");
      const g = this.h.host.group(META_GROUP);
      try {
        if (g?.isLeader()) return await withDeadline(local(), deadline, membershipTimeout);
        const members = this.h.meta.membership().members.filter((m) => m !== this.h.nodeId);
        const target = g?.leader && g.leader !== this.h.nodeId ? g.leader : members[(attempt + fnv1a(this.h.nodeId)) % Math.max(1, members.length)];
        if (target !== undefined && hops < FORWARD_HOPS_MAX) return await send(target);
      } catch (error) {
        if (!(error instanceof CairnError) || !RETRYABLE.has(error.code)) throw error;
        // Another change in progress: answer at once (UNAVAILABLE, nothing started); the client retries.
        if (error.message.startsWith(CHANGE_IN_PROGRESS)) throw error;
        last = error;
      }
      const wait = retryDelayMs(this.h.timing, attempt + 1);
      if (Date.now() + wait >= deadline) {
        throw new CairnError("TIMEOUT", "timeout: the membership change may or may not have started; retry with the same request id", {}, { cause: last });
      }
      await sleep(wait);
    }
  }

  /** Resolves once change `seq` is complete (polling this node's meta state, or a member's when we left the meta group). */
  async waitDone(seq: number, deadline: number): Promise<WireMembership> {
    const pollMs = this.h.timing.tickMs * MEMBERSHIP_LIMITS.waitPollTicks;
    let view: MembershipView | null = null;
    for (;;) {
      view = await this.currentView(deadline).catch(() => view);
      if (view !== null && view.completedSeq >= seq) return toWire(view);
      if (Date.now() + pollMs >= deadline || this.h.isClosing()) {
        const change = view?.change;
        throw new CairnError(
          "TIMEOUT",
          `timeout: membership change ${seq}${change ? ` (${describeChange(change)})` : ""} is still in progress; it goes on in the background`,
        );
      }
      await sleep(pollMs);
    }
  }

  /** This node's meta view while it is in the meta group; else a member's (after its read barrier). */
  private async currentView(deadline: number): Promise<MembershipView> {
    if (this.removedByPeer === null && this.inMetaConf()) return this.h.meta.membership();
    return (await this.askPeers(Math.min(deadline - Date.now(), 2 * this.electionMs))).view;
  }

  /** The membership part of `cluster.status`, from this node's view (a removed node asks a member). */
  async statusFields(deadline: number): Promise<{ membership: WireMembership; removedHere: boolean }> {
    const removedHere = this.isRemoved();
    let view = this.h.meta.membership();
    if (removedHere || !this.inMetaConf()) {
      try {
        view = (await this.askPeers(Math.min(deadline - Date.now(), this.electionMs))).view;
      } catch {
        /* none reachable: our own (possibly stale) view */
      }
    }
    return { membership: toWire(view), removedHere };
  }

  /** Forwards a client request from a removed node to a member (retrying others on retryable errors). */
  async forwardToMember(request: { op: string }, hops: number, deadline: number): Promise<unknown> {
    if (hops >= FORWARD_HOPS_MAX) throw new CairnError("UNAVAILABLE", `node ${this.h.nodeId} was removed from the cluster and cannot forward further`);
    const view = this.removedByPeer?.view ?? this.h.meta.membership();
    let targets = view.members.filter((m) => m !== this.h.nodeId);
    if (targets.length === 0) targets = this.h.configNodes.filter((m) => m !== this.h.nodeId);
    let last: unknown = null;
    for (let attempt = 0; ; attempt++) {
      const target = targets[(attempt + fnv1a(this.h.nodeId)) % targets.length];
      if (target === undefined) break;
      try {
        return await this.h.forward(target, request, hops, deadline);
      } catch (error) {
        if (!(error instanceof CairnError) || !RETRYABLE.has(error.code)) throw error;
        last = error;
      }
      const wait = retryDelayMs(this.h.timing, attempt + 1);
      if (Date.now() + wait >= deadline) break;
      await sleep(wait);
    }
    if (WRITE_OPS.has(request.op as RequestOp)) throw new CairnError("TIMEOUT", "timeout: the outcome of the write is unknown", {}, { cause: last });
    throw new CairnError("UNAVAILABLE", `node ${this.h.nodeId} was removed from the cluster and reached no member before the deadline`, {}, { cause: last });
  }

  // ---- peer questions -------------------------------------------------------------------------------

  static isPeerBody(body: unknown): body is MembershipPeerBody {
    return typeof body === "object" && body !== null && typeof (body as { membership?: unknown }).membership === "string";
  }

  async onPeerRequest(body: MembershipPeerBody): Promise<PeerView | GroupConfAnswer | { started: number }> {
    if (body.membership === "view") {
      if (this.isRemoved()) throw new CairnError("UNAVAILABLE", `node ${this.h.nodeId} was removed from the cluster`);
      // Linearizable: a lagging peer must not tell a re-added node that it is still removed.
      await this.h.metaReadBarrier(Date.now() + Math.max(1000, 2 * this.electionMs));
      const g = this.h.host.group(META_GROUP);
      return { view: this.h.meta.membership(), metaConf: g ? g.confState : { voters: [], learners: [] } };
    }
    if (body.membership === "replicas") {
      const { bucket, replicas, prefer, requestId } = body;
      if (typeof bucket !== "string" || typeof replicas !== "number" || !Array.isArray(prefer) || typeof requestId !== "string") {
        throw new CairnError("INVALID_REQUEST", "malformed membership question");
      }
      if (this.isRemoved()) throw new CairnError("UNAVAILABLE", `node ${this.h.nodeId} was removed from the cluster`);
      const g = this.h.host.group(META_GROUP);
      if (!g?.isLeader()) throw new CairnError("NOT_LEADER", "not leader", g?.leader ? { leaderHint: g.leader } : {});
      return this.startReplicas(bucket, replicas, prefer.filter((m): m is string => typeof m === "string"), requestId);
    }
    if (body.membership === "groupConf" && typeof body.group === "string") {
      const g = this.h.host.group(body.group);
      if (!g) return { hosted: false };
      const s = g.core.status();
      return { hosted: true, leader: s.role === "leader", term: s.term, voters: s.confState.voters, learners: s.confState.learners };
    }
    throw new CairnError("INVALID_REQUEST", "malformed membership question");
  }

  /** The first member to answer (each answers after its meta read barrier). */
  private async askPeers(timeoutMs: number): Promise<PeerView> {
    if (timeoutMs <= 0) throw new CairnError("UNAVAILABLE", "no time left to ask a member");
    const self = this.h.nodeId;
    const peers = this.h.configNodes.filter((m) => m !== self);
    if (peers.length === 0) throw new CairnError("UNAVAILABLE", "no other node to ask");
    try {
      return await Promise.any(
        peers.map(async (peer) => {
          const answer = (await this.h.transport.request(peer, { membership: "view" } satisfies MembershipPeerBody, timeoutMs)) as PeerView;
          if (!answer || typeof answer !== "object" || !answer.view || !Array.isArray(answer.view.members)) {
            throw new CairnError("INVALID_REQUEST", "malformed membership answer");
          }
          return answer;
        }),
      );
    } catch {
      throw new CairnError("UNAVAILABLE", "no member answered the membership question");
    }
  }

  // ---- the loop -------------------------------------------------------------------------------------

  /** Called by the Raft host once per tick (not while paused). */
  tick(): void {
    this.ticks++;
    const meta = this.h.host.group(META_GROUP);
    if (!meta || meta.leader === null) this.leaderlessTicks++;
    else this.leaderlessTicks = 0;
    if (this.ticks % MEMBERSHIP_LIMITS.reconcileEveryTicks === 0) this.scheduleRound();
  }

  /** A meta entry was applied (or a meta snapshot restored): bring replicas in line soon. */
  afterMetaChange(): void {
    this.scheduleRound();
  }

  private scheduleRound(): void {
    if (this.roundScheduled) return;
    this.roundScheduled = true;
    // Outside the Raft loop's current action: proposals enqueue normally.
    setImmediate(() => {
      this.roundScheduled = false;
      if (this.h.isClosing()) return;
      try {
        this.round();
      } catch (error) {
        this.h.logger.error("membership round failed", { error: String(error) });
      }
    });
  }

  private round(): void {
    this.syncReplicas();
    this.clearRecovered();
    this.maybeProbe();
    let budget: number = MEMBERSHIP_LIMITS.proposalsPerRoundMax;
    for (const g of [...this.h.host.allGroups()]) {
      if (budget <= 0) break;
      if (!g.isLeader() || g.stopped) continue;
      const change = g.id === META_GROUP ? this.nextMetaChange(g) : this.nextBucketChange(g);
      if (change === null) continue;
      budget--;
      this.h.logger.info("proposing conf change", { group: g.id, type: change.type, node: change.nodeId });
      this.h.host.proposeConfChange(g.id, change).then(
        () => this.scheduleRound(),
        (error) => this.h.logger.debug("conf change not applied (retried next round)", { group: g.id, error: String(error) }),
      );
    }
    const meta = this.h.host.group(META_GROUP);
    if (meta?.isLeader() && this.h.meta.membership().change !== null && !this.checking) {
      this.checking = true;
      void this.checkCompletion(meta)
        .catch((error) => this.h.logger.debug("membership completion check failed", { error: String(error) }))
        .finally(() => (this.checking = false));
    }
  }

  /** Opens replicas newly placed here; deletes the ones this node no longer belongs to (see the module comment). */
  private syncReplicas(): void {
    const self = this.h.nodeId;
    const removed = this.isRemoved();
    if (!removed) for (const b of this.h.meta.list()) if (b.placement.includes(self) && !this.closing.has(b.group)) this.h.openBucket(b);
    const silenceMs = MEMBERSHIP_LIMITS.orphanSilenceElections * this.electionMs;
    for (const { group, bucket } of [...this.h.hostedReplicas()]) {
      const b = this.h.meta.get(bucket);
      if (!b || b.group !== group) continue; // bucket deleted: its own path drops it
      if (!removed && b.placement.includes(self)) continue;
      const g = this.h.host.group(group);
      if (!g || g.isLeader()) continue; // a leader hands over first (the core steps down when removed)
      // The leader removes us first. A member dropped by a replica count change may never learn its
      // removal committed (the leader stops talking to it): once no change touching the bucket is in
      // progress, the group ran with exactly its placement since, so it no longer counts us.
      const inConf = g.confState.voters.includes(self) || g.confState.learners.includes(self);
      const change = this.h.meta.membership().change;
      if (!removed && inConf && change !== null && change.buckets.includes(bucket)) continue;
      if (Date.now() - g.lastMessageAt < silenceMs) continue; // someone still counts us as a member
      this.deleteReplica(g);
    }
  }

  private deleteReplica(g: Group): void {
    if (this.closing.has(g.id)) return;
    this.h.logger.info("deleting replica: this node no longer belongs to the group", { group: g.id, term: g.core.status().term });
    this.recoveringLeft.delete(g.id);
    const done = (async () => {
      // First the mark (durable), then the data: whatever a crash leaves, the group reopens recovering.
      await this.h.store.setMeta(leftKey(g.id), LEFT);
      await this.h.releaseReplica(g.id, true);
    })()
      .catch((error) => this.h.logger.error("deleting a replica failed", { group: g.id, error: String(error) }))
      .finally(() => {
        this.closing.delete(g.id);
        this.scheduleRound();
      });
    this.closing.set(g.id, done);
  }

  /**
   * Did this node leave (and delete) its replica of `group` without having caught up since? Then the
   * replica must open blank and recovering. Remembered until the core reports it recovered.
   */
  async leftGroup(group: string): Promise<boolean> {
    const mark = await this.h.store.getMeta(leftKey(group));
    const left = mark !== null && mark[0] === 1;
    if (left) this.recoveringLeft.set(group, { seenRecovered: false });
    return left;
  }

  /** Clears the mark of replicas that left recovering mode (two rounds later: the hard state that ends it is durable by then). */
  private clearRecovered(): void {
    for (const [group, state] of [...this.recoveringLeft]) {
      const g = this.h.host.group(group);
      if (!g || g.stopped) continue;
      if (g.core.status().recovering) continue;
      if (!state.seenRecovered) {
        state.seenRecovered = true;
        continue;
      }
      this.recoveringLeft.delete(group);
      this.h.logger.info("replica caught up after coming back: it votes again", { group });
      this.h.store.setMeta(leftKey(group), NOT_LEFT).catch((error) => this.h.logger.error("cannot clear a left mark", { group, error: String(error) }));
    }
  }

  /** One conf change that moves a bucket group toward its placement, or null. */
  private nextBucketChange(g: Group): ConfChange | null {
    const name = this.h.replicaBucket(g.id);
    const bucket = name === undefined ? undefined : this.h.meta.get(name);
    if (!bucket || bucket.group !== g.id) return null;
    const s = g.core.status();
    return nextChangeToward(s.confState, bucket.placement, bucket.placement.length, s.progress ?? {}, s.lastIndex, this.h.nodeId, []);
  }

  /** One conf change that moves the meta group toward the members, or null. */
  private nextMetaChange(g: Group): ConfChange | null {
    const view = this.h.meta.membership();
    const s = g.core.status();
    // The node being removed leaves the meta group last: once every bucket the change touched matches.
    const holdBack = view.change?.type === "remove" && this.convergedSeq !== view.change.seq ? [view.change.nodeId] : [];
    const votersWanted = Math.min(MEMBERSHIP_LIMITS.metaVotersMax, view.members.length);
    return nextChangeToward(s.confState, view.members, votersWanted, s.progress ?? {}, s.lastIndex, this.h.nodeId, holdBack);
  }

  private async checkCompletion(meta: Group): Promise<void> {
    const change = this.h.meta.membership().change;
    if (change === null) return;
    if (this.convergedSeq !== change.seq) {
      if (!(await this.bucketsMatch(change))) return;
      this.convergedSeq = change.seq;
      this.h.logger.info("membership change: every bucket matches its placement", { seq: change.seq, change: describeChange(change) });
    }
    const view = this.h.meta.membership();
    if (view.change?.seq !== change.seq || !meta.isLeader()) return;
    const conf = meta.core.status().confState;
    if (!metaConfDone(conf, view.members)) return;
    const envelope: MetaEnvelope = { now: this.h.stamp(), command: { type: "membershipDone", seq: change.seq } };
    await this.h.host.propose(META_GROUP, encodeLogPayload({ meta: envelope }));
    this.h.logger.info("membership change complete", { seq: change.seq, change: describeChange(change) });
  }

  /** Does every bucket the change touched run with exactly its placement as voters (as its leader says)? */
  private async bucketsMatch(change: MembershipChange): Promise<boolean> {
    for (const name of change.buckets) {
      const b = this.h.meta.get(name);
      if (!b) continue; // deleted since
      // A replica count change may drop the group's leader: ask every member who leads.
      const also = change.type === "replicas" ? this.h.meta.membership().members : [change.nodeId];
      const conf = await this.leaderConf(b, also);
      if (conf === null) return false;
      if (conf.learners.length > 0 || !sameSet(conf.voters, b.placement)) return false;
    }
    return true;
  }

  private async leaderConf(b: MetaBucket, also: readonly string[]): Promise<ConfState | null> {
    const local = this.h.host.group(b.group);
    if (local?.isLeader()) return local.core.status().confState;
    const asked = [...new Set([...b.placement, ...also])].filter((m) => m !== this.h.nodeId && m !== "");
    const timeoutMs = Math.max(200, this.electionMs);
    const answers = await Promise.all(
      asked.map((peer) =>
        (this.h.transport.request(peer, { membership: "groupConf", group: b.group } satisfies MembershipPeerBody, timeoutMs) as Promise<GroupConfAnswer>).catch(
          () => null,
        ),
      ),
    );
    let best: GroupConfAnswer | null = null;
    for (const a of answers) if (a?.hosted && a.leader && (best === null || (a.term ?? 0) > (best.term ?? 0))) best = a;
    if (best === null || !Array.isArray(best.voters) || !Array.isArray(best.learners)) return null;
    return { voters: best.voters, learners: best.learners };
  }

  /** With no meta leader heard for a while, ask members whether this node was removed (restart after removal, long cut-off). */
  private maybeProbe(): void {
    const electionTicks = this.h.timing.electionTicks;
    if (this.probing || this.removedByPeer !== null) return;
    if (this.leaderlessTicks < MEMBERSHIP_LIMITS.probeAfterElections * electionTicks) return;
    if (this.ticks - this.lastProbeTick < MEMBERSHIP_LIMITS.probeEveryElections * electionTicks) return;
    this.probing = true;
    this.lastProbeTick = this.ticks;
    const appliedIndex = this.h.meta.appliedIndex;
    void this.askPeers(2 * this.electionMs)
      .then(({ view }) => {
        const self = this.h.nodeId;
        if (view.removed.includes(self) && view.change?.nodeId !== self && this.h.meta.appliedIndex === appliedIndex) {
          this.h.logger.warn("this node was removed from the cluster: it stops serving replicas and forwards clients", {});
          this.removedByPeer = { view, appliedIndex };
          this.scheduleRound();
        }
      })
      .catch(() => undefined)
      .finally(() => (this.probing = false));
  }
}

/**
 * The next single conf change that moves `conf` toward `wanted` (pure): add missing nodes as
 * learners; promote caught-up learners while fewer than `votersWanted` wanted nodes vote; remove
 * learners not wanted; remove voters not wanted once every wanted node votes or enough do (voters
 * the leader knows inactive first, this node last, none of `holdBack`, and none whose removal would
 * leave fewer voters not known inactive than a quorum: then it waits, rather than leave a group
 * that cannot commit). Null when nothing is to do now.
 */
export function nextChangeToward(
  conf: ConfState,
  wanted: readonly string[],
  votersWanted: number,
  progress: Readonly<Record<string, ProgressStatus>>,
  lastIndex: number,
  self: string,
  holdBack: readonly string[],
): ConfChange | null {
  const inConf = (id: string) => conf.voters.includes(id) || conf.learners.includes(id);
  for (const id of wanted) if (!inConf(id)) return { type: "addLearner", nodeId: id };
  const wantedVoters = conf.voters.filter((v) => wanted.includes(v)).length;
  if (wantedVoters < votersWanted) {
    for (const id of conf.learners) {
      if (wanted.includes(id) && caughtUp(progress[id], lastIndex)) return { type: "addVoter", nodeId: id };
    }
  }
  for (const id of conf.learners) if (!wanted.includes(id)) return { type: "removeNode", nodeId: id };
  if (wantedVoters < votersWanted && conf.learners.some((id) => wanted.includes(id))) return null; // promote first
  // Known inactive: the leader has progress for it and heard nothing lately (missing progress: no information).
  const inactive = (id: string) => id !== self && progress[id] !== undefined && !progress[id].recentActive;
  const rank = (id: string) => (id === self ? 2 : inactive(id) ? 0 : 1);
  const extra = conf.voters.filter((v) => !wanted.includes(v) && !holdBack.includes(v)).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  if (conf.voters.length <= 1) return null;
  for (const id of extra) {
    const remaining = conf.voters.filter((v) => v !== id);
    const live = remaining.filter((v) => !inactive(v)).length;
    if (live >= Math.floor(remaining.length / 2) + 1) return { type: "removeNode", nodeId: id };
  }
  return null;
}

function caughtUp(p: ProgressStatus | undefined, lastIndex: number): boolean {
  return p !== undefined && p.state === "replicate" && p.recentActive && lastIndex - p.match <= MEMBERSHIP_LIMITS.learnerCatchUpEntries;
}

/** The meta configuration matches the members: all in, nobody else, enough voters (or nobody left to promote). */
function metaConfDone(conf: ConfState, members: readonly string[]): boolean {
  const all = [...conf.voters, ...conf.learners];
  if (!members.every((m) => all.includes(m)) || !all.every((m) => members.includes(m))) return false;
  return conf.voters.length >= Math.min(MEMBERSHIP_LIMITS.metaVotersMax, members.length) || conf.learners.length === 0;
}

const LEFT = new Uint8Array([1]);
const NOT_LEFT = new Uint8Array([0]);
function leftKey(group: string): string {
  const key = `left:${group}`;
  return Buffer.byteLength(key, "utf8") <= LOG_STORE_LIMITS.metaKeyBytesMax ? key : `left#${createHash("sha256").update(group).digest("hex")}`;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function toWire(view: MembershipView): WireMembership {
  return {
    members: [...view.members],
    removed: [...view.removed],
    change: view.change
      ? {
          seq: view.change.seq,
          type: view.change.type,
          nodeId: view.change.nodeId,
          ...(view.change.bucket !== undefined ? { bucket: view.change.bucket, replicas: view.change.replicas } : {}),
        }
      : null,
  };
}

function retryDelayMs(timing: RaftTiming, attempt: number): number {
  return Math.min(timing.tickMs * 2 ** Math.min(attempt, 4), 500);
}

function membershipTimeout(): CairnError {
  return new CairnError("TIMEOUT", "timeout: the membership change may or may not have started");
}
