/**
 * Goal: the quorum math (src/raft/quorum.ts) agrees with a naive oracle on every input.
 * Method: fast-check generates voter sets, match indexes and vote maps; the oracle counts directly
 * from the definition of a majority (as etcd's quorum/quick_test.go does).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { majority, quorumActive, quorumIndex, voteResult } from "../../src/raft/quorum.ts";

/** The largest index i such that more than half of the voters have match >= i (0 if none). */
function naiveQuorumIndex(matches: readonly number[]): number {
  if (matches.length === 0) return 0;
  let best = 0;
  for (const candidate of matches) {
    const count = matches.filter((m) => m >= candidate).length;
    if (count * 2 > matches.length && candidate > best) best = candidate;
  }
  return best;
}

function naiveVoteResult(voters: readonly string[], votes: ReadonlyMap<string, boolean>): "won" | "lost" | "pending" {
  const granted = voters.filter((v) => votes.get(v) === true).length;
  const rejected = voters.filter((v) => votes.get(v) === false).length;
  if (granted * 2 > voters.length || voters.length === 0) return "won";
  if (rejected * 2 >= voters.length) return "lost";
  return "pending";
}

const voterIds = fc.uniqueArray(fc.constantFrom("a", "b", "c", "d", "e", "f", "g"), { minLength: 0, maxLength: 7 });

describe("raft quorum math", () => {
  it("majority is more than half", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), (n) => {
        const m = majority(n);
        expect(m * 2).toBeGreaterThan(n);
        expect((m - 1) * 2).toBeLessThanOrEqual(n);
      }),
    );
    expect(majority(0)).toBe(0);
  });

  it("quorumIndex matches the naive oracle", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 0, maxLength: 9 }), (matches) => {
        const expected = naiveQuorumIndex(matches);
        expect(quorumIndex([...matches])).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it("quorumIndex is monotonic: raising one voter's match never lowers it", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 7 }), fc.nat(), fc.nat(20), (matches, which, bump) => {
        const before = quorumIndex([...matches]);
        const raised = [...matches];
        const i = which % raised.length;
        raised[i] = raised[i]! + bump;
        expect(quorumIndex(raised)).toBeGreaterThanOrEqual(before);
      }),
    );
  });

  it("voteResult matches the naive oracle", () => {
    fc.assert(
      fc.property(
        voterIds,
        fc.dictionary(fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "x"), fc.boolean()),
        (voters, votesObj) => {
          const votes = new Map(Object.entries(votesObj));
          expect(voteResult(voters, votes)).toBe(naiveVoteResult(voters, votes));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("quorumActive matches counting", () => {
    fc.assert(
      fc.property(voterIds, fc.func(fc.boolean()), (voters, isActive) => {
        const active = voters.filter((v) => isActive(v)).length;
        expect(quorumActive(voters, (v) => isActive(v))).toBe(active * 2 > voters.length || voters.length === 0);
      }),
    );
  });
});
