/**
 * Goal: leader election is safe and live: randomized timeouts from the injected PRNG, one vote per
 * term, the up-to-date rule, PreVote, CheckQuorum, a pre-candidate forgetting its leader, the leader
 * lease, and recovery of a peer stranded at a higher term (RAFT-CHECKLIST items 9, 11, 16).
 * Method: RaftNetwork (hand-delivered messages, cut links) and hand-crafted messages.
 */
import { describe, expect, it } from "vitest";
import { TRANSFER_CONTEXT } from "../../src/raft/index.ts";
import { RaftNetwork, bytes, lone, msg } from "../support/raft-network.ts";

function ticksUntilCampaign(random: () => number, electionTicks = 10): number {
  const { core } = lone("n1", ["n1", "n2", "n3"], { random, electionTicks });
  for (let tick = 1; tick < 1000; tick++) {
    core.tick();
    if (core.status().role !== "follower") return tick;
  }
  throw new Error("never campaigned");
}

describe("raft election: timeouts", () => {
  it("campaigns after a randomized timeout in [electionTicks, 2*electionTicks)", () => {
    expect(ticksUntilCampaign(() => 0)).toBe(10);
    expect(ticksUntilCampaign(() => 0.5)).toBe(15);
    expect(ticksUntilCampaign(() => 0.9999)).toBe(19);
    // A PRNG that misbehaves (returns 1) still stays in range.
    expect(ticksUntilCampaign(() => 1)).toBe(10);
    const seen = new Set<number>();
    let x = 0;
    for (let i = 0; i < 200; i++) {
      x = (x * 9301 + 49297) % 233280;
      const ticks = ticksUntilCampaign(() => x / 233280);
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(5);
  });

  it("a follower that hears from the leader never campaigns", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    for (let i = 0; i < 100; i++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.leader()).toBe("n1");
    expect(net.core("n2").status().term).toBe(1);
  });

  it("a non-voter (learner or blank node) never campaigns", () => {
    const net = RaftNetwork.create(["n1"], {}, ["n2"]);
    net.addBlankNode("n3");
    for (let i = 0; i < 50; i++) {
      net.core("n2").tick();
      net.core("n3").tick();
    }
    net.core("n2").campaign();
    net.core("n3").campaign();
    expect(net.core("n2").status().role).toBe("follower");
    expect(net.core("n3").status().role).toBe("follower");
    expect(net.core("n2").status().term).toBe(0);
  });
});

describe("raft election: voting", () => {
  it("elects the campaigning node and everyone follows it", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n2");
    expect(net.leader()).toBe("n2");
    for (const id of ["n1", "n3"]) {
      expect(net.core(id).status()).toMatchObject({ role: "follower", leader: "n2", term: 1 });
    }
  });

  it("grants one vote per term", () => {
    const { core, storage } = lone("n1", ["n1", "n2", "n3"]);
    core.step(msg({ type: "vote", from: "n2", to: "n1", term: 1 }));
    core.step(msg({ type: "vote", from: "n3", to: "n1", term: 1 }));
    core.step(msg({ type: "vote", from: "n2", to: "n1", term: 1 })); // a retry by the same candidate
    const rd = core.ready();
    expect(rd.hardState).toMatchObject({ term: 1, vote: "n2" });
    expect(rd.mustSync).toBe(true);
    expect(rd.messagesBeforePersist).toEqual([]);
    expect(rd.messages.map((m) => [m.to, m.reject])).toEqual([
      ["n2", false],
      ["n3", true],
      ["n2", false],
    ]);
    void storage;
  });

  it("rejects a candidate whose log is less up to date", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.core("n1").propose(bytes("x"));
    net.stabilize();
    // n3 misses everything from now on; n1 and n2 have index 3 at term 1.
    net.isolate("n3");
    net.core("n1").propose(bytes("y"));
    net.stabilize();
    net.heal();
    net.isolate("n1");
    // n3 (stale log) campaigns: n2 must reject it; n3 cannot win.
    net.core("n3").campaign();
    net.stabilize();
    expect(net.core("n3").status().role).not.toBe("leader");
    const rejections = net.delivered.filter((m) => m.type === "voteResp" && m.to === "n3");
    expect(rejections.map((m) => m.reject)).toEqual([true]);
    // n2 (up to date) wins.
    net.core("n2").campaign();
    net.stabilize();
    expect(net.leader()).toBe("n2");
  });

  it("a candidate rejected by a majority becomes follower", () => {
    const { core } = lone("n1", ["n1", "n2", "n3"]);
    core.campaign();
    expect(core.status().role).toBe("candidate");
    core.step(msg({ type: "voteResp", from: "n2", to: "n1", term: 1, reject: true }));
    expect(core.status().role).toBe("candidate");
    core.step(msg({ type: "voteResp", from: "n3", to: "n1", term: 1, reject: true }));
    expect(core.status().role).toBe("follower");
  });

  it("a split vote is retried at a higher term after another timeout", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3", "n4"]);
    net.partition(["n1", "n2"], ["n3", "n4"]);
    net.core("n1").campaign();
    net.core("n3").campaign();
    net.stabilize();
    expect(net.leaders()).toEqual([]);
    net.heal();
    net.tickUntil(() => net.leaders().length === 1);
    expect(net.core(net.leader()).status().term).toBeGreaterThan(1);
  });

  it("ignores vote requests from lower terms, answering pre-votes with its term", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { preVote: true });
    net.campaign("n1");
    net.campaign("n2"); // term 2, n2 leads
    expect(net.leader()).toBe("n2");
    const core = net.core("n1");
    core.step(msg({ type: "vote", from: "n3", to: "n1", term: 1, index: 100, logTerm: 1 }));
    expect(core.ready().messages).toEqual([]);
    core.step(msg({ type: "preVote", from: "n3", to: "n1", term: 1, index: 100, logTerm: 1 }));
    const rd = core.ready();
    expect(rd.messages).toMatchObject([{ type: "preVoteResp", to: "n3", term: 2, reject: true }]);
  });
});

describe("raft election: PreVote", () => {
  it("a partitioned node does not raise its term, and does not disrupt the leader when it returns", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { preVote: true });
    net.campaign("n1");
    net.isolate("n3");
    for (let i = 0; i < 100; i++) net.tick("n3");
    net.stabilize();
    expect(net.core("n3").status()).toMatchObject({ term: 1, role: "preCandidate" });
    net.heal();
    for (let i = 0; i < 30; i++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.leader()).toBe("n1");
    expect(net.core("n1").status().term).toBe(1);
    expect(net.core("n3").status()).toMatchObject({ role: "follower", leader: "n1" });
  });

  it("without PreVote the same node does raise its term on its own", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.isolate("n3");
    for (let i = 0; i < 100; i++) net.tick("n3");
    expect(net.core("n3").status().term).toBeGreaterThan(2);
  });

  it("a won pre-vote becomes a real election at term + 1", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { preVote: true });
    net.core("n1").campaign();
    expect(net.core("n1").status()).toMatchObject({ role: "preCandidate", term: 0 });
    const preVotes = net.take((m) => m.type === "preVote");
    expect(preVotes.map((m) => m.term)).toEqual([1, 1]);
    for (const m of preVotes) net.deliver(m);
    net.stabilize();
    expect(net.core("n1").status()).toMatchObject({ role: "leader", term: 1 });
    // Pre-votes left the voters' terms and votes alone; only the real vote changed them.
    expect(net.core("n2").status()).toMatchObject({ term: 1, vote: "n1" });
  });

  it("a pre-candidate forgets its leader", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { preVote: true, checkQuorum: true });
    net.campaign("n1");
    expect(net.core("n2").status().leader).toBe("n1");
    net.isolate("n2");
    net.core("n2").campaign();
    expect(net.core("n2").status()).toMatchObject({ role: "preCandidate", leader: null });
  });

  it("with PreVote and CheckQuorum, the survivors elect a new leader after the leader is isolated", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { preVote: true, checkQuorum: true });
    net.campaign("n1");
    net.isolate("n1");
    net.tickUntil(() => net.leaders().some((id) => id !== "n1"), 200);
    const leader = net.leaders().find((id) => id !== "n1")!;
    expect(net.core(leader).status().term).toBeGreaterThanOrEqual(2);
    // The old leader stepped down by check quorum (it may be pre-campaigning, harmlessly, at its old
    // term) and rejoins as a follower once healed.
    expect(net.core("n1").status()).toMatchObject({ term: 1 });
    expect(net.core("n1").status().role).not.toBe("leader");
    net.heal();
    net.tickAll();
    net.stabilize();
    expect(net.core("n1").status()).toMatchObject({ role: "follower", leader, term: net.core(leader).status().term });
  });

  it("a flapping node does not cause an election storm", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { preVote: true, checkQuorum: true });
    net.campaign("n1");
    for (let round = 0; round < 10; round++) {
      net.isolate("n3");
      for (let i = 0; i < 25; i++) {
        net.tickAll();
        net.stabilize();
      }
      net.heal();
      for (let i = 0; i < 5; i++) {
        net.tickAll();
        net.stabilize();
      }
    }
    expect(net.leader()).toBe("n1");
    expect(net.core("n1").status().term).toBe(1);
  });
});

describe("raft election: CheckQuorum and the leader lease", () => {
  it("a leader that hears from no quorum within an election timeout steps down", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { checkQuorum: true });
    net.campaign("n1");
    net.isolate("n1");
    // It heard from both followers during the first timeout window (their acks of its no-op)...
    for (let i = 0; i < 10; i++) net.tick("n1");
    expect(net.core("n1").status().role).toBe("leader");
    // ...but from nobody during the second.
    for (let i = 0; i < 10; i++) net.tick("n1");
    expect(net.core("n1").status().role).toBe("follower");
    expect(net.core("n1").status().leader).toBe(null);
  });

  it("a leader that hears from a quorum keeps leading", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { checkQuorum: true });
    net.campaign("n1");
    net.isolate("n3");
    for (let i = 0; i < 50; i++) {
      net.tick("n1");
      net.tick("n2");
      net.stabilize();
    }
    expect(net.core("n1").status().role).toBe("leader");
  });

  it("without CheckQuorum an isolated leader keeps believing it leads", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.isolate("n1");
    for (let i = 0; i < 50; i++) net.tick("n1");
    expect(net.core("n1").status().role).toBe("leader");
  });

  it("followers that hear from a leader ignore higher-term vote requests (lease)", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { checkQuorum: true });
    net.campaign("n1");
    const core = net.core("n2");
    core.step(msg({ type: "vote", from: "n3", to: "n2", term: 5, index: 10, logTerm: 5 }));
    expect(core.status()).toMatchObject({ term: 1, leader: "n1", vote: "n1" });
    expect(core.hasReady()).toBe(false);
    // ...but grant a transfer election, which the leader asked for.
    core.step(msg({ type: "vote", from: "n3", to: "n2", term: 5, index: 10, logTerm: 5, context: TRANSFER_CONTEXT }));
    expect(core.status()).toMatchObject({ term: 5, vote: "n3" });
  });

  it("a leader ignores higher-term vote requests within its lease", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { checkQuorum: true, preVote: true });
    net.campaign("n1");
    net.core("n1").step(msg({ type: "vote", from: "n3", to: "n1", term: 9, index: 10, logTerm: 9 }));
    expect(net.core("n1").status()).toMatchObject({ role: "leader", term: 1 });
  });

  it("once the lease expired, a follower takes the higher term", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { checkQuorum: true });
    net.campaign("n1");
    net.isolate("n2");
    for (let i = 0; i < 10; i++) net.core("n2").tick(); // electionElapsed reaches electionTicks
    net.core("n2").step(msg({ type: "vote", from: "n3", to: "n2", term: 5, index: 10, logTerm: 5 }));
    expect(net.core("n2").status()).toMatchObject({ term: 5, vote: "n3" });
  });
});

describe("raft election: a peer stranded at a higher term", () => {
  // With PreVote and CheckQuorum off too: a stranded node may not campaign to the leader at all
  // (its configuration can be stale), so its answer to the leader's append is the only way back.
  for (const guards of [true, false]) it(`makes the leader step down so that a new election reunites the group (preVote=checkQuorum=${guards})`, () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { preVote: guards, checkQuorum: guards });
    net.campaign("n1");
    net.core("n1").propose(bytes("a"));
    net.stabilize();
    // n3 learns of term 2 through a vote that then goes nowhere (n2 lost it and stayed at term 1).
    net.core("n3").step(msg({ type: "vote", from: "n2", to: "n3", term: 2, index: 0, logTerm: 0, context: TRANSFER_CONTEXT }));
    net.take((m) => m.from === "n3");
    expect(net.core("n3").status()).toMatchObject({ term: 2, leader: null });
    // n1's term-1 heartbeats cannot reach n3 any more; n3 answers with its term, n1 steps down.
    net.tickAll();
    net.stabilize();
    expect(net.core("n1").status()).toMatchObject({ role: "follower", term: 2 });
    net.tickUntil(() => net.leaders().length === 1, 200);
    const leader = net.leader();
    const term = net.core(leader).status().term;
    expect(term).toBeGreaterThanOrEqual(3);
    net.core(leader).propose(bytes("b"));
    net.stabilize();
    net.tickAll();
    net.stabilize();
    for (const id of ["n1", "n2", "n3"]) {
      expect(net.core(id).status().term).toBe(term);
      expect(net.appliedData(id)).toEqual(["a", "b"]);
    }
  });
});
