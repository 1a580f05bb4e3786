/**
 * RaftHost drives every Raft group of one node through one serialized loop (the only code that calls
 * into the cores). Contract with the core (src/raft/types.ts): persist, then send, then apply, then
 * advance. All groups' Readies of one loop turn go to the store as ONE batch (group commit across
 * groups): whatever arrives while that fsync is in flight is queued and goes into the next batch.
 *
 * The leader sends its appends (messagesBeforePersist) before its own fsync, so the leader's disk
 * write overlaps replication; it counts itself toward the quorum only after advance().
 */
import { RaftCore, MemoryStorage, decodeConfChange } from "../raft/index.ts";
import type { ConfChange, ConfState, Entry, Message, NodeId, Ready, Snapshot, SoftState } from "../raft/types.ts";
import type { GroupWrite, LogStore } from "./log-store.ts";
import type { PeerTransport } from "./transport.ts";
import type { NodeLimits, RaftTiming } from "./config.ts";
import { CairnError } from "../shared/errors.ts";
import { assert } from "../shared/assert.ts";
import type { Logger } from "./logger.ts";
import type { RecoveryPolicy } from "./recovery.ts";

/** What a group asks of the code that owns its state machine. */
export interface GroupStateMachine {
  /** Apply one committed normal entry (non-empty data); the return value settles the proposal. */
  apply(entry: Entry): unknown;
  /** Replace the whole state with a snapshot image. */
  restore(snapshot: Snapshot): void;
  /** The whole state as of the last applied entry. */
  snapshot(): Uint8Array;
  /** Membership of the group changed (a conf entry was applied). */
  onConfChange?(confState: ConfState): void;
  /** Leader or role changed. */
  onSoftState?(softState: SoftState): void;
}

interface PendingProposal {
  readonly term: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

interface PendingRead {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  index: number;
}

export class Group {
  readonly pending = new Map<number, PendingProposal>();
  /** Read requests by context key, waiting for their read index. */
  readonly reads = new Map<string, PendingRead>();
  /** Reads with a known index, waiting for applied >= index. */
  readonly readsWaitingApply: PendingRead[] = [];
  applied: number;
  snapshotIndex: number;
  leader: NodeId | null = null;
  role: SoftState["role"] = "follower";
  confState: ConfState;
  stopped = false;
  /** Started in recovering (no-vote) mode and not yet out of it (src/node/recovery.ts). */
  recovering = false;
  /** Bootstrapped fresh and asked to campaign: campaigns again when recovering mode is lifted. */
  bootstrapCampaign = false;
  /** Date.now() when a Raft message for this group last arrived (a leader talks only to its members). */
  lastMessageAt = Date.now();

  constructor(
    readonly id: string,
    readonly core: RaftCore,
    readonly storage: MemoryStorage,
    readonly sm: GroupStateMachine,
    applied: number,
    confState: ConfState,
  ) {
    this.applied = applied;
    this.snapshotIndex = applied;
    this.confState = confState;
  }

  isLeader(): boolean {
    return this.role === "leader";
  }
}

export interface RaftHostOptions {
  readonly nodeId: string;
  readonly store: LogStore;
  readonly transport: PeerTransport;
  readonly timing: RaftTiming;
  readonly limits: NodeLimits;
  readonly logger: Logger;
  readonly random?: () => number;
}

type Action = () => void;

export class RaftHost {
  private readonly groups = new Map<string, Group>();
  private readonly touched = new Set<Group>();
  private readonly queue: Action[] = [];
  private writing = false;
  private scheduled = false;
  private tickTimer: ReturnType<typeof setInterval> | null = null;
  private readCounter = 0;
  private closed = false;
  /** Frozen (fault injection, like SIGSTOP): no ticks, nothing enters the cores, queued work waits. */
  private paused = false;
  /** Called once per tick after the cores ticked (TTL expiry checks and the like). */
  onTick: (() => void) | null = null;
  /** Resolves when the loop has nothing in flight (used by graceful shutdown). */
  private idleWaiters: (() => void)[] = [];
  /**
   * Drops a peer's Raft message when it returns false (membership: vote requests of a node whose
   * removal is complete are ignored in every group). Unset: accept all.
   */
  acceptFrom: ((from: string, message: Message) => boolean) | null = null;
  /** Fatal loop error (a storage failure): the node must stop serving. */
  fatal: unknown = null;
  onFatal: ((error: unknown) => void) | null = null;
  /** Decides which groups start in recovering mode and records their recovery (src/node/recovery.ts). Set before start. */
  recovery: RecoveryPolicy | null = null;

  constructor(private readonly options: RaftHostOptions) {
    options.transport.onRaft((from, group, message) => this.onRaftMessage(from, group, message));
    // A snapshot counts as sent only once the transport has handed all of it to the socket (or
    // dropped it): reporting success at enqueue time would move the follower's progress on too early.
    options.transport.onSnapshotStatus((peer, groupId, ok) => {
      this.enqueue(() => {
        const g = this.groups.get(groupId);
        if (!g || g.stopped) return;
        g.core.reportSnapshot(peer, ok);
        this.touched.add(g);
      });
    });
    options.transport.onPeerState((peer, up) => {
      if (up) return;
      this.enqueue(() => {
        for (const g of this.groups.values()) {
          if (g.isLeader()) {
            g.core.reportUnreachable(peer);
            this.touched.add(g);
          }
        }
      });
    });
  }

  start(): void {
    this.tickTimer = setInterval(() => this.tick(), this.options.timing.tickMs);
    this.tickTimer.unref?.();
  }

  group(id: string): Group | undefined {
    return this.groups.get(id);
  }

  allGroups(): IterableIterator<Group> {
    return this.groups.values();
  }

  /**
   * Opens a group: loads its durable state if any, else bootstraps it with `voters` (empty for a
   * node that joins an existing group and waits for the leader). Rebuilds the state machine from
   * the snapshot; the core then re-delivers committed entries after it. `join`: when there is no
   * log (fresh, or only the hard state a removed replica keeps), start blank and wait for the
   * leader's snapshot even if `voters` lists this node (a replica added later, or coming back).
   * `recovering`: start the core in recovering mode (no votes, no campaigns until caught up).
   */
  async openGroup(
    id: string,
    sm: GroupStateMachine,
    bootstrap: { voters: readonly string[]; campaign: boolean; join?: boolean; recovering?: boolean },
  ): Promise<Group> {
    assert(!this.groups.has(id), `group ${id} opened twice`);
    let loaded: Awaited<ReturnType<LogStore["load"]>>;
    try {
      loaded = await this.options.store.load(id);
    } catch (error) {
      if (!(error instanceof CairnError) || error.code !== "CORRUPT_DATA") throw error;
      if (!(await this.recovery?.lostOnLoad(id, error))) {
        // A damaged log or snapshot: the node refuses to serve (and never campaigns with it).
        this.die(error);
        throw error;
      }
      // Explained by a loss the node recovers from anyway: start the group empty, recovering.
      await this.options.store.deleteGroup(id);
      loaded = await this.options.store.load(id);
    }
    // `bootstrap.recovering`: a replica this node deleted when it left the group (membership.ts).
    const recovering = bootstrap.recovering === true || ((await this.recovery?.recovering(id)) ?? false);
    let storage: MemoryStorage;
    let applied = 0;
    let confState: ConfState;
    const noLog = loaded.snapshot === null && loaded.entries.length === 0;
    const fresh = loaded.hardState.term === 0 && noLog;
    const voters = noLog && bootstrap.join === true ? [] : [...bootstrap.voters];
    if (fresh) {
      confState = { voters, learners: [] };
      storage = new MemoryStorage({ confState });
    } else {
      const init: ConstructorParameters<typeof MemoryStorage>[0] = { hardState: loaded.hardState, entries: loaded.entries };
      if (loaded.snapshot) {
        init.snapshot = loaded.snapshot;
        // An index-0 snapshot without data (a joiner's bootstrap snapshot, or the blank state a
        // removed replica keeps) carries membership only: the state machine keeps its initial image.
        if (loaded.snapshot.data.length > 0) sm.restore(loaded.snapshot);
        applied = loaded.snapshot.metadata.index;
      } else {
        init.confState = { voters, learners: [] };
      }
      storage = new MemoryStorage(init);
      confState = storage.initialState().confState;
    }
    const core = new RaftCore(
      {
        id: this.options.nodeId,
        electionTicks: this.options.timing.electionTicks,
        heartbeatTicks: this.options.timing.heartbeatTicks,
        preVote: true,
        checkQuorum: true,
        random: this.options.random ?? Math.random,
        applied,
        messageBytesMax: this.options.limits.raftMessageBytesMax,
        inflightMessagesMax: this.options.limits.inflightMessagesMax,
        inflightBytesMax: 0,
        uncommittedBytesMax: this.options.limits.uncommittedBytesMax,
        recovering,
      },
      storage,
    );
    const group = new Group(id, core, storage, sm, applied, confState);
    group.recovering = recovering;
    if (recovering && confState.voters.length === 1 && confState.voters[0] === this.options.nodeId && storage.lastIndex() === 0) {
      this.options.logger.error(`group ${id}: this node is its only voter and lost its data: the group stays down, there is nobody to recover it from`);
    }
    this.groups.set(id, group);
    if (fresh && bootstrap.campaign && voters.includes(this.options.nodeId)) {
      group.bootstrapCampaign = true;
      this.enqueue(() => group.core.campaign());
    }
    this.touched.add(group);
    this.schedule();
    return group;
  }

  /** Stops a group and deletes its durable state (bucket deleted, or this node no longer hosts it). */
  async closeGroup(id: string, options: { deleteData: boolean }): Promise<void> {
    const group = this.groups.get(id);
    if (!group) return;
    group.stopped = true;
    this.groups.delete(id);
    this.touched.delete(group);
    const gone = new CairnError("UNAVAILABLE", `group ${id} closed on this node`);
    // A proposal still pending may yet commit through another leader (this node left the group, or
    // stepped down before it did): its outcome is unknown, never a definite failure.
    const unknown = new CairnError("TIMEOUT", `group ${id} closed on this node before the outcome of the proposal was known; retry`);
    for (const p of group.pending.values()) p.reject(unknown);
    group.pending.clear();
    for (const r of group.reads.values()) r.reject(gone);
    for (const r of group.readsWaitingApply) r.reject(gone);
    group.reads.clear();
    group.readsWaitingApply.length = 0;
    await this.whenIdle();
    if (options.deleteData) await this.options.store.deleteGroup(id);
  }

  /** Proposes data on the group's leader (this node). Resolves with the state machine's result. */
  propose(groupId: string, data: Uint8Array): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.enqueue(() => {
        const group = this.groups.get(groupId);
        if (!group) return reject(new CairnError("UNAVAILABLE", `group ${groupId} is not hosted here`));
        try {
          const { index, term } = group.core.propose(data);
          const prior = group.pending.get(index);
          if (prior) prior.reject(new CairnError("PROPOSAL_DROPPED", "proposal superseded"));
          group.pending.set(index, { term, resolve, reject });
          this.touched.add(group);
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /**
   * Proposes a membership change on the group's leader (this node); resolves once it is applied here.
   * The core refuses (PROPOSAL_DROPPED) while another change is pending or before the term's first
   * entry committed; callers retry.
   */
  proposeConfChange(groupId: string, change: ConfChange): Promise<void> {
    return new Promise((resolve, reject) => {
      this.enqueue(() => {
        const group = this.groups.get(groupId);
        if (!group) return reject(new CairnError("UNAVAILABLE", `group ${groupId} is not hosted here`));
        try {
          const { index, term } = group.core.proposeConfChange(change);
          group.pending.set(index, { term, resolve: () => resolve(), reject });
          this.touched.add(group);
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /** Linearizable read barrier: resolves once this node has applied everything committed before the call. */
  readBarrier(groupId: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.enqueue(() => {
        const group = this.groups.get(groupId);
        if (!group) return reject(new CairnError("UNAVAILABLE", `group ${groupId} is not hosted here`));
        const n = ++this.readCounter;
        const context = new Uint8Array(8);
        new DataView(context.buffer).setFloat64(0, n);
        const key = String(n);
        try {
          group.core.readIndex(context);
        } catch (error) {
          return reject(error);
        }
        group.reads.set(key, { resolve, reject, index: -1 });
        this.touched.add(group);
      });
    });
  }

  transferLeader(groupId: string, to: string): void {
    this.enqueue(() => {
      const group = this.groups.get(groupId);
      if (!group) return;
      group.core.transferLeader(to);
      this.touched.add(group);
    });
  }

  /** Lifts recovering mode in every group (the cluster is brand new); bootstrapped groups campaign. */
  endRecovery(reason: string): void {
    this.enqueue(() => {
      for (const g of this.groups.values()) {
        if (!g.recovering) continue;
        g.recovering = false;
        g.core.endRecovery(reason);
        if (g.bootstrapCampaign) g.core.campaign();
        this.touched.add(g);
      }
    });
  }

  campaign(groupId: string): void {
    this.enqueue(() => {
      const group = this.groups.get(groupId);
      if (!group) return;
      group.core.campaign();
      this.touched.add(group);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    await this.whenIdle();
    const gone = new CairnError("UNAVAILABLE", "node shutting down");
    for (const g of this.groups.values()) {
      for (const p of g.pending.values()) p.reject(gone);
      for (const r of g.reads.values()) r.reject(gone);
      for (const r of g.readsWaitingApply) r.reject(gone);
    }
    this.groups.clear();
  }

  whenIdle(): Promise<void> {
    if (!this.writing && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // ---- the loop -------------------------------------------------------------------------------

  /** Freezes the loop as SIGSTOP would: timers stop, events queue up (bounded) until resume(). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const queued = this.queue.splice(0, this.queue.length);
    for (const action of queued) this.enqueue(action);
    this.schedule();
  }

  private tick(): void {
    if (this.paused) return;
    this.enqueue(() => {
      for (const g of this.groups.values()) {
        g.core.tick();
        this.touched.add(g);
      }
      this.onTick?.();
    });
  }

  private onRaftMessage(from: string, groupId: string, message: Message): void {
    const group = this.groups.get(groupId);
    if (!group) return; // not (yet) hosted here: Raft retries
    if (this.acceptFrom !== null && !this.acceptFrom(from, message)) return;
    group.lastMessageAt = Date.now();
    this.enqueue(() => {
      if (group.stopped) return;
      group.core.step(message);
      this.touched.add(group);
    });
  }

  /** Runs a core-mutating action now, or after the write in flight (bounded queue). */
  private enqueue(action: Action): void {
    if (this.closed || this.fatal) return;
    if (this.writing || this.paused) {
      if (this.queue.length >= this.options.limits.loopQueueMax) {
        // Overload: drop the action. Raft messages are retried by peers; proposals see a timeout.
        this.options.logger.warn("raft loop queue full: action dropped", { limit: this.options.limits.loopQueueMax });
        return;
      }
      this.queue.push(action);
      return;
    }
    try {
      action();
    } catch (error) {
      this.options.logger.error("raft action failed", { error: String(error) });
      if (error instanceof Error && error.name === "AssertionError") this.die(error);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.writing || this.closed || this.paused) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.pump();
    });
  }

  private die(error: unknown): void {
    if (this.fatal) return;
    this.fatal = error;
    this.options.logger.error("fatal raft loop error: node stops serving", { error: String(error) });
    this.onFatal?.(error);
  }

  private async pump(): Promise<void> {
    if (this.writing || this.fatal || this.paused) return;
    this.writing = true;
    try {
      for (;;) {
        const batch: { group: Group; ready: Ready }[] = [];
        for (const g of this.touched) {
          if (!g.stopped && g.core.hasReady()) batch.push({ group: g, ready: g.core.ready() });
        }
        this.touched.clear();
        if (batch.length === 0) break;
        await this.processBatch(batch);
        // Everything that arrived during the write enters the cores now, forming the next batch.
        const queued = this.queue.splice(0, this.queue.length);
        for (const action of queued) {
          try {
            action();
          } catch (error) {
            this.options.logger.error("raft action failed", { error: String(error) });
            if (error instanceof Error && error.name === "AssertionError") throw error;
          }
        }
      }
    } catch (error) {
      this.die(error);
    } finally {
      this.writing = false;
      if (this.queue.length > 0 && !this.fatal) {
        const queued = this.queue.splice(0, this.queue.length);
        for (const action of queued) this.enqueue(action);
      }
      if (!this.scheduled && this.touched.size === 0) {
        const waiters = this.idleWaiters.splice(0);
        for (const w of waiters) w();
      } else {
        this.schedule();
      }
    }
  }

  private async processBatch(batch: { group: Group; ready: Ready }[]): Promise<void> {
    const transport = this.options.transport;
    const writes: GroupWrite[] = [];
    let sync = false;
    for (const { group, ready } of batch) {
      for (const m of ready.messagesBeforePersist) transport.send(m.to, { kind: "raft", group: group.id, message: m });
      if (ready.hardState || ready.entries.length > 0 || ready.snapshot) {
        writes.push({ group: group.id, hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot });
        sync ||= ready.mustSync;
      }
    }
    if (writes.length > 0) await this.options.store.write(writes, { sync });
    // A core leaves recovering mode in step(), recording a vote in the hard state of the next Ready:
    // this one, now durable. Only then may the recovery be recorded.
    for (const { group } of batch) {
      if (group.recovering && !group.core.status().recovering) {
        group.recovering = false;
        this.recovery?.onRecovered(group.id, group.core.status().commit);
      }
    }
    const snapshotsDue: Group[] = [];
    for (const { group, ready } of batch) {
      if (group.stopped) continue;
      if (ready.snapshot) group.storage.applySnapshot(ready.snapshot);
      if (ready.entries.length > 0) group.storage.append(ready.entries);
      if (ready.hardState) group.storage.setHardState(ready.hardState);
      for (const m of ready.messages) {
        transport.send(m.to, { kind: "raft", group: group.id, message: m });
      }
      if (ready.softState) {
        group.leader = ready.softState.leader;
        group.role = ready.softState.role;
        group.sm.onSoftState?.(ready.softState);
      }
      if (ready.snapshot) this.installSnapshot(group, ready.snapshot);
      for (const entry of ready.committedEntries) this.applyEntry(group, entry);
      for (const rs of ready.readStates) this.onReadState(group, rs.index, rs.context);
      this.releaseReads(group);
      group.core.advance(ready);
      this.touched.add(group);
      if (group.applied - group.snapshotIndex >= this.options.limits.snapshotEntries) snapshotsDue.push(group);
    }
    for (const group of snapshotsDue) await this.takeSnapshot(group);
  }

  private installSnapshot(group: Group, snapshot: Snapshot): void {
    // A joining node first receives the bootstrap snapshot (index 0, no data): it only carries the
    // membership; the state machine keeps its initial image.
    if (snapshot.data.length > 0) {
      group.sm.restore(snapshot);
      this.options.logger.info("snapshot installed", { group: group.id, index: snapshot.metadata.index, bytes: snapshot.data.length });
    }
    group.applied = snapshot.metadata.index;
    group.snapshotIndex = snapshot.metadata.index;
    group.confState = snapshot.metadata.confState;
    group.sm.onConfChange?.(group.confState);
    // Proposals covered by the snapshot: their outcome is unknown here; the caller retries with
    // the same request id and the state machine's dedupe window answers it.
    for (const [index, p] of group.pending) {
      if (index <= snapshot.metadata.index) {
        p.reject(new CairnError("PROPOSAL_DROPPED", "outcome replaced by a snapshot; retry"));
        group.pending.delete(index);
      }
    }
  }

  private applyEntry(group: Group, entry: Entry): void {
    if (entry.index <= group.applied) return;
    assert(entry.index === group.applied + 1, `group ${group.id}: apply gap ${group.applied} -> ${entry.index}`);
    let result: unknown = undefined;
    if (entry.type === "conf") {
      const change = decodeConfChange(entry.data);
      group.confState = group.core.applyConfChange(change);
      group.sm.onConfChange?.(group.confState);
    } else if (entry.data.length > 0) {
      result = group.sm.apply(entry);
    }
    group.applied = entry.index;
    const p = group.pending.get(entry.index);
    if (p) {
      group.pending.delete(entry.index);
      if (p.term === entry.term) p.resolve(result);
      else p.reject(new CairnError("PROPOSAL_DROPPED", "leadership changed before the proposal committed"));
    }
  }

  private onReadState(group: Group, index: number, context: Uint8Array): void {
    const key = String(new DataView(context.buffer, context.byteOffset, context.byteLength).getFloat64(0));
    const read = group.reads.get(key);
    if (!read) return;
    group.reads.delete(key);
    read.index = index;
    group.readsWaitingApply.push(read);
  }

  private releaseReads(group: Group): void {
    if (group.readsWaitingApply.length === 0) return;
    let kept = 0;
    for (const r of group.readsWaitingApply) {
      if (r.index <= group.applied) r.resolve();
      else group.readsWaitingApply[kept++] = r;
    }
    group.readsWaitingApply.length = kept;
  }

  private async takeSnapshot(group: Group): Promise<void> {
    const index = group.applied;
    const data = group.sm.snapshot();
    const snapshot = group.storage.createSnapshot(index, group.confState, data);
    await this.options.store.saveSnapshot(group.id, snapshot);
    group.snapshotIndex = index;
    const keepFrom = index - this.options.limits.compactionKeepEntries;
    if (keepFrom > group.storage.firstIndex()) group.storage.compact(keepFrom);
  }
}
