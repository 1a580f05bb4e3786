/**
 * Scripted scenarios: a small command language run against a simulated cluster whose network is a
 * FIFO that moves only on command, producing a transcript (compared with a golden file by
 * scenarios.test.ts, as etcd-io/raft's datadriven tests do). Every safety checker of the swarm runs
 * after every command, and `expect-*` commands fail the scenario outright when they do not hold.
 *
 * Commands (node ids are written 1, 2, ... or n1, n2, ...; `#` starts a comment):
 *   add-nodes <n> [prevote] [checkquorum] [election=<ticks>] [heartbeat=<ticks>] [seed=<n>]
 *                 [inflight=<msgs>] [max-msg-bytes=<n>] [uncommitted=<bytes>]
 *                                    founding voters n1..n<n> (once, first)
 *   add-node                         a new, empty node (to be added with propose-conf)
 *   campaign <node>                  start an election now
 *   propose <node> put <key>=<value> client write (values must be unique in a scenario)
 *   propose-conf <node> add-learner|add-voter|remove <node>
 *   read-index <node> <ctx> [<key>]  linearizable read of <key> (default "a") identified by <ctx>
 *   transfer <from> <to>             leadership transfer
 *   tick <n> [<node>...]             n ticks on the given nodes (default: every live node)
 *   deliver [<node>...]              deliver the messages queued now (only those to the given nodes)
 *   stabilize [quiet]                deliver until no message is left (at most 1000 rounds)
 *   run <n>                          n times: tick every live node once, then stabilize quietly
 *                                    (time passing with a working network)
 *   drop [<node>...]                 discard queued messages (to the given nodes)
 *   partition <ids> | <ids> [| ...]  block every link between the groups
 *   cut <a> -> <b>                   block a -> b only
 *   heal                             unblock everything
 *   crash <node> / restart <node>    power loss (unsynced writes lost) / restart from disk
 *   hold-disk <node>                 the node's synced writes stay in flight (core frozen) ...
 *   release-disk <node>              ... until released: the write completes and the node resumes
 *   compact <node> [<keep>]          snapshot at applied, compact leaving <keep> entries
 *   status [<node>...]   log <node>   state <node>
 *   expect-leader <node>             <node> is leader and every live voter that knows a leader names it
 *   expect-no-leader                 no live node is leader
 *   expect-role <node> <role>        expect-term <node> <n>   expect-commit <node> <n>
 *   expect-applied <node> <n>        expect-value <node> <key>=<value>
 *   expect-readstate <node> <ctx> [<index>]   a read state for <ctx> was served on <node>
 *   expect-no-readstate <node> <ctx>          none was
 *   expect-refused                   the previous propose/propose-conf/read-index was refused
 *   expect-voters <node> <ids...>    the node's membership
 */
import type { ConfChange, Entry, Message, ReadState, Ready } from "../../src/raft/types.ts";
import { Prng } from "../support/prng.ts";
import { Cluster } from "./cluster.ts";
import type { CoreSettings, ProposeResult, SimNode } from "./node.ts";
import { describeEntry, describeLog, describeNode, formatMessage } from "./scenario-format.ts";

export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
}

const STABILIZE_ROUNDS_MAX = 1_000;
const decoder = new TextDecoder();

interface Queued {
  readonly message: Message;
}

class ScenarioCluster extends Cluster {
  out: string[] = [];
  readonly readStates = new Map<string, Map<string, number>>();
  readonly served = new Map<string, Map<string, string>>();

  override onReady(node: SimNode, ready: Ready): void {
    super.onReady(node, ready);
    if (ready.softState !== null) {
      const status = node.core!.status();
      this.out.push(`  ${node.id} becomes ${ready.softState.role} at term ${status.term}${ready.softState.leader === null ? "" : ` (leader ${ready.softState.leader})`}`);
    }
    if (ready.snapshot !== null) {
      const meta = ready.snapshot.metadata;
      this.out.push(`  ${node.id} installs snapshot ${meta.term}/${meta.index} voters=[${meta.confState.voters.join(",")}]`);
    }
  }

  override onApplied(node: SimNode, entry: Entry, replay: boolean): void {
    if (!replay) this.out.push(`  ${node.id} applies ${entry.term}/${entry.index} ${describeEntry(entry)}`);
    super.onApplied(node, entry, replay);
  }

  override onReadState(node: SimNode, readState: ReadState): void {
    super.onReadState(node, readState);
    const ctx = decoder.decode(readState.context);
    let states = this.readStates.get(node.id);
    if (states === undefined) this.readStates.set(node.id, (states = new Map()));
    states.set(ctx, readState.index);
    this.out.push(`  ${node.id} read state ${ctx} at index ${readState.index}`);
  }

  override onReadServed(node: SimNode, readState: ReadState): void {
    super.onReadServed(node, readState);
    const ctx = decoder.decode(readState.context);
    const op = this.history.readOf(ctx);
    const register = op === undefined ? null : node.machine.get(op.key);
    const value = register === null ? "nothing" : `${register.value}@${register.index}`;
    let served = this.served.get(node.id);
    if (served === undefined) this.served.set(node.id, (served = new Map()));
    served.set(ctx, value);
    this.out.push(`  ${node.id} serves read ${ctx}: ${op?.key ?? "?"} = ${value}`);
  }
}

export function runScenario(text: string): string {
  return new Scenario().run(text);
}

class Scenario {
  private cluster: ScenarioCluster | null = null;
  private queue: Queued[] = [];
  private blocked = new Set<string>();
  private lastRefused: boolean | null = null;
  /** Nodes whose synced writes are held in flight, and those with a held write pending. */
  private readonly heldDisks = new Set<string>();
  private readonly heldWrites = new Map<string, number>();
  private line = 0;

  run(text: string): string {
    const transcript: string[] = [];
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      this.line = i + 1;
      const raw = lines[i]!;
      const trimmed = raw.trim();
      if (trimmed === "" || trimmed.startsWith("#")) {
        transcript.push(raw);
        continue;
      }
      transcript.push(`> ${trimmed}`);
      const out: string[] = [];
      if (this.cluster !== null) this.cluster.out = out;
      try {
        this.execute(trimmed.split(/\s+/), out);
        this.cluster?.checkers.afterStep();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new ScenarioError(`line ${this.line} (${trimmed}): ${message}\n--- transcript so far ---\n${[...transcript, ...out].join("\n")}`);
      }
      transcript.push(...out);
    }
    this.cluster?.checkDurableLogsMatch();
    return `${transcript.join("\n").trimEnd()}\n`;
  }

  private get c(): ScenarioCluster {
    if (this.cluster === null) throw new Error("no cluster yet: start with add-nodes");
    return this.cluster;
  }

  private node(token: string | undefined): SimNode {
    if (token === undefined) throw new Error("missing node id");
    return this.c.mustNode(token.startsWith("n") ? token : `n${token}`);
  }

  private nodeId(token: string): string {
    return token.startsWith("n") ? token : `n${token}`;
  }

  private execute(words: string[], out: string[]): void {
    const [command, ...args] = words as [string, ...string[]];
    switch (command) {
      case "add-nodes":
        return this.addNodes(args, out);
      case "add-node": {
        const id = this.c.newNodeId();
        this.c.addNode(id, { voters: [], learners: [] });
        out.push(`  ${id} started (empty)`);
        return;
      }
      case "campaign":
        this.input(this.node(args[0]), { kind: "campaign" });
        return;
      case "propose":
        return this.propose(args, out);
      case "propose-conf":
        return this.proposeConf(args, out);
      case "read-index":
        return this.readIndex(args, out);
      case "transfer":
        this.input(this.node(args[0]), { kind: "transfer", to: this.node(args[1]).id });
        return;
      case "tick":
        return this.tick(args);
      case "deliver":
        this.deliver(args.map((a) => this.nodeId(a)), out, true);
        return;
      case "stabilize":
        return this.stabilize(args[0] === "quiet", out);
      case "run": {
        const rounds = Number(args[0]);
        if (!Number.isInteger(rounds) || rounds < 1) throw new Error("usage: run <n>");
        for (let i = 0; i < rounds; i++) {
          this.tick(["1"]);
          this.stabilize(true, out);
        }
        return;
      }
      case "drop": {
        const targets = new Set(args.map((a) => this.nodeId(a)));
        const before = this.queue.length;
        this.queue = this.queue.filter((q) => targets.size > 0 && !targets.has(q.message.to));
        out.push(`  dropped ${before - this.queue.length} messages`);
        return;
      }
      case "partition":
        return this.partition(args, out);
      case "cut": {
        if (args[1] !== "->" || args.length !== 3) throw new Error("usage: cut <a> -> <b>");
        this.blocked.add(`${this.node(args[0]).id}>${this.node(args[2]).id}`);
        return;
      }
      case "heal":
        this.blocked.clear();
        return;
      case "crash":
        this.heldDisks.delete(this.node(args[0]).id);
        this.heldWrites.delete(this.node(args[0]).id);
        this.c.crash(this.node(args[0]));
        out.push(`  ${this.node(args[0]).id} crashed`);
        return;
      case "restart": {
        const node = this.node(args[0]);
        this.c.restart(node);
        out.push(`  ${node.id} restarted: term ${node.hardState.term} vote ${node.hardState.vote ?? "-"} commit ${node.hardState.commit} applied ${node.machine.applied}`);
        return;
      }
      case "hold-disk":
        this.heldDisks.add(this.node(args[0]).id);
        return;
      case "release-disk": {
        const node = this.node(args[0]);
        this.heldDisks.delete(node.id);
        const write = this.heldWrites.get(node.id);
        this.heldWrites.delete(node.id);
        if (write === undefined) {
          out.push(`  ${node.id}: no write in flight`);
          return;
        }
        out.push(`  ${node.id}: write completes`);
        node.diskDone(write);
        return;
      }
      case "compact": {
        const node = this.node(args[0]);
        this.input(node, { kind: "compact", keepEntries: Number(args[1] ?? 0) });
        out.push(`  ${node.id} log now [${node.storage.firstIndex()}, ${node.storage.lastIndex()}], snapshot at ${node.storage.snapshot().metadata.index}`);
        return;
      }
      case "status":
        for (const node of this.selected(args)) out.push(`  ${describeNode(node)}`);
        return;
      case "log":
        out.push(...describeLog(this.node(args[0])));
        return;
      case "state": {
        const node = this.node(args[0]);
        out.push(`  ${node.id} applied ${node.machine.applied}: ${node.machine.describe() || "(empty)"}`);
        return;
      }
      default:
        if (command.startsWith("expect-")) return this.expect(command, args);
        throw new Error(`unknown command ${command}`);
    }
  }

  private addNodes(args: string[], out: string[]): void {
    if (this.cluster !== null) throw new Error("add-nodes runs once");
    const count = Number(args[0]);
    if (!Number.isInteger(count) || count < 1) throw new Error("add-nodes needs a count");
    const options = new Map<string, string>();
    for (const word of args.slice(1)) {
      const [key, value] = word.split("=", 2) as [string, string | undefined];
      options.set(key, value ?? "true");
    }
    const settings: CoreSettings = {
      electionTicks: Number(options.get("election") ?? 10),
      heartbeatTicks: Number(options.get("heartbeat") ?? 1),
      preVote: options.has("prevote"),
      checkQuorum: options.has("checkquorum"),
      messageBytesMax: Number(options.get("max-msg-bytes") ?? 1 << 20),
      inflightMessagesMax: Number(options.get("inflight") ?? 256),
      inflightBytesMax: 0,
      uncommittedBytesMax: Number(options.get("uncommitted") ?? 0),
    };
    this.cluster = new ScenarioCluster({
      settings,
      rng: new Prng(Number(options.get("seed") ?? 1)),
      diskLatency: (node) => (this.heldDisks.has(node.id) ? 1 : 0),
      scheduleDiskDone: (node, write) => this.heldWrites.set(node.id, write),
    });
    this.cluster.out = out;
    this.cluster.transport = { send: (_from, message) => this.queue.push({ message }) };
    for (const node of this.cluster.bootstrap(count)) out.push(`  ${node.id} started: voters=[${node.confState.voters.join(",")}]`);
  }

  private input(node: SimNode, input: Parameters<SimNode["input"]>[0]): void {
    if (!node.input(input)) throw new Error(`${node.id} is down`);
  }

  private selected(args: string[]): SimNode[] {
    return args.length === 0 ? [...this.c.list] : args.map((a) => this.node(a));
  }

  private propose(args: string[], out: string[]): void {
    const node = this.node(args[0]);
    const match = args[1] === "put" ? /^([^=]+)=(.+)$/.exec(args[2] ?? "") : null;
    if (match === null) throw new Error("usage: propose <node> put <key>=<value>");
    const [, key, value] = match as unknown as [string, string, string];
    this.lastRefused = null;
    // The outcome arrives during a later command: report it into that command's output.
    const op = this.c.put(node.id, key, value, 0, (done) => {
      const now = this.c.out;
      if (done.outcome === "ok") now.push(`  ${node.id}: put ${key}=${value} acknowledged at ${done.proposedAt?.index}`);
      else if (done.outcome === "failed" && done.proposedAt !== null) now.push(`  ${node.id}: put ${key}=${value} lost (its slot ${done.proposedAt.index} holds another entry)`);
      else if (done.outcome === "unknown") now.push(`  ${node.id}: put ${key}=${value} outcome unknown`);
    });
    if (op.proposedAt !== null) {
      this.lastRefused = false;
      out.push(`  ${node.id}: proposed ${op.proposedAt.term}/${op.proposedAt.index}`);
    } else {
      this.lastRefused = true;
      out.push(`  ${node.id}: refused ${op.refusal ?? ""}`.trimEnd());
    }
  }

  private proposeConf(args: string[], out: string[]): void {
    const node = this.node(args[0]);
    const types: Record<string, ConfChange["type"]> = { "add-learner": "addLearner", "add-voter": "addVoter", remove: "removeNode" };
    const type = types[args[1] ?? ""];
    if (type === undefined) throw new Error("usage: propose-conf <node> add-learner|add-voter|remove <node>");
    const change: ConfChange = { type, nodeId: this.nodeId(args[2] ?? "") };
    let result: ProposeResult | null = null;
    if (!this.c.proposeConfChange(node.id, change, (r) => (result = r))) throw new Error(`${node.id} is down`);
    const r = result as ProposeResult | null;
    if (r === null) throw new Error("conf change proposal got no answer");
    this.lastRefused = !r.ok;
    out.push(r.ok ? `  ${node.id}: proposed ${r.term}/${r.index} ${type} ${change.nodeId}` : `  ${node.id}: refused ${r.error.code}`);
  }

  private readIndex(args: string[], out: string[]): void {
    const node = this.node(args[0]);
    const ctx = args[1];
    if (ctx === undefined) throw new Error("usage: read-index <node> <ctx> [<key>]");
    const op = this.c.read(node.id, args[2] ?? "a", 0, undefined, ctx);
    this.lastRefused = op.outcome === "failed";
    if (this.lastRefused) out.push(`  ${node.id}: read ${ctx} refused`);
  }

  private tick(args: string[]): void {
    const count = Number(args[0]);
    if (!Number.isInteger(count) || count < 1) throw new Error("usage: tick <n> [<node>...]");
    const nodes = this.selected(args.slice(1));
    for (let i = 0; i < count; i++) {
      for (const node of nodes) if (node.alive) node.input({ kind: "tick" });
      this.c.checkers.afterStep();
    }
  }

  /** Delivers the messages queued right now (those to `targets` only, when given). */
  private deliver(targets: string[], out: string[], verbose: boolean): number {
    const batch = targets.length === 0 ? this.queue : this.queue.filter((q) => targets.includes(q.message.to));
    this.queue = targets.length === 0 ? [] : this.queue.filter((q) => !targets.includes(q.message.to));
    for (const { message } of batch) {
      const link = `${message.from}>${message.to}`;
      const to = this.c.node(message.to);
      if (this.blocked.has(link) || to === undefined || !to.alive) {
        if (verbose) out.push(`  ${formatMessage(message)}  DROPPED`);
        continue;
      }
      if (verbose) out.push(`  ${formatMessage(message)}`);
      to.input({ kind: "message", message });
      this.c.checkers.afterStep();
    }
    return batch.length;
  }

  private stabilize(quiet: boolean, out: string[]): void {
    for (let round = 0; round < STABILIZE_ROUNDS_MAX; round++) {
      if (this.deliver([], out, !quiet) === 0) return;
    }
    throw new Error(`not stable after ${STABILIZE_ROUNDS_MAX} rounds`);
  }

  private partition(args: string[], out: string[]): void {
    const groups: string[][] = [[]];
    for (const word of args) {
      if (word === "|") groups.push([]);
      else groups[groups.length - 1]!.push(this.node(word).id);
    }
    if (groups.length < 2) throw new Error("usage: partition <ids> | <ids>");
    for (let a = 0; a < groups.length; a++) {
      for (let b = 0; b < groups.length; b++) {
        if (a === b) continue;
        for (const x of groups[a]!) for (const y of groups[b]!) this.blocked.add(`${x}>${y}`);
      }
    }
    out.push(`  ${groups.map((g) => g.join(" ")).join(" | ")}`);
  }

  private expect(command: string, args: string[]): void {
    const fail = (what: string): never => {
      throw new Error(`${command} failed: ${what}`);
    };
    switch (command) {
      case "expect-leader": {
        // The node leads, no one leads a term as new, and its term's followers name it.
        const node = this.node(args[0]);
        const status = node.status();
        if (status === null || status.role !== "leader") fail(`${node.id} is ${status?.role ?? "down"}`);
        for (const other of this.c.list) {
          const s = other.status();
          if (other === node || s === null) continue;
          if (s.role === "leader" && s.term >= status!.term) fail(`${other.id} also leads, at term ${s.term}`);
          if (s.term === status!.term && s.leader !== null && s.leader !== node.id) fail(`${other.id} follows ${s.leader}`);
        }
        return;
      }
      case "expect-no-leader": {
        const leaders = this.c.list.filter((n) => n.status()?.role === "leader").map((n) => n.id);
        if (leaders.length > 0) fail(`leaders: ${leaders.join(", ")}`);
        return;
      }
      case "expect-role": {
        const role = this.node(args[0]).status()?.role ?? "down";
        if (role !== args[1]) fail(`role is ${role}`);
        return;
      }
      case "expect-term":
      case "expect-commit":
      case "expect-applied": {
        const node = this.node(args[0]);
        const status = node.status();
        if (status === null) fail(`${node.id} is down`);
        const actual = command === "expect-term" ? status!.term : command === "expect-commit" ? status!.commit : node.machine.applied;
        if (actual !== Number(args[1])) fail(`${node.id} has ${actual}`);
        return;
      }
      case "expect-value": {
        const node = this.node(args[0]);
        const [key, value] = (args[1] ?? "").split("=", 2) as [string, string | undefined];
        const actual = node.machine.get(key)?.value ?? null;
        if (actual !== (value ?? null)) fail(`${node.id} has ${key}=${actual ?? "nothing"}`);
        return;
      }
      case "expect-readstate":
      case "expect-no-readstate": {
        const node = this.node(args[0]);
        const ctx = args[1] ?? fail("missing ctx");
        const index = this.c.readStates.get(node.id)?.get(ctx);
        const served = this.c.served.get(node.id)?.has(ctx) === true;
        if (command === "expect-no-readstate") {
          if (index !== undefined) fail(`${node.id} got read state ${ctx} at ${index}`);
          return;
        }
        if (index === undefined || !served) fail(`${node.id} has no served read state ${ctx}`);
        if (args[2] !== undefined && index !== Number(args[2])) fail(`read index is ${index}`);
        return;
      }
      case "expect-refused":
        if (this.lastRefused !== true) fail("the last request was not refused");
        return;
      case "expect-voters": {
        const node = this.node(args[0]);
        const actual = [...(node.status()?.confState.voters ?? [])].sort().join(",");
        const expected = args.slice(1).map((a) => this.nodeId(a)).sort().join(",");
        if (actual !== expected) fail(`voters are [${actual}]`);
        return;
      }
      default:
        throw new Error(`unknown expectation ${command}`);
    }
  }
}
