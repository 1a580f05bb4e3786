/**
 * Goal: the core works end to end in the common case (elect, replicate, commit, apply) for 1, 3 and
 * 5 voters. Method: hand-driven RaftNetwork, no faults.
 */
import { describe, expect, it } from "vitest";
import { RaftNetwork, bytes } from "../support/raft-network.ts";

describe("raft smoke", () => {
  for (const size of [1, 3, 5]) {
    it(`elects, replicates and applies with ${size} voter(s)`, () => {
      const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
      const net = RaftNetwork.create(ids);
      net.campaign("n1");
      expect(net.leader()).toBe("n1");
      for (let i = 0; i < 10; i++) net.core("n1").propose(bytes(`v${i}`));
      net.stabilize();
      // Followers learn the final commit index with the next heartbeat.
      net.tickAll(1);
      net.stabilize();
      for (const id of ids) expect(net.appliedData(id)).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`));
      for (const id of ids) expect(net.core(id).status().commit).toBe(11);
    });
  }
});
