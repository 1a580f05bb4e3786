/**
 * The search behind linearizability.ts: Wing & Gong's algorithm with Lowe's memoisation (Lowe,
 * "Testing for Linearizability", 2017), for one key, with operations of unknown outcome.
 *
 * Definite operations (completed ok, or failed with a CAS conflict) live in a doubly linked list of
 * call and return events ordered by time (ties: calls first, so touching operations are concurrent).
 * At each step the search may linearize any operation whose call precedes the first remaining return.
 * It applies the model; if the result is legal and the pair (set of linearized operations, model
 * state) is new, it unlinks the operation's events and goes on; otherwise it tries the next
 * candidate. When it reaches a return event, no candidate worked: it backtracks. The history is
 * linearizable once every definite operation is linearized.
 *
 * Unknown operations have no return event (their return is at +infinity) and are optional. They are
 * tried after the definite candidates of a step, so "it did not happen (yet)" is explored first, and
 * only where it can matter (observers.ts): right before an operation that could observe them, so
 * after placing one the search insists on an observer next. Unknown ops with the same effect are
 * interchangeable once available, so the search places one per effect class and step.
 *
 * Cache key: P = the first definite op (in invocation order) not yet linearized, the definite ops
 * above P that are (few: they overlap P), the model state, and how many unknown ops of each effect
 * class are used. A state is also skipped when a recorded one with the same definite ops and model
 * state used no more unknown ops of any class (it had every option this one has).
 */
import type { Op, OpClass } from "./history.ts";
import { stateKey, stepKey, type KeyState, type RevisionSet } from "./model.ts";
import { VALUE_OBSERVATION, type ObserverIndex } from "./observers.ts";

export interface SearchFailure {
  /** The longest prefix linearized (most definite ops) before every continuation failed. */
  linearizedPrefix: Op[];
  stateAfterPrefix: KeyState;
  /** Definite ops that could come next after that prefix; none is legal there. */
  unlinearizable: Op[];
  /** The earliest-returning pending op: everything linearized next must be invoked before it returns. */
  blockedBy: Op;
  /** Unknown ops that could also have come next (none of them helps). */
  pendingUnknown: Op[];
}

export type SearchOutcome =
  | { verdict: "ok"; exploredStates: number; linearization: Op[] }
  | { verdict: "fail"; exploredStates: number; failure: SearchFailure }
  | { verdict: "unknown"; exploredStates: number; deepest: SearchFailure | null };

/** One step of the search, once its definite candidates are exhausted. */
interface Level {
  /** Time of the first remaining return event: unknown ops invoked later cannot come next. */
  readonly boundMs: number;
  /** Definite ops invoked before that return. */
  readonly candidates: readonly number[];
  /** The definite op of that return. */
  readonly blocking: number;
}

interface Frame {
  /** Definite op index, or unknown op index when `unknown`. */
  readonly index: number;
  readonly unknown: boolean;
  readonly previous: KeyState;
  /** Unknown frames: the level they were placed at (to resume its scan). */
  readonly level: Level | null;
  /** The frame below (so a snapshot of the stack is one reference). */
  readonly parent: Frame | null;
}

/** The deepest dead end so far, kept cheaply; turned into a SearchFailure only at the end. */
interface DeadEnd {
  readonly top: Frame | null;
  readonly state: KeyState;
  readonly level: Level;
}

/** Named limit: dominance vectors kept per (definite set, state); the exact cache has no such cap. */
const DOMINANCE_VECTORS_MAX = 256;

const CALL = 0;
const RETURN = 1;
const HEAD = 0;

export class KeySearch {
  // Definite ops' event list: node HEAD is the sentinel; op i has call 2i+1 and return 2i+2.
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly nodeTime: Float64Array;

  // The linearized set. Invariant: every definite op below `prefix` is linearized, `prefix` is not.
  private readonly definiteDone: Uint8Array;
  private prefix = 0;
  private aboveCount = 0;
  // Unknown ops with the same effect (effectSignature) form a class. Two of a class that are both
  // available (invoked before the current bound; they stay available: no return) lead to
  // mirror-image futures, so the search only ever places the earliest-invoked unused member of a
  // class, and the cache counts how many of each class are used, not which.
  private readonly effectClass: Int32Array;
  private readonly classMembers: number[][]; // by invocation
  private readonly usedPerClass: Int32Array; // Invariant: the used members are a prefix of classMembers
  private readonly usedClasses: number[] = []; // sorted, classes with usedPerClass > 0
  // Classes by their latest definite observer's return, latest first: the scan of a step stops at
  // the first class whose observers all returned before the step's bound (all linearized).
  private readonly classOrder: number[];
  private readonly classPosition: Int32Array;
  private readonly classLastObserverMs: Float64Array;
  private readonly observerClasses: Set<number>[]; // per unknown op: classes of its unknown observers
  // Per unknown op, its unknown observers by class: those that need its value or existence, and
  // those that name a revision (sorted by it, so only the current revision window is scanned).
  private readonly valueObserverClasses: number[][];
  private readonly revisionObserverClasses: { revision: number; c: number }[][];
  // A class is live while some op that may observe it is not linearized yet (its first member's
  // definite observers: a superset of the others'; or any unknown observer), and, for an observer
  // that names a revision, while the key's revision is still below it. A dead class stays dead
  // deeper in the search, and how many of its members were used no longer matters: the cache
  // leaves dead classes out, so searches that explained the past in different ways merge.
  private readonly pendingValueObservers: Int32Array; // per class
  private readonly valueObserverOf: number[][]; // per definite op: classes it may observe by value
  private readonly classRevisionObservers: { index: number; revision: number }[][]; // by revision, highest first
  private readonly classHasUnknownObservers: Uint8Array;
  private definiteCount = 0;
  // Definite writes with a reported revision, by revision; writeCursor = first not yet linearized.
  private readonly writeOrder: number[];
  private readonly writePosition: Int32Array;
  private writeCursor = 0;

  // Lowe's cache: exact keys, plus per (definite set, state) the first few vectors of linearized
  // unknown ops per class, for dominance.
  private readonly cache = new Set<string>();
  private readonly dominance = new Map<string, number[][]>();
  private explored = 0;
  private readonly valueIds = new Map<string, number>();
  private readonly stack: Frame[] = [];
  private state: KeyState;
  private bestDepth = -1;
  private best: DeadEnd | null = null;

  constructor(
    private readonly definite: readonly Op[],
    private readonly definiteClass: readonly OpClass[],
    private readonly unknown: readonly Op[],
    private readonly observers: ObserverIndex,
    private readonly taken: RevisionSet,
    initial: KeyState,
    private readonly maxStates: number,
    /** performance.now() after which the search gives up (Infinity: never). */
    private readonly deadlineMs = Infinity,
  ) {
    const nd = definite.length;
    const nu = unknown.length;
    this.state = initial;
    const nodes = 2 * nd + 1;
    this.next = new Int32Array(nodes).fill(-1);
    this.prev = new Int32Array(nodes).fill(-1);
    this.nodeTime = new Float64Array(nodes);
    const events: number[] = [];
    for (let i = 0; i < nd; i++) {
      this.nodeTime[2 * i + 1] = definite[i]!.invokeMs;
      this.nodeTime[2 * i + 2] = definite[i]!.completeMs!;
      events.push(2 * i + 1, 2 * i + 2);
    }
    const kind = (node: number): number => (node % 2 === 1 ? CALL : RETURN);
    events.sort((a, b) => this.nodeTime[a]! - this.nodeTime[b]! || kind(a) - kind(b) || a - b);
    let last = HEAD;
    for (const node of events) {
      this.next[last] = node;
      this.prev[node] = last;
      last = node;
    }
    const classIds = new Map<string, number>();
    this.effectClass = new Int32Array(nu);
    this.classMembers = [];
    unknown.forEach((op, u) => {
      const signature = effectSignature(op);
      if (!classIds.has(signature)) {
        classIds.set(signature, classIds.size);
        this.classMembers.push([]);
      }
      const c = classIds.get(signature)!;
      this.effectClass[u] = c;
      this.classMembers[c]!.push(u); // `unknown` is sorted by invocation
    });
    const classCount = classIds.size;
    this.usedPerClass = new Int32Array(classCount);
    this.classLastObserverMs = new Float64Array(classCount).fill(-Infinity);
    for (let u = 0; u < nu; u++) {
      const c = this.effectClass[u]!;
      this.classLastObserverMs[c] = Math.max(this.classLastObserverMs[c]!, observers.lastObserverMs[u]!);
    }
    this.classOrder = Array.from({ length: classCount }, (_, c) => c).sort(
      (a, b) => this.classLastObserverMs[b]! - this.classLastObserverMs[a]! || a - b,
    );
    this.classPosition = new Int32Array(classCount);
    this.classOrder.forEach((c, position) => (this.classPosition[c] = position));
    this.observerClasses = unknown.map((_, u) => new Set([...observers.unknown[u]!.keys()].map((v) => this.effectClass[v]!)));
    this.valueObserverClasses = [];
    this.revisionObserverClasses = [];
    for (let u = 0; u < nu; u++) {
      const byValue = new Set<number>();
      const byRevision = new Map<string, { revision: number; c: number }>();
      for (const [v, seen] of observers.unknown[u]!) {
        const c = this.effectClass[v]!;
        if (seen === VALUE_OBSERVATION) byValue.add(c);
        else byRevision.set(`${c}:${seen}`, { revision: seen, c });
      }
      this.valueObserverClasses.push([...byValue]);
      this.revisionObserverClasses.push([...byRevision.values()].sort((a, b) => a.revision - b.revision));
    }
    this.pendingValueObservers = new Int32Array(classCount);
    this.valueObserverOf = definite.map(() => []);
    this.classRevisionObservers = [];
    this.classHasUnknownObservers = new Uint8Array(classCount);
    for (let c = 0; c < classCount; c++) {
      const first = this.classMembers[c]![0]!;
      const byRevision: { index: number; revision: number }[] = [];
      for (const [i, seen] of observers.definite[first]!) {
        if (seen === VALUE_OBSERVATION) {
          this.valueObserverOf[i]!.push(c);
          this.pendingValueObservers[c]!++;
        } else {
          byRevision.push({ index: i, revision: seen });
        }
      }
      this.classRevisionObservers.push(byRevision.sort((a, b) => b.revision - a.revision));
      if (observers.unknown[first]!.size > 0) this.classHasUnknownObservers[c] = 1;
    }
    this.definiteDone = new Uint8Array(nd);
    this.writeOrder = [];
    for (let i = 0; i < nd; i++) {
      const op = definite[i]!;
      if (definiteClass[i] === "effect" && op.type !== "get" && op.revision !== undefined) this.writeOrder.push(i);
    }
    this.writeOrder.sort((a, b) => definite[a]!.revision! - definite[b]!.revision!);
    this.writePosition = new Int32Array(nd).fill(-1);
    this.writeOrder.forEach((i, position) => (this.writePosition[i] = position));
  }

  run(): SearchOutcome {
    const { next, nodeTime, stack, classOrder } = this;
    const nd = this.definite.length;
    let phase: 0 | 1 = 0;
    let cursor = next[HEAD]!;
    let classCursor = 0;
    let level: Level = { boundMs: 0, candidates: [], blocking: -1 };
    for (;;) {
      if (this.definiteCount === nd) {
        const linearization = stack.map((f) => (f.unknown ? this.unknown[f.index]! : this.definite[f.index]!));
        return { verdict: "ok", exploredStates: this.explored, linearization };
      }
      if (this.explored > this.maxStates || this.pastDeadline()) {
        return { verdict: "unknown", exploredStates: this.explored, deepest: this.best === null ? null : this.failure() };
      }
      const top = stack.length > 0 ? stack[stack.length - 1]! : null;
      const afterUnknown = top !== null && top.unknown ? top.index : -1;
      if (phase === 0) {
        // Not at the end: an unlinearized definite op still has its return in the list.
        if (cursor % 2 === 1) {
          const i = (cursor - 1) >> 1;
          const allowed = afterUnknown < 0 || this.observers.definite[afterUnknown]!.has(i);
          if (allowed && this.tryDefinite(i)) cursor = next[HEAD]!;
          else cursor = next[cursor]!;
          continue;
        }
        level = { boundMs: nodeTime[cursor]!, candidates: this.candidatesBefore(cursor), blocking: (cursor - 2) >> 1 };
        phase = 1;
        classCursor = 0;
        continue;
      }
      if (classCursor < classOrder.length) {
        const c = classOrder[classCursor]!;
        if (this.classLastObserverMs[c]! < level.boundMs) {
          classCursor = classOrder.length; // and so for every later class
          continue;
        }
        classCursor++;
        const u = this.representative(c, level.boundMs);
        const allowed = u >= 0 && (afterUnknown < 0 || this.observerClasses[afterUnknown]!.has(c));
        if (allowed && this.tryUnknown(u, level)) {
          phase = 0;
          cursor = next[HEAD]!;
        }
        continue;
      }
      // Dead end: backtrack.
      if (afterUnknown < 0) this.recordDeadEnd(level);
      const frame = stack.pop();
      if (frame === undefined) return { verdict: "fail", exploredStates: this.explored, failure: this.failure() };
      this.state = frame.previous;
      if (frame.unknown) {
        this.unmarkUnknown(frame.index);
        phase = 1;
        classCursor = this.classPosition[this.effectClass[frame.index]!]! + 1;
        level = frame.level!;
      } else {
        this.unmarkDefinite(frame.index);
        phase = 0;
        cursor = next[2 * frame.index + 1]!;
      }
    }
  }

  private pastDeadline(): boolean {
    // Reading the clock is cheap, but not free: once per 4096 states is often enough.
    return this.deadlineMs !== Infinity && (this.explored & 4095) === 0 && performance.now() > this.deadlineMs;
  }

  /** Definite ops whose call precedes return node `blocking` (the current step's candidates). */
  private candidatesBefore(blocking: number): number[] {
    const out: number[] = [];
    for (let node = this.next[HEAD]!; node !== blocking; node = this.next[node]!) {
      if (node % 2 === 1) out.push((node - 1) >> 1);
    }
    return out;
  }

  private tryDefinite(i: number): boolean {
    const after = stepKey(this.state, this.definite[i]!, this.definiteClass[i]!, this.taken);
    if (after === null) return false;
    this.markDefinite(i);
    if (!this.remember(after)) {
      this.unmarkDefinite(i);
      return false;
    }
    this.stack.push({ index: i, unknown: false, previous: this.state, level: null, parent: this.top() });
    this.state = after;
    return true;
  }

  /** The earliest-invoked unused op of class c, if it is available at `boundMs`; else -1. */
  private representative(c: number, boundMs: number): number {
    const u = this.classMembers[c]![this.usedPerClass[c]!];
    return u !== undefined && this.unknown[u]!.invokeMs <= boundMs ? u : -1;
  }

  private tryUnknown(u: number, level: Level): boolean {
    if (!this.worthTrying(u, level)) return false;
    const after = stepKey(this.state, this.unknown[u]!, "unknown", this.taken);
    if (after === null) return false;
    this.markUnknown(u);
    if (!this.remember(after)) {
      this.unmarkUnknown(u);
      return false;
    }
    this.stack.push({ index: u, unknown: true, previous: this.state, level, parent: this.top() });
    this.state = after;
    return true;
  }

  /** Whether an observer of u could be linearized right after it (see observers.ts). */
  private worthTrying(u: number, level: Level): boolean {
    if (this.observers.lastObserverMs[u]! < level.boundMs) return false;
    // u would get a revision above the current one (or its bound), and below every definite write
    // still to come: revisions go up in linearization order.
    const floor = this.state.lastRevision;
    const ceiling =
      this.writeCursor < this.writeOrder.length ? this.definite[this.writeOrder[this.writeCursor]!]!.revision! : Infinity;
    // Some revision must be free for u in between: not reported by any ok write.
    let free = floor + 1;
    while (free < ceiling && this.taken.has(free)) free++;
    if (free >= ceiling) return false;
    // An observer that names a revision needs u to have been given exactly that one.
    const byDefinite = this.observers.definite[u]!;
    for (const i of level.candidates) {
      const seen = byDefinite.get(i);
      if (seen === undefined || this.definiteDone[i] === 1) continue;
      if (seen === VALUE_OBSERVATION || (seen > floor && seen < ceiling)) return true;
    }
    // An unknown observer: its class's next member must be available now.
    const ownClass = this.effectClass[u]!;
    for (const c of this.valueObserverClasses[u]!) if (this.nextAvailable(c, ownClass, level.boundMs)) return true;
    const byRevision = this.revisionObserverClasses[u]!;
    let low = 0;
    let high = byRevision.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (byRevision[middle]!.revision <= floor) low = middle + 1;
      else high = middle;
    }
    for (let k = low; k < byRevision.length && byRevision[k]!.revision < ceiling; k++) {
      if (this.nextAvailable(byRevision[k]!.c, ownClass, level.boundMs)) return true;
    }
    return false;
  }

  /** Whether class c has an unused member available at `boundMs` once one of `placing` is used. */
  private nextAvailable(c: number, placing: number, boundMs: number): boolean {
    const next = this.classMembers[c]![this.usedPerClass[c]! + (c === placing ? 1 : 0)];
    return next !== undefined && this.unknown[next]!.invokeMs <= boundMs;
  }

  /**
   * Records (linearized set, state); false when it is already covered. Lowe's cache, with unknown
   * ops counted per effect class, and dominance: a state with the same definite ops linearized and
   * the same model state, but at least as many unknown ops of every class used up, has no option
   * the recorded one lacked.
   */
  private remember(state: KeyState): boolean {
    let base = `${String(this.prefix)}|`;
    for (let j = this.prefix + 1, found = 0; found < this.aboveCount; j++) {
      if (this.definiteDone[j] === 1) {
        base += `${String(j)},`;
        found++;
      }
    }
    base += `|${stateKey(state, (value) => this.valueId(value))}`;
    const used: number[] = [];
    for (const c of this.usedClasses) if (this.isLive(c, state)) used.push(c, this.usedPerClass[c]!);
    const key = `${base}|${used.join(",")}`;
    if (this.cache.has(key)) return false;
    const recorded = this.dominance.get(base);
    if (recorded !== undefined && recorded.some((vector) => this.covers(vector))) return false;
    this.cache.add(key);
    if (recorded === undefined) this.dominance.set(base, [used]);
    else if (recorded.length < DOMINANCE_VECTORS_MAX) recorded.push(used);
    this.explored++;
    return true;
  }

  /** Whether a member of class c could still be observed, from `state` on. */
  private isLive(c: number, state: KeyState): boolean {
    if (this.pendingValueObservers[c]! > 0 || this.classHasUnknownObservers[c] === 1) return true;
    for (const o of this.classRevisionObservers[c]!) {
      if (o.revision <= state.lastRevision) return false; // and so are all the rest
      if (this.definiteDone[o.index] === 0) return true;
    }
    return false;
  }

  /** Whether at least as many unknown ops of every class in `vector` are used up now. */
  private covers(vector: readonly number[]): boolean {
    for (let i = 0; i < vector.length; i += 2) {
      if (this.usedPerClass[vector[i]!]! < vector[i + 1]!) return false;
    }
    return true;
  }

  private valueId(value: string): number {
    let id = this.valueIds.get(value);
    if (id === undefined) {
      id = this.valueIds.size;
      this.valueIds.set(value, id);
    }
    return id;
  }

  private markDefinite(i: number): void {
    const { next, prev } = this;
    for (const node of [2 * i + 1, 2 * i + 2]) {
      next[prev[node]!] = next[node]!;
      if (next[node]! >= 0) prev[next[node]!] = prev[node]!;
    }
    this.definiteDone[i] = 1;
    this.definiteCount++;
    for (const c of this.valueObserverOf[i]!) this.pendingValueObservers[c]!--;
    if (i === this.prefix) {
      this.prefix++;
      while (this.prefix < this.definite.length && this.definiteDone[this.prefix] === 1) {
        this.prefix++;
        this.aboveCount--;
      }
    } else {
      this.aboveCount++;
    }
    if (this.writePosition[i] === this.writeCursor) {
      do this.writeCursor++;
      while (this.writeCursor < this.writeOrder.length && this.definiteDone[this.writeOrder[this.writeCursor]!] === 1);
    }
  }

  /** Undoes markDefinite(i); calls must be in reverse order of the marks (dancing links). */
  private unmarkDefinite(i: number): void {
    const { next, prev } = this;
    for (const node of [2 * i + 2, 2 * i + 1]) {
      next[prev[node]!] = node;
      if (next[node]! >= 0) prev[next[node]!] = node;
    }
    this.definiteDone[i] = 0;
    for (const c of this.valueObserverOf[i]!) this.pendingValueObservers[c]!++;
    this.definiteCount--;
    if (i < this.prefix) {
      this.aboveCount += this.prefix - i - 1;
      this.prefix = i;
    } else {
      this.aboveCount--;
    }
    const position = this.writePosition[i]!;
    if (position >= 0 && position < this.writeCursor) this.writeCursor = position;
  }

  private markUnknown(u: number): void {
    const c = this.effectClass[u]!;
    if (this.usedPerClass[c]!++ === 0) {
      const sorted = this.usedClasses;
      let at = sorted.length;
      while (at > 0 && sorted[at - 1]! > c) at--;
      sorted.splice(at, 0, c);
    }
  }

  private unmarkUnknown(u: number): void {
    const c = this.effectClass[u]!;
    if (--this.usedPerClass[c]! === 0) this.usedClasses.splice(this.usedClasses.indexOf(c), 1);
  }

  private top(): Frame | null {
    return this.stack.length > 0 ? this.stack[this.stack.length - 1]! : null;
  }

  private recordDeadEnd(level: Level): void {
    if (this.definiteCount <= this.bestDepth) return;
    this.bestDepth = this.definiteCount;
    this.best = { top: this.top(), state: this.state, level };
  }

  private failure(): SearchFailure {
    const best = this.best!;
    const prefix: Op[] = [];
    for (let frame = best.top; frame !== null; frame = frame.parent) {
      prefix.push(frame.unknown ? this.unknown[frame.index]! : this.definite[frame.index]!);
    }
    prefix.reverse();
    const placed = new Set(prefix);
    return {
      linearizedPrefix: prefix,
      stateAfterPrefix: best.state,
      unlinearizable: best.level.candidates.map((i) => this.definite[i]!),
      blockedBy: this.definite[best.level.blocking]!,
      pendingUnknown: this.unknown.filter((op) => !placed.has(op) && op.invokeMs <= best.level.boundMs),
    };
  }
}

/** Unknown ops with equal signatures have the same effect on the model (and the same observers). */
function effectSignature(op: Op): string {
  const kind = op.type === "delete" || op.type === "purge" ? "remove" : op.type;
  return JSON.stringify([kind, op.value ?? null, op.expectedRevision ?? null]);
}
