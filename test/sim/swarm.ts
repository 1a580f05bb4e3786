/**
 * The swarm simulator: one run of a cluster under a seeded fault schedule, then a liveness phase.
 *
 * Virtual time advances one step at a time. In each step: scheduled faults start or end, due events
 * (message arrivals, disk write completions, transport reports) run in (time, random tie) order,
 * nodes whose tick is due tick, clients may start operations, and then every checker runs. All
 * randomness comes from forks of one PRNG seeded with params.seed, one fork per concern, so a seed
 * replays exactly and a change of the fault schedule disturbs the other streams as little as possible.
 *
 * Safety phase: params.steps steps with every enabled fault. Liveness phase: all links heal, paused
 * nodes resume, crashed nodes restart, the network turns calm; within a bounded number of ticks a
 * leader must be elected and a fresh write committed and applied on every voter, else LivenessFailure.
 */
import type { ConfChange, ConfState, Message, RaftStatus } from "../../src/raft/types.ts";
import { Prng } from "../support/prng.ts";
import { SafetyViolation, type CheckCounts } from "./checkers.ts";
import { Cluster, type ClusterOptions, type Transport } from "./cluster.ts";
import { EventQueue, type Timed } from "./event-queue.ts";
import type { HistoryCounts, ReadOp, WriteOp } from "./history.ts";
import { HistoryViolation } from "./history.ts";
import type { CoreSettings, NodeInput, SimNode } from "./node.ts";
import { isEnabled, type Fault, type SimParams } from "./params.ts";

export class LivenessFailure extends Error {
  override readonly name = "LivenessFailure";
}

export interface SimResult {
  readonly ok: boolean;
  readonly failure: { readonly kind: "safety" | "liveness" | "crash"; readonly message: string } | null;
  /** Steps run in the safety phase (fewer than params.steps when it failed early). */
  readonly steps: number;
  /** Steps the liveness phase needed (or ran before giving up), catching up included. */
  readonly livenessSteps: number;
  /** Steps until a fresh write committed after faults stopped (the bounded part). */
  readonly recoverySteps: number;
  readonly counters: Readonly<Record<string, number>>;
  readonly checks: CheckCounts;
  readonly history: HistoryCounts;
  readonly maxTerm: number;
  readonly committed: number;
}

export interface RunOptions {
  /** Receives every trace line (slow; for replays). */
  readonly trace?: (line: string) => void;
  /** Include the cores' debug log lines in the trace. */
  readonly traceCores?: boolean;
  /** Deliberate driver bugs (mutant tests only). */
  readonly bugs?: ClusterOptions["bugs"];
}

/** Election timeouts the liveness phase may take to commit a fresh write before it is declared a bug. */
export const LIVENESS_ELECTION_TIMEOUTS = 30;
/** Election timeouts a lagging voter may go without applying anything while catching up. */
export const STUCK_ELECTION_TIMEOUTS = 10;
/** Hard cap on the whole liveness phase. */
const LIVENESS_STEPS_MAX = 50_000;

const EMPTY_CONF: ConfState = { voters: [], learners: [] };
const MAX_NODES = 7;

/** One shape for every event (monomorphic and cheap to allocate); unused fields are null. */
interface SimEvent extends Timed {
  readonly kind: "deliver" | "disk" | "input";
  readonly message: Message | null;
  readonly node: SimNode | null;
  readonly incarnation: number;
  readonly input: NodeInput | null;
  /** disk: the write number that completes. */
  readonly write: number;
}

interface Cut {
  readonly until: number;
  readonly links: readonly string[];
}

interface Client {
  readonly id: number;
  op: WriteOp | ReadOp | null;
  startedAt: number;
  seq: number;
}

export function runSim(params: SimParams, options: RunOptions = {}): SimResult {
  return new Swarm(params, options).run();
}

export class Swarm {
  readonly cluster: Cluster;
  private readonly queue = new EventQueue<SimEvent>();
  private seq = 0;
  private readonly net: Prng;
  private readonly faultRng: Prng;
  private readonly clientRng: Prng;
  private readonly diskRng: Prng;
  private readonly tickAt = new Map<SimNode, number>();
  private readonly tickPeriod = new Map<SimNode, number>();
  private readonly restartAt = new Map<SimNode, number>();
  private readonly resumeAt = new Map<SimNode, number>();
  private readonly stallUntil = new Map<SimNode, number>();
  private cuts: Cut[] = [];
  private blocked = new Set<string>();
  private readonly clogs = new Map<string, { until: number; extra: number }>();
  private readonly clients: Client[] = [];
  private readonly faults: Fault[];
  private nextFault = 0;
  private calm = false;
  private clientsStopped = false;
  private recoverySteps = 0;
  /**
   * crashNewLeader / isolateNewLeader: armed until a leader of a term above `aboveTerm` appears,
   * which is then crashed or cut off `delay` steps later, for `duration` steps.
   */
  private newLeaderFault: { aboveTerm: number; delay: number; duration: number; crash: boolean } | null = null;
  private readonly newLeaderFaultAt = new Map<SimNode, { at: number; duration: number; crash: boolean }>();
  private step = 0;

  constructor(
    readonly params: SimParams,
    options: RunOptions = {},
  ) {
    const root = new Prng(params.seed);
    this.net = root.fork("network");
    this.faultRng = root.fork("faults");
    this.clientRng = root.fork("clients");
    this.diskRng = root.fork("disk");
    const settings: CoreSettings = {
      electionTicks: params.electionTicks,
      heartbeatTicks: params.heartbeatTicks,
      preVote: params.preVote,
      checkQuorum: params.checkQuorum,
      messageBytesMax: params.messageBytesMax,
      inflightMessagesMax: params.inflightMessagesMax,
      inflightBytesMax: params.inflightBytesMax,
      uncommittedBytesMax: params.uncommittedBytesMax,
    };
    this.cluster = new Cluster({
      settings,
      rng: root.fork("cluster"),
      diskLatency: (node) => this.diskLatency(node),
      scheduleDiskDone: (node, write, latency) => this.push(this.step + latency, "disk", null, node, null, write),
      ...(options.trace !== undefined ? { trace: options.trace, traceCores: options.traceCores === true } : {}),
      ...(options.bugs !== undefined ? { bugs: options.bugs } : {}),
    });
    this.cluster.transport = this.transport();
    this.faults = params.faults.filter((fault) => isEnabled(params, fault.kind)).sort((x, y) => x.at - y.at);
    for (let id = 0; id < params.clients; id++) this.clients.push({ id, op: null, startedAt: 0, seq: 0 });
  }

  run(): SimResult {
    let failure: SimResult["failure"] = null;
    let livenessSteps = 0;
    try {
      for (const node of this.cluster.bootstrap(this.params.nodes)) this.scheduleTicks(node);
      for (this.step = 0; this.step < this.params.steps; this.step++) this.runStep();
      livenessSteps = this.liveness();
    } catch (error) {
      if (error instanceof SafetyViolation || error instanceof HistoryViolation) failure = { kind: "safety", message: error.message };
      else if (error instanceof LivenessFailure) failure = { kind: "liveness", message: error.message };
      else failure = { kind: "crash", message: error instanceof Error ? `${error.name}: ${error.message} (t=${this.step})\n${error.stack ?? ""}` : String(error) };
    }
    return {
      ok: failure === null,
      failure,
      steps: Math.min(this.step, this.params.steps),
      livenessSteps,
      recoverySteps: this.recoverySteps,
      counters: Object.fromEntries(this.cluster.counters),
      checks: { ...this.cluster.checkers.counts },
      history: { ...this.cluster.history.counts },
      maxTerm: this.cluster.checkers.maxTerm,
      committed: this.cluster.checkers.committedMax,
    };
  }

  // --- one step -----------------------------------------------------------------------------------

  private runStep(): void {
    const now = this.step;
    this.cluster.now = now;
    if (!this.calm) this.startFaults(now);
    this.endFaults(now);
    while (this.queue.peekTime() <= now) this.handle(this.queue.pop()!);
    this.tickNodes(now);
    if (!this.calm) this.newLeaderFaults(now);
    this.runClients(now);
    if (!this.calm && this.params.compactEvery > 0 && now % this.params.compactEvery === 0 && now > 0) {
      this.compact(this.faultRng.pick(this.cluster.list));
    }
    this.cluster.checkers.afterStep();
  }

  private push(time: number, kind: SimEvent["kind"], message: Message | null, node: SimNode | null, input: NodeInput | null, write = 0): void {
    const incarnation = node === null ? 0 : node.incarnation;
    this.queue.push({ time, tie: this.net.nextU32(), seq: this.seq++, kind, message, node, incarnation, input, write });
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case "deliver":
        this.deliver(event.message!);
        return;
      case "disk":
        event.node!.diskDone(event.write);
        return;
      case "input":
        if (event.node!.incarnation === event.incarnation) event.node!.input(event.input!);
        return;
    }
  }

  /**
   * Each node ticks every tickSteps steps, or with clock skew at a rate off by up to ±10% (kept as a
   * fraction so skew stays modest: Raft assumes comparable clocks, and a 3x faster node would be a
   * different experiment).
   */
  private scheduleTicks(node: SimNode): void {
    const drift = this.params.clockSkew ? (this.faultRng.float() - 0.5) / 5 : 0;
    const period = this.params.tickSteps * (1 + drift);
    this.tickPeriod.set(node, period);
    this.tickAt.set(node, this.step + 1 + this.faultRng.float() * period);
  }

  private tickNodes(now: number): void {
    const list = this.cluster.list;
    for (let k = 0; k < list.length; k++) {
      const node = list[(k + now) % list.length]!;
      const at = this.tickAt.get(node);
      if (at === undefined || at > now) continue;
      this.tickAt.set(node, at + this.tickPeriod.get(node)!);
      if (node.alive) node.input({ kind: "tick" });
    }
  }

  private diskLatency(node: SimNode): number {
    if (this.calm) return this.diskRng.int(2);
    const stall = this.stallUntil.get(node);
    if (stall !== undefined && stall > this.step) return stall - this.step + this.diskRng.int(3);
    return this.diskRng.int(this.params.diskLatencyMax + 1);
  }

  // --- network ------------------------------------------------------------------------------------

  private transport(): Transport {
    return {
      send: (from, message) => {
        const cluster = this.cluster;
        cluster.count("sent");
        if (this.blocked.has(linkKey(message.from, message.to))) {
          cluster.count("drop:partition");
          this.undeliverable(from, message, true);
          return;
        }
        if (!this.calm && this.net.chance(this.params.dropPermille / 1000)) {
          cluster.count("drop:random");
          this.undeliverable(from, message, false);
          return;
        }
        const copies = !this.calm && this.net.chance(this.params.dupPermille / 1000) ? 2 : 1;
        if (copies === 2) cluster.count("duplicate");
        for (let copy = 0; copy < copies; copy++) {
          let latency = 1 + (this.calm ? this.net.int(2) : this.net.int(this.params.latencyMax));
          if (!this.calm && this.net.chance(this.params.longDelayPermille / 1000)) {
            cluster.count("delay:long");
            latency += 1 + this.net.int(10 * this.params.latencyMax);
          }
          const clog = this.clogs.get(linkKey(message.from, message.to));
          if (clog !== undefined && clog.until > this.step) {
            cluster.count("delay:clog");
            latency += clog.extra;
          }
          this.push(this.step + latency, "deliver", message, null, null);
        }
      },
    };
  }

  private deliver(message: Message): void {
    const cluster = this.cluster;
    const from = cluster.node(message.from);
    if (this.blocked.has(linkKey(message.from, message.to))) {
      cluster.count("drop:partition-inflight");
      if (from !== undefined) this.undeliverable(from, message, true);
      return;
    }
    const to = cluster.node(message.to);
    if (to === undefined || !to.alive) {
      cluster.count("drop:node-down");
      if (from !== undefined) this.undeliverable(from, message, true);
      return;
    }
    if (!to.input({ kind: "message", message })) cluster.count("drop:inbox");
    cluster.count(`delivered:${message.type}`);
    if (message.type === "snap" && from !== undefined) this.report(from, { kind: "reportSnapshot", peer: message.to, ok: true });
  }

  /** Tells the sender's core what a real transport would: unreachable peers, failed snapshots. */
  private undeliverable(from: SimNode, message: Message, unreachable: boolean): void {
    if (message.type === "snap") this.report(from, { kind: "reportSnapshot", peer: message.to, ok: false });
    else if (unreachable && this.net.chance(0.2)) this.report(from, { kind: "reportUnreachable", peer: message.to });
  }

  private report(node: SimNode, input: NodeInput): void {
    if (!node.alive) return;
    this.cluster.count(input.kind);
    this.push(this.step + 1, "input", null, node, input);
  }

  private rebuildBlocked(): void {
    this.blocked = new Set(this.cuts.flatMap((cut) => cut.links));
  }

  private cut(links: string[], duration: number, what: string): void {
    if (links.length === 0) return;
    this.cuts.push({ until: this.step + duration, links });
    this.rebuildBlocked();
    this.cluster.trace(`${what} for ${duration}`);
  }

  // --- faults -------------------------------------------------------------------------------------

  private startFaults(now: number): void {
    while (this.nextFault < this.faults.length && this.faults[this.nextFault]!.at <= now) {
      const fault = this.faults[this.nextFault++]!;
      if (this.startFault(fault)) this.cluster.count(`fault:${fault.kind}`);
      else this.cluster.count(`fault-skipped:${fault.kind}`);
    }
  }

  private endFaults(now: number): void {
    if (this.cuts.some((cut) => cut.until <= now)) {
      this.cuts = this.cuts.filter((cut) => cut.until > now);
      this.rebuildBlocked();
      this.cluster.trace(`heal (${this.cuts.length} cuts remain)`);
    }
    for (const [node, at] of this.restartAt) {
      if (at > now) continue;
      this.restartAt.delete(node);
      if (!node.alive) {
        this.cluster.restart(node);
        this.scheduleTicks(node);
      }
    }
    for (const [node, at] of this.resumeAt) {
      if (at > now) continue;
      this.resumeAt.delete(node);
      node.resume();
      this.cluster.trace(`resume ${node.id}`);
    }
  }

  private startFault(fault: Fault): boolean {
    const list = this.cluster.list;
    const nodeA = list[fault.a % list.length]!;
    const nodeB = list[fault.b % list.length]!;
    const ids = list.map((node) => node.id);
    switch (fault.kind) {
      case "partition": {
        const shuffled = this.faultRng.shuffle(ids.slice());
        const split = 1 + this.faultRng.int(shuffled.length - 1);
        const left = shuffled.slice(0, split);
        const right = shuffled.slice(split);
        this.cut(crossLinks(left, right), fault.duration, `partition ${left.join(" ")} | ${right.join(" ")}`);
        return true;
      }
      case "isolateLeader": {
        const leader = this.leader();
        if (leader === null) return false;
        const rest = ids.filter((id) => id !== leader.id);
        this.cut(crossLinks([leader.id], rest), fault.duration, `isolate leader ${leader.id}`);
        return true;
      }
      case "bridge": {
        if (ids.length < 3) return false;
        const bridge = nodeA.id;
        const others = this.faultRng.shuffle(ids.filter((id) => id !== bridge));
        const half = Math.ceil(others.length / 2);
        this.cut(crossLinks(others.slice(0, half), others.slice(half)), fault.duration, `bridge via ${bridge}: ${others.slice(0, half).join(" ")} | ${others.slice(half).join(" ")}`);
        return true;
      }
      case "oneWay": {
        if (nodeA === nodeB) return false;
        this.cut([linkKey(nodeA.id, nodeB.id)], fault.duration, `cut ${nodeA.id} -> ${nodeB.id}`);
        return true;
      }
      case "clog": {
        if (nodeA === nodeB) return false;
        const extra = 1 + this.faultRng.int(4 * this.params.electionTicks * this.params.tickSteps);
        this.clogs.set(linkKey(nodeA.id, nodeB.id), { until: this.step + fault.duration, extra });
        this.cluster.trace(`clog ${nodeA.id} -> ${nodeB.id} +${extra} for ${fault.duration}`);
        return true;
      }
      case "crash":
      case "crashLeader": {
        const victim = fault.kind === "crash" ? nodeA : this.leader();
        if (victim === null || !victim.alive) return false;
        this.cluster.crash(victim);
        this.restartAt.set(victim, this.step + fault.duration);
        return true;
      }
      case "crashNewLeader":
      case "isolateNewLeader": {
        const leader = this.leader();
        const aboveTerm = leader === null ? 0 : leader.core!.status().term;
        this.newLeaderFault = { aboveTerm, delay: fault.a + fault.b, duration: fault.duration, crash: fault.kind === "crashNewLeader" };
        return true;
      }
      case "pause": {
        if (!nodeA.alive || nodeA.paused) return false;
        nodeA.pause();
        this.resumeAt.set(nodeA, this.step + fault.duration);
        this.cluster.trace(`pause ${nodeA.id} for ${fault.duration}`);
        return true;
      }
      case "diskStall":
        this.stallUntil.set(nodeA, this.step + Math.min(fault.duration, 20 * this.params.tickSteps * this.params.electionTicks));
        this.cluster.trace(`disk stall ${nodeA.id}`);
        return true;
      case "compact":
        return this.compact(nodeA);
      case "transfer": {
        const leader = this.leader();
        if (leader === null) return false;
        const voters = leader.core!.status().confState.voters.filter((id) => id !== leader.id);
        if (voters.length === 0) return false;
        const to = voters[fault.b % voters.length]!;
        this.cluster.trace(`transfer ${leader.id} -> ${to}`);
        return leader.input({ kind: "transfer", to });
      }
      case "addLearner":
      case "promote":
      case "remove":
        return this.membership(fault);
    }
  }

  private newLeaderFaults(now: number): void {
    const armed = this.newLeaderFault;
    if (armed !== null) {
      const leader = this.leader();
      if (leader !== null && leader.core!.status().term > armed.aboveTerm) {
        this.newLeaderFault = null;
        this.newLeaderFaultAt.set(leader, { at: now + armed.delay, duration: armed.duration, crash: armed.crash });
      }
    }
    for (const [node, { at, duration, crash }] of this.newLeaderFaultAt) {
      if (at > now) continue;
      this.newLeaderFaultAt.delete(node);
      if (!node.alive) continue;
      if (crash) {
        this.cluster.crash(node);
        this.restartAt.set(node, now + duration);
      } else {
        const rest = this.cluster.list.filter((other) => other !== node).map((other) => other.id);
        this.cut(crossLinks([node.id], rest), duration, `isolate new leader ${node.id}`);
      }
    }
  }

  private compact(node: SimNode): boolean {
    if (!node.alive) return false;
    return node.input({ kind: "compact", keepEntries: this.faultRng.int(this.params.compactKeep + 1) });
  }

  private membership(fault: Fault): boolean {
    const leader = this.leader();
    if (leader === null) return false;
    const status = leader.core!.status();
    const { voters, learners } = status.confState;
    let change: ConfChange;
    if (fault.kind === "addLearner") {
      if (this.cluster.list.length >= MAX_NODES) return false;
      change = { type: "addLearner", nodeId: this.cluster.newNodeId() };
    } else if (fault.kind === "promote") {
      // Learners should catch up before they vote: usually promote one whose match is near the
      // commit index; sometimes any learner (a lagging new voter costs availability, never safety).
      const caughtUp = learners.filter((id) => (status.progress?.[id]?.match ?? 0) + 5 >= status.commit);
      const pool = fault.a % 4 === 0 ? learners : caughtUp;
      if (pool.length === 0) return false;
      change = { type: "addVoter", nodeId: pool[fault.b % pool.length]! };
    } else {
      // Remove a voter (the leader included) or a learner; sometimes demote a voter to learner.
      const candidates = voters.length > 3 ? [...voters, ...learners] : learners;
      if (candidates.length === 0) return false;
      const nodeId = candidates[fault.b % candidates.length]!;
      const demote = fault.a % 3 === 0 && voters.includes(nodeId);
      change = { type: demote ? "addLearner" : "removeNode", nodeId };
    }
    return this.cluster.proposeConfChange(leader.id, change, (result) => {
      this.cluster.count(result.ok ? `conf:${change.type}` : `conf-refused:${change.type}`);
      this.cluster.trace(`propose ${change.type} ${change.nodeId} on ${leader.id}: ${result.ok ? `index ${result.index}` : result.error.code}`);
      if (result.ok && change.type === "addLearner" && this.cluster.node(change.nodeId) === undefined) {
        const node = this.cluster.addNode(change.nodeId, EMPTY_CONF);
        this.scheduleTicks(node);
      }
    });
  }

  /** The live leader with the highest term, if any. */
  leader(): SimNode | null {
    let best: SimNode | null = null;
    let bestTerm = -1;
    for (const node of this.cluster.list) {
      if (!node.alive || node.core === null) continue;
      const status = node.core.status();
      if (status.role === "leader" && status.term > bestTerm) {
        best = node;
        bestTerm = status.term;
      }
    }
    return best;
  }

  // --- clients ------------------------------------------------------------------------------------

  private runClients(now: number): void {
    if (this.clientsStopped) return;
    const timeout = 20 * this.params.electionTicks * this.params.tickSteps;
    for (const client of this.clients) {
      if (client.op !== null) {
        if (now - client.startedAt > timeout) {
          if (client.op.kind === "write") this.cluster.abandonWrite(client.op);
          else this.cluster.abandonRead(client.op);
          client.op = null;
        }
        continue;
      }
      if (!this.clientRng.chance(this.params.opPermille / 1000)) continue;
      const target = this.clientTarget();
      if (target === null) continue;
      const key = `k${this.clientRng.int(this.params.keys)}`;
      client.startedAt = now;
      const done = () => {
        client.op = null;
      };
      if (this.clientRng.chance(this.params.readPermille / 1000)) {
        client.op = this.cluster.read(target.id, key, client.id, done);
      } else {
        client.op = this.cluster.put(target.id, key, `c${client.id}.${++client.seq}`, client.id, done);
      }
      if (client.op.outcome !== "pending") client.op = null;
    }
  }

  /** Like a client library: ask a random live node who leads, go there (or stay there). */
  private clientTarget(): SimNode | null {
    const alive = this.cluster.list.filter((node) => node.alive);
    if (alive.length === 0) return null;
    const asked = this.clientRng.pick(alive);
    const hint = asked.core!.status().leader;
    const leader = hint === null ? undefined : this.cluster.node(hint);
    return leader !== undefined && leader.alive && this.clientRng.chance(0.9) ? leader : asked;
  }

  // --- liveness -----------------------------------------------------------------------------------

  /**
   * Returns the steps it took. Phase 1: within LIVENESS_ELECTION_TIMEOUTS election timeouts a
   * leader must commit a fresh write (the probe). Phase 2 (clients stopped): every voter must apply
   * it, and none may go STUCK_ELECTION_TIMEOUTS election timeouts without applying anything (a
   * voter promoted while far behind may take a while to catch up, but it must keep moving).
   */
  private liveness(): number {
    const start = this.step;
    this.calm = true;
    this.cuts = [];
    this.rebuildBlocked();
    this.clogs.clear();
    this.stallUntil.clear();
    for (const node of this.cluster.list) {
      if (node.paused) node.resume();
      this.resumeAt.delete(node);
    }
    this.restartAt.clear();
    for (const node of this.cluster.list) {
      if (!node.alive) {
        this.cluster.restart(node);
        this.scheduleTicks(node);
      }
      // A write issued during a disk stall would otherwise keep its node frozen well into this phase.
      if (node.busy) this.push(this.step + 1, "disk", null, node, null, node.writeSeq);
    }
    this.cluster.trace("liveness phase: healed, all nodes up, calm network, disks healthy");
    const electionTimeout = this.params.electionTicks * this.params.tickSteps * 1.1;
    const bound = Math.ceil(LIVENESS_ELECTION_TIMEOUTS * electionTimeout);
    const probeIndex = this.commitProbe(start, bound, electionTimeout);
    this.recoverySteps = this.step - start;
    this.cluster.trace(`liveness probe committed at ${probeIndex}; waiting for every voter to apply it`);
    this.clientsStopped = true;
    const stuckAfter = Math.ceil(STUCK_ELECTION_TIMEOUTS * electionTimeout);
    const progress = new Map<string, { applied: number; at: number }>();
    for (; this.step - start < LIVENESS_STEPS_MAX; this.step++) {
      this.runStep();
      const leader = this.leader();
      if (leader === null) {
        if (this.step - start > 2 * bound) throw new LivenessFailure(`the cluster lost its leader while catching up and found none; ${this.describeNodes()}`);
        continue;
      }
      const behind = leader.core!.status().confState.voters.map((id) => this.cluster.node(id)).filter((n) => n !== undefined && n.machine.applied < probeIndex) as SimNode[];
      if (behind.length === 0) {
        this.cluster.checkDurableLogsMatch();
        return this.step - start + 1;
      }
      for (const node of behind) {
        const seen = progress.get(node.id);
        if (seen === undefined || node.machine.applied > seen.applied) progress.set(node.id, { applied: node.machine.applied, at: this.step });
        else if (this.step - seen.at > stuckAfter) {
          throw new LivenessFailure(
            `voter ${node.id} applied nothing for ${STUCK_ELECTION_TIMEOUTS} election timeouts (stuck at ${node.machine.applied}, probe at ${probeIndex}) after faults stopped; ${this.describeNodes()}`,
          );
        }
      }
    }
    throw new LivenessFailure(`voters still behind after ${LIVENESS_STEPS_MAX} steps; ${this.describeNodes()}`);
  }

  /** Phase 1 of liveness: a leader commits a fresh write within `bound` steps; returns its index. */
  private commitProbe(start: number, bound: number, electionTimeout: number): number {
    let probe: WriteOp | null = null;
    let probeSeq = 0;
    for (; this.step - start < bound; this.step++) {
      this.runStep();
      if (probe !== null && probe.outcome === "ok") return probe.proposedAt!.index;
      if (probe !== null && probe.outcome === "pending") {
        // Its slot may never be reached again (a deposed leader's log was cut back): retry elsewhere.
        if (this.step - probe.invokedAt < 4 * electionTimeout) continue;
        this.cluster.abandonWrite(probe);
      }
      const leader = this.leader();
      if (leader === null) continue;
      probe = this.cluster.put(leader.id, "live", `live.${++probeSeq}`, -1);
      const proposed = probe;
      this.cluster.trace(() => `liveness probe ${proposed.value} on ${leader.id}: ${proposed.outcome}${proposed.proposedAt === null ? "" : ` at ${proposed.proposedAt.index}/${proposed.proposedAt.term}`}`);
    }
    throw new LivenessFailure(
      `no leader committed a new write within ${bound} steps (${LIVENESS_ELECTION_TIMEOUTS} election timeouts) after faults stopped; ${this.describeNodes()}`,
    );
  }

  describeNodes(): string {
    return this.cluster.list
      .map((node) => {
        if (!node.alive || node.core === null) return `${node.id}: down`;
        const s: RaftStatus = node.core.status();
        return `${node.id}: ${s.role} term=${s.term} leader=${s.leader ?? "-"} commit=${s.commit} applied=${node.machine.applied} last=${s.lastIndex} voters=[${s.confState.voters.join(",")}] learners=[${s.confState.learners.join(",")}]${node.busy ? " busy" : ""}`;
      })
      .join("; ");
  }
}

function linkKey(from: string, to: string): string {
  return `${from}>${to}`;
}

function crossLinks(left: readonly string[], right: readonly string[]): string[] {
  const links: string[] = [];
  for (const a of left) {
    for (const b of right) links.push(linkKey(a, b), linkKey(b, a));
  }
  return links;
}
