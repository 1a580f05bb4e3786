/**
 * Safety checkers that watch a simulated cluster. They see every Ready (before it is acted upon),
 * every message sent, every durable disk change and every applied entry, and they are also called
 * once after every simulation step. The first violation throws a SafetyViolation, which stops the run
 * with the seed and a description; nothing is ever "logged and ignored".
 *
 * Invariants (Raft paper §5, RAFT-CHECKLIST.md):
 *  - election safety: at most one leader per term (ever, across crashes);
 *  - vote safety: a node grants at most one vote per term, even across crash-restart (so the vote was
 *    durable before the grant left);
 *  - log matching over the *durable* logs: an (index, term) always names the same entry with the same
 *    predecessor term, which by induction makes equal (index, term) imply equal prefixes;
 *  - durability of commitment: every entry a node reports committed is already durable on that node,
 *    and a leader reports it only once it is durable on a quorum of the voters (checklist items 2, 3);
 *  - committed entries are never truncated from any durable log;
 *  - leader completeness: a leader of term T holds every entry known committed before T began, which
 *    is also "committed entries survive crash-restart";
 *  - state machine safety: every replica applies the same entry at each index, and has the same state
 *    digest after it (snapshots included);
 *  - the Ready contract itself: contiguous committed entries from applied+1, mustSync set whenever
 *    entries, a snapshot, the term or the vote change, only leader appends/heartbeats before persist,
 *    the term never decreases and the vote never changes within a term.
 */
import type { Entry, Message, MessageType, Ready, Snapshot } from "../../src/raft/types.ts";
import { termAt, type DiskObserver, type DurableImage } from "./disk.ts";
import type { SimNode } from "./node.ts";
import { entryFingerprint } from "./state-machine.ts";

/** The leader's appends, heartbeats and snapshots (thesis 10.2.1), plus its replies that state only committed facts. */
const SENDABLE_BEFORE_PERSIST: ReadonlySet<MessageType> = new Set<MessageType>(["app", "heartbeat", "snap", "readIndexResp", "timeoutNow"]);

export class SafetyViolation extends Error {
  override readonly name = "SafetyViolation";
  constructor(
    readonly check: string,
    detail: string,
  ) {
    super(`${check}: ${detail}`);
  }
}

export interface CommittedRecord {
  readonly term: number;
  readonly fingerprint: number;
  readonly entry: Entry;
  /** The highest term any node had reached when this entry was first known committed. */
  readonly knownAtTerm: number;
}

export interface ClusterView {
  node(id: string): SimNode | undefined;
  nodes(): Iterable<SimNode>;
}

/** Receives newly committed puts (in index order) so the client-history checker knows the log. */
export interface CommitListener {
  committed(entry: Entry): void;
}

/** How many times each check actually ran on something; proves the checkers are not vacuous. */
export interface CheckCounts {
  leadersSeen: number;
  votesGranted: number;
  durableEntries: number;
  committedEntries: number;
  quorumChecks: number;
  leaderCompletenessChecks: number;
  appliedChecks: number;
  snapshotsChecked: number;
}

interface LogRecord {
  readonly fingerprint: number;
  readonly prevTerm: number;
  readonly node: string;
}

export class Checkers implements DiskObserver {
  readonly counts: CheckCounts = {
    leadersSeen: 0,
    votesGranted: 0,
    durableEntries: 0,
    committedEntries: 0,
    quorumChecks: 0,
    leaderCompletenessChecks: 0,
    appliedChecks: 0,
    snapshotsChecked: 0,
  };
  /** term -> the one leader of that term. */
  readonly leaders = new Map<number, string>();
  /** `${voter}@${term}` -> the candidate it voted for. */
  private readonly votes = new Map<string, string>();
  /** index -> term -> what that (index, term) names, in any durable log. */
  private readonly logTable = new Map<number, Map<number, LogRecord>>();
  /** index -> the committed entry (first observation wins; later ones must agree). */
  readonly committed = new Map<number, CommittedRecord>();
  committedMax = 0;
  /** index -> state machine digest after applying it. */
  private readonly digests = new Map<number, number>();
  /** `${node}@${term}#${incarnation}` already checked for leader completeness. */
  private readonly leadersChecked = new Set<string>();
  maxTerm = 0;
  /** Where the simulation is, for messages. */
  where = () => "";

  constructor(
    private readonly cluster: ClusterView,
    private readonly listener: CommitListener,
  ) {}

  fail(check: string, detail: string): never {
    const where = this.where();
    throw new SafetyViolation(check, where === "" ? detail : `${detail} (${where})`);
  }

  // --- Ready contract, commitment durability, leaders -------------------------------------------

  onReady(node: SimNode, ready: Ready): void {
    const previous = node.hardState;
    const hardState = ready.hardState;
    if (hardState !== null) {
      if (hardState.term < previous.term) this.fail("ready-contract", `${node.id} term went back from ${previous.term} to ${hardState.term}`);
      if (hardState.term === previous.term && previous.vote !== null && hardState.vote !== previous.vote) {
        this.fail("vote-safety", `${node.id} changed its vote in term ${hardState.term} from ${previous.vote} to ${hardState.vote}`);
      }
      if (hardState.term > this.maxTerm) this.maxTerm = hardState.term;
    }
    const termOrVoteChanged = hardState !== null && (hardState.term !== previous.term || hardState.vote !== previous.vote);
    if (!ready.mustSync && (ready.entries.length > 0 || ready.snapshot !== null || termOrVoteChanged)) {
      this.fail("ready-contract", `${node.id} Ready with entries/snapshot/term/vote but mustSync = false`);
    }
    // Only what a leader may send while its own write is in flight: messages that do not assert
    // anything about this node's durable state (never a vote, a vote grant or an append ack).
    for (const message of ready.messagesBeforePersist) {
      if (!SENDABLE_BEFORE_PERSIST.has(message.type)) this.fail("ready-contract", `${node.id} sends ${message.type} before persisting`);
    }
    if (ready.softState !== null && ready.softState.role === "leader") {
      // Checked here too, not only after the step: a leadership can begin and end within one step.
      const term = node.core!.status().term;
      this.recordLeader(node.id, term);
      this.checkNewLeader(node, term);
    }
    if (ready.committedEntries.length > 0) this.checkCommitted(node, ready);
  }

  private checkCommitted(node: SimNode, ready: Ready): void {
    const expectedFirst = (ready.snapshot !== null ? ready.snapshot.metadata.index : node.machine.applied) + 1;
    const entries = ready.committedEntries;
    for (let i = 0; i < entries.length; i++) {
      if (entries[i]!.index !== expectedFirst + i) {
        this.fail("ready-contract", `${node.id} committed entries start at ${entries[0]!.index} (expected ${expectedFirst}) or have a gap`);
      }
    }
    const status = node.core!.status();
    const isLeader = status.role === "leader";
    const voters = status.confState.voters;
    for (const entry of entries) {
      this.recordCommitted(entry, `${node.id} committedEntries`);
      // "Every one of them is durable on a quorum (this node included)": before this Ready's write.
      if (!durableHas(node.disk.durable, entry)) {
        this.fail("commit-durability", `${node.id} reports ${entry.index}/${entry.term} committed before it is on its own disk`);
      }
      if (isLeader) {
        this.counts.quorumChecks++;
        let durableOn = 0;
        for (const voter of voters) {
          const peer = this.cluster.node(voter);
          if (peer !== undefined && durableHas(peer.disk.durable, entry)) durableOn++;
        }
        if (durableOn * 2 <= voters.length) {
          this.fail(
            "commit-durability",
            `leader ${node.id} reports ${entry.index}/${entry.term} committed but it is durable on only ${durableOn} of ${voters.length} voters [${voters.join(",")}]`,
          );
        }
      }
    }
  }

  private recordLeader(id: string, term: number): void {
    const known = this.leaders.get(term);
    if (known === undefined) {
      this.leaders.set(term, id);
      this.counts.leadersSeen++;
    } else if (known !== id) {
      this.fail("election-safety", `two leaders in term ${term}: ${known} and ${id}`);
    }
  }

  /** Every message a node sends, before the network sees it. */
  onSend(node: SimNode, message: Message): void {
    if (message.from !== node.id) this.fail("ready-contract", `${node.id} sends a message from ${message.from}`);
    if (message.type === "voteResp" && !message.reject) {
      this.counts.votesGranted++;
      const key = `${message.from}@${message.term}`;
      const known = this.votes.get(key);
      if (known === undefined) this.votes.set(key, message.to);
      else if (known !== message.to) this.fail("vote-safety", `${message.from} granted two votes in term ${message.term}: ${known} and ${message.to}`);
    }
  }

  // --- Once per step ------------------------------------------------------------------------------

  afterStep(): void {
    for (const node of this.cluster.nodes()) {
      if (!node.alive || node.core === null) continue;
      const status = node.core.status();
      if (status.term > this.maxTerm) this.maxTerm = status.term;
      if (status.role !== "leader") continue;
      this.recordLeader(node.id, status.term);
      this.checkNewLeader(node, status.term);
    }
  }

  private checkNewLeader(node: SimNode, term: number): void {
    const key = `${node.id}@${term}#${node.incarnation}`;
    if (this.leadersChecked.has(key)) return;
    this.leadersChecked.add(key);
    this.checkLeaderCompleteness(node, term);
  }

  /** A leader of `term` must hold every entry known committed before `term` began. */
  private checkLeaderCompleteness(node: SimNode, term: number): void {
    this.counts.leaderCompletenessChecks++;
    const image = node.disk.durable;
    const snapIndex = image.snapshot.metadata.index;
    for (let index = this.committedMax; index > snapIndex; index--) {
      const record = this.committed.get(index);
      if (record === undefined || record.knownAtTerm >= term) continue;
      const have = termAt(image, index);
      if (have !== record.term) {
        this.fail(
          "leader-completeness",
          `leader ${node.id} of term ${term} lacks committed entry ${index}/${record.term} (known committed at term ${record.knownAtTerm}; its durable log has ${have === undefined ? "nothing" : `term ${have}`} there)`,
        );
      }
    }
  }

  // --- Applied state ------------------------------------------------------------------------------

  /** After node.machine applied `entry` (also while replaying after a restart). */
  onApplied(node: SimNode, entry: Entry): void {
    this.counts.appliedChecks++;
    this.recordCommitted(entry, `${node.id} applied`);
    this.checkDigest(node, entry.index);
  }

  onSnapshotRestored(node: SimNode): void {
    this.counts.snapshotsChecked++;
    this.checkDigest(node, node.machine.applied);
  }

  private checkDigest(node: SimNode, index: number): void {
    const digest = node.machine.digest;
    const known = this.digests.get(index);
    if (known === undefined) this.digests.set(index, digest);
    else if (known !== digest) this.fail("state-machine-safety", `${node.id} state after index ${index} differs from another replica's`);
  }

  private recordCommitted(entry: Entry, source: string): void {
    const fingerprint = entryFingerprint(entry);
    const known = this.committed.get(entry.index);
    if (known !== undefined) {
      if (known.term !== entry.term || known.fingerprint !== fingerprint) {
        this.fail("state-machine-safety", `${source} ${entry.index}/${entry.term}, but ${entry.index}/${known.term} was committed before`);
      }
      return;
    }
    this.counts.committedEntries++;
    this.committed.set(entry.index, { term: entry.term, fingerprint, entry, knownAtTerm: this.maxTerm });
    if (entry.index > this.committedMax) this.committedMax = entry.index;
    this.listener.committed(entry);
  }

  // --- Durable logs (DiskObserver) ----------------------------------------------------------------

  durableAppend(node: string, entries: readonly Entry[], prevTerm: number): void {
    let prev = prevTerm;
    for (const entry of entries) {
      this.counts.durableEntries++;
      const fingerprint = entryFingerprint(entry);
      let byTerm = this.logTable.get(entry.index);
      if (byTerm === undefined) {
        byTerm = new Map();
        this.logTable.set(entry.index, byTerm);
      }
      const known = byTerm.get(entry.term);
      if (known === undefined) {
        byTerm.set(entry.term, { fingerprint, prevTerm: prev, node });
      } else if (known.fingerprint !== fingerprint) {
        this.fail("log-matching", `${node} and ${known.node} hold different entries at ${entry.index}/${entry.term}`);
      } else if (known.prevTerm !== prev) {
        this.fail(
          "log-matching",
          `${node} and ${known.node} agree on ${entry.index}/${entry.term} but not on the term before it (${prev} vs ${known.prevTerm})`,
        );
      }
      prev = entry.term;
    }
  }

  durableTruncate(node: string, removed: readonly Entry[]): void {
    for (const entry of removed) {
      const record = this.committed.get(entry.index);
      if (record !== undefined && record.term === entry.term) {
        this.fail("committed-lost", `${node} truncates committed entry ${entry.index}/${entry.term} from its durable log`);
      }
    }
  }

  durableSnapshot(node: string, snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    const record = this.committed.get(index);
    if (index > 0 && record !== undefined && record.term !== snapshot.metadata.term) {
      this.fail("state-machine-safety", `${node} holds a snapshot at ${index}/${snapshot.metadata.term} but ${index}/${record.term} is committed`);
    }
  }

  contractViolation(node: string, what: string): void {
    this.fail("ready-contract", `${node}: ${what}`);
  }

  durabilityViolation(node: string, what: string): void {
    this.fail("durability", `${node}: ${what}`);
  }
}

/** True when `entry` is in the durable image (or covered by its snapshot, which holds only committed state). */
export function durableHas(image: DurableImage, entry: Entry): boolean {
  if (entry.index <= image.snapshot.metadata.index) return true;
  return termAt(image, entry.index) === entry.term;
}
