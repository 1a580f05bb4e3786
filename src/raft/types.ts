/**
 * The public contract of the Raft core (after etcd-io/raft's RawNode). Pure data types: the core does
 * no I/O, reads no clock and draws randomness only from the injected `random` function.
 *
 * Driving contract (see src/node/driver.ts and test/sim):
 *   while (core.hasReady()) {
 *     const ready = core.ready();
 *     send(ready.messagesBeforePersist);             // leader appends/heartbeats: may go out at once
 *     persist(ready.snapshot, ready.entries, ready.hardState, { sync: ready.mustSync });
 *     storage.applySnapshot / storage.append / storage.setHardState   // the in-memory log mirror
 *     send(ready.messages);                          // only after the write above is durable
 *     if (ready.snapshot) stateMachine.restore(ready.snapshot.data);
 *     apply(ready.committedEntries);                 // in order
 *     serve(ready.readStates);                       // once applied >= readState.index
 *     core.advance(ready);                           // acknowledges durability of this ready
 *   }
 * Nothing else may call into the core between ready() and advance() except read-only status().
 */

/** Node identity: a short stable string such as "n1". Never reused after removal. */
export type NodeId = string;

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

export type EntryType = "normal" | "conf";

/** A log entry. `data` of a "conf" entry is an encoded ConfChange (see encodeConfChange). */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Application payload; empty for the leader's no-op entry. Must not be mutated. */
  readonly data: Uint8Array;
}

/** Must be persisted (fsynced) before any message in Ready.messages is sent. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
}

export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMetadata {
  /** Last log index the snapshot includes. */
  readonly index: number;
  /** Term of the entry at `index`. */
  readonly term: number;
  /** Membership as of `index`. */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /**
   * The application's state machine image. Opaque to the core. Empty for the index-0 snapshot a
   * MemoryStorage bootstraps with: a joining node receives it (it carries the initial membership)
   * and must restore empty data as the initial, empty state.
   */
  readonly data: Uint8Array;
}

export type ConfChangeType = "addVoter" | "addLearner" | "removeNode";

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

export type MessageType =
  | "app" // leader -> follower: append entries after (index, logTerm)
  | "appResp" // follower -> leader
  | "heartbeat"
  | "heartbeatResp"
  | "vote"
  | "voteResp"
  | "preVote"
  | "preVoteResp"
  | "snap" // leader -> follower: install snapshot
  | "timeoutNow" // leader -> transferee: campaign now
  | "readIndex" // follower -> leader: ask for a read index (context identifies the request)
  | "readIndexResp";

/**
 * A message between the cores of one group. All fields are always present (zero/empty when unused)
 * except `snapshot` and `context`, so a decoder can validate the shape field by field.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** app: term of the entry at `index`; vote/preVote: term of the candidate's last entry; appResp reject: term hint. */
  readonly logTerm: number;
  /** app: index preceding `entries`; vote/preVote: candidate's last index; appResp: match index (or rejected index); readIndexResp: the read index. */
  readonly index: number;
  readonly entries: readonly Entry[];
  /** The sender's commit index (app, heartbeat). */
  readonly commit: number;
  readonly reject: boolean;
  /** appResp reject: the follower's hint for the next probe (fast backtracking). */
  readonly rejectHint: number;
  readonly snapshot?: Snapshot;
  /**
   * readIndex/readIndexResp: the caller's read context. heartbeat/heartbeatResp: the leader's
   * read-index round (opaque, echoed back). vote/preVote: TRANSFER_CONTEXT marks a leadership-transfer
   * election, which voters grant despite the leader lease.
   */
  readonly context?: Uint8Array;
}

/** A linearizable read point: serve the read identified by `context` once applied >= index. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

/** Volatile state worth reporting; present in a Ready only when it changed. */
export interface SoftState {
  readonly leader: NodeId | null;
  readonly role: Role;
}

export interface Ready {
  readonly softState: SoftState | null;
  /** Present only when changed. Persist before sending `messages`. */
  readonly hardState: HardState | null;
  /** Append to the log, first truncating any existing suffix from entries[0].index on. */
  readonly entries: readonly Entry[];
  /** Install: replaces the log up to its index and the state machine. */
  readonly snapshot: Snapshot | null;
  /** Apply in order. Every one of them is durable on a quorum (this node included). */
  readonly committedEntries: readonly Entry[];
  /** Send only after hardState, entries and snapshot of this Ready are durable. */
  readonly messages: readonly Message[];
  /** The leader's appends and heartbeats: may be sent before this Ready is persisted (thesis 10.2.1). */
  readonly messagesBeforePersist: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** True when hardState/entries/snapshot must be fsynced (write with { sync: true }). */
  readonly mustSync: boolean;
}

/** Read-only view of the persisted log that the core reads through, like etcd's Storage. */
export interface RaftLogReader {
  /** The hard state and membership this node restarts with. */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [indexLow, indexHigh), at least one if any, total data size up to sizeBytesMax. Throws if compacted. */
  entries(indexLow: number, indexHigh: number, sizeBytesMax: number): readonly Entry[];
  /** Term of the entry at index; for firstIndex()-1 the snapshot's term. Throws RaftLogUnavailable otherwise. */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot (may have index 0 when none was taken). */
  snapshot(): Snapshot;
}

export interface RaftConfig {
  readonly id: NodeId;
  /** Ticks without hearing from a leader before campaigning; the actual timeout is random in [e, 2e). */
  readonly electionTicks: number;
  /** Ticks between leader heartbeats. Must be < electionTicks. */
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Seeded PRNG in [0, 1). The core's only source of randomness. */
  readonly random: () => number;
  /**
   * Last index the state machine had applied when this core was created (restart). The storage's
   * initialState().confState must be the membership as of this index; committed entries after it
   * are handed out again.
   */
  readonly applied: number;
  /** Limit on entry bytes in one "app" message. */
  readonly messageBytesMax: number;
  /** Limit on "app" messages in flight to one follower in replicate state. */
  readonly inflightMessagesMax: number;
  /** Limit on entry bytes in flight to one follower (0 = unlimited). */
  readonly inflightBytesMax: number;
  /** Limit on bytes of proposed but uncommitted entries; proposals beyond it are dropped (0 = unlimited). */
  readonly uncommittedBytesMax: number;
  /** Optional debug logger; the core never logs otherwise. */
  readonly logger?: (line: string) => void;
  /**
   * Start in recovering (no-vote) mode: this node may have lost durable state it had acknowledged (a
   * wiped or truncated disk), so it must not count as the voter it was. While recovering it neither
   * campaigns nor grants votes or pre-votes; it follows a leader as usual. Recovery ends when it has
   * accepted entries from the leader of its term T up to that leader's commit index, and that commit
   * index holds an entry of term T (so it covers everything committed before T). It then records a
   * vote for that leader in T (unless it already holds one), which makes it grant votes only in
   * terms > T: it may have voted in T, or earlier, and forgotten. Default false.
   */
  readonly recovering?: boolean;
}

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: "probe" | "replicate" | "snapshot";
  readonly recentActive: boolean;
  readonly isLearner: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  /** Only on the leader. */
  readonly progress: Readonly<Record<NodeId, ProgressStatus>> | null;
  readonly transferee: NodeId | null;
  /** In recovering (no-vote) mode: see RaftConfig.recovering. */
  readonly recovering: boolean;
}
