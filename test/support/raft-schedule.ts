/**
 * Random schedules for a RaftNetwork (test/property/raft-cluster.test.ts): actions, the safety
 * checker run after each, and the liveness phase. Kept apart so a failing schedule can be replayed
 * from a script.
 */
import fc from "fast-check";
import type { Entry, NodeId } from "../../src/raft/index.ts";
import { RaftNetwork, bytes } from "./raft-network.ts";

/** A violated property (plain Error, so schedules replay outside vitest too). */
function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`property violated: ${message}`);
}

export type Action =
  | { kind: "propose"; value: number }
  | { kind: "tick"; times: number }
  | { kind: "deliver"; count: number }
  | { kind: "drop"; at: number }
  | { kind: "duplicate"; at: number }
  | { kind: "reorder"; at: number }
  | { kind: "partition"; mask: number }
  | { kind: "heal" }
  | { kind: "restart"; node: number }
  | { kind: "transfer"; node: number }
  | { kind: "read"; node: number }
  | { kind: "conf"; type: "addVoter" | "addLearner" | "removeNode"; node: number };

export const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("propose" as const), value: fc.nat(1_000_000) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("tick" as const), times: fc.integer({ min: 1, max: 12 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("deliver" as const), count: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reorder" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("partition" as const), mask: fc.nat(31) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("heal" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart" as const), node: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("transfer" as const), node: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("read" as const), node: fc.nat(4) }) },
);

export const confArb: fc.Arbitrary<Action> = fc.record({
  kind: fc.constant("conf" as const),
  type: fc.constantFrom("addVoter" as const, "addLearner" as const, "removeNode" as const),
  node: fc.nat(4),
});

class Checker {
  /** term -> leader seen in it. */
  private readonly leaders = new Map<number, NodeId>();
  /** index -> the committed entry's term, as first observed anywhere. */
  private readonly committed = new Map<number, number>();

  constructor(private readonly net: RaftNetwork) {}

  check(): void {
    const net = this.net;
    for (const node of net.nodes.values()) {
      const s = node.core.status();
      if (s.role === "leader") {
        const seen = this.leaders.get(s.term);
        check(seen === undefined || seen === node.id, `two leaders in term ${s.term}: ${seen} and ${node.id}`);
        this.leaders.set(s.term, node.id);
      }
      // Committed entries, as far as this node's durable log has them, never change.
      const storage = node.storage;
      const hi = Math.min(storage.initialState().hardState.commit, storage.lastIndex());
      for (let i = Math.max(1, storage.firstIndex()); i <= hi; i++) {
        const term = storage.term(i);
        const known = this.committed.get(i);
        if (known === undefined) this.committed.set(i, term);
        else check(term === known, `${node.id}: committed entry ${i} changed term ${known} -> ${term}`);
      }
    }
    // Leader completeness: a leader's log holds every entry committed before its term's entries.
    for (const node of net.nodes.values()) {
      const s = node.core.status();
      if (s.role !== "leader") continue;
      const storage = node.storage;
      for (const [index, term] of this.committed) {
        if (term >= s.term || index < storage.firstIndex() || index > storage.lastIndex()) continue;
        check(storage.term(index) === term, `leader ${node.id} lacks committed entry ${index}`);
      }
    }
    // State machine safety: applied sequences are prefixes of one another.
    const applied = [...net.nodes.values()].map((n) => n.applied);
    for (const a of applied) for (const b of applied) expectPrefix(a, b);
  }
}

function expectPrefix(a: readonly Entry[], b: readonly Entry[]): void {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    check(a[i]!.index === b[i]!.index && a[i]!.term === b[i]!.term, `applied sequences diverge at position ${i}`);
  }
}

export function run(size: 3 | 5, options: { preVote: boolean; checkQuorum: boolean }, actions: readonly Action[], spare = 0, debug = false): void {
  const voters = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const lines: string[] = [];
  const config = { ...options, electionTicks: 6, inflightMessagesMax: 8, ...(debug ? { logger: (l: string) => lines.push(l) } : {}) };
  const net = RaftNetwork.create(voters, config);
  // Spare nodes start blank, as joining nodes do; conf actions may add them.
  const ids = [...voters];
  for (let i = 0; i < spare; i++) {
    const id = `n${size + i + 1}`;
    net.addBlankNode(id, config);
    ids.push(id);
  }
  const n = ids.length;
  const checker = new Checker(net);
  for (const action of actions) {
    const id = (k: number) => ids[k % n]!;
    switch (action.kind) {
      case "propose": {
        const leaders = net.leaders();
        if (leaders.length > 0) {
          try {
            net.core(leaders[0]!).propose(bytes(String(action.value)));
          } catch {
            // PROPOSAL_DROPPED during a transfer: fine.
          }
        }
        net.processAll();
        break;
      }
      case "tick":
        net.tickAll(action.times);
        break;
      case "deliver":
        net.pump(action.count);
        break;
      case "drop":
        if (net.queue.length > 0) net.queue.splice(action.at % net.queue.length, 1);
        break;
      case "duplicate":
        if (net.queue.length > 0) net.queue.push(net.queue[action.at % net.queue.length]!);
        break;
      case "reorder":
        if (net.queue.length > 1) net.queue.push(...net.queue.splice(action.at % net.queue.length, 1));
        break;
      case "partition": {
        const a = ids.filter((_, i) => (action.mask >> i) & 1);
        const b = ids.filter((_, i) => !((action.mask >> i) & 1));
        net.heal();
        if (a.length > 0 && b.length > 0) net.partition(a, b);
        break;
      }
      case "heal":
        net.heal();
        break;
      case "restart":
        net.restart(id(action.node));
        break;
      case "transfer": {
        const leaders = net.leaders();
        if (leaders.length > 0) net.core(leaders[0]!).transferLeader(id(action.node));
        net.processAll();
        break;
      }
      case "conf": {
        // Let a leader settle in (if the partitions allow one), so that changes are not all refused.
        for (let i = 0; i < 30 && net.leaders().length === 0; i++) {
          net.tickAll();
          net.pump(200);
        }
        net.pump(200);
        const leaders = net.leaders();
        if (leaders.length > 0) {
          try {
            net.core(leaders[0]!).proposeConfChange({ type: action.type, nodeId: id(action.node) });
          } catch {
            // PROPOSAL_DROPPED (one pending, no-op not committed, transfer, last voter): fine.
          }
        }
        net.processAll();
        break;
      }
      case "read":
        try {
          net.core(id(action.node)).readIndex(bytes("r"));
        } catch {
          // NOT_LEADER: fine.
        }
        net.processAll();
        break;
    }
    checker.check();
  }
  // Liveness: once faults stop, a leader emerges and a new proposal reaches every node. A proposal
  // made to a leader that is then deposed may be lost, so (like a client) re-propose to each new
  // leadership until it is applied everywhere.
  net.heal();
  net.queue = [];
  let proposedTo = "";
  if (debug) lines.push("---- liveness phase");
  try {
  net.tickUntil(() => {
    const leaders = net.memberLeaders();
    if (leaders.length === 1) {
      const status = net.core(leaders[0]!).status();
      const key = `${status.id}@${status.term}`;
      if (key !== proposedTo && status.transferee === null) {
        net.core(leaders[0]!).propose(bytes("final"));
        proposedTo = key;
        net.stabilize();
      }
    }
    const now = net.memberLeaders();
    if (now.length !== 1) return false;
    const conf = net.core(now[0]!).status().confState;
    return [...conf.voters, ...conf.learners].every((m) => net.appliedData(m).includes("final"));
  }, 1000);
  } catch (error) {
    if (debug) {
      console.log(lines.slice(-(Number(process.env["RAFT_DEBUG_LINES"] ?? 80))).join("\n"));
      for (const node of net.nodes.values()) console.log(JSON.stringify(node.core.status()), net.appliedData(node.id));
    }
    throw error;
  }
  const leader = net.leader();
  const conf = net.core(leader).status().confState;
  const members = [...conf.voters, ...conf.learners];
  // RAFT_PROPERTY_STATS=1 shows how many membership changes the schedules achieved.
  if (process.env["RAFT_PROPERTY_STATS"]) console.log(`conf entries applied: ${net.node(leader).applied.filter((e) => e.type === "conf").length}, members ${members}`);
  checker.check();
  const expected = JSON.stringify(net.appliedData(leader));
  for (const m of members) check(JSON.stringify(net.appliedData(m)) === expected, `${m} applied something else than the leader`);
}

