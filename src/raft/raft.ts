/**
 * Raft: the consensus state machine of one group (etcd raft.go). Internal: the public surface is
 * RaftCore (core.ts), which wraps this with ready()/advance(). Role-specific message handling lives
 * in step-leader.ts and step-follower.ts, elections in election.ts; this file holds the state, role
 * transitions, ticks, term handling, proposals, commit and membership.
 *
 * Time is tick(); randomness is config.random; nothing here does I/O.
 */
import { assert } from "../shared/assert.ts";
import { CairnError } from "../shared/errors.ts";
import { violated } from "./invariant.ts";
import { applyChange, encodeConfChange } from "./conf-change.ts";
import { validateConfig } from "./config.ts";
import { handleVoteRequest, hup } from "./election.ts";
import { RaftLog } from "./log.ts";
import { EMPTY_ENTRIES, isTransferVote, malformedReason } from "./messages.ts";
import { Progress } from "./progress.ts";
import { quorumActive, quorumIndex } from "./quorum.ts";
import { READ_INDEX_PENDING_MAX, ReadOnly } from "./read-only.ts";
import { stepCandidate, stepFollower } from "./step-follower.ts";
import { bcastHeartbeat, maybeSendAppend, handleReadIndexRequest, sendTimeoutNow, stepLeader } from "./step-leader.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  RaftConfig,
  RaftLogReader,
  ReadState,
  Role,
} from "./types.ts";

/**
 * Message types a leader may send before its own write is durable (thesis §10.2.1). "snap" is not
 * among them although it could be: drivers report a snapshot's delivery (reportSnapshot) for the
 * messages they send after persisting, and one place to look is simpler.
 */
const LEADER_SENDS: ReadonlySet<MessageType> = new Set<MessageType>(["app", "heartbeat", "timeoutNow", "readIndexResp"]);

/**
 * Messages only a member of our configuration may send us: the responses a leader or candidate
 * counts, and read requests. Everything else is accepted from any sender: a joining node does not
 * know its leader yet, and a node whose configuration lags must still answer the vote requests of
 * members it has not heard of, or a group can wedge (e.g. a voter added before it caught up, whose
 * vote the surviving members need). Removed nodes are kept from disrupting elections by PreVote and
 * the leader lease instead (thesis §4.2.3).
 */
const MEMBERS_ONLY: ReadonlySet<MessageType> = new Set<MessageType>(["appResp", "heartbeatResp", "voteResp", "preVoteResp", "readIndex"]);

/** Campaigns a leader deposed while handing off after its own removal may still run (Raft.lingerCampaigns). */
export const LINGER_CAMPAIGNS_MAX = 3;

/** Election timeouts after which an unacknowledged, unreported snapshot counts as lost. */
export const SNAPSHOT_TIMEOUT_ELECTIONS = 10;

export class Raft {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly log: RaftLog;

  term = 0;
  vote: NodeId | null = null;
  role: Role = "follower";
  lead: NodeId | null = null;

  /** Membership as of the last applied conf change (or snapshot). */
  voters: NodeId[] = [];
  learners: NodeId[] = [];

  /** Leader only: one Progress per voter and learner, this node included. */
  progress = new Map<NodeId, Progress>();
  /** Candidate/preCandidate: responses received in this election. */
  readonly votes = new Map<NodeId, boolean>();

  /** Outbox, drained by ready(): `msgs` after persisting, `msgsBeforePersist` (leader) at once. */
  msgs: Message[] = [];
  msgsBeforePersist: Message[] = [];
  readStates: ReadState[] = [];

  readonly readOnly = new ReadOnly();
  /** Read requests that arrived before the leader committed an entry of its term. */
  pendingReadIndex: { from: NodeId; context: Uint8Array }[] = [];

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;

  leadTransferee: NodeId | null = null;
  /** Index of the latest conf entry proposed by this leader; no other until it is applied. */
  pendingConfIndex = 0;
  /** Leader: payload bytes of proposed entries not yet committed (uncommittedBytesMax). */
  uncommittedSize = 0;
  /** Leader: new entries or a new commit index to broadcast at the next ready() (natural batching). */
  needsBcast = false;
  /** The term last acknowledged durable by advance(): leader messages go out early only in it. */
  durableTerm = 0;
  /** Leader removed from the voters: hands off, then steps down within an election timeout. */
  stepDownPending = false;
  /**
   * Campaigns left to a leader that removed itself from the voters (demoted to learner or removed)
   * and was deposed before its hand-off finished. It may still be needed to elect the next leader:
   * a voter that has not learned that the change committed still counts this node in its older
   * configuration, and is refused by it while this node's log is longer. So, as thesis §4.2.2 says
   * of servers outside their own configuration, it still campaigns (among the voters of its
   * configuration, not counting itself) and, if it wins, only hands leadership over. It stops once a
   * voter holds its whole log (timeoutNow sent), once it hears from a leader, when it is a voter
   * again, or after LINGER_CAMPAIGNS_MAX campaigns (a removed node hears no leader, so this bounds
   * how often it can disturb the group). Not persisted: after a restart it waits.
   */
  lingerCampaigns = 0;
  /**
   * Recovering (no-vote) mode, RaftConfig.recovering: this node may have lost acknowledged state, so
   * it neither campaigns nor votes until it has caught up with a leader (election.ts, maybeEndRecovery).
   */
  recovering = false;

  private readonly matchScratch: number[] = [];

  constructor(config: RaftConfig, storage: RaftLogReader) {
    validateConfig(config);
    this.id = config.id;
    this.config = config;
    const { hardState, confState } = storage.initialState();
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    if (hardState.commit > lastIndex) {
      throw new CairnError("CORRUPT_DATA", `corrupt data: commit ${hardState.commit} beyond last log index ${lastIndex}`);
    }
    if (config.applied > lastIndex) {
      throw new CairnError("CORRUPT_DATA", `corrupt data: applied ${config.applied} beyond last log index ${lastIndex}`);
    }
    // Entries before the first retained one are inside the snapshot the state machine restored.
    const applied = Math.max(config.applied, firstIndex - 1);
    this.log = new RaftLog(storage, Math.max(hardState.commit, applied), applied);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.durableTerm = hardState.term;
    this.voters = [...confState.voters];
    this.learners = [...confState.learners];
    this.becomeFollower(this.term, null);
    this.recovering = config.recovering === true;
    this.logLine(`started: term ${this.term} commit ${this.log.committed} applied ${applied} last ${lastIndex} voters [${this.voters}]`);
    if (this.recovering) this.logLine("recovering: no campaigns and no votes until caught up with a leader");
  }

  logLine(line: string): void {
    const logger = this.config.logger;
    if (logger !== undefined) logger(`raft ${this.id} t${this.term} ${this.role}: ${line}`);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners] };
  }

  isVoter(id: NodeId): boolean {
    return this.voters.includes(id);
  }

  isMember(id: NodeId): boolean {
    return this.voters.includes(id) || this.learners.includes(id);
  }

  /** A node that knows no membership at all: a joiner waiting for the leader's snapshot. */
  isBlank(): boolean {
    return this.voters.length === 0 && this.learners.length === 0 && this.log.lastIndex() === 0;
  }

  /** May campaign: a voter in its own configuration. */
  promotable(): boolean {
    return this.voters.includes(this.id);
  }

  // ---- Sending ---------------------------------------------------------------------------------

  send(m: Message): void {
    if (this.role === "leader" && LEADER_SENDS.has(m.type) && this.durableTerm === this.term) this.msgsBeforePersist.push(m);
    else this.msgs.push(m);
  }

  /** Builds a message with every field present (one object shape for the hot path). */
  message(
    type: MessageType,
    to: NodeId,
    fields: {
      term?: number;
      logTerm?: number;
      index?: number;
      entries?: readonly Entry[];
      commit?: number;
      reject?: boolean;
      rejectHint?: number;
      context?: Uint8Array | undefined;
    },
  ): Message {
    const m: Message = {
      type,
      from: this.id,
      to,
      term: fields.term ?? this.term,
      logTerm: fields.logTerm ?? 0,
      index: fields.index ?? 0,
      entries: fields.entries ?? EMPTY_ENTRIES,
      commit: fields.commit ?? 0,
      reject: fields.reject ?? false,
      rejectHint: fields.rejectHint ?? 0,
    };
    return fields.context === undefined ? m : { ...m, context: fields.context };
  }

  // ---- Role transitions ------------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = null;
    this.votes.clear();
    this.progress = new Map();
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.needsBcast = false;
    this.stepDownPending = false;
    this.readOnly.reset();
    this.pendingReadIndex = [];
  }

  private resetRandomizedElectionTimeout(): void {
    const e = this.config.electionTicks;
    const r = this.config.random();
    const extra = Math.floor((r >= 0 && r < 1 ? r : 0) * e);
    this.randomizedElectionTimeout = e + Math.min(extra, e - 1);
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.role = "follower";
    this.lead = lead;
  }

  becomePreCandidate(): void {
    assert(this.role !== "leader", "raft: leader cannot become pre-candidate");
    // Term and vote are unchanged: a pre-vote only asks whether an election could be won. The known
    // leader is forgotten, otherwise peers that still hear from it would refuse us forever
    // (etcd-io/etcd#8334).
    this.role = "preCandidate";
    this.lead = null;
    this.votes.clear();
  }

  becomeCandidate(): void {
    assert(this.role !== "leader", "raft: leader cannot become candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  becomeLeader(): void {
    assert(this.role === "candidate", "raft: only a candidate becomes leader");
    this.reset(this.term);
    this.role = "leader";
    this.lead = this.id;
    const lastIndex = this.log.lastIndex();
    // Peers start inactive: check quorum must hear from them within the first election timeout.
    for (const id of this.voters) this.progress.set(id, this.newProgress(lastIndex + 1, false, false));
    for (const id of this.learners) this.progress.set(id, this.newProgress(lastIndex + 1, true, false));
    const self = this.progress.get(this.id);
    assert(self !== undefined || !this.isMember(this.id), "raft: leader without progress for itself");
    if (self !== undefined) {
      // Only what is durable here counts toward a quorum; the rest is acknowledged by advance().
      self.maybeUpdate(Math.min(this.log.stableLastIndex(), lastIndex));
      self.becomeReplicate();
      self.recentActive = true;
    }
    // No conf change may be proposed before everything up to here is applied (raft-dev 2015).
    this.pendingConfIndex = lastIndex;
    // The no-op of this term: earlier entries commit only through an entry of the current term.
    this.appendEntry("normal", new Uint8Array(0));
    this.logLine(`became leader at term ${this.term}`);
    // Elected while lingering (no voter): lead only to pass the log on to a voter.
    if (!this.isVoter(this.id)) this.handOffAfterRemoval();
  }

  newProgress(next: number, isLearner: boolean, recentActive: boolean): Progress {
    const pr = new Progress(next, this.config.inflightMessagesMax, this.config.inflightBytesMax, isLearner);
    pr.recentActive = recentActive;
    return pr;
  }

  // ---- Ticks -----------------------------------------------------------------------------------

  tick(): void {
    if (this.role === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed < this.randomizedElectionTimeout) return;
    if (this.promotable() || this.lingerCampaigns > 0) {
      this.electionElapsed = 0;
      this.hup(false);
    } else if (this.role !== "follower") {
      // The last lingering campaign went unanswered: wait as a follower, not as a candidate.
      this.becomeFollower(this.term, null);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) {
        const active = quorumActive(this.voters, (id) => id === this.id || this.progress.get(id)?.recentActive === true);
        if (!active) {
          this.logLine("stepped down: no quorum heard within an election timeout (check quorum)");
          this.becomeFollower(this.term, null);
          return;
        }
        for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
      }
      if (this.stepDownPending) {
        this.logLine("stepping down: removed from the voters, hand-off did not finish in an election timeout");
        this.becomeFollower(this.term, null);
        return;
      }
      if (this.leadTransferee !== null) {
        this.logLine(`aborted transfer to ${this.leadTransferee}: election timeout passed`);
        this.leadTransferee = null;
      }
    }
    this.tickSnapshots();
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      bcastHeartbeat(this, this.readOnly.lastPendingContext());
    }
  }

  /**
   * A follower stays in snapshot state until the snapshot is acknowledged or reported
   * (reportSnapshot). If neither happens (a lost message the driver never reported), give up after
   * SNAPSHOT_TIMEOUT_ELECTIONS election timeouts and probe again, so it cannot be stranded.
   */
  private tickSnapshots(): void {
    const timeout = SNAPSHOT_TIMEOUT_ELECTIONS * this.config.electionTicks;
    for (const [id, pr] of this.progress) {
      if (pr.state !== "snapshot" || ++pr.snapshotElapsed < timeout) continue;
      this.logLine(`snapshot ${pr.pendingSnapshot} to ${id} neither acknowledged nor reported: probing again`);
      pr.pendingSnapshot = 0;
      pr.becomeProbe();
    }
  }

  // ---- Elections (election.ts) ---------------------------------------------------------------

  /** Starts an election if allowed (pre-vote first unless this is a leadership transfer). */
  hup(transfer: boolean): void {
    hup(this, transfer);
  }

  // ---- Step ------------------------------------------------------------------------------------

  step(m: Message): void {
    const reason = malformedReason(m);
    if (reason !== null) {
      this.logLine(`dropped malformed message: ${reason}`);
      return;
    }
    if (m.to !== this.id || m.from === this.id) {
      this.logLine(`dropped ${m.type} addressed ${m.from} -> ${m.to}`);
      return;
    }
    if (MEMBERS_ONLY.has(m.type) && !this.isMember(m.from)) {
      this.logLine(`dropped ${m.type} from unknown node ${m.from}`);
      return;
    }

    if (m.term > this.term) {
      if (m.type === "vote" || m.type === "preVote") {
        // Leader lease (thesis §4.2.3): while we hear from a leader, a disruptive (e.g. removed or
        // partitioned) node cannot start an election, unless the leader itself asked (transfer).
        const inLease = this.config.checkQuorum && this.lead !== null && this.electionElapsed < this.config.electionTicks;
        if (inLease && !isTransferVote(m)) {
          this.logLine(`ignored ${m.type} from ${m.from} at term ${m.term}: leader lease`);
          return;
        }
      }
      if (m.type === "preVote") {
        // Never change term on a pre-vote.
      } else if (m.type === "preVoteResp" && !m.reject) {
        // A granted pre-vote carries the future term we asked for; the pre-candidate keeps its term.
      } else {
        this.logLine(`stepping to term ${m.term} on ${m.type} from ${m.from}`);
        const fromLeader = m.type === "app" || m.type === "heartbeat" || m.type === "snap";
        this.becomeFollower(m.term, fromLeader ? m.from : null);
      }
    } else if (m.term < this.term) {
      if (m.type === "heartbeat" || m.type === "app" || m.type === "snap") {
        // A leader of an older term: we may be stranded at a higher term (partitioned while
        // campaigning) that its heartbeats cannot reach. Tell it our term so it steps down and an
        // election at a higher term lets us rejoin (etcd; CockroachDB leader_step_down_stranded_peer).
        // etcd-io/raft answers only with CheckQuorum or PreVote, counting on the stranded node's
        // MsgVote to raise the leader's term otherwise; but a member demoted or replaced while cut
        // off campaigns only among its stale configuration, which may not include the new leader,
        // and then neither side ever hears the other (found by the property test, seed 1189730092).
        this.send(this.message("appResp", m.from, {}));
      } else if (m.type === "preVote") {
        this.send(this.message("preVoteResp", m.from, { reject: true }));
      }
      return;
    }

    if (m.type === "vote" || m.type === "preVote") {
      handleVoteRequest(this, m);
      return;
    }
    switch (this.role) {
      case "leader":
        stepLeader(this, m);
        break;
      case "follower":
        stepFollower(this, m);
        break;
      case "candidate":
      case "preCandidate":
        stepCandidate(this, m);
        break;
    }
  }

  // ---- Leader: proposals and commit ------------------------------------------------------------

  /** Appends one entry at the next index of the current term (leader). */
  appendEntry(type: "normal" | "conf", data: Uint8Array): { index: number; term: number } {
    const index = this.log.lastIndex() + 1;
    this.log.appendOne({ term: this.term, index, type, data });
    this.uncommittedSize += data.byteLength;
    this.needsBcast = true;
    return { index, term: this.term };
  }

  notLeader(): CairnError {
    return new CairnError("NOT_LEADER", undefined, { leaderHint: this.lead });
  }

  propose(data: Uint8Array): { index: number; term: number } {
    if (!(data instanceof Uint8Array)) throw new TypeError("propose: data must be a Uint8Array");
    if (this.role !== "leader") throw this.notLeader();
    if (this.leadTransferee !== null || this.stepDownPending) throw new CairnError("PROPOSAL_DROPPED", "proposal dropped: leadership transfer in progress");
    const max = this.config.uncommittedBytesMax;
    const size = data.byteLength;
    // An entry is always accepted when nothing is uncommitted, so one large entry cannot wedge us.
    if (max > 0 && size > 0 && this.uncommittedSize > 0 && this.uncommittedSize + size > max) {
      throw new CairnError("PROPOSAL_DROPPED", "proposal dropped: too many uncommitted bytes");
    }
    return this.appendEntry("normal", data);
  }

  proposeConfChange(change: ConfChange): { index: number; term: number } {
    const data = encodeConfChange(change);
    if (this.role !== "leader") throw this.notLeader();
    if (this.leadTransferee !== null || this.stepDownPending) throw new CairnError("PROPOSAL_DROPPED", "proposal dropped: leadership transfer in progress");
    if (!this.committedEntryInCurrentTerm()) {
      throw new CairnError("PROPOSAL_DROPPED", "conf change dropped: this term's first entry is not committed yet");
    }
    if (this.pendingConfIndex > this.log.applied) {
      throw new CairnError("PROPOSAL_DROPPED", "conf change dropped: another conf change is pending");
    }
    const next = applyChange({ voters: this.voters, learners: this.learners }, change);
    if (next === null) throw new CairnError("PROPOSAL_DROPPED", `conf change dropped: ${change.type} ${change.nodeId} changes nothing or removes the last voter`);
    const result = this.appendEntry("conf", data);
    this.pendingConfIndex = result.index;
    return result;
  }

  committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /** Advances the commit index to what a quorum of voters has durably (figure 8: own term only). */
  maybeCommit(): boolean {
    const scratch = this.matchScratch;
    scratch.length = 0;
    for (const id of this.voters) scratch.push(this.progress.get(id)?.match ?? 0);
    const index = quorumIndex(scratch);
    if (index <= this.log.committed || this.log.term(index) !== this.term) return false;
    const firstInTerm = !this.committedEntryInCurrentTerm();
    this.log.commitTo(index);
    this.needsBcast = true;
    if (firstInTerm && this.pendingReadIndex.length > 0) {
      const pending = this.pendingReadIndex;
      this.pendingReadIndex = [];
      for (const request of pending) handleReadIndexRequest(this, request.from, request.context);
    }
    return true;
  }

  /** advance(): this leader's own write is durable up to `index` (checked by term in Unstable). */
  selfAck(index: number): void {
    const self = this.progress.get(this.id);
    if (self === undefined) return;
    if (self.maybeUpdate(index)) this.maybeCommit();
  }

  // ---- Reads and transfer ----------------------------------------------------------------------

  readIndex(context: Uint8Array): void {
    if (!(context instanceof Uint8Array)) throw new TypeError("readIndex: context must be a Uint8Array");
    if (this.role === "leader") {
      handleReadIndexRequest(this, this.id, context);
      return;
    }
    if (this.lead === null) throw this.notLeader();
    this.send(this.message("readIndex", this.lead, { context }));
  }

  queuePendingReadIndex(from: NodeId, context: Uint8Array): void {
    if (this.pendingReadIndex.length >= READ_INDEX_PENDING_MAX) {
      this.logLine("dropped read index request: too many pending");
      return;
    }
    this.pendingReadIndex.push({ from, context });
  }

  transferLeader(to: NodeId): void {
    if (this.role !== "leader") throw this.notLeader();
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isLearner) {
      this.logLine(`ignored transfer to ${to}: not a voter`);
      return;
    }
    if (this.leadTransferee !== null) {
      if (this.leadTransferee === to) return;
      this.logLine(`aborted transfer to ${this.leadTransferee} for ${to}`);
      this.leadTransferee = null;
    }
    if (to === this.id) return;
    // The transfer must finish within one election timeout (checked in tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = to;
    this.logLine(`transferring leadership to ${to}`);
    if (pr.match === this.log.lastIndex()) sendTimeoutNow(this, to);
    else maybeSendAppend(this, to, pr, true);
  }

  // ---- Membership ------------------------------------------------------------------------------

  applyConfChange(change: ConfChange): ConfState {
    const next = applyChange({ voters: this.voters, learners: this.learners }, change);
    if (next === null) {
      this.logLine(`conf change ${change.type} ${change.nodeId} is a no-op`);
      return this.confState();
    }
    const wasVoter = this.isVoter(this.id);
    this.setConf(next);
    if (this.isVoter(this.id)) this.lingerCampaigns = 0;
    else if (wasVoter && this.role === "leader") this.lingerCampaigns = LINGER_CAMPAIGNS_MAX;
    this.logLine(`applied conf change ${change.type} ${change.nodeId}: voters [${this.voters}] learners [${this.learners}]`);
    if (this.role === "leader") {
      if (!this.isVoter(this.id)) {
        this.handOffAfterRemoval();
      } else {
        if (this.leadTransferee !== null && !this.isVoter(this.leadTransferee)) this.leadTransferee = null;
        this.maybeCommit();
        this.needsBcast = true;
      }
    }
    return this.confState();
  }

  /**
   * A leader removed or demoted by a change it applied must stop leading (StepDownOnRemoval,
   * etcd-io/raft#83), but stepping down at once can wedge a group: the remaining voters may not know
   * the change committed yet, so they still need this node's vote, which it refuses when its log is
   * longer (the classic 2-voter case, etcd-io/raft README). So, as in thesis §4.2.2, it leads on
   * without counting itself (it is no voter) only to hand over: it transfers leadership to the most
   * up-to-date voter, refusing proposals meanwhile, and steps down when that succeeds or after one
   * election timeout at the latest.
   */
  private handOffAfterRemoval(): void {
    this.stepDownPending = true;
    this.electionElapsed = 0;
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (pr !== undefined && pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    this.logLine(`removed from the voters: handing leadership to ${best} before stepping down`);
    this.maybeCommit();
    this.needsBcast = true;
    if (best === null) return;
    this.leadTransferee = best;
    if (bestMatch === this.log.lastIndex()) sendTimeoutNow(this, best);
  }

  setConf(conf: ConfState): void {
    this.voters = [...conf.voters];
    this.learners = [...conf.learners];
    if (this.role !== "leader") return;
    const lastIndex = this.log.lastIndex();
    const members = new Set<NodeId>([...this.voters, ...this.learners]);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const isLearner = this.learners.includes(id);
      const pr = this.progress.get(id);
      if (pr === undefined) this.progress.set(id, this.newProgress(lastIndex + 1, isLearner, true)); // new members get one timeout of grace
      else pr.isLearner = isLearner;
    }
  }

  /** Cheap invariants checked after every input (assertions stay on in production). */
  assertInvariants(): void {
    const log = this.log;
    if (!(log.applied <= log.applying && log.applying <= log.committed)) violated(`raft ${this.id}: applied ${log.applied} applying ${log.applying} committed ${log.committed}`);
    if (!(log.committed <= log.lastIndex())) violated(`raft ${this.id}: committed ${log.committed} beyond last index ${log.lastIndex()}`);
    if (!((this.role === "leader") === (this.lead === this.id))) violated(`raft ${this.id}: role ${this.role} with leader ${this.lead}`);
    if (!(this.role === "leader" || this.progress.size === 0)) violated(`raft ${this.id}: progress kept as ${this.role}`);
    if (!(this.vote === null || this.term > 0)) violated(`raft ${this.id}: vote at term 0`);
  }
}
