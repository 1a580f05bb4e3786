/**
 * Goal: the core alone (no simulator) keeps Raft's safety properties under random schedules:
 * election safety (one leader per term), log matching on committed prefixes, leader completeness,
 * state machine safety (applied sequences are prefixes of one another), and liveness once faults
 * stop. Method: fast-check drives a RaftNetwork with random proposals, ticks, partial deliveries,
 * drops, duplicates, reorders, partitions, restarts, leadership transfers, reads and (in the
 * membership runs) conf changes with blank joiners; checks run after every action (see
 * test/support/raft-schedule.ts; RAFT_PROPERTY_RUNS=N for longer runs). The simulator (test/sim)
 * does this at scale with crashes that lose unsynced writes.
 */
import fc from "fast-check";
import { describe, it } from "vitest";
import { actionArb, confArb, run } from "../support/raft-schedule.ts";

describe("raft cluster properties", () => {
  for (const preVote of [false, true]) {
    it(`membership changes with blank joiners, preVote=${preVote} checkQuorum=${preVote}: safe and live`, () => {
      fc.assert(
        fc.property(fc.array(fc.oneof({ weight: 3, arbitrary: actionArb }, { weight: 2, arbitrary: confArb }), { minLength: 10, maxLength: 150 }), (actions) => {
          run(3, { preVote, checkQuorum: preVote }, actions, 2);
        }),
        { numRuns: Number(process.env["RAFT_PROPERTY_RUNS"] ?? 60) },
      );
    });
  }

  for (const size of [3, 5] as const) {
    for (const preVote of [false, true]) {
      it(`${size} voters, preVote=${preVote} checkQuorum=${preVote}: safe under random schedules, live after`, () => {
        fc.assert(
          fc.property(fc.array(actionArb, { minLength: 10, maxLength: 150 }), (actions) => {
            run(size, { preVote, checkQuorum: preVote }, actions);
          }),
          { numRuns: Number(process.env["RAFT_PROPERTY_RUNS"] ?? 60) },
        );
      });
    }
  }
});
