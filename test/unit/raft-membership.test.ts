/**
 * Goal: one-at-a-time membership changes (RAFT-CHECKLIST items 6, 16, 18): joining nodes start blank
 * and learn the membership from the leader's snapshot, learners catch up without voting or counting
 * toward quorum and are promoted with addVoter, at most one change is pending and none before the
 * term's no-op commits, a removed leader steps down, removed nodes cannot disrupt elections.
 * Method: RaftNetworks applying conf entries as the node would (applyConfChange on apply).
 */
import { describe, expect, it } from "vitest";
import { decodeConfChange, encodeConfChange } from "../../src/raft/index.ts";
import { LINGER_CAMPAIGNS_MAX } from "../../src/raft/raft.ts";
import { applyChange } from "../../src/raft/conf-change.ts";
import { RaftNetwork, bytes, msg } from "../support/raft-network.ts";

const options = { preVote: true, checkQuorum: true };

function settle(net: RaftNetwork, rounds = 3): void {
  for (let i = 0; i < rounds; i++) {
    net.tickAll();
    net.stabilize();
  }
}

describe("raft membership: encoding and the pure change", () => {
  it("round-trips conf changes and rejects corrupt bytes", () => {
    for (const type of ["addVoter", "addLearner", "removeNode"] as const) {
      expect(decodeConfChange(encodeConfChange({ type, nodeId: "node-é" }))).toEqual({ type, nodeId: "node-é" });
    }
    for (const bad of [new Uint8Array(0), new Uint8Array([9, 0, 65]), new Uint8Array([1, 7, 65]), new Uint8Array([1, 0, 0xff])]) {
      expect(() => decodeConfChange(bad)).toThrow(expect.objectContaining({ code: "CORRUPT_DATA" }));
    }
    expect(() => encodeConfChange({ type: "bogus" as "addVoter", nodeId: "x" })).toThrow(TypeError);
  });

  it("applies changes as set operations and never removes the last voter", () => {
    const conf = { voters: ["a", "b"], learners: ["c"] };
    expect(applyChange(conf, { type: "addVoter", nodeId: "c" })).toEqual({ voters: ["a", "b", "c"], learners: [] });
    expect(applyChange(conf, { type: "addLearner", nodeId: "b" })).toEqual({ voters: ["a"], learners: ["c", "b"] });
    expect(applyChange(conf, { type: "removeNode", nodeId: "c" })).toEqual({ voters: ["a", "b"], learners: [] });
    expect(applyChange(conf, { type: "addVoter", nodeId: "a" })).toBe(null);
    expect(applyChange(conf, { type: "removeNode", nodeId: "z" })).toBe(null);
    expect(applyChange({ voters: ["a"], learners: [] }, { type: "removeNode", nodeId: "a" })).toBe(null);
  });
});

describe("raft membership: adding nodes", () => {
  it("a blank node joins as a voter through the leader's snapshot and then counts toward quorum", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], options);
    net.campaign("n1");
    net.core("n1").propose(bytes("before"));
    net.stabilize();
    net.addBlankNode("n4", options);
    net.core("n1").proposeConfChange({ type: "addVoter", nodeId: "n4" });
    settle(net);
    const snaps = net.delivered.filter((m) => m.type === "snap" && m.to === "n4");
    expect(snaps.length).toBe(1);
    expect(snaps[0]!.snapshot!.metadata).toMatchObject({ index: 0, confState: { voters: ["n1", "n2", "n3"] } });
    for (const id of ["n1", "n2", "n3", "n4"]) expect(net.core(id).status().confState.voters).toEqual(["n1", "n2", "n3", "n4"]);
    expect(net.appliedData("n4")).toEqual(["before"]);
    // With 4 voters the quorum is 3: n1 and n2 alone cannot commit.
    net.isolate("n3");
    net.isolate("n4");
    net.core("n1").propose(bytes("needs-three"));
    settle(net);
    expect(net.appliedData("n1")).toEqual(["before"]);
    net.heal();
    net.isolate("n3");
    settle(net);
    expect(net.appliedData("n1")).toEqual(["before", "needs-three"]);
  });

  it("learners replicate but neither vote nor count toward quorum; addVoter promotes them", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], options);
    net.campaign("n1");
    net.addBlankNode("n4", options);
    net.core("n1").proposeConfChange({ type: "addLearner", nodeId: "n4" });
    settle(net);
    expect(net.core("n1").status().progress!["n4"]).toMatchObject({ isLearner: true, state: "replicate" });
    expect(net.core("n4").status().confState).toEqual({ voters: ["n1", "n2", "n3"], learners: ["n4"] });
    // n1 plus the learner are not a quorum of {n1, n2, n3}.
    net.isolate("n2");
    net.isolate("n3");
    net.core("n1").propose(bytes("x"));
    settle(net);
    expect(net.appliedData("n1")).toEqual([]);
    expect(net.core("n4").status().lastIndex).toBe(net.core("n1").status().lastIndex);
    // A learner never campaigns, even when it hears from no leader.
    net.isolate("n4");
    for (let i = 0; i < 50; i++) net.tick("n4");
    expect(net.core("n4").status().role).toBe("follower");
    net.heal();
    settle(net);
    expect(net.appliedData("n1")).toEqual(["x"]);
    net.core(net.leader()).proposeConfChange({ type: "addVoter", nodeId: "n4" });
    settle(net);
    expect(net.core("n4").status().confState).toEqual({ voters: ["n1", "n2", "n3", "n4"], learners: [] });
    net.core(net.leader()).transferLeader("n4");
    settle(net);
    expect(net.leader()).toBe("n4");
  });

  it("a voter added before it caught up can still give the vote the group needs", () => {
    // {n1, n2} adds n3 while n3 is unreachable (committed by n1 and n2), then n1 fails for good. n2
    // needs n3's vote, and n3 is still blank: it must vote for a member it has never heard of.
    const net = RaftNetwork.create(["n1", "n2"], options);
    net.campaign("n1");
    net.addBlankNode("n3", options);
    net.isolate("n3");
    net.core("n1").proposeConfChange({ type: "addVoter", nodeId: "n3" });
    settle(net);
    expect(net.core("n2").status().confState.voters).toEqual(["n1", "n2", "n3"]);
    expect(net.core("n3").status().confState.voters).toEqual([]);
    net.heal();
    net.isolate("n1");
    net.tickUntil(() => net.leaders().includes("n2"), 200);
    net.core("n2").propose(bytes("after"));
    settle(net);
    expect(net.appliedData("n3")).toEqual(["after"]);
    expect(net.core("n3").status().confState.voters).toEqual(["n1", "n2", "n3"]);
  });

  it("allows one pending change at a time, and none before the term's no-op commits", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], options);
    net.core("n1").campaign();
    net.dropIf = (m) => m.type === "app";
    net.stabilize();
    expect(net.core("n1").status().role).toBe("leader");
    expect(() => net.core("n1").proposeConfChange({ type: "addLearner", nodeId: "n4" })).toThrow(
      expect.objectContaining({ code: "PROPOSAL_DROPPED" }),
    );
    net.dropIf = null;
    settle(net);
    net.core("n1").proposeConfChange({ type: "addLearner", nodeId: "n4" });
    expect(() => net.core("n1").proposeConfChange({ type: "addLearner", nodeId: "n5" })).toThrow(
      expect.objectContaining({ code: "PROPOSAL_DROPPED" }),
    );
    settle(net);
    expect(() => net.core("n1").proposeConfChange({ type: "addLearner", nodeId: "n5" })).not.toThrow();
    // Changes that change nothing, or remove the last voter, are refused up front.
    settle(net);
    expect(() => net.core("n1").proposeConfChange({ type: "addVoter", nodeId: "n2" })).toThrow(expect.objectContaining({ code: "PROPOSAL_DROPPED" }));
    expect(() => net.core("n2").proposeConfChange({ type: "addVoter", nodeId: "n9" })).toThrow(expect.objectContaining({ code: "NOT_LEADER" }));
  });

  it("does not campaign while committed conf changes are not yet applied", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.core("n1").proposeConfChange({ type: "addLearner", nodeId: "n4" });
    // n2 persists the conf entry; the leader commits it; the commit index reaches n2...
    net.dropIf = (m) => m.type === "app" && m.to === "n2" && m.entries.length === 0;
    net.stabilize();
    net.dropIf = null;
    expect(net.core("n1").status().commit).toBe(2);
    net.core("n2").step(msg({ type: "heartbeat", from: "n1", to: "n2", term: 1, commit: 2 }));
    expect(net.core("n2").status()).toMatchObject({ commit: 2, applied: 1 });
    // ...but n2 has not applied it yet: it must not campaign under the old membership.
    net.core("n2").campaign();
    expect(net.core("n2").status().role).toBe("follower");
    net.process("n2");
    expect(net.core("n2").status()).toMatchObject({ applied: 2, confState: { learners: ["n4"] } });
    net.core("n2").campaign();
    expect(net.core("n2").status().role).toBe("candidate");
  });
});

describe("raft membership: removing nodes", () => {
  it("a removed follower's messages are dropped and it cannot disrupt the group", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3", "n4"], options);
    net.campaign("n1");
    net.core("n1").proposeConfChange({ type: "removeNode", nodeId: "n4" });
    settle(net);
    expect(net.core("n1").status().confState.voters).toEqual(["n1", "n2", "n3"]);
    expect(net.core("n1").status().progress!["n4"]).toBeUndefined();
    // n4 applied its own removal: it no longer campaigns.
    net.core("n4").campaign();
    expect(net.core("n4").status().role).toBe("follower");
    // Even a removed node that missed its removal cannot disrupt: its (pre-)votes are dropped.
    const term = net.core("n1").status().term;
    for (const id of ["n1", "n2", "n3"]) {
      net.core(id).step(msg({ type: "vote", from: "n4", to: id, term: term + 5, index: 100, logTerm: term + 5 }));
      net.core(id).step(msg({ type: "preVote", from: "n4", to: id, term: term + 5, index: 100, logTerm: term + 5 }));
    }
    settle(net);
    expect(net.leader()).toBe("n1");
    expect(net.core("n1").status().term).toBe(term);
    // Quorum is now 2 of 3.
    net.isolate("n3");
    net.core("n1").propose(bytes("two-of-three"));
    settle(net);
    expect(net.appliedData("n2")).toEqual(["two-of-three"]);
  });

  it("a leader that removes itself hands leadership over, then steps down", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], options);
    net.campaign("n1");
    net.core("n1").proposeConfChange({ type: "removeNode", nodeId: "n1" });
    net.stabilize();
    // n1 applied its removal and sent timeoutNow to the most up-to-date voter, which took over.
    expect(net.leaders()).toContain("n2");
    expect(net.core("n2").status().term).toBe(2);
    // n1 refuses proposals from the moment it applied the change, and steps down within an
    // election timeout even though nobody tells it (it is no longer a member).
    expect(() => net.core("n1").propose(bytes("late"))).toThrow(expect.objectContaining({ code: "PROPOSAL_DROPPED" }));
    for (let i = 0; i < 10; i++) net.tick("n1");
    expect(net.core("n1").status().role).toBe("follower");
    net.core("n2").propose(bytes("without-n1"));
    settle(net);
    expect(net.appliedData("n2")).toEqual(["without-n1"]);
    expect(net.appliedData("n3")).toEqual(["without-n1"]);
    // n1 never campaigns again.
    for (let i = 0; i < 50; i++) net.tick("n1");
    expect(net.core("n1").status().role).toBe("follower");
  });

  for (const guards of [true, false]) {
    it(`a leader deposed before its hand-off finished campaigns again to hand over (preVote=checkQuorum=${guards})`, () => {
      // n1 removes itself from a 2-voter group and appends "x"; n2 gets the conf entry and acks it,
      // then hears nothing more from n1: neither "x", nor that the change committed, nor timeoutNow.
      // n1 steps down after an election timeout. n2 still counts n1 as a voter and needs its vote,
      // which n1 (longer log) refuses: only n1 campaigning again can pass "x" on.
      const lines: string[] = [];
      const net = RaftNetwork.create(["n1", "n2"], { preVote: guards, checkQuorum: guards, logger: (l) => lines.push(l) });
      net.campaign("n1");
      net.core("n1").proposeConfChange({ type: "removeNode", nodeId: "n1" });
      net.processAll();
      net.pump(1); // the conf entry reaches n2; its ack is queued
      net.core("n1").propose(bytes("x"));
      net.dropIf = (m) => m.from === "n1" && m.to === "n2";
      net.stabilize();
      expect(net.core("n1").status().confState.voters).toEqual(["n2"]);
      expect(net.core("n2").status()).toMatchObject({ lastIndex: 2, commit: 1 });
      net.tickUntil(() => net.core("n1").status().role !== "leader", 100);
      net.dropIf = null;
      net.tickUntil(() => net.leaders().includes("n2"), 300);
      expect(lines.some((l) => l.includes("raft n1") && l.includes("campaigning outside the voters"))).toBe(true);
      net.core("n2").propose(bytes("alone"));
      settle(net);
      expect(net.appliedData("n2")).toEqual(["x", "alone"]);
      expect(net.core("n2").status().confState.voters).toEqual(["n2"]);
    });
  }

  it(`a removed leader cut off for good campaigns at most ${LINGER_CAMPAIGNS_MAX} times`, () => {
    const lines: string[] = [];
    const net = RaftNetwork.create(["n1", "n2", "n3"], { preVote: false, checkQuorum: false, logger: (l) => lines.push(l) });
    net.campaign("n1");
    net.core("n1").proposeConfChange({ type: "removeNode", nodeId: "n1" });
    // The change commits (n2 and n3 ack it), "x" never leaves n1, then n1 is cut off for good.
    net.processAll();
    net.pump(2);
    net.core("n1").propose(bytes("x"));
    net.dropIf = (m) => m.from === "n1";
    net.stabilize();
    expect(net.core("n1").status().confState.voters).toEqual(["n2", "n3"]);
    net.isolate("n1");
    const from = lines.length;
    for (let i = 0; i < 100 * 10; i++) net.tick("n1");
    const campaigns = lines.slice(from).filter((l) => l.includes("raft n1") && /campaigning \((pre)?election\)/.test(l)).length;
    expect(campaigns).toBe(LINGER_CAMPAIGNS_MAX);
    expect(net.core("n1").status().role).toBe("follower");
  });

  it("a removed leader of a 2-voter group does not wedge the survivor", () => {
    // n1 removes itself and appends one more entry; n2 gets the conf entry but neither the later
    // entry nor the news that the change committed. Had n1 stepped down at once, n2 would still need
    // n1's vote and n1 (with the longer log, and no longer a voter) would refuse it forever.
    const net = RaftNetwork.create(["n1", "n2"], options);
    net.campaign("n1");
    net.core("n1").proposeConfChange({ type: "removeNode", nodeId: "n1" });
    net.processAll();
    net.core("n1").propose(bytes("x"));
    net.dropIf = (m) => m.from === "n1" && m.to === "n2" && m.commit >= 2;
    net.stabilize();
    net.dropIf = null;
    net.tickUntil(() => net.leaders().includes("n2"), 100);
    net.core("n2").propose(bytes("alone"));
    settle(net);
    expect(net.appliedData("n2")).toEqual(["x", "alone"]);
    expect(net.core("n2").status().confState.voters).toEqual(["n2"]);
  });

  it("a demoted leader (addLearner on itself) steps down too", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], options);
    net.campaign("n1");
    net.core("n1").proposeConfChange({ type: "addLearner", nodeId: "n1" });
    net.stabilize();
    // As a learner it still hears from the new leader, so it steps down at once.
    expect(net.leaders()).toEqual(["n2"]);
    expect(net.core("n1").status()).toMatchObject({ role: "follower", leader: "n2", confState: { voters: ["n2", "n3"], learners: ["n1"] } });
  });

  it("a change made during a partition reaches the minority when it heals", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3", "n4", "n5"], options);
    net.campaign("n1");
    net.partition(["n1", "n2", "n3"], ["n4", "n5"]);
    net.core("n1").proposeConfChange({ type: "removeNode", nodeId: "n5" });
    settle(net);
    expect(net.core("n1").status().confState.voters).toEqual(["n1", "n2", "n3", "n4"]);
    for (let i = 0; i < 30; i++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.leader()).toBe("n1");
    net.heal();
    settle(net, 5);
    expect(net.leader()).toBe("n1");
    expect(net.core("n4").status().confState.voters).toEqual(["n1", "n2", "n3", "n4"]);
  });
});
