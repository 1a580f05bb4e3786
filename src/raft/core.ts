/**
 * RaftCore: the public face of the consensus core (etcd RawNode). Synchronous and single-owner:
 * feed it ticks, messages and proposals, then drain ready() and acknowledge with advance().
 *
 * Ready contract (see types.ts for the driver loop):
 * - `messagesBeforePersist` (leader appends/heartbeats) may be sent at once;
 * - `snapshot`, `entries` and `hardState` are written (fsynced when `mustSync`) before `messages`
 *   are sent;
 * - `committedEntries` are durable on a quorum, this node included, and are applied in order;
 * - advance(ready) acknowledges that all of it is durable and applied. Only then does a leader
 *   count its own log toward the commit quorum, so nothing is reported committed before it is
 *   durable, single-node groups included (etcd-io/etcd#14370).
 *
 * Everything handed out by ready() is marked in progress, so calls between ready() and advance()
 * (e.g. applyConfChange while applying) are safe: later output goes to the next Ready.
 */
import { assert } from "../shared/assert.ts";
import { reportSnapshot, reportUnreachable, bcastAppend } from "./step-leader.ts";
import { endRecovery } from "./election.ts";
import { Raft } from "./raft.ts";
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, ProgressStatus, RaftConfig, RaftLogReader, RaftStatus, ReadState, Ready, Role } from "./types.ts";

/** Limit on payload bytes of committed entries handed out in one Ready (at least one entry). */
export const COMMITTED_BYTES_PER_READY_MAX = 64 * 1024 * 1024;

const NO_ENTRIES: readonly Entry[] = Object.freeze([]) as readonly Entry[];
const NO_MESSAGES: readonly Message[] = Object.freeze([]) as readonly Message[];
const NO_READ_STATES: readonly ReadState[] = Object.freeze([]) as readonly ReadState[];

export const EMPTY_READY: Ready = Object.freeze({
  softState: null,
  hardState: null,
  entries: NO_ENTRIES,
  snapshot: null,
  committedEntries: NO_ENTRIES,
  messages: NO_MESSAGES,
  messagesBeforePersist: NO_MESSAGES,
  readStates: NO_READ_STATES,
  mustSync: false,
});

export class RaftCore {
  private readonly r: Raft;
  /** The hard state last handed out in a Ready (what the node has written or is writing). */
  private prevHardState: HardState;
  private prevLeader: NodeId | null;
  private prevRole: Role;

  constructor(config: RaftConfig, storage: RaftLogReader) {
    this.r = new Raft(config, storage);
    this.prevHardState = this.r.hardState();
    this.prevLeader = this.r.lead;
    this.prevRole = this.r.role;
  }

  /** Advances logical time by one tick (election and heartbeat timers). */
  tick(): void {
    this.r.tick();
    this.r.assertInvariants();
  }

  /**
   * Feeds a message from a peer. Never throws on bad peer input: malformed, misaddressed, stale or
   * unknown-sender messages are dropped (and logged through config.logger).
   */
  step(message: Message): void {
    this.r.step(message);
    this.r.assertInvariants();
  }

  /**
   * Leader only: appends `data` as a new entry and returns its index and term. Throws CairnError
   * NOT_LEADER (with leaderHint) elsewhere, PROPOSAL_DROPPED during a leadership transfer or when
   * uncommittedBytesMax would be exceeded. The entry may still be lost if leadership changes before
   * it commits: watch committedEntries for (index, term).
   */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.r.propose(data);
  }

  /**
   * Leader only: proposes one membership change. PROPOSAL_DROPPED while another change is pending
   * (not yet applied), before this term's no-op is committed, during a transfer, or when the change
   * is a no-op or would remove the last voter.
   */
  proposeConfChange(change: ConfChange): { index: number; term: number } {
    return this.r.proposeConfChange(change);
  }

  /**
   * Called by the application when it applies a committed "conf" entry (decodeConfChange(entry.data)).
   * Returns the membership now in effect. A leader removed or demoted by the change steps down.
   */
  applyConfChange(change: ConfChange): ConfState {
    return this.r.applyConfChange(change);
  }

  /**
   * Asks for a linearizable read point; the answer arrives later in Ready.readStates with the same
   * context (contexts must be unique among pending reads). A follower forwards the request to the
   * leader. Throws NOT_LEADER when no leader is known. A leader that cannot confirm its leadership
   * with a quorum never answers (the node times the read out).
   */
  readIndex(context: Uint8Array): void {
    this.r.readIndex(context);
  }

  /** Starts an election now (pre-vote first when enabled). No-op on a leader or a non-voter. */
  campaign(): void {
    this.r.hup(false);
  }

  /**
   * Leader only (NOT_LEADER elsewhere): hands leadership to voter `to` once its log is caught up
   * (timeoutNow). Proposals are dropped until the transfer ends; it is aborted after an election
   * timeout.
   */
  transferLeader(to: NodeId): void {
    this.r.transferLeader(to);
  }

  /**
   * Lifts recovering mode (RaftConfig.recovering) without catching up, for a node that has learned it
   * cannot have lost anything, e.g. every other voter reports a brand-new group. No-op otherwise.
   */
  endRecovery(reason: string): void {
    endRecovery(this.r, reason);
  }

  /** The transport could not deliver to `id`: the leader stops pipelining to it (probe). */
  reportUnreachable(id: NodeId): void {
    reportUnreachable(this.r, id);
  }

  /** Outcome of sending a snapshot to `id` (the snap message was delivered, or failed). */
  reportSnapshot(id: NodeId, ok: boolean): void {
    reportSnapshot(this.r, id, ok);
  }

  /** O(1): whether ready() would return anything. */
  hasReady(): boolean {
    const r = this.r;
    if (r.needsBcast) return true;
    if (r.msgs.length > 0 || r.msgsBeforePersist.length > 0 || r.readStates.length > 0) return true;
    if (r.lead !== this.prevLeader || r.role !== this.prevRole) return true;
    const hs = this.prevHardState;
    if (r.term !== hs.term || r.vote !== hs.vote || r.log.committed !== hs.commit) return true;
    const unstable = r.log.unstable;
    if (unstable.hasNextEntries() || unstable.hasNextSnapshot()) return true;
    return r.log.hasNextCommittedEntries();
  }

  /** Everything to persist, send and apply since the last ready(); see the contract above. */
  ready(): Ready {
    const r = this.r;
    if (r.needsBcast) {
      r.needsBcast = false;
      if (r.role === "leader") bcastAppend(r);
    }
    if (!this.hasReady()) return EMPTY_READY;
    const log = r.log;
    const unstable = log.unstable;

    const softChanged = r.lead !== this.prevLeader || r.role !== this.prevRole;
    const prev = this.prevHardState;
    const hardChanged = r.term !== prev.term || r.vote !== prev.vote || log.committed !== prev.commit;
    const hardState = hardChanged ? r.hardState() : null;
    const entries = unstable.hasNextEntries() ? unstable.nextEntries() : NO_ENTRIES;
    const snapshot = unstable.hasNextSnapshot() ? unstable.snapshot : null;
    const committedEntries = log.hasNextCommittedEntries() ? log.nextCommittedEntries(COMMITTED_BYTES_PER_READY_MAX) : NO_ENTRIES;
    const rd: Ready = {
      softState: softChanged ? { leader: r.lead, role: r.role } : null,
      hardState,
      entries,
      snapshot,
      committedEntries,
      messages: r.msgs.length > 0 ? r.msgs : NO_MESSAGES,
      messagesBeforePersist: r.msgsBeforePersist.length > 0 ? r.msgsBeforePersist : NO_MESSAGES,
      readStates: r.readStates.length > 0 ? r.readStates : NO_READ_STATES,
      mustSync: snapshot !== null || entries.length > 0 || (hardState !== null && (hardState.term !== prev.term || hardState.vote !== prev.vote)),
    };

    // Accept: everything above is now in progress.
    if (hardState !== null) this.prevHardState = hardState;
    this.prevLeader = r.lead;
    this.prevRole = r.role;
    unstable.acceptInProgress();
    if (committedEntries.length > 0) {
      const last = committedEntries[committedEntries.length - 1]!;
      log.acceptApplying(last.index);
      if (r.role === "leader" && r.uncommittedSize > 0) {
        let bytes = 0;
        for (let i = 0; i < committedEntries.length; i++) bytes += committedEntries[i]!.data.byteLength;
        r.uncommittedSize = bytes >= r.uncommittedSize ? 0 : r.uncommittedSize - bytes;
      }
    }
    if (r.msgs.length > 0) r.msgs = [];
    if (r.msgsBeforePersist.length > 0) r.msgsBeforePersist = [];
    if (r.readStates.length > 0) r.readStates = [];
    return rd;
  }

  /** Acknowledges that everything in `ready` is durable and its committed entries are applied. */
  advance(ready: Ready): void {
    if (ready === EMPTY_READY) return;
    const r = this.r;
    const log = r.log;
    if (ready.hardState !== null) r.durableTerm = ready.hardState.term;
    if (ready.snapshot !== null) {
      const index = ready.snapshot.metadata.index;
      log.unstable.stableSnapTo(index);
      log.appliedTo(index);
    }
    if (ready.entries.length > 0) {
      const last = ready.entries[ready.entries.length - 1]!;
      // stableTo checks (index, term): entries replaced since ready() are not acknowledged.
      if (log.unstable.stableTo(last.index, last.term) && r.role === "leader") r.selfAck(last.index);
    }
    if (ready.committedEntries.length > 0) {
      const last = ready.committedEntries[ready.committedEntries.length - 1]!;
      assert(last.index <= log.applying, "advance: committed entries were not handed out by ready()");
      log.appliedTo(last.index);
    }
    r.assertInvariants();
  }

  /** A snapshot of the core's state for metrics, tests and cluster status (read-only). */
  status(): RaftStatus {
    const r = this.r;
    let progress: Record<NodeId, ProgressStatus> | null = null;
    if (r.role === "leader") {
      progress = {};
      for (const [id, pr] of r.progress) {
        progress[id] = { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive, isLearner: pr.isLearner };
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      role: r.role,
      leader: r.lead,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: r.confState(),
      progress,
      transferee: r.leadTransferee,
      recovering: r.recovering,
    };
  }
}
