/**
 * The nemesis: faults on real processes and on the fault proxy, chosen on a seeded schedule.
 *
 * Every fault is an episode: inject, hold for a bounded time, heal (restart, resume, reconnect), each
 * step logged with its time to faults.jsonl. The main lane runs one episode at a time; membership
 * changes run on their own lane at the same time, so nodes are removed and re-added while other faults
 * run. Both lanes are bounded in episodes and by the run's deadline.
 *
 * The seed fixes every choice (which fault, which nodes, how long); the interleaving with real
 * processes is not reproducible to the millisecond, so a replay reruns the same schedule, not the same
 * history.
 */
import { Kvm, type Connection } from "../../src/client/index.ts";
import { CairnError } from "../../src/shared/errors.ts";
import type { WireClusterStatus } from "../../src/shared/protocol.ts";
import type { Prng } from "../support/prng.ts";
import { flipByte, truncateLogTail } from "./disk.ts";
import { PORT_IN_USE, type NodeProcesses } from "./nodes.ts";
import type { FaultProxy } from "./proxy.ts";

/** Nemesis names on the command line, and the faults each stands for. */
export const NEMESIS_GROUPS: Record<string, readonly string[]> = {
  kill: ["kill-random", "kill-leader", "kill-majority"],
  "kill-all": ["kill-all"],
  pause: ["pause-leader", "pause-follower"],
  partition: ["partition-halves", "partition-leader", "partition-bridge", "partition-one-way"],
  disk: ["disk-truncate", "disk-corrupt"],
  membership: ["membership"],
};

/** Episodes of the main lane at most, whatever the run's length. */
export const EPISODES_MAX = 1000;
/** Remove/re-add episodes at most. */
export const MEMBERSHIP_EPISODES_MAX = 200;
/** How long a node may take to start listening (tsx start-up on a loaded machine). */
export const NODE_START_TIMEOUT_MS = 60_000;
/** Starts of one node retried while its port is held by another process. */
const PORT_RETRIES_MAX = 10;
/** How long a node that must refuse to start may take to exit. */
const NODE_REFUSAL_TIMEOUT_MS = 60_000;
/**
 * How long a node that lost data (wiped, or a truncated tail) may take to catch up before the next
 * data-loss fault; beyond, that fault is skipped.
 */
export const CATCH_UP_TIMEOUT_MS = 60_000;
/** Deadline of one membership request, and of re-adding a node (all attempts). */
const MEMBERSHIP_REQUEST_TIMEOUT_MS = 10_000;
const READD_TIMEOUT_MS = 60_000;

export interface FaultEvent {
  atMs: number;
  fault: string;
  /** start / end of an episode; note: a fact worth knowing; anomaly: something the run must fail for. */
  kind: "start" | "end" | "note" | "anomaly" | "skip";
  nodes?: string[];
  detail?: string;
}

export interface NemesisTiming {
  /** Hold of one episode, ms. */
  holdMsMin: number;
  holdMsMax: number;
  /** Quiet time between episodes, ms. */
  quietMsMin: number;
  quietMsMax: number;
}

export const DEFAULT_TIMING: NemesisTiming = { holdMsMin: 2000, holdMsMax: 8000, quietMsMin: 1000, quietMsMax: 4000 };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export class FaultContext {
  readonly events: FaultEvent[] = [];
  /** Nodes removed from the cluster by the membership nemesis and not yet re-added. */
  readonly removed = new Set<string>();
  /** false once the server answered "unknown op" to a membership request. */
  membershipSupported: boolean | null = null;
  /** Faults injected, by name. */
  readonly injected: Record<string, number> = {};
  /**
   * Nodes that lost data (wiped, tail truncated) and have not yet been seen caught up. A data-loss
   * fault waits for this to empty: at most a minority of the nodes may be without their data at once,
   * or acknowledged writes are gone for any Raft implementation.
   */
  readonly dataLoss = new Set<string>();
  /**
   * A data-loss episode is between its checks and its node's restart. The membership lane does not
   * remove a node meanwhile (nor the disk faults destroy data while a removal is in flight: `removed`
   * holds a node from before its remove request is sent). Both checks and claims run without an await
   * in between, so the two lanes cannot interleave there.
   */
  diskBusy = false;

  constructor(
    readonly nodes: NodeProcesses,
    readonly proxy: FaultProxy,
    readonly admin: Connection,
    readonly rng: Prng,
    readonly now: () => number,
    /** Raft groups by name as cluster.status names them (bucket names and "meta"). */
    readonly groups: readonly string[],
    private readonly onEvent: (event: FaultEvent) => void = () => undefined,
  ) {}

  log(event: Omit<FaultEvent, "atMs">): void {
    const full = { atMs: this.now(), ...event };
    this.events.push(full);
    this.onEvent(full);
  }

  get anomalies(): FaultEvent[] {
    return this.events.filter((e) => e.kind === "anomaly");
  }

  get ids(): string[] {
    return this.nodes.ids;
  }

  /** The leader of a Raft group as the cluster reports it (null when unknown or not running). */
  async leaderOf(group: string): Promise<string | null> {
    try {
      const status = (await this.admin.request("cluster.status", {}, { timeoutMs: 3000 })) as WireClusterStatus;
      const leader = status.groups.find((g) => g.group === group)?.leader ?? null;
      return leader !== null && this.nodes.nodes.has(leader) && this.nodes.isRunning(leader) ? leader : null;
    } catch {
      return null;
    }
  }

  private async status(): Promise<WireClusterStatus | null> {
    try {
      return (await this.admin.request("cluster.status", {}, { timeoutMs: 3000 })) as WireClusterStatus;
    } catch {
      return null;
    }
  }

  /** Each bucket's current replicas, as its leader reports them (null when some status fails). */
  async placements(): Promise<Map<string, string[]> | null> {
    const kvm = new Kvm(this.admin);
    const placements = new Map<string, string[]>();
    try {
      for (const bucket of this.groups.filter((g) => g !== "meta")) {
        placements.set(bucket, (await kvm.status(bucket, { timeoutMs: 3000 })).replicasInfo.map((r) => r.node));
      }
      return placements;
    } catch {
      return null;
    }
  }

  /**
   * Waits (bounded) until every node that lost data is caught up: in the meta group and in every
   * bucket whose current placement includes it, it is a member with nothing left to apply. Placement
   * is read each time (membership changes move buckets). Returns false (and logs why) if some node
   * has not caught up: the caller must not destroy more data now.
   */
  async settleDataLoss(fault: string): Promise<boolean> {
    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    while (this.dataLoss.size > 0 && Date.now() < deadline) {
      const status = await this.status();
      const placements = status === null ? null : await this.placements();
      if (status !== null && placements !== null) {
        for (const id of [...this.dataLoss]) {
          const expected = ["meta", ...[...placements].filter(([, nodes]) => nodes.includes(id)).map(([bucket]) => bucket)];
          const caughtUp = expected.every((name) => {
            const group = status.groups.find((g) => g.group === name);
            const member = group?.members.find((m) => m.node === id);
            return group !== undefined && group.leader !== null && member !== undefined && member.lag === 0;
          });
          if (caughtUp) {
            this.dataLoss.delete(id);
            this.log({ fault, kind: "note", nodes: [id], detail: `caught up after its data loss (${expected.join(", ")})` });
          }
        }
      }
      if (this.dataLoss.size > 0) await sleep(500);
    }
    if (this.dataLoss.size === 0) return true;
    this.log({
      fault,
      kind: "skip",
      nodes: [...this.dataLoss.keys()],
      detail: `not caught up within ${CATCH_UP_TIMEOUT_MS} ms since losing data; no more data loss now (it would exceed the fault model: a majority without its data)`,
    });
    return false;
  }

  /**
   * How many nodes may lose their data now: a strict minority of the current voters (removed nodes do
   * not vote). Logs a skip when none may.
   */
  dataLossAllowed(fault: string): number {
    const voters = this.ids.length - this.removed.size;
    const allowed = Math.floor((voters - 1) / 2);
    if (allowed < 1) {
      this.log({ fault, kind: "skip", detail: `${voters} voters (${[...this.removed].join(",")} removed): losing one node's data would leave no majority holding it` });
    }
    return allowed;
  }

  /** A group's leader, or a random running node when none is known. */
  async leaderOrAny(): Promise<{ node: string; group: string; known: boolean }> {
    const group = this.rng.pick(this.groups);
    const leader = await this.leaderOf(group);
    if (leader !== null) return { node: leader, group, known: true };
    const running = this.ids.filter((id) => this.nodes.isRunning(id));
    return { node: this.rng.pick(running.length > 0 ? running : this.ids), group, known: false };
  }

  async kill(ids: readonly string[]): Promise<void> {
    await Promise.all(ids.map((id) => this.nodes.kill9(id)));
  }

  /**
   * Starts a node that should come up. If it refuses (its exit is recorded by NodeProcesses as
   * unexpected) or hangs, logs an anomaly and recovers it from an empty data directory so the run
   * goes on.
   */
  async start(id: string, fault: string): Promise<void> {
    if (this.nodes.isRunning(id)) return;
    const result = await this.spawnAndWait(id, fault);
    if (result.state === "listening") return;
    this.log({ fault, kind: "anomaly", nodes: [id], detail: `node did not start (${result.state}):\n${result.log}` });
    await this.nodes.kill9(id);
    await this.startWiped(id, fault);
  }

  /** Wipes the node's data directory and starts it (it must rejoin as a node that lost its data). */
  async startWiped(id: string, fault: string): Promise<void> {
    await this.nodes.kill9(id);
    this.dataLoss.add(id);
    await this.nodes.wipe(id);
    this.log({ fault, kind: "note", nodes: [id], detail: "data directory wiped; restarting empty" });
    const result = await this.spawnAndWait(id, fault);
    if (result.state !== "listening") {
      this.log({ fault, kind: "anomaly", nodes: [id], detail: `node did not start from an empty data directory (${result.state}):\n${result.log}` });
    }
  }

  /** Spawns and waits; retried (bounded) while another process holds the node's port. */
  private async spawnAndWait(id: string, fault: string): Promise<{ state: "listening" | "exited" | "timeout"; log: string }> {
    for (let attempt = 1; ; attempt++) {
      this.nodes.spawn(id);
      const result = await this.nodes.waitStarted(id, NODE_START_TIMEOUT_MS);
      if (result.state !== "exited" || !PORT_IN_USE.test(result.log) || attempt >= PORT_RETRIES_MAX) return result;
      this.log({ fault, kind: "note", nodes: [id], detail: `port taken by another process (attempt ${attempt}); retrying` });
      await sleep(2000);
    }
  }

  async startAll(ids: readonly string[], fault: string): Promise<void> {
    await Promise.all(ids.map((id) => this.start(id, fault)));
  }

  /** Sends a membership request. "unsupported" when the server does not know the op. */
  async membership(op: "cluster.removeNode" | "cluster.addNode", nodeId: string): Promise<"ok" | "unsupported" | CairnError> {
    const request = this.admin.request.bind(this.admin) as unknown as (op: string, body: unknown, options: { timeoutMs: number }) => Promise<unknown>;
    try {
      await request(op, { nodeId }, { timeoutMs: MEMBERSHIP_REQUEST_TIMEOUT_MS });
      this.membershipSupported = true;
      return "ok";
    } catch (error) {
      if (error instanceof CairnError && error.code === "INVALID_REQUEST" && /unknown op/i.test(error.message)) {
        this.membershipSupported = false;
        return "unsupported";
      }
      return error instanceof CairnError ? error : new CairnError("INTERNAL", String(error));
    }
  }

  /** Re-adds a removed node (retrying until READD_TIMEOUT_MS) and starts it if it stopped. */
  async readd(id: string, fault: string): Promise<boolean> {
    const deadline = Date.now() + READD_TIMEOUT_MS;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const result = await this.membership("cluster.addNode", id);
      if (result === "ok") {
        this.removed.delete(id);
        this.log({ fault, kind: "end", nodes: [id], detail: `re-added${attempt > 0 ? ` after ${attempt + 1} attempts` : ""}` });
        if (!this.nodes.isRunning(id)) await this.start(id, fault);
        return true;
      }
      if (result === "unsupported") return false;
      await sleep(1000);
    }
    this.log({ fault, kind: "note", nodes: [id], detail: `could not re-add within ${READD_TIMEOUT_MS} ms; retried at the end` });
    return false;
  }

  /** Everything back to normal: links healed, processes resumed and running, removed nodes re-added. */
  async healAll(): Promise<void> {
    this.proxy.heal();
    for (const id of this.ids) this.nodes.resume(id);
    await this.startAll(
      this.ids.filter((id) => !this.nodes.isRunning(id)),
      "final-heal",
    );
    for (const id of [...this.removed]) await this.readd(id, "final-heal");
    this.log({ fault: "final-heal", kind: "end", detail: "healed, resumed, restarted, re-added" });
  }
}

/** Resolves "skipped" when the fault could not be injected now. */
type Fault = (ctx: FaultContext, holdMs: number) => Promise<void | "skipped">;

const majority = (n: number): number => Math.floor(n / 2) + 1;
const minorityMax = (n: number): number => Math.floor((n - 1) / 2);

async function killEpisode(ctx: FaultContext, fault: string, ids: string[], holdMs: number, detail?: string): Promise<void> {
  ctx.log({ fault, kind: "start", nodes: ids, ...(detail ? { detail } : {}) });
  await ctx.kill(ids);
  await sleep(holdMs);
  await ctx.startAll(ids, fault);
  ctx.log({ fault, kind: "end", nodes: ids });
}

async function partitionEpisode(ctx: FaultContext, fault: string, holdMs: number, cut: () => void, nodes: string[], detail: string): Promise<void> {
  cut();
  ctx.log({ fault, kind: "start", nodes, detail: `${detail}; cut: ${ctx.proxy.cuts().join(" ")}` });
  await sleep(holdMs);
  ctx.proxy.heal();
  ctx.log({ fault, kind: "end", nodes });
}

export const FAULTS: Record<string, Fault> = {
  "kill-random": async (ctx, holdMs) => {
    await killEpisode(ctx, "kill-random", [ctx.rng.pick(ctx.ids)], holdMs);
  },
  "kill-leader": async (ctx, holdMs) => {
    const { node, group, known } = await ctx.leaderOrAny();
    await killEpisode(ctx, "kill-leader", [node], holdMs, known ? `leader of ${group}` : `leader of ${group} unknown: a random node`);
  },
  "kill-majority": async (ctx, holdMs) => {
    const ids = ctx.rng.shuffle([...ctx.ids]).slice(0, majority(ctx.ids.length)).sort();
    await killEpisode(ctx, "kill-majority", ids, holdMs);
  },
  "kill-all": async (ctx, holdMs) => {
    await killEpisode(ctx, "kill-all", [...ctx.ids], holdMs);
  },
  "pause-leader": async (ctx, holdMs) => {
    const { node, group, known } = await ctx.leaderOrAny();
    ctx.nodes.pause(node);
    ctx.log({ fault: "pause-leader", kind: "start", nodes: [node], detail: known ? `SIGSTOP leader of ${group}` : "SIGSTOP (leader unknown: a random node)" });
    await sleep(holdMs);
    ctx.nodes.resume(node);
    ctx.log({ fault: "pause-leader", kind: "end", nodes: [node] });
  },
  "pause-follower": async (ctx, holdMs) => {
    const { node: leader } = await ctx.leaderOrAny();
    const followers = ctx.ids.filter((id) => id !== leader);
    const ids = ctx.rng.shuffle(followers).slice(0, ctx.rng.range(1, Math.max(1, minorityMax(ctx.ids.length)))).sort();
    for (const id of ids) ctx.nodes.pause(id);
    ctx.log({ fault: "pause-follower", kind: "start", nodes: ids, detail: `SIGSTOP (leader ${leader})` });
    await sleep(holdMs);
    for (const id of ids) ctx.nodes.resume(id);
    ctx.log({ fault: "pause-follower", kind: "end", nodes: ids });
  },
  "partition-halves": async (ctx, holdMs) => {
    const shuffled = ctx.rng.shuffle([...ctx.ids]);
    const minority = shuffled.slice(0, ctx.rng.range(1, minorityMax(ctx.ids.length))).sort();
    const rest = shuffled.slice(minority.length).sort();
    await partitionEpisode(ctx, "partition-halves", holdMs, () => ctx.proxy.partition([minority, rest]), minority, `minority [${minority}] | majority [${rest}]`);
  },
  "partition-leader": async (ctx, holdMs) => {
    const { node, group, known } = await ctx.leaderOrAny();
    const rest = ctx.ids.filter((id) => id !== node);
    await partitionEpisode(ctx, "partition-leader", holdMs, () => ctx.proxy.partition([[node], rest]), [node], `isolated ${known ? `leader of ${group}` : "node (leader unknown)"}`);
  },
  "partition-bridge": async (ctx, holdMs) => {
    // A–B–C: the bridge talks to both sides, the sides not to each other.
    const shuffled = ctx.rng.shuffle([...ctx.ids]);
    const bridge = shuffled[0]!;
    const others = shuffled.slice(1);
    const cut = ctx.rng.range(1, others.length - 1);
    const left = others.slice(0, cut).sort();
    const right = others.slice(cut).sort();
    await partitionEpisode(
      ctx,
      "partition-bridge",
      holdMs,
      () => {
        ctx.proxy.heal();
        for (const a of left) for (const b of right) ctx.proxy.cutPair(a, b);
      },
      [bridge],
      `[${left}] - ${bridge} - [${right}]`,
    );
  },
  "partition-one-way": async (ctx, holdMs) => {
    const { node, group, known } = await ctx.leaderOrAny();
    const outbound = ctx.rng.chance(0.5);
    const others = ctx.ids.filter((id) => id !== node);
    await partitionEpisode(
      ctx,
      "partition-one-way",
      holdMs,
      () => {
        ctx.proxy.heal();
        for (const other of others) {
          if (outbound) ctx.proxy.setMode(node, other, "drop-data");
          else ctx.proxy.setMode(other, node, "drop-data");
        }
      },
      [node],
      `${known ? `leader of ${group}` : "node"} ${node} ${outbound ? "cannot send to" : "cannot hear from"} the others`,
    );
  },
  "disk-truncate": async (ctx) => {
    if (!(await ctx.settleDataLoss("disk-truncate")) || ctx.dataLossAllowed("disk-truncate") < 1) return "skipped";
    ctx.diskBusy = true;
    try {
      const id = ctx.rng.pick(ctx.ids);
      await ctx.kill([id]);
      const result = await truncateLogTail(ctx.nodes.node(id).dataDir, ctx.rng);
      if (result.done) ctx.dataLoss.add(id);
      ctx.log({ fault: "disk-truncate", kind: result.done ? "start" : "skip", nodes: [id], detail: result.note });
      await ctx.start(id, "disk-truncate");
      ctx.log({ fault: "disk-truncate", kind: "end", nodes: [id] });
    } finally {
      ctx.diskBusy = false;
    }
  },
  "disk-corrupt": async (ctx) => {
    if (!(await ctx.settleDataLoss("disk-corrupt"))) return "skipped";
    const allowed = ctx.dataLossAllowed("disk-corrupt");
    if (allowed < 1) return "skipped";
    ctx.diskBusy = true;
    try {
      if (!(await corrupt(ctx, allowed))) return "skipped";
    } finally {
      ctx.diskBusy = false;
    }
  },
};

/** Flips a byte in the logs of 1..allowed stopped nodes; each must refuse to start; then each is wiped and restarted. */
async function corrupt(ctx: FaultContext, allowed: number): Promise<boolean> {
  // A strict minority of the cluster's voters, and of every bucket's replicas (with 5 nodes a bucket
  // may live on 3: two of them losing data would be a majority of that group). Placement unknown: one.
  const known = await ctx.placements();
  const placements = known ?? new Map<string, string[]>();
  const wanted = known === null ? 1 : ctx.rng.range(1, allowed);
  const ids: string[] = [];
  for (const id of ctx.rng.shuffle([...ctx.ids])) {
    if (ids.length >= wanted) break;
    const fits = [...placements.values()].every((nodes) => !nodes.includes(id) || ids.filter((x) => nodes.includes(x)).length + 1 <= Math.floor((nodes.length - 1) / 2));
    if (fits) ids.push(id);
  }
  if (ids.length === 0) {
    ctx.log({ fault: "disk-corrupt", kind: "skip", detail: "no node whose data loss would stay a minority of every group" });
    return false;
  }
  ids.sort();
  await ctx.kill(ids);
  for (const id of ids) {
    const result = await flipByte(ctx.nodes.node(id).dataDir, ctx.rng);
    if (!result.done) {
      ctx.log({ fault: "disk-corrupt", kind: "skip", nodes: [id], detail: result.note });
      await ctx.start(id, "disk-corrupt");
      continue;
    }
    ctx.log({ fault: "disk-corrupt", kind: "start", nodes: [id], detail: result.note });
    ctx.nodes.spawn(id, true);
    const outcome = await ctx.nodes.waitStarted(id, NODE_REFUSAL_TIMEOUT_MS);
    if (outcome.state === "exited" && /CORRUPT_DATA/.test(outcome.log)) {
      const line = outcome.log.split("\n").find((l) => l.includes("CORRUPT_DATA")) ?? "";
      ctx.log({ fault: "disk-corrupt", kind: "note", nodes: [id], detail: `refused to start as expected: ${line.slice(0, 400)}` });
    } else {
      ctx.log({
        fault: "disk-corrupt",
        kind: "anomaly",
        nodes: [id],
        detail: `expected the node to refuse to start with CORRUPT_DATA after: ${result.note}; it ${outcome.state === "listening" ? "started" : outcome.state}:\n${outcome.log}`,
      });
    }
    ctx.dataLoss.add(id);
    await ctx.startWiped(id, "disk-corrupt");
    ctx.log({ fault: "disk-corrupt", kind: "end", nodes: [id] });
  }
  return true;
}

/** Expands command-line nemesis names (groups or single faults) into fault names. */
export function expandNemeses(names: readonly string[]): { faults: string[]; membership: boolean } {
  const faults = new Set<string>();
  let membership = false;
  for (const name of names) {
    const group = NEMESIS_GROUPS[name];
    const members = group ?? (name in FAULTS ? [name] : null);
    if (members === null) {
      throw new Error(`unknown nemesis ${JSON.stringify(name)}; known: ${[...Object.keys(NEMESIS_GROUPS), ...Object.keys(FAULTS)].join(", ")}`);
    }
    for (const m of members) {
      if (m === "membership") membership = true;
      else faults.add(m);
    }
  }
  return { faults: [...faults], membership };
}

/** Answers after which a membership change may or may not have happened. */
const AMBIGUOUS: ReadonlySet<string> = new Set(["TIMEOUT", "CONNECTION_CLOSED", "INTERNAL"]);

/**
 * After the deadline, a lane goes on until each of its faults was injected once, for at most this
 * long: every run exercises every fault it was given, however slow the machine.
 */
export const COVERAGE_GRACE_MS = 120_000;

/**
 * The main lane: one episode at a time until the deadline (run-clock ms) and until every fault was
 * injected once (bounded by COVERAGE_GRACE_MS). Faults come from a seeded bag: each fault once per
 * round, in shuffled order; a fault that cannot be injected now goes back to the end of the bag.
 */
export async function runMainLane(ctx: FaultContext, faults: readonly string[], deadlineMs: number, timing: NemesisTiming): Promise<void> {
  if (faults.length === 0) return;
  const pending = new Set(faults);
  const hardDeadline = deadlineMs + COVERAGE_GRACE_MS;
  const more = (): boolean => (ctx.now() < deadlineMs - 1000 || pending.size > 0) && ctx.now() < hardDeadline;
  let bag: string[] = [];
  await sleep(Math.min(ctx.rng.range(timing.quietMsMin, timing.quietMsMax), deadlineMs - ctx.now()));
  for (let episode = 0; episode < EPISODES_MAX && more(); episode++) {
    if (bag.length === 0) bag = ctx.rng.shuffle([...faults]);
    const fault = bag.shift()!;
    const hold = Math.max(1000, Math.min(ctx.rng.range(timing.holdMsMin, timing.holdMsMax), deadlineMs - ctx.now()));
    if ((await FAULTS[fault]!(ctx, hold)) === "skipped") {
      // Not possible now (e.g. no data loss while a node is removed): try it again later.
      bag.push(fault);
      await sleep(500);
      continue;
    }
    ctx.injected[fault] = (ctx.injected[fault] ?? 0) + 1;
    pending.delete(fault);
    if (more()) await sleep(ctx.rng.range(timing.quietMsMin, timing.quietMsMax));
  }
}

/** The membership lane: remove a node, hold, re-add it; skipped for good if the server lacks the ops. */
export async function runMembershipLane(ctx: FaultContext, deadlineMs: number, timing: NemesisTiming): Promise<void> {
  const rng = ctx.rng.fork("membership");
  await sleep(Math.min(rng.range(timing.quietMsMin * 2, timing.quietMsMax * 2), deadlineMs - ctx.now()));
  const hardDeadline = deadlineMs + COVERAGE_GRACE_MS;
  const more = (): boolean => (ctx.now() < deadlineMs - 3000 || (ctx.injected["membership"] ?? 0) === 0) && ctx.now() < hardDeadline;
  for (let episode = 0; episode < MEMBERSHIP_EPISODES_MAX && more(); episode++) {
    // A node catching up after losing its data counts as failed: do not remove another one meanwhile.
    if (!(await ctx.settleDataLoss("membership")) || ctx.diskBusy) {
      await sleep(Math.min(rng.range(timing.quietMsMin, timing.quietMsMax), deadlineMs - ctx.now()));
      continue;
    }
    const id = rng.pick(ctx.ids);
    ctx.removed.add(id);
    const result = await ctx.membership("cluster.removeNode", id);
    if (result === "unsupported" || (result !== "ok" && !AMBIGUOUS.has(result.code))) ctx.removed.delete(id);
    if (result === "unsupported") {
      ctx.log({
        fault: "membership",
        kind: "skip",
        detail: "membership nemesis skipped: the server answered \"unknown op\" to cluster.removeNode (not implemented yet)",
      });
      return;
    }
    if (result !== "ok" && !AMBIGUOUS.has(result.code)) {
      ctx.log({ fault: "membership", kind: "note", nodes: [id], detail: `remove refused: ${result.code} ${result.message}` });
    } else {
      // An unknown outcome may have removed it: treated as removed, so it is re-added.
      ctx.injected["membership"] = (ctx.injected["membership"] ?? 0) + 1;
      ctx.log({ fault: "membership", kind: "start", nodes: [id], detail: result === "ok" ? "removed" : `remove outcome unknown (${result.code}): re-added later` });
      await sleep(Math.max(1000, Math.min(rng.range(timing.holdMsMin, timing.holdMsMax), deadlineMs - ctx.now())));
      await ctx.readd(id, "membership");
    }
    await sleep(Math.min(rng.range(timing.quietMsMin * 2, timing.quietMsMax * 2), deadlineMs - ctx.now()));
  }
}
