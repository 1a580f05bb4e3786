/**
 * One simulated node: a Raft core, its MemoryStorage mirror, a simulated disk, and the register state
 * machine, driven by the exact Ready contract of src/raft/types.ts:
 *
 *   ready() -> send messagesBeforePersist -> write the batch (the core is frozen until it completes)
 *   -> update the mirror -> send messages -> restore snapshot -> apply -> serve read states -> advance()
 *
 * Inputs (messages, ticks, client requests, transport reports) arriving while a write is in flight or
 * while the node is paused wait in a bounded inbox, exactly as a serialized driver queue would hold
 * them. A crash throws the core away; a restart rebuilds it from the durable disk image alone.
 */
import { CairnError } from "../../src/shared/errors.ts";
import { MemoryStorage, RaftCore, decodeConfChange } from "../../src/raft/index.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  RaftConfig,
  RaftStatus,
  ReadState,
  Ready,
} from "../../src/raft/types.ts";
import type { Prng } from "../support/prng.ts";
import { SimDisk, emptySnapshot, type DiskBatch, type DiskObserver, type DurableImage } from "./disk.ts";
import { RegisterMachine } from "./state-machine.ts";

/** Core settings shared by every node of a simulated cluster (id, random and applied are per node). */
export type CoreSettings = Omit<RaftConfig, "id" | "random" | "applied" | "logger">;

export type NodeInput =
  | { readonly kind: "message"; readonly message: Message }
  | { readonly kind: "tick" }
  | { readonly kind: "propose"; readonly data: Uint8Array; readonly done: (result: ProposeResult) => void }
  | { readonly kind: "confChange"; readonly change: ConfChange; readonly done: (result: ProposeResult) => void }
  | { readonly kind: "readIndex"; readonly context: Uint8Array; readonly done: (error: CairnError | null) => void }
  | { readonly kind: "transfer"; readonly to: string }
  | { readonly kind: "campaign" }
  | { readonly kind: "reportUnreachable"; readonly peer: string }
  | { readonly kind: "reportSnapshot"; readonly peer: string; readonly ok: boolean }
  | { readonly kind: "compact"; readonly keepEntries: number };

export type ProposeResult = { readonly ok: true; readonly index: number; readonly term: number } | { readonly ok: false; readonly error: CairnError };

/** What the node tells the cluster (and through it the checkers and clients). */
export interface NodeEnv {
  readonly diskObserver: DiskObserver;
  /** Called with every Ready before anything of it is acted upon. */
  onReady(node: SimNode, ready: Ready): void;
  send(node: SimNode, messages: readonly Message[], beforePersist: boolean): void;
  /** Ticks a synced write takes; 0 completes it at once. Unsynced writes always complete at once. */
  diskLatency(node: SimNode): number;
  /** Call node.diskDone(write) after `latency` steps. */
  scheduleDiskDone(node: SimNode, write: number, latency: number): void;
  /** After the state machine applied `entry` (replay = rebuilding after a restart, not news). */
  onApplied(node: SimNode, entry: Entry, replay: boolean): void;
  onSnapshotRestored(node: SimNode): void;
  onReadState(node: SimNode, readState: ReadState): void;
  /** applied >= readState.index: the read may be served from node.machine now. */
  onReadServed(node: SimNode, readState: ReadState): void;
  /** A fault counter or trace line. */
  note(node: SimNode, what: string): void;
  /** When set, receives the core's debug log lines (config.logger). */
  readonly coreLog?: ((node: SimNode, line: string) => void) | undefined;
}

/**
 * Deliberate driver bugs, off in every real run. The mutant tests switch one on and require the
 * checkers to catch it, which proves they are not vacuous.
 */
export interface SimBugs {
  /** Send Ready.messages (vote grants, append acks) before the write is durable. */
  readonly ackBeforePersist?: boolean;
  /** Persist the term but not the vote. */
  readonly forgetVotes?: boolean;
  /** fsync returns without syncing: nothing becomes durable until the OS flushes (a crash keeps a random prefix). */
  readonly fsyncLies?: boolean;
}

/** Inbox bound: a paused or slow node drops what does not fit, as a socket buffer would. */
const INBOX_MAX = 2_000;
/** Pending ticks are coalesced, as timers firing while the loop is busy would be. */
const PENDING_TICKS_MAX = 2;

export class SimNode {
  core: RaftCore | null = null;
  storage: MemoryStorage;
  readonly disk: SimDisk;
  machine = new RegisterMachine();
  /** Membership as of machine.applied. */
  confState: ConfState;
  alive = false;
  paused = false;
  /** Bumped on every restart, so events addressed to an old incarnation are recognised and dropped. */
  incarnation = 0;
  /** Number of the latest write begun (never reset, so completions are matched across restarts). */
  writeSeq = 0;
  /** The Ready whose write is in flight (the core is frozen until it completes). */
  private pending: { ready: Ready; batch: DiskBatch | null } | null = null;
  private inbox: NodeInput[] = [];
  private pendingTicks = 0;
  private waitingReads: ReadState[] = [];
  /** Last hard state handed out by the core (volatile view, for traces and checkers). */
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  /** Last hard state whose synced write completed (advance() told the core it is durable). */
  private syncedHardState: HardState = { term: 0, vote: null, commit: 0 };

  constructor(
    readonly id: string,
    private readonly settings: CoreSettings,
    private readonly env: NodeEnv,
    private readonly rng: Prng,
    initial: { confState: ConfState },
    private readonly bugs: SimBugs = {},
  ) {
    const image: DurableImage = {
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: emptySnapshot(initial.confState),
      entries: [],
      applyState: { applied: 0, confState: initial.confState },
    };
    this.disk = new SimDisk(id, image, env.diskObserver, bugs.fsyncLies === true);
    this.confState = initial.confState;
    this.storage = new MemoryStorage({ confState: initial.confState });
  }

  get busy(): boolean {
    return this.pending !== null;
  }

  status(): RaftStatus | null {
    return this.core === null ? null : this.core.status();
  }

  /** (Re)build the core, mirror and state machine from the durable image only. */
  start(): void {
    if (this.alive) throw new Error(`${this.id} is already running`);
    const image = this.disk.durable;
    const snapshot = image.snapshot;
    this.machine = new RegisterMachine();
    if (snapshot.data.length > 0) this.machine.restore(snapshot.data);
    if (this.machine.applied !== snapshot.metadata.index) {
      this.env.diskObserver.contractViolation(this.id, `snapshot at ${snapshot.metadata.index} holds state applied to ${this.machine.applied}`);
    }
    let confState = snapshot.metadata.confState;
    const applyState = image.applyState;
    if (applyState.applied > snapshot.metadata.index) {
      confState = applyState.confState;
      if (applyState.applied > image.hardState.commit) {
        this.env.diskObserver.contractViolation(this.id, `durable applied ${applyState.applied} > durable commit ${image.hardState.commit}`);
      }
      for (const entry of image.entries) {
        if (entry.index > applyState.applied) break;
        this.machine.apply(entry);
        this.env.onApplied(this, entry, true);
      }
      if (this.machine.applied !== applyState.applied) {
        this.env.diskObserver.contractViolation(this.id, `replay reached ${this.machine.applied}, durable applied is ${applyState.applied}`);
      }
    }
    this.confState = confState;
    this.storage = new MemoryStorage({ confState, hardState: image.hardState, snapshot, entries: image.entries.slice() });
    this.hardState = image.hardState;
    this.syncedHardState = image.hardState;
    this.incarnation++;
    const random = this.rng.fork(`core-${this.incarnation}`);
    const coreLog = this.env.coreLog;
    const config: RaftConfig = { ...this.settings, id: this.id, random: () => random.float(), applied: this.machine.applied };
    this.core = new RaftCore(coreLog === undefined ? config : { ...config, logger: (line) => coreLog(this, line) }, this.storage);
    this.alive = true;
    this.paused = false;
    this.pending = null;
    this.inbox = [];
    this.pendingTicks = 0;
    this.waitingReads = [];
  }

  /** Power loss: the core and every volatile thing go; the disk keeps what it keeps. */
  crash(): string {
    const outcome = this.disk.crash(this.rng.fork(`crash-${this.incarnation}`));
    // What the driver acknowledged to the core as durable (a synced term and vote) must survive.
    // The disk may be ahead of it (a later batch landed), never behind.
    const kept = this.disk.durable.hardState;
    const acked = this.syncedHardState;
    if (kept.term < acked.term || (kept.term === acked.term && acked.vote !== null && kept.vote !== acked.vote)) {
      this.env.diskObserver.durabilityViolation(
        this.id,
        `the crash lost term ${acked.term} vote ${acked.vote ?? "-"} acknowledged as durable (disk has term ${kept.term} vote ${kept.vote ?? "-"})`,
      );
    }
    this.core = null;
    this.alive = false;
    this.paused = false;
    this.pending = null;
    this.inbox = [];
    this.pendingTicks = 0;
    this.waitingReads = [];
    return outcome;
  }

  /** Hands an input to the node: handled now, queued while busy or paused, dropped when down. */
  input(input: NodeInput): boolean {
    if (!this.alive) return false;
    if (input.kind === "tick") {
      if (this.paused) return false; // a stopped process runs no timers
      if (this.pending !== null) {
        if (this.pendingTicks >= PENDING_TICKS_MAX) return false;
        this.pendingTicks++;
      }
    }
    if (this.pending !== null || this.paused || this.inbox.length > 0) {
      if (this.inbox.length >= INBOX_MAX) return false;
      this.inbox.push(input);
      if (!this.paused && this.pending === null) this.run();
      return true;
    }
    this.handle(input);
    this.run();
    return true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.alive) this.run();
  }

  /**
   * Write number `write` has completed. Stale completions (a write lost in a crash, or one already
   * completed early) are recognised by their number and ignored.
   */
  diskDone(write: number): void {
    if (!this.alive || this.pending === null || write !== this.writeSeq) return;
    this.finishReady();
    this.run();
  }

  /** Drains Readies and the inbox until blocked on a write, paused, or idle. */
  run(): void {
    while (this.alive && !this.paused && this.pending === null) {
      const core = this.core!;
      if (core.hasReady()) {
        this.processReady(core);
        continue;
      }
      const next = this.inbox.shift();
      if (next === undefined) return;
      if (next.kind === "tick") this.pendingTicks = Math.max(0, this.pendingTicks - 1);
      this.handle(next);
    }
  }

  private handle(input: NodeInput): void {
    const core = this.core!;
    switch (input.kind) {
      case "message":
        core.step(input.message);
        return;
      case "tick":
        core.tick();
        return;
      case "propose":
        input.done(this.tryPropose(() => core.propose(input.data)));
        return;
      case "confChange":
        input.done(this.tryPropose(() => core.proposeConfChange(input.change)));
        return;
      case "readIndex":
        try {
          core.readIndex(input.context);
          input.done(null);
        } catch (error) {
          input.done(asCairnError(error));
        }
        return;
      case "transfer":
        // The node may have lost leadership while the request waited in its inbox.
        try {
          core.transferLeader(input.to);
        } catch (error) {
          this.env.note(this, `transfer-refused:${asCairnError(error).code}`);
        }
        return;
      case "campaign":
        core.campaign();
        return;
      case "reportUnreachable":
        core.reportUnreachable(input.peer);
        return;
      case "reportSnapshot":
        core.reportSnapshot(input.peer, input.ok);
        return;
      case "compact":
        this.compact(input.keepEntries);
        return;
    }
  }

  private tryPropose(propose: () => { index: number; term: number }): ProposeResult {
    try {
      const { index, term } = propose();
      return { ok: true, index, term };
    } catch (error) {
      return { ok: false, error: asCairnError(error) };
    }
  }

  /**
   * The application snapshots its state machine at `applied` and compacts the mirror to leave
   * `keepEntries` entries before it (for slow followers). Durable at once (synced, atomic).
   */
  private compact(keepEntries: number): void {
    const applied = this.machine.applied;
    if (applied <= this.storage.snapshot().metadata.index) return;
    const snapshot = this.storage.createSnapshot(applied, this.confState, this.machine.snapshot());
    const compactTo = Math.max(applied - keepEntries, this.storage.firstIndex() - 1);
    if (compactTo >= this.storage.firstIndex()) this.storage.compact(compactTo);
    this.disk.installLocalSnapshot(snapshot);
    this.env.note(this, `compact@${applied}`);
  }

  private processReady(core: RaftCore): void {
    const ready = core.ready();
    this.env.onReady(this, ready);
    if (ready.hardState !== null) this.hardState = ready.hardState;
    if (ready.messagesBeforePersist.length > 0) this.env.send(this, ready.messagesBeforePersist, true);
    if (this.bugs.ackBeforePersist === true && ready.messages.length > 0) this.env.send(this, ready.messages, false);
    const needsWrite = ready.hardState !== null || ready.entries.length > 0 || ready.snapshot !== null;
    if (!needsWrite) {
      this.pending = { ready, batch: null };
      this.finishReady();
      return;
    }
    const hardState = this.bugs.forgetVotes === true && ready.hardState !== null ? { ...ready.hardState, vote: null } : ready.hardState;
    const batch: DiskBatch = {
      hardState,
      snapshot: ready.snapshot,
      entries: ready.entries,
      applyState: { applied: this.machine.applied, confState: this.confState },
      sync: ready.mustSync,
    };
    this.disk.beginWrite(batch);
    this.writeSeq++;
    this.pending = { ready, batch };
    const latency = batch.sync ? this.env.diskLatency(this) : 0;
    if (latency === 0) this.finishReady();
    else this.env.scheduleDiskDone(this, this.writeSeq, latency);
  }

  private finishReady(): void {
    const { ready, batch } = this.pending!;
    if (batch !== null) {
      this.disk.completeWrite();
      if (ready.hardState !== null && batch.sync) this.syncedHardState = ready.hardState;
      if (ready.snapshot !== null) this.storage.applySnapshot(ready.snapshot);
      if (ready.entries.length > 0) this.storage.append(ready.entries);
      if (ready.hardState !== null) this.storage.setHardState(ready.hardState);
    }
    if (ready.messages.length > 0 && this.bugs.ackBeforePersist !== true) this.env.send(this, ready.messages, false);
    if (ready.snapshot !== null) {
      const data = ready.snapshot.data;
      if (data.length > 0) this.machine.restore(data);
      else this.machine = new RegisterMachine();
      if (this.machine.applied !== ready.snapshot.metadata.index) {
        this.env.diskObserver.contractViolation(this.id, `snapshot at ${ready.snapshot.metadata.index} holds state applied to ${this.machine.applied}`);
      }
      this.confState = ready.snapshot.metadata.confState;
      this.env.onSnapshotRestored(this);
    }
    for (const entry of ready.committedEntries) this.applyEntry(entry);
    for (const readState of ready.readStates) {
      this.env.onReadState(this, readState);
      this.waitingReads.push(readState);
    }
    this.serveReads();
    this.core!.advance(ready);
    this.pending = null;
  }

  private applyEntry(entry: Entry): void {
    if (entry.index !== this.machine.applied + 1) {
      this.env.diskObserver.contractViolation(this.id, `committed entry ${entry.index} handed out with applied = ${this.machine.applied}`);
    }
    this.machine.apply(entry);
    if (entry.type === "conf") this.confState = this.core!.applyConfChange(decodeConfChange(entry.data));
    this.env.onApplied(this, entry, false);
  }

  private serveReads(): void {
    if (this.waitingReads.length === 0) return;
    const still: ReadState[] = [];
    for (const readState of this.waitingReads) {
      if (readState.index <= this.machine.applied) this.env.onReadServed(this, readState);
      else still.push(readState);
    }
    this.waitingReads = still;
  }
}

export function asCairnError(error: unknown): CairnError {
  if (error instanceof CairnError) return error;
  throw error;
}
