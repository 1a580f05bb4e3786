/**
 * Goal: the linearizability checker has no false alarms and does see a phantom read, on histories
 * far more varied than hand-written ones.
 * Method: fast-check picks the parameters of a random concurrent schedule (clients, operations,
 * keys, value alphabet, timeout and refusal rates); simulateHistory runs it against a real
 * sequential KV bucket, so every history is linearizable by construction and must be judged "ok".
 * Then one successful read in it is made to return a value nobody wrote, or a record that had been
 * overwritten before the read began: both must be judged "fail".
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkLinearizability } from "../jepsen-lite/checker/linearizability.ts";
import type { Op } from "../jepsen-lite/checker/history.ts";
import { simulateHistory, type SimulateOptions } from "../jepsen-lite/checker/simulate.ts";

const schedule: fc.Arbitrary<SimulateOptions> = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  processes: fc.integer({ min: 1, max: 6 }),
  ops: fc.integer({ min: 1, max: 80 }),
  keys: fc.constantFrom(["k"], ["a", "b"], ["a", "b", "c"]),
  values: fc.integer({ min: 1, max: 4 }),
  unknownRate: fc.constantFrom(0, 0.05, 0.2, 0.5),
  refusedRate: fc.constantFrom(0, 0.05),
  foreignWriteRate: fc.constantFrom(0, 0.1, 0.5),
  reportActualRevision: fc.boolean(),
});

describe("linearizability checker: generated histories", () => {
  it("judges every history of a correct sequential bucket linearizable", () => {
    fc.assert(
      fc.property(schedule, (options) => {
        const history = simulateHistory(options);
        const result = checkLinearizability(history);
        expect(result.keys.filter((k) => k.verdict !== "ok")).toEqual([]);
        expect(result.verdict).toBe("ok");
      }),
      { numRuns: 300 },
    );
  });

  it("judges the same histories not linearizable once one read returns a never-written value", () => {
    fc.assert(
      fc.property(schedule, fc.nat(), (options, choice) => {
        const history = simulateHistory(options);
        const reads = history.filter((op) => op.type === "get" && op.outcome === "ok");
        fc.pre(reads.length > 0);
        const victim = reads[choice % reads.length]!;
        victim.readValue = "never-written";
        const result = checkLinearizability(history);
        expect(result.verdict).toBe("fail");
        const failing = result.keys.filter((k) => k.verdict === "fail").map((k) => k.key);
        expect(failing).toEqual([victim.key]);
      }),
      { numRuns: 300 },
    );
  });

  it("judges the same histories not linearizable once one read returns an overwritten record", () => {
    // A read invoked after a newer write to its key had returned, made to report an older record:
    // a stale read that only the search can see (the value and revision exist, just not then).
    fc.assert(
      fc.property(schedule, fc.nat(), (options, choice) => {
        const history = simulateHistory({ ...options, unknownRate: Math.min(options.unknownRate ?? 0, 0.2) });
        const writes = history.filter((op) => op.outcome === "ok" && op.type !== "get" && op.revision !== undefined);
        const stale: [Op, Op][] = [];
        for (const read of history) {
          if (read.type !== "get" || read.outcome !== "ok") continue;
          for (const old of writes) {
            if (old.key !== read.key || old.value === undefined) continue;
            const overwritten = writes.some(
              (newer) => newer.key === read.key && newer.revision! > old.revision! && newer.completeMs! < read.invokeMs,
            );
            if (overwritten) stale.push([read, old]);
          }
        }
        fc.pre(stale.length > 0);
        const [read, old] = stale[choice % stale.length]!;
        read.readValue = old.value!;
        read.revision = old.revision!;
        const result = checkLinearizability(history);
        expect(result.keys.filter((k) => k.verdict !== "ok").map((k) => [k.key, k.verdict])).toEqual([[read.key, "fail"]]);
      }),
      { numRuns: 300 },
    );
  });

  it("judges a longer, more concurrent history with timeouts linearizable", () => {
    const history = simulateHistory({ seed: 7, processes: 10, ops: 3000, keys: ["a", "b"], unknownRate: 0.05 });
    const result = checkLinearizability(history);
    expect(result.keys.map((k) => k.verdict)).toEqual(["ok", "ok"]);
  });
});
