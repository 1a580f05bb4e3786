/**
 * Goal: leadership transfer (RAFT-CHECKLIST item 17): the leader brings the transferee up to date,
 * sends timeoutNow, refuses proposals meanwhile, and gives up after an election timeout; the
 * transferee's election passes the other voters' leader lease.
 * Method: RaftNetworks with PreVote and CheckQuorum on, as the node runs them.
 */
import { describe, expect, it } from "vitest";
import { RaftNetwork, bytes, lone } from "../support/raft-network.ts";

const options = { preVote: true, checkQuorum: true };

describe("raft leadership transfer", () => {
  it("hands leadership to an up-to-date follower", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], options);
    net.campaign("n1");
    net.core("n1").transferLeader("n2");
    const timeoutNow = net.take((m) => m.type === "timeoutNow");
    expect(timeoutNow.map((m) => m.to)).toEqual(["n2"]);
    net.core("n1").transferLeader("n2"); // repeated: no second timeoutNow
    expect(net.take((m) => m.type === "timeoutNow")).toEqual([]);
    net.deliver(timeoutNow[0]!);
    net.stabilize();
    expect(net.leader()).toBe("n2");
    expect(net.core("n2").status().term).toBe(2);
    expect(net.core("n1").status()).toMatchObject({ role: "follower", leader: "n2", transferee: null });
  });

  it("catches a lagging transferee up first, without losing proposals made before", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], options);
    net.campaign("n1");
    net.isolate("n3");
    for (let i = 0; i < 5; i++) net.core("n1").propose(bytes(`v${i}`));
    net.stabilize();
    net.heal();
    net.core("n1").transferLeader("n3");
    expect(net.core("n1").status().transferee).toBe("n3");
    expect(() => net.core("n1").propose(bytes("during"))).toThrow(expect.objectContaining({ code: "PROPOSAL_DROPPED" }));
    net.stabilize();
    expect(net.leader()).toBe("n3");
    net.core("n3").propose(bytes("after"));
    net.stabilize();
    net.tickAll();
    net.stabilize();
    for (const id of ["n1", "n2", "n3"]) expect(net.appliedData(id)).toEqual(["v0", "v1", "v2", "v3", "v4", "after"]);
  });

  it("aborts after an election timeout when the transferee does not take over", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], options);
    net.campaign("n1");
    net.isolate("n3");
    net.core("n1").transferLeader("n3");
    for (let i = 0; i < 9; i++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.core("n1").status().transferee).toBe("n3");
    net.tickAll();
    net.stabilize();
    expect(net.core("n1").status()).toMatchObject({ role: "leader", transferee: null });
    expect(() => net.core("n1").propose(bytes("ok"))).not.toThrow();
  });

  it("a new transfer target replaces the old; self, learners and strangers are ignored", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], options, ["n4"]);
    net.campaign("n1");
    net.isolate("n2");
    net.isolate("n3");
    net.core("n1").transferLeader("n2");
    net.core("n1").transferLeader("n3");
    expect(net.core("n1").status().transferee).toBe("n3");
    net.core("n1").transferLeader("n4"); // a learner
    net.core("n1").transferLeader("n9"); // not a member
    expect(net.core("n1").status().transferee).toBe("n3");
    net.core("n1").transferLeader("n1"); // to itself: cancels the transfer
    expect(net.core("n1").status()).toMatchObject({ role: "leader", transferee: null });
  });

  it("followers refuse with NOT_LEADER and a hint", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], options);
    net.campaign("n1");
    expect(() => net.core("n2").transferLeader("n3")).toThrow(expect.objectContaining({ code: "NOT_LEADER", data: { leaderHint: "n1" } }));
    const { core } = lone("n1", ["n1", "n2"]);
    expect(() => core.propose(bytes("x"))).toThrow(expect.objectContaining({ code: "NOT_LEADER", data: { leaderHint: null } }));
  });
});
