/**
 * Goal: a node that may have lost durable state (wiped or truncated disk) never helps elect a leader
 * that lacks what it had acknowledged, and never votes twice in a term it forgot (RaftConfig.recovering).
 * While recovering it neither campaigns nor grants votes or pre-votes; it leaves the mode once it has
 * caught up with a leader of term T to that leader's commit index, which must hold an entry of term T,
 * and from then on it grants votes only in terms > T, restarts included. A leader notices a follower
 * whose log ends below what it acknowledged and catches it up from scratch.
 * Method: RaftNetwork (hand-delivered messages) and hand-crafted messages; a negative control shows
 * the committed entry that is lost when the wiped node is allowed to vote.
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage, TRANSFER_CONTEXT, type NodeId, type RaftConfig } from "../../src/raft/index.ts";
import { RaftNetwork, bytes, entriesOf, lone, msg, testConfig } from "../support/raft-network.ts";
import { RaftCore } from "../../src/raft/index.ts";

const VOTERS = ["n1", "n2", "n3"];

/** Replaces a node by one with an empty disk (its data directory was wiped), optionally recovering. */
function wipe(net: RaftNetwork, id: NodeId, overrides: Partial<RaftConfig>): void {
  net.addNode(id, new MemoryStorage({ confState: { voters: VOTERS, learners: [] } }), overrides);
  net.queue = net.queue.filter((m) => m.to !== id && m.from !== id);
}

/**
 * n1 leads term 1 and commits "a" and "b" with n2's acknowledgements while n3 is cut off; then n1
 * goes away and n2's disk is wiped. Only n1 (down) still holds "b".
 */
function committedThenWiped(recovering: boolean): RaftNetwork {
  const net = RaftNetwork.create(VOTERS, { preVote: true });
  net.campaign("n1");
  net.core("n1").propose(bytes("a"));
  net.stabilize();
  net.isolate("n3");
  net.core("n1").propose(bytes("b"));
  net.stabilize();
  expect(net.core("n1").status().commit).toBe(3);
  expect(net.core("n3").status().lastIndex).toBe(2);
  net.heal();
  net.isolate("n1");
  wipe(net, "n2", { preVote: true, recovering });
  return net;
}

describe("raft recovering mode: no campaigns, no votes", () => {
  it("never campaigns: not on timeout, not on campaign(), not on a transfer's timeoutNow", () => {
    const { core } = lone("n1", VOTERS, { recovering: true, preVote: true });
    for (let i = 0; i < 100; i++) core.tick();
    core.campaign();
    core.step(msg({ type: "timeoutNow", from: "n2", to: "n1", term: 0 }));
    expect(core.status()).toMatchObject({ role: "follower", term: 0, recovering: true });
    expect(core.ready().messages).toEqual([]);
  });

  it("rejects votes and pre-votes, even from an up-to-date candidate of a higher term", () => {
    const { core } = lone("n1", VOTERS, { recovering: true, preVote: true });
    core.step(msg({ type: "preVote", from: "n2", to: "n1", term: 5, index: 10, logTerm: 4 }));
    core.step(msg({ type: "vote", from: "n2", to: "n1", term: 5, index: 10, logTerm: 4, context: TRANSFER_CONTEXT }));
    core.step(msg({ type: "vote", from: "n3", to: "n1", term: 6, index: 10, logTerm: 4 }));
    const rd = core.ready();
    expect(rd.messages.map((m) => [m.type, m.to, m.reject])).toEqual([
      ["preVoteResp", "n2", true],
      ["voteResp", "n2", true],
      ["voteResp", "n3", true],
    ]);
    expect(core.status()).toMatchObject({ term: 6, vote: null, recovering: true });
  });

  it("endRecovery() lifts the mode without a leader (a brand-new cluster)", () => {
    const { core } = lone("n1", VOTERS, { recovering: true });
    core.endRecovery("every other voter is brand new");
    core.step(msg({ type: "vote", from: "n2", to: "n1", term: 1 }));
    expect(core.ready().messages).toMatchObject([{ type: "voteResp", to: "n2", reject: false }]);
    expect(core.status()).toMatchObject({ vote: "n2", recovering: false });
  });

  it("the only voter of a group goes on with the log it kept (nobody to recover from); with no log at all it stays down", () => {
    const storage = new MemoryStorage({ confState: { voters: ["n1"], learners: [] }, hardState: { term: 2, vote: "n1", commit: 2 }, entries: entriesOf([1, 2]) });
    const kept = new RaftCore(testConfig("n1", { recovering: true }), storage);
    kept.campaign();
    expect(kept.status()).toMatchObject({ role: "leader", term: 3, recovering: false });
    const { core: empty } = lone("n1", ["n1"], { recovering: true });
    for (let i = 0; i < 100; i++) empty.tick();
    expect(empty.status()).toMatchObject({ role: "follower", term: 0, recovering: true });
  });

  it("validates the option", () => {
    expect(() => lone("n1", VOTERS, { recovering: "yes" as unknown as boolean })).toThrow(/recovering must be a boolean/);
  });
});

describe("raft recovering mode: leaving it", () => {
  it("ends only at the leader's commit index, and only once that index is an entry of the leader's term", () => {
    // n1's log: indexes 1-3 of term 1, 4 of term 2. The leader of term 2 sends it all; its commit index
    // is first 3 (an entry of an older term: it may not cover everything committed), then 4.
    const { core } = lone("n1", VOTERS, { recovering: true });
    const log = entriesOf([1, 1, 1, 2]);
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 2, index: 0, logTerm: 0, entries: log.slice(0, 2), commit: 3 }));
    expect(core.status()).toMatchObject({ commit: 2, recovering: true }); // commit 3 not reached yet
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 2, index: 2, logTerm: 1, entries: log.slice(2), commit: 3 }));
    expect(core.status()).toMatchObject({ commit: 3, recovering: true }); // commit 3 is a term-1 entry
    core.ready();
    core.step(msg({ type: "heartbeat", from: "n2", to: "n1", term: 2, commit: 4 }));
    expect(core.status()).toMatchObject({ commit: 4, recovering: true }); // a heartbeat's commit is capped at our match
    // ... so it asks for an append, which carries the leader's own commit index.
    expect(core.ready().messages).toMatchObject([{ type: "heartbeatResp", to: "n2", reject: true, rejectHint: 4 }]);
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 2, index: 4, logTerm: 2, entries: [], commit: 4 }));
    expect(core.status()).toMatchObject({ commit: 4, recovering: false, term: 2, vote: "n2", leader: "n2" });
    // The vote recorded for the leader is persisted like any vote.
    const rd = core.ready();
    expect(rd.hardState).toMatchObject({ term: 2, vote: "n2", commit: 4 });
    expect(rd.mustSync).toBe(true);
  });

  it("a leader answers a recovering follower's rejected heartbeat with an append carrying its commit index", () => {
    const net = RaftNetwork.create(VOTERS);
    net.campaign("n1");
    net.core("n1").propose(bytes("a"));
    net.stabilize();
    const leader = net.core("n1");
    expect(leader.status().progress!["n2"]).toMatchObject({ match: 2, state: "replicate" });
    leader.step(msg({ type: "heartbeatResp", from: "n2", to: "n1", term: 1, reject: true, rejectHint: 2 }));
    expect(net.take((m) => m.to === "n2")).toMatchObject([{ type: "app", index: 2, logTerm: 1, entries: [], commit: 2 }]);
    expect(leader.status().progress!["n2"]!.match).toBe(2); // not a loss: its log reaches its match
  });

  it("afterwards grants votes only in later terms, also after a restart", () => {
    const { core, storage } = lone("n1", VOTERS, { recovering: true });
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 3, index: 0, logTerm: 0, entries: entriesOf([3]), commit: 1 }));
    expect(core.status().recovering).toBe(false);
    const rd = core.ready();
    storage.append(rd.entries);
    storage.setHardState(rd.hardState!);
    core.advance(rd);

    // Restart from what is on disk, no longer recovering (the node recorded that it recovered).
    const restarted = new RaftCore(testConfig("n1"), storage);
    expect(restarted.status()).toMatchObject({ term: 3, vote: "n2", leader: null, recovering: false });
    restarted.step(msg({ type: "vote", from: "n3", to: "n1", term: 3, index: 5, logTerm: 3 }));
    restarted.step(msg({ type: "vote", from: "n3", to: "n1", term: 4, index: 5, logTerm: 3 }));
    expect(restarted.ready().messages.map((m) => [m.term, m.reject])).toEqual([
      [3, true],
      [4, false],
    ]);
  });

  it("keeps a vote it already holds for the leader's term", () => {
    const storage = new MemoryStorage({ confState: { voters: VOTERS, learners: [] }, hardState: { term: 3, vote: "n3", commit: 0 } });
    const core = new RaftCore(testConfig("n1", { recovering: true }), storage);
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 3, index: 0, logTerm: 0, entries: entriesOf([3]), commit: 1 }));
    expect(core.status()).toMatchObject({ recovering: false, vote: "n3" });
  });
});

describe("raft recovering mode: a wiped voter in a 3-node group", () => {
  it("negative control: a wiped node that votes elects a stale candidate and a committed entry is lost", () => {
    const net = committedThenWiped(false);
    net.tickUntil(() => net.leaders().some((id) => id !== "n1"), 500);
    expect(net.leader()).toBe("n3");
    net.core("n3").propose(bytes("c"));
    net.stabilize();
    expect(net.appliedData("n3")).toEqual(["a", "c"]); // "b" was committed by n1, and is gone
  });

  it("a recovering wiped node does not vote for the stale candidate; the group waits for the node that has the data", () => {
    const net = committedThenWiped(true);
    net.delivered = [];
    for (let i = 0; i < 300; i++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.leaders().filter((id) => id !== "n1")).toEqual([]);
    const votes = net.delivered.filter((m) => (m.type === "voteResp" || m.type === "preVoteResp") && m.from === "n2");
    expect(votes.length).toBeGreaterThan(0);
    expect(votes.every((m) => m.reject)).toBe(true);
    expect(net.core("n2").status().recovering).toBe(true);

    // n1 returns. Either it leads again or n3 catches up first; either way "b" survives, and n2
    // recovers from that leader and then votes again.
    net.heal();
    net.tickUntil(() => !net.core("n2").status().recovering && net.core("n2").status().commit >= 3, 1000);
    const leader = net.leader();
    net.core(leader).propose(bytes("c"));
    net.stabilize();
    for (const id of VOTERS) expect(net.appliedData(id).slice(-3), id).toEqual(["a", "b", "c"]);
  });

  it("the leader catches up a follower that lost its acknowledged log while it kept leading", () => {
    const net = RaftNetwork.create(VOTERS, { preVote: true, checkQuorum: true });
    net.campaign("n1");
    for (const v of ["a", "b", "c"]) net.core("n1").propose(bytes(v));
    net.stabilize();
    expect(net.core("n1").status().progress!["n2"]!.match).toBe(4);
    wipe(net, "n2", { preVote: true, checkQuorum: true, recovering: true });
    net.tickUntil(() => !net.core("n2").status().recovering, 200);
    expect(net.leader()).toBe("n1");
    expect(net.core("n1").status().term).toBe(1);
    expect(net.appliedData("n2")).toEqual(["a", "b", "c"]);
    expect(net.core("n2").status()).toMatchObject({ lastIndex: 4, commit: 4, vote: "n1" });
    // The idle group had no append to reveal the loss: n2 rejected a heartbeat whose commit index it lacked.
    expect(net.delivered.some((m) => m.type === "heartbeatResp" && m.from === "n2" && m.reject)).toBe(true);
  });

  it("in a busy group the rejected appends reveal the loss, without heartbeats", () => {
    const net = RaftNetwork.create(VOTERS, { preVote: true, checkQuorum: true });
    net.campaign("n1");
    for (const v of ["a", "b", "c"]) net.core("n1").propose(bytes(v));
    net.stabilize();
    wipe(net, "n2", { preVote: true, checkQuorum: true, recovering: true });
    net.delivered = [];
    for (const v of ["d", "e"]) {
      net.core("n1").propose(bytes(v));
      net.stabilize(); // no tick: no heartbeat
    }
    expect(net.delivered.some((m) => m.type === "heartbeat")).toBe(false);
    expect(net.appliedData("n2")).toEqual(["a", "b", "c", "d", "e"]);
    expect(net.core("n2").status()).toMatchObject({ recovering: false, vote: "n1", commit: 6 });
  });
});
