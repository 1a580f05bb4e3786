/**
 * Quorum math for a single majority configuration (one-at-a-time membership changes, no joint
 * consensus). Pure functions over plain numbers so they can be checked against a naive oracle
 * (test/property/raft-quorum.test.ts), as etcd-io/raft does in quorum/quick_test.go.
 */

export type VoteResult = "won" | "lost" | "pending";

/** Smallest number of voters that forms a majority of `voterCount` (0 for an empty config). */
export function majority(voterCount: number): number {
  return voterCount === 0 ? 0 : Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that at least a majority of `matches` has reached (the quorum commit point).
 * `matches` holds one acknowledged index per voter; it is sorted in place (descending), so callers
 * pass a scratch array they own. Returns 0 for an empty configuration.
 */
export function quorumIndex(matches: number[]): number {
  const n = matches.length;
  if (n === 0) return 0;
  // Insertion sort, descending: voter sets are tiny (1, 3, 5), so this beats Array.prototype.sort.
  for (let i = 1; i < n; i++) {
    const value = matches[i]!;
    let j = i - 1;
    while (j >= 0 && matches[j]! < value) {
      matches[j + 1] = matches[j]!;
      j--;
    }
    matches[j + 1] = value;
  }
  return matches[majority(n) - 1]!;
}

/**
 * Outcome of an election given the voters and the responses received so far (true = granted).
 * Responses from non-voters are ignored. "won" once a majority granted, "lost" once a majority can
 * no longer be reached, "pending" otherwise. An empty configuration wins trivially (as in etcd).
 */
export function voteResult(voters: readonly string[], votes: ReadonlyMap<string, boolean>): VoteResult {
  const needed = majority(voters.length);
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  if (granted >= needed) return "won";
  if (granted + missing >= needed) return "pending";
  return "lost";
}

/** True when the voters marked active (by `isActive`) form a majority. */
export function quorumActive(voters: readonly string[], isActive: (id: string) => boolean): boolean {
  let active = 0;
  for (const id of voters) if (isActive(id)) active++;
  return active >= majority(voters.length);
}
