/**
 * Goal: the reconciliation step (src/node/membership.ts nextChangeToward) moves a Raft configuration
 * toward its target one safe change at a time: new replicas join as learners, are promoted only when
 * streaming and caught up, voters leave only once every wanted node votes (add before remove; the
 * leader itself last; a held-back node not at all), and the meta group grows to 5 voters without
 * demoting anyone.
 * Method: the pure function on hand-made configurations and leader progress; and a loop that applies
 * each proposed change to check it converges in a bounded number of steps.
 */
import { describe, expect, it } from "vitest";
import { nextChangeToward, MEMBERSHIP_LIMITS } from "../../src/node/membership.ts";
import { applyChange } from "../../src/raft/conf-change.ts";
import type { ConfState, ProgressStatus } from "../../src/raft/types.ts";

const streaming = (match: number): ProgressStatus => ({ match, next: match + 1, state: "replicate", recentActive: true, isLearner: true });
const conf = (voters: string[], learners: string[] = []): ConfState => ({ voters, learners });

describe("nextChangeToward", () => {
  it("moves a replica: learner first, promoted once caught up, then the old voter leaves", () => {
    const target = ["n1", "n2", "n4"];
    expect(nextChangeToward(conf(["n1", "n2", "n3"]), target, 3, {}, 100, "n1", [])).toEqual({ type: "addLearner", nodeId: "n4" });
    // Not caught up (too far behind, probing, or silent): nothing to do yet, and n3 stays.
    const behind = { n4: streaming(100 - MEMBERSHIP_LIMITS.learnerCatchUpEntries - 1) };
    expect(nextChangeToward(conf(["n1", "n2", "n3"], ["n4"]), target, 3, behind, 100, "n1", [])).toBe(null);
    expect(nextChangeToward(conf(["n1", "n2", "n3"], ["n4"]), target, 3, { n4: { ...streaming(100), state: "probe" } }, 100, "n1", [])).toBe(null);
    expect(nextChangeToward(conf(["n1", "n2", "n3"], ["n4"]), target, 3, { n4: { ...streaming(100), recentActive: false } }, 100, "n1", [])).toBe(null);
    expect(nextChangeToward(conf(["n1", "n2", "n3"], ["n4"]), target, 3, { n4: streaming(90) }, 100, "n1", [])).toEqual({ type: "addVoter", nodeId: "n4" });
    expect(nextChangeToward(conf(["n1", "n2", "n3", "n4"]), target, 3, {}, 100, "n1", [])).toEqual({ type: "removeNode", nodeId: "n3" });
    expect(nextChangeToward(conf(["n1", "n2", "n4"]), target, 3, {}, 100, "n1", [])).toBe(null);
  });

  it("shrinks, removes unwanted learners, removes the leader itself last, and holds back a node", () => {
    expect(nextChangeToward(conf(["n1", "n2", "n3"]), ["n1", "n2"], 2, {}, 10, "n1", [])).toEqual({ type: "removeNode", nodeId: "n3" });
    expect(nextChangeToward(conf(["n1", "n2"], ["n9"]), ["n1", "n2"], 2, {}, 10, "n1", [])).toEqual({ type: "removeNode", nodeId: "n9" });
    // The leader (n1) and n3 both leave: n3 first.
    expect(nextChangeToward(conf(["n1", "n2", "n3", "n4"]), ["n2", "n4"], 2, {}, 10, "n1", [])).toEqual({ type: "removeNode", nodeId: "n3" });
    expect(nextChangeToward(conf(["n1", "n2", "n4"]), ["n2", "n4"], 2, {}, 10, "n1", [])).toEqual({ type: "removeNode", nodeId: "n1" });
    expect(nextChangeToward(conf(["n1", "n2", "n3"]), ["n1", "n2"], 2, {}, 10, "n1", ["n3"])).toBe(null);
    // Never the last voter.
    expect(nextChangeToward(conf(["n1"]), [], 0, {}, 10, "n1", [])).toBe(null);
  });

  it("grows the meta group to 5 voters from caught-up learners, never demoting", () => {
    const members = ["n1", "n2", "n3", "n4", "n5", "n6", "n7"];
    const progress = Object.fromEntries(members.map((m) => [m, streaming(50)]));
    // Seven voters (a cluster bootstrapped that way): nothing to do.
    expect(nextChangeToward(conf(members), members, 5, progress, 50, "n1", [])).toBe(null);
    // Four voters and a learner: promote it.
    expect(nextChangeToward(conf(["n1", "n2", "n3", "n4"], ["n5"]), members.slice(0, 5), 5, progress, 50, "n1", [])).toEqual({ type: "addVoter", nodeId: "n5" });
    // Five voters and learners beyond: they stay learners.
    expect(nextChangeToward(conf(members.slice(0, 5), ["n6", "n7"]), members, 5, progress, 50, "n1", [])).toBe(null);
  });

  it("converges from any configuration to the target in a bounded number of single changes", () => {
    const nodes = ["a", "b", "c", "d", "e", "f"];
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = (n: number) => [...nodes].sort(() => random() - 0.5).slice(0, n);
    for (let run = 0; run < 200; run++) {
      const voters = pick(1 + Math.floor(random() * 4));
      let c: ConfState = { voters, learners: nodes.filter((n) => !voters.includes(n) && random() < 0.2) };
      const target = pick(1 + Math.floor(random() * 4));
      const self = c.voters[0]!;
      const progress = Object.fromEntries(nodes.map((n) => [n, streaming(10)]));
      let steps = 0;
      for (;;) {
        const change = nextChangeToward(c, target, target.length, progress, 10, self, []);
        if (change === null) break;
        const next = applyChange(c, change);
        expect(next, JSON.stringify({ c, change })).not.toBe(null);
        // Add before remove: the wanted nodes already voting never lose their vote.
        const wantedVoting = (x: ConfState) => x.voters.filter((v) => target.includes(v)).length;
        expect(wantedVoting(next!)).toBeGreaterThanOrEqual(wantedVoting(c));
        c = next!;
        expect(++steps).toBeLessThanOrEqual(2 * nodes.length + 2);
      }
      expect([...c.voters].sort()).toEqual([...target].sort());
      expect(c.learners).toEqual([]);
    }
  });
});
