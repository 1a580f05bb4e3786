/**
 * A tiny hand-driven network of RaftCores for unit tests (not the simulator): each node runs the
 * Ready loop of src/raft/types.ts against a MemoryStorage, messages wait in one FIFO queue until the
 * test delivers them, and links can be cut. Deterministic: randomness comes from a seeded PRNG.
 */
import {
  MemoryStorage,
  RaftCore,
  decodeConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type RaftConfig,
  type ReadState,
  type Ready,
} from "../../src/raft/index.ts";

/** mulberry32: a small seeded PRNG in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function testConfig(id: NodeId, overrides: Partial<RaftConfig> = {}, seed = 1): RaftConfig {
  return {
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: false,
    checkQuorum: false,
    random: seededRandom(seed + id.charCodeAt(id.length - 1)),
    applied: 0,
    messageBytesMax: 1024 * 1024,
    inflightMessagesMax: 256,
    inflightBytesMax: 0,
    uncommittedBytesMax: 0,
    ...overrides,
  };
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

export interface TestNode {
  readonly id: NodeId;
  core: RaftCore;
  storage: MemoryStorage;
  config: RaftConfig;
  /** Entries applied, in order (no-ops included); reset when a snapshot is installed. */
  applied: Entry[];
  /** Index of the last snapshot restored into `applied`, 0 if none. */
  restoredFrom: number;
  /** The application data of that snapshot (the applied values it covers, JSON). */
  restoredData: string[];
  readStates: ReadState[];
  /** Every Ready this node produced (when RaftNetwork.recordReadies), for contract checks. */
  readies: Ready[];
}

export class RaftNetwork {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent but not yet delivered, FIFO. */
  queue: Message[] = [];
  /** Cut links "from->to": messages on them are dropped at delivery. */
  private readonly cut = new Set<string>();
  /** Drop any message for which this returns true (at delivery). */
  dropIf: ((m: Message) => boolean) | null = null;
  /** Every message delivered, for assertions. */
  delivered: Message[] = [];
  recordReadies = false;

  /** A bootstrapped group: every id is a voter. */
  static create(ids: readonly NodeId[], overrides: Partial<RaftConfig> = {}, learners: readonly NodeId[] = []): RaftNetwork {
    const net = new RaftNetwork();
    const conf: ConfState = { voters: [...ids], learners: [...learners] };
    for (const id of [...ids, ...learners]) net.addNode(id, new MemoryStorage({ confState: conf }), overrides);
    return net;
  }

  addNode(id: NodeId, storage: MemoryStorage, overrides: Partial<RaftConfig> = {}): TestNode {
    const config = testConfig(id, overrides);
    const node: TestNode = {
      id,
      core: new RaftCore(config, storage),
      storage,
      config,
      applied: [],
      restoredFrom: 0,
      restoredData: [],
      readStates: [],
      readies: [],
    };
    this.nodes.set(id, node);
    return node;
  }

  /** A node with empty storage, as a joiner starts. */
  addBlankNode(id: NodeId, overrides: Partial<RaftConfig> = {}): TestNode {
    return this.addNode(id, new MemoryStorage(), overrides);
  }

  /** Restarts a node from what its storage holds (everything acknowledged by advance()). */
  restart(id: NodeId): TestNode {
    const node = this.node(id);
    const config = { ...node.config, applied: this.appliedIndex(id) };
    node.core = new RaftCore(config, node.storage);
    node.config = config;
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    return node;
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  core(id: NodeId): RaftCore {
    return this.node(id).core;
  }

  /** Runs one node's Ready loop until it has nothing more, queueing its outgoing messages. */
  process(id: NodeId): void {
    const node = this.node(id);
    for (let guard = 0; node.core.hasReady(); guard++) {
      if (guard > 10_000) throw new Error(`${id}: ready loop does not settle`);
      const rd = node.core.ready();
      if (this.recordReadies) node.readies.push(rd);
      this.queue.push(...rd.messagesBeforePersist);
      if (rd.snapshot !== null) node.storage.applySnapshot(rd.snapshot);
      node.storage.append(rd.entries);
      if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
      this.queue.push(...rd.messages);
      if (rd.snapshot !== null) {
        node.applied = [];
        node.restoredFrom = rd.snapshot.metadata.index;
        const data = rd.snapshot.data;
        node.restoredData = data.length === 0 ? [] : (JSON.parse(text(data)) as string[]);
      }
      for (const entry of rd.committedEntries) {
        node.applied.push(entry);
        if (entry.type === "conf") node.storage.setConfState(node.core.applyConfChange(decodeConfChange(entry.data)));
      }
      node.readStates.push(...rd.readStates);
      node.core.advance(rd);
    }
  }

  processAll(): void {
    for (const id of this.nodes.keys()) this.process(id);
  }

  private blocked(m: Message): boolean {
    if (!this.nodes.has(m.to)) return true;
    if (this.cut.has(`${m.from}->${m.to}`)) return true;
    return this.dropIf !== null && this.dropIf(m);
  }

  /** Delivers the queued messages one by one (and what they cause) until the network is quiet. */
  stabilize(stepsMax = 100_000): void {
    this.processAll();
    for (let steps = 0; this.queue.length > 0; steps++) {
      if (steps > stepsMax) throw new Error("network does not stabilize");
      const m = this.queue.shift()!;
      if (this.blocked(m)) continue;
      this.delivered.push(m);
      this.node(m.to).core.step(m);
      this.process(m.to);
    }
  }

  /** Delivers at most `steps` queued messages (and what they cause); never throws on a busy network. */
  pump(steps: number): void {
    this.processAll();
    for (let i = 0; i < steps && this.queue.length > 0; i++) {
      const m = this.queue.shift()!;
      if (this.blocked(m)) continue;
      this.delivered.push(m);
      this.node(m.to).core.step(m);
      this.process(m.to);
    }
  }

  /** Takes (and removes) queued messages matching `filter` without delivering them. */
  take(filter: (m: Message) => boolean): Message[] {
    this.processAll();
    const taken = this.queue.filter(filter);
    this.queue = this.queue.filter((m) => !filter(m));
    return taken;
  }

  deliver(m: Message): void {
    this.node(m.to).core.step(m);
    this.process(m.to);
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.core(id).tick();
    this.process(id);
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const node of this.nodes.values()) node.core.tick();
    this.processAll();
  }

  /** Ticks every node and delivers messages in between until `done` holds. */
  tickUntil(done: () => boolean, ticksMax = 1000): void {
    for (let i = 0; i < ticksMax; i++) {
      if (done()) return;
      this.tickAll();
      this.stabilize();
    }
    if (!done()) throw new Error("condition not reached");
  }

  campaign(id: NodeId): void {
    this.core(id).campaign();
    this.stabilize();
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  partition(...groups: NodeId[][]): void {
    for (const a of groups) for (const b of groups) if (a !== b) for (const x of a) for (const y of b) this.cut.add(`${x}->${y}`);
  }

  heal(): void {
    this.cut.clear();
    this.dropIf = null;
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.core.status().role === "leader").map((n) => n.id);
  }

  /**
   * Leaders among the members of the highest-term leader's configuration. A node removed while cut
   * off can stay leader of its stale term forever when CheckQuorum is off (as in etcd-io/raft: no
   * member talks to it again and it hears no higher term); it cannot commit anything, and the
   * host shuts such a node down, so liveness is judged on the members only.
   */
  memberLeaders(): NodeId[] {
    const leaders = this.leaders();
    if (leaders.length === 0) return leaders;
    const conf = this.core(this.leader()).status().confState;
    const members = new Set([...conf.voters, ...conf.learners]);
    return leaders.filter((id) => members.has(id));
  }

  /** The unique leader of the highest term among leaders. */
  leader(): NodeId {
    let best: NodeId | null = null;
    let bestTerm = -1;
    for (const node of this.nodes.values()) {
      const status = node.core.status();
      if (status.role === "leader" && status.term > bestTerm) {
        best = node.id;
        bestTerm = status.term;
      }
    }
    if (best === null) throw new Error("no leader");
    return best;
  }

  /** The node's state machine: values of the applied normal, non-empty entries (after any snapshot). */
  appliedData(id: NodeId): string[] {
    const node = this.node(id);
    return [...node.restoredData, ...node.applied.filter((e) => e.type === "normal" && e.data.length > 0).map((e) => text(e.data))];
  }

  /** Index of the last entry a node applied (or of the snapshot it restored). */
  appliedIndex(id: NodeId): number {
    const node = this.node(id);
    return node.applied.length > 0 ? node.applied[node.applied.length - 1]!.index : node.restoredFrom;
  }

  /** The application takes a snapshot at its applied index and compacts the log up to `compactTo`. */
  compact(id: NodeId, compactTo = this.appliedIndex(id)): void {
    const node = this.node(id);
    const index = this.appliedIndex(id);
    node.storage.createSnapshot(index, node.core.status().confState, bytes(JSON.stringify(this.appliedData(id))));
    node.storage.compact(Math.min(compactTo, index));
  }
}

/** A message with every field defaulted (for crafting peer input by hand). */
export function msg(fields: Partial<Message> & Pick<Message, "type" | "from" | "to">): Message {
  return { term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...fields };
}

/** A core over a fresh MemoryStorage (voters given), without a network. */
export function lone(id: NodeId, voters: readonly NodeId[], overrides: Partial<RaftConfig> = {}): { core: RaftCore; storage: MemoryStorage } {
  const storage = new MemoryStorage({ confState: { voters: [...voters], learners: [] } });
  return { core: new RaftCore(testConfig(id, overrides), storage), storage };
}

/** Drains one Ready, persists it into `storage`, advances, and returns it. */
export function drain(core: RaftCore, storage: MemoryStorage): Ready {
  const rd = core.ready();
  if (rd.snapshot !== null) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState !== null) storage.setHardState(rd.hardState);
  core.advance(rd);
  return rd;
}

/** Entries for building logs by hand: terms[i] is the term of index start + i. */
export function entriesOf(terms: readonly number[], start = 1, data = (i: number) => bytes(`e${i}`)): Entry[] {
  return terms.map((term, i) => ({ term, index: start + i, type: "normal" as const, data: data(start + i) }));
}

/** A storage holding a given log (bootstrapped with `voters`). */
export function storageWith(voters: readonly NodeId[], terms: readonly number[], hard: { term: number; vote?: NodeId | null; commit: number }): MemoryStorage {
  return new MemoryStorage({
    confState: { voters: [...voters], learners: [] },
    hardState: { term: hard.term, vote: hard.vote ?? null, commit: hard.commit },
    entries: entriesOf(terms),
  });
}

/** Terms of a node's whole log, from index 1 (for comparing logs). */
export function logTerms(storage: MemoryStorage): number[] {
  const out: number[] = [];
  for (let i = storage.firstIndex(); i <= storage.lastIndex(); i++) out.push(storage.term(i));
  return out;
}
