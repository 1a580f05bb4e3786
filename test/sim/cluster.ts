/**
 * A simulated cluster: N SimNodes, the checkers and the client-history checker wired to them, and the
 * client-facing operations (put through a node, ReadIndex read through a node) whose outcomes feed
 * the history. How messages travel and when time passes is up to the driver: the swarm (swarm.ts)
 * uses a seeded event queue with faults, the scenario interpreter (scenario.ts) a FIFO it delivers
 * on command.
 */
import type { ConfChange, ConfState, Entry, Message, ReadState, Ready } from "../../src/raft/types.ts";
import type { Prng } from "../support/prng.ts";
import { Checkers } from "./checkers.ts";
import { History, type ReadOp, type WriteOp } from "./history.ts";
import { SimNode, type CoreSettings, type NodeEnv, type ProposeResult, type SimBugs } from "./node.ts";
import { encodePut, entryFingerprint } from "./state-machine.ts";

export interface Transport {
  /** `beforePersist`: the message came from Ready.messagesBeforePersist. */
  send(from: SimNode, message: Message, beforePersist: boolean): void;
}

export interface ClusterOptions {
  readonly settings: CoreSettings;
  readonly rng: Prng;
  /** Ticks a synced write takes (0 = completes at once). */
  readonly diskLatency?: (node: SimNode) => number;
  readonly scheduleDiskDone?: (node: SimNode, write: number, latency: number) => void;
  /** Receives trace lines when set. */
  readonly trace?: (line: string) => void;
  /** Also trace the cores' own debug lines (very verbose). */
  readonly traceCores?: boolean;
  /** Deliberate bugs for the mutant tests. */
  readonly bugs?: SimBugs & {
    /** Serve reads from the node's local state at once, without ReadIndex. */
    readonly staleReads?: boolean;
  };
}

interface PendingWrite {
  readonly op: WriteOp;
  readonly node: string;
  readonly incarnation: number;
  readonly index: number;
  readonly term: number;
  readonly fingerprint: number;
  readonly onDone?: (op: WriteOp) => void;
}

interface PendingRead {
  readonly op: ReadOp;
  readonly node: string;
  readonly incarnation: number;
  readonly onDone?: (op: ReadOp) => void;
}

export class Cluster implements NodeEnv {
  readonly history = new History();
  readonly checkers: Checkers;
  private readonly byId = new Map<string, SimNode>();
  /** Nodes in creation order. */
  readonly list: SimNode[] = [];
  transport: Transport = { send: () => {} };
  private nextNodeNumber = 1;
  private readonly pendingWrites = new Map<string, PendingWrite>();
  private readonly pendingReads = new Map<string, PendingRead>();
  private readSeq = 0;
  now = 0;
  /** Counters of what happened (faults, drops, reports); read by soak and tests. */
  readonly counters = new Map<string, number>();

  constructor(readonly options: ClusterOptions) {
    this.checkers = new Checkers({ node: (id) => this.byId.get(id), nodes: () => this.list }, this.history);
    const where = () => `t=${this.now}`;
    this.checkers.where = where;
    this.history.where = where;
  }

  get coreLog(): ((node: SimNode, line: string) => void) | undefined {
    return this.options.traceCores === true && this.options.trace !== undefined ? (node, line) => this.trace(`${node.id}| ${line}`) : undefined;
  }

  get diskObserver() {
    return this.checkers;
  }

  count(what: string, by = 1): void {
    this.counters.set(what, (this.counters.get(what) ?? 0) + by);
  }

  trace(line: string | (() => string)): void {
    const sink = this.options.trace;
    if (sink !== undefined) sink(`t=${this.now} ${typeof line === "string" ? line : line()}`);
  }

  node(id: string): SimNode | undefined {
    return this.byId.get(id);
  }

  nodes(): readonly SimNode[] {
    return this.list;
  }

  mustNode(id: string): SimNode {
    const node = this.byId.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Ids are n1, n2, ... in creation order and never reused (RAFT-CHECKLIST 18). */
  newNodeId(): string {
    return `n${this.nextNodeNumber++}`;
  }

  /** Creates and starts a node. Founders pass the initial voters; joiners pass no confState. */
  addNode(id: string, confState: ConfState, settings: CoreSettings = this.options.settings): SimNode {
    if (this.byId.has(id)) throw new Error(`node ${id} exists`);
    const node = new SimNode(id, settings, this, this.options.rng.fork(`node-${id}`), { confState }, this.options.bugs);
    this.byId.set(id, node);
    this.list.push(node);
    node.start();
    this.trace(`start ${id}`);
    return node;
  }

  /** Creates `count` founding voters n1..n<count>. */
  bootstrap(count: number): SimNode[] {
    const ids = Array.from({ length: count }, () => this.newNodeId());
    const confState: ConfState = { voters: ids, learners: [] };
    return ids.map((id) => this.addNode(id, confState));
  }

  crash(node: SimNode): void {
    const outcome = node.crash();
    this.count(`crash:${outcome}`);
    this.trace(`crash ${node.id} (${outcome})`);
    for (const [key, pending] of this.pendingWrites) {
      if (pending.node !== node.id) continue;
      this.pendingWrites.delete(key);
      this.history.writeFailed(pending.op, false, this.now);
      pending.onDone?.(pending.op);
    }
    for (const [key, pending] of this.pendingReads) {
      if (pending.node !== node.id) continue;
      this.pendingReads.delete(key);
      this.history.readFailed(pending.op, this.now);
      pending.onDone?.(pending.op);
    }
  }

  restart(node: SimNode): void {
    node.start();
    this.count("restart");
    this.trace(`restart ${node.id} (term ${node.hardState.term}, commit ${node.hardState.commit}, applied ${node.machine.applied})`);
  }

  // --- client operations --------------------------------------------------------------------------

  /**
   * A client `put key=value` sent to `nodeId`. The outcome lands in the history: acknowledged when
   * that node applies the proposal, failed when refused or when its slot is taken by another entry,
   * unknown when the node crashes first (or the caller gives up via abandonWrite).
   */
  put(nodeId: string, key: string, value: string, client: number, onDone?: (op: WriteOp) => void): WriteOp {
    const op = this.history.invokeWrite(client, key, value, this.now);
    const node = this.byId.get(nodeId);
    const data = encodePut(key, value);
    const accepted =
      node !== undefined &&
      node.input({
        kind: "propose",
        data,
        done: (result) => this.proposed(node, op, data, result, onDone),
      });
    if (!accepted) {
      op.refusal = "node down";
      this.history.writeFailed(op, true, this.now);
      onDone?.(op);
    }
    return op;
  }

  private proposed(node: SimNode, op: WriteOp, data: Uint8Array, result: ProposeResult, onDone?: (op: WriteOp) => void): void {
    if (!result.ok) {
      this.count(`propose:${result.error.code}`);
      const hint = result.error.data.leaderHint;
      op.refusal = `${result.error.code}${hint === undefined ? "" : ` (leader ${hint ?? "unknown"})`}`;
      this.history.writeFailed(op, true, this.now);
      onDone?.(op);
      return;
    }
    op.proposedAt = { index: result.index, term: result.term };
    const fingerprint = entryFingerprint({ index: result.index, term: result.term, type: "normal", data });
    const pending: PendingWrite = { op, node: node.id, incarnation: node.incarnation, index: result.index, term: result.term, fingerprint };
    this.pendingWrites.set(`${node.id}:${result.index}`, onDone === undefined ? pending : { ...pending, onDone });
    // Already applied within the same Ready cycle is impossible: the entry was just appended.
  }

  /** The client stops waiting: the write's outcome becomes unknown. */
  abandonWrite(op: WriteOp): void {
    for (const [key, pending] of this.pendingWrites) {
      if (pending.op !== op) continue;
      this.pendingWrites.delete(key);
      this.history.writeFailed(op, false, this.now);
      return;
    }
  }

  /** A linearizable read of `key` through `nodeId` (ReadIndex, served once applied >= read index). */
  read(nodeId: string, key: string, client: number, onDone?: (op: ReadOp) => void, context?: string): ReadOp {
    const ctx = context ?? `r${client}.${++this.readSeq}`;
    const op = this.history.invokeRead(client, key, ctx, this.now);
    const node = this.byId.get(nodeId);
    if (node === undefined || !node.alive) {
      this.history.readFailed(op, this.now);
      onDone?.(op);
      return op;
    }
    if (this.options.bugs?.staleReads === true) {
      this.history.readServed(op, node.machine.get(key), node.machine.applied, this.now);
      onDone?.(op);
      return op;
    }
    // Registered first: the read may be answered synchronously, inside input().
    const pending: PendingRead = { op, node: nodeId, incarnation: node.incarnation };
    this.pendingReads.set(ctx, onDone === undefined ? pending : { ...pending, onDone });
    const fail = () => {
      if (!this.pendingReads.delete(ctx)) return;
      this.history.readFailed(op, this.now);
      onDone?.(op);
    };
    const accepted = node.input({
      kind: "readIndex",
      context: new TextEncoder().encode(ctx),
      done: (error) => {
        if (error === null) return;
        this.count(`readIndex:${error.code}`);
        fail();
      },
    });
    if (!accepted) fail();
    return op;
  }

  abandonRead(op: ReadOp): void {
    if (this.pendingReads.delete(op.context)) this.history.readFailed(op, this.now);
  }

  proposeConfChange(nodeId: string, change: ConfChange, done: (result: ProposeResult) => void): boolean {
    const node = this.byId.get(nodeId);
    return node !== undefined && node.input({ kind: "confChange", change, done });
  }

  // --- NodeEnv ------------------------------------------------------------------------------------

  onReady(node: SimNode, ready: Ready): void {
    this.checkers.onReady(node, ready);
    if (ready.softState !== null) {
      const soft = ready.softState;
      this.trace(() => `${node.id} is ${soft.role} (leader ${soft.leader ?? "-"}, term ${node.core!.status().term})`);
    }
  }

  send(node: SimNode, messages: readonly Message[], beforePersist: boolean): void {
    for (const message of messages) {
      this.checkers.onSend(node, message);
      this.transport.send(node, message, beforePersist);
    }
  }

  diskLatency(node: SimNode): number {
    return this.options.diskLatency === undefined ? 0 : this.options.diskLatency(node);
  }

  scheduleDiskDone(node: SimNode, write: number, latency: number): void {
    if (this.options.scheduleDiskDone === undefined) throw new Error("asynchronous disk without a scheduler");
    this.options.scheduleDiskDone(node, write, latency);
  }

  onApplied(node: SimNode, entry: Entry, replay: boolean): void {
    this.checkers.onApplied(node, entry);
    if (replay) return;
    const key = `${node.id}:${entry.index}`;
    const pending = this.pendingWrites.get(key);
    if (pending === undefined) return;
    this.pendingWrites.delete(key);
    if (entryFingerprint(entry) === pending.fingerprint && entry.term === pending.term) {
      this.history.writeAcked(pending.op, entry.index, this.now);
    } else {
      // Another entry took the slot: this proposal can never commit anywhere (the core does not re-propose).
      this.history.writeFailed(pending.op, true, this.now);
    }
    pending.onDone?.(pending.op);
  }

  onSnapshotRestored(node: SimNode): void {
    this.checkers.onSnapshotRestored(node);
    // Proposals this node was waiting on that the snapshot jumped over: decide from the committed log.
    for (const [key, pending] of this.pendingWrites) {
      if (pending.node !== node.id || pending.index > node.machine.applied) continue;
      this.pendingWrites.delete(key);
      const record = this.checkers.committed.get(pending.index);
      if (record !== undefined && record.fingerprint === pending.fingerprint && record.term === pending.term) {
        this.history.writeAcked(pending.op, pending.index, this.now);
      } else if (record !== undefined) {
        this.history.writeFailed(pending.op, true, this.now);
      } else {
        this.history.writeFailed(pending.op, false, this.now);
      }
      pending.onDone?.(pending.op);
    }
  }

  onReadState(node: SimNode, readState: ReadState): void {
    const op = this.history.readOf(new TextDecoder().decode(readState.context));
    if (op === undefined) throw new Error(`${node.id} returned a read state for an unknown context`);
    this.history.readStateObserved(op, readState.index);
  }

  onReadServed(node: SimNode, readState: ReadState): void {
    const ctx = new TextDecoder().decode(readState.context);
    const pending = this.pendingReads.get(ctx);
    if (pending === undefined || pending.node !== node.id || pending.incarnation !== node.incarnation) return;
    this.pendingReads.delete(ctx);
    this.history.readServed(pending.op, node.machine.get(pending.op.key), node.machine.applied, this.now);
    pending.onDone?.(pending.op);
  }

  note(node: SimNode, what: string): void {
    this.count(what.replace(/@.*$/, ""));
    this.trace(`${node.id} ${what}`);
  }

  // --- whole-cluster checks -----------------------------------------------------------------------

  /**
   * Full comparison of durable logs (the incremental checkers already cover it; this one is cheap
   * enough to run at quiescent points and documents the property directly): any two durable logs
   * that share an (index, term) agree on every entry up to it.
   */
  checkDurableLogsMatch(): void {
    const images = this.list.map((node) => ({ id: node.id, image: node.disk.durable }));
    for (let a = 0; a < images.length; a++) {
      for (let b = a + 1; b < images.length; b++) {
        const x = images[a]!;
        const y = images[b]!;
        const low = Math.max(x.image.snapshot.metadata.index, y.image.snapshot.metadata.index) + 1;
        const high = Math.min(lastOf(x.image.entries, x.image.snapshot.metadata.index), lastOf(y.image.entries, y.image.snapshot.metadata.index));
        let matched = false;
        for (let index = high; index >= low; index--) {
          const ex = x.image.entries[index - x.image.snapshot.metadata.index - 1]!;
          const ey = y.image.entries[index - y.image.snapshot.metadata.index - 1]!;
          if (!matched && ex.term === ey.term) matched = true;
          if (matched && (ex.term !== ey.term || entryFingerprint(ex) !== entryFingerprint(ey))) {
            this.checkers.fail("log-matching", `${x.id} and ${y.id} share a later (index, term) but differ at ${index}`);
          }
        }
      }
    }
  }
}

function lastOf(entries: readonly Entry[], snapshotIndex: number): number {
  return entries.length === 0 ? snapshotIndex : entries[entries.length - 1]!.index;
}
