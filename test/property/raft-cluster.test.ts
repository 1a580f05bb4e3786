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
import { actionArb, confArb, run, type Action } from "../support/raft-schedule.ts";

/** Counterexamples fast-check found, replayed on every run (preVote and checkQuorum off). */
const FOUND: Array<{ name: string; actions: Action[] }> = [
  {
    // CI, seed -1786020247: n2, leader of term 1, is cut off and removed; with CheckQuorum off it
    // stays leader of term 1 forever. Harmless (it can commit nothing) but the liveness check
    // counted it; it now judges the members of the current configuration only.
    name: "a leader removed while cut off stays a stale leader; the members still make progress",
    actions: [
      { kind: "conf", type: "addVoter", node: 0 }, { kind: "partition", mask: 2 }, { kind: "conf", type: "addVoter", node: 0 },
      { kind: "conf", type: "addVoter", node: 0 }, { kind: "tick", times: 6 }, { kind: "tick", times: 2 }, { kind: "tick", times: 12 },
      { kind: "conf", type: "removeNode", node: 1 }, { kind: "deliver", count: 1 }, { kind: "deliver", count: 1 },
      { kind: "propose", value: 0 }, { kind: "reorder", at: 0 },
    ],
  },
  {
    // Seed 1189730092: n3, cut off with the bootstrap configuration, is demoted to learner and n4
    // becomes the only voter. n3 campaigns among its stale voters (never n4) up to term 123 and
    // ignored n4's term-3 appends without an answer, so n4 never heard the higher term and n3
    // never caught up. A node now always answers an older leader's append with its term.
    name: "a demoted node stranded at a higher term hears the new leader and catches up",
    actions: [
      { kind: "partition", mask: 27 }, { kind: "conf", type: "addLearner", node: 2 }, { kind: "tick", times: 2 }, { kind: "read", node: 0 },
      { kind: "conf", type: "addLearner", node: 1 }, { kind: "tick", times: 5 }, { kind: "conf", type: "addVoter", node: 3 },
      { kind: "propose", value: 0 }, { kind: "tick", times: 5 }, { kind: "tick", times: 12 }, { kind: "drop", at: 0 },
      { kind: "conf", type: "removeNode", node: 0 }, { kind: "conf", type: "addVoter", node: 0 },
    ],
  },
  {
    // Seed 2134864048: leader n1 demotes itself to learner (voters [n3]) and starts handing over,
    // but n3 has not learned that the change committed and deposes it with a vote at a higher
    // term. n3 still needs n1's vote; n1, whose log is longer, refuses it and as a learner never
    // campaigned: stuck forever. A node removed from the voters now lingers (Raft.lingerCampaigns).
    name: "a leader that demoted itself and was deposed mid-hand-off campaigns again and hands over",
    actions: [
      { kind: "conf", type: "removeNode", node: 1 }, { kind: "conf", type: "addLearner", node: 0 }, { kind: "deliver", count: 1 },
      { kind: "tick", times: 8 }, { kind: "propose", value: 0 }, { kind: "conf", type: "addVoter", node: 0 }, { kind: "deliver", count: 1 },
      { kind: "conf", type: "addVoter", node: 0 }, { kind: "read", node: 0 }, { kind: "conf", type: "addVoter", node: 0 },
      { kind: "conf", type: "addVoter", node: 0 }, { kind: "deliver", count: 1 }, { kind: "propose", value: 0 },
      { kind: "conf", type: "addVoter", node: 0 }, { kind: "deliver", count: 1 },
    ],
  },
];

describe("raft cluster properties", () => {
  for (const found of FOUND) {
    it(`found schedule: ${found.name}`, () => {
      run(3, { preVote: false, checkQuorum: false }, found.actions, 2);
    });
  }

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
