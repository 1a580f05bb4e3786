/**
 * Goal: the search's shortcuts (memoisation, the "unknown op must be followed by an observer" rule,
 * the revision window for unknown ops) never change a verdict.
 * Method: a naive oracle tries every order of the operations (and every subset of the unknown ones)
 * that respects real time, against the same key model (stepKey) and the same physical rule the
 * search assumes: a write whose revision nobody reported still needs a revision nobody reported,
 * above the current one and below every write linearized after it. fast-check generates tiny
 * histories, half of them mutated so that many are not linearizable, and both must agree.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { classifyOp, type Op, type OpClass } from "../jepsen-lite/checker/history.ts";
import { checkKey, revisionsReported } from "../jepsen-lite/checker/linearizability.ts";
import { INITIAL_KEY_STATE, stepKey, type KeyState } from "../jepsen-lite/checker/model.ts";
import { seededRandom, simulateHistory } from "../jepsen-lite/checker/simulate.ts";

function oracle(ops: readonly Op[]): boolean {
  const taken = revisionsReported(ops);
  const items = ops
    .map((op) => ({ op, cls: classifyOp(op) }))
    .filter((item): item is { op: Op; cls: Exclude<OpClass, "none"> } => item.cls !== "none");
  const used = new Array<boolean>(items.length).fill(false);

  const search = (state: KeyState): boolean => {
    const remainingDefinite = items.filter((item, i) => !used[i] && item.cls !== "unknown");
    if (remainingDefinite.length === 0) return true;
    for (let i = 0; i < items.length; i++) {
      if (used[i]) continue;
      const { op, cls } = items[i]!;
      // Real time: an op that returned before this one was invoked must come first.
      if (remainingDefinite.some((d) => d.op !== op && d.op.completeMs! < op.invokeMs)) continue;
      if (cls === "unknown" && op.type !== "get") {
        const ceiling = Math.min(
          ...remainingDefinite.filter((d) => d.cls === "effect" && d.op.type !== "get" && d.op.revision !== undefined).map((d) => d.op.revision!),
        );
        let free = state.lastRevision + 1;
        while (free < ceiling && taken.has(free)) free++;
        if (free >= ceiling) continue;
      }
      const after = stepKey(state, op, cls, taken);
      if (after === null) continue;
      used[i] = true;
      const found = search(after);
      used[i] = false;
      if (found) return true;
    }
    return false;
  };
  return search(INITIAL_KEY_STATE);
}

/** Small random damage: another value, revision, outcome or time for one operation. */
function mutate(ops: Op[], seed: number): void {
  const rand = seededRandom(seed);
  const damage: (() => void)[] = [];
  for (const op of ops) {
    if (op.type === "get" && op.outcome === "ok") {
      damage.push(() => (op.readValue = op.readValue === null ? "v0" : rand() < 0.5 ? null : `v${String(Math.floor(rand() * 3))}`));
    }
    if (op.revision !== undefined) damage.push(() => (op.revision = Math.max(1, op.revision! + (rand() < 0.5 ? -1 : 1))));
    if (op.outcome === "ok" && op.type !== "get") {
      damage.push(() => {
        op.outcome = "unknown";
        op.completeMs = null;
        delete op.revision;
      });
    }
    if (op.completeMs !== null && op.invokeMs > 0) damage.push(() => (op.invokeMs = Math.max(0, op.invokeMs - 5)));
    if (op.actualRevision !== undefined) damage.push(() => (op.actualRevision = op.actualRevision! + 1));
    if (op.expectedRevision !== undefined) damage.push(() => (op.expectedRevision = Math.max(0, op.expectedRevision! - 1)));
  }
  damage[Math.floor(rand() * damage.length)]?.();
}

describe("linearizability checker against a brute-force oracle", () => {
  it("agrees on tiny histories, linearizable or not", () => {
    let failures = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 7 }),
        fc.constantFrom(0, 0.3, 0.6),
        fc.boolean(),
        (seed, processes, count, unknownRate, damaged) => {
          const ops = simulateHistory({ seed, processes, ops: count, values: 2, unknownRate, foreignWriteRate: 0.3 });
          if (damaged) mutate(ops, seed ^ 0x5bd1e995);
          if (damaged && count > 3) mutate(ops, seed ^ 0x1b873593);
          const expected = oracle(ops);
          if (!expected) failures++;
          expect(checkKey("k", ops).verdict).toBe(expected ? "ok" : "fail");
        },
      ),
      { numRuns: 1500 },
    );
    // The generator must produce both kinds, or the comparison proves little (about 15% fail).
    expect(failures).toBeGreaterThan(75);
  });
});
