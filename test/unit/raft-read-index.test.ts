/**
 * Goal: ReadIndex reads are linearizable (RAFT-CHECKLIST item 4): the leader first commits an entry
 * of its term, records the commit index, confirms leadership with a heartbeat quorum, and only then
 * reports the read state; a leader isolated in a minority never does; followers forward.
 * Method: RaftNetworks with cut links; read states collected from Ready.readStates.
 */
import { describe, expect, it } from "vitest";
import { RaftNetwork, bytes, lone, text } from "../support/raft-network.ts";

const ctx = (s: string) => bytes(s);

describe("raft read index", () => {
  it("the leader answers after a heartbeat quorum, at its commit index", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.core("n1").propose(bytes("x"));
    net.stabilize();
    net.core("n1").readIndex(ctx("r1"));
    net.processAll();
    expect(net.node("n1").readStates).toEqual([]);
    const heartbeats = net.queue.filter((m) => m.type === "heartbeat");
    expect(heartbeats.map((m) => m.to)).toEqual(["n2", "n3"]);
    expect(heartbeats.every((m) => m.context !== undefined)).toBe(true);
    net.stabilize();
    expect(net.node("n1").readStates).toEqual([{ index: 2, context: ctx("r1") }]);
  });

  it("waits for the first commit of the leader's term", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.core("n1").campaign();
    net.dropIf = (m) => m.type === "app"; // the no-op does not replicate yet
    net.stabilize();
    expect(net.core("n1").status()).toMatchObject({ role: "leader", commit: 0 });
    net.core("n1").readIndex(ctx("early"));
    net.stabilize();
    expect(net.node("n1").readStates).toEqual([]);
    net.dropIf = null;
    net.tickAll();
    net.stabilize();
    net.tickAll();
    net.stabilize();
    expect(net.node("n1").readStates).toEqual([{ index: 1, context: ctx("early") }]);
  });

  it("a follower forwards to the leader and gets the read state back", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.core("n1").propose(bytes("x"));
    net.stabilize();
    net.core("n2").readIndex(ctx("from-n2"));
    net.stabilize();
    expect(net.node("n2").readStates).toEqual([{ index: 2, context: ctx("from-n2") }]);
    expect(net.node("n1").readStates).toEqual([]);
  });

  it("throws NOT_LEADER when no leader is known", () => {
    const { core } = lone("n1", ["n1", "n2", "n3"]);
    expect(() => core.readIndex(ctx("x"))).toThrow(expect.objectContaining({ code: "NOT_LEADER", data: { leaderHint: null } }));
  });

  it("a leader isolated in a minority never produces a read state", () => {
    for (const checkQuorum of [false, true]) {
      const net = RaftNetwork.create(["n1", "n2", "n3", "n4", "n5"], { checkQuorum, preVote: checkQuorum });
      net.campaign("n1");
      net.partition(["n1", "n2"], ["n3", "n4", "n5"]);
      net.core("n1").readIndex(ctx("stale?"));
      for (let i = 0; i < 100; i++) {
        net.tickAll();
        net.stabilize();
      }
      expect(net.node("n1").readStates).toEqual([]);
      expect(net.node("n2").readStates).toEqual([]);
      // The majority side elected a new leader and committed a write the old one never saw.
      const leader = net.leaders().find((id) => ["n3", "n4", "n5"].includes(id))!;
      net.core(leader).propose(bytes("new"));
      net.stabilize();
      net.core(leader).readIndex(ctx("fresh"));
      net.stabilize();
      expect(net.node(leader).readStates.map((r) => text(r.context))).toEqual(["fresh"]);
    }
  });

  it("a single voter answers at once (after its no-op commits)", () => {
    const net = RaftNetwork.create(["n1"]);
    net.campaign("n1");
    net.core("n1").readIndex(ctx("solo"));
    net.processAll();
    expect(net.node("n1").readStates).toEqual([{ index: 1, context: ctx("solo") }]);
  });

  it("releases earlier pending reads with a later one's quorum, in order", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.dropIf = (m) => m.type === "heartbeatResp";
    net.core("n1").readIndex(ctx("a"));
    net.core("n1").readIndex(ctx("a")); // contexts need not be unique
    net.core("n1").readIndex(ctx("b"));
    net.stabilize();
    expect(net.node("n1").readStates).toEqual([]);
    net.dropIf = null;
    net.core("n1").readIndex(ctx("c"));
    net.stabilize();
    expect(net.node("n1").readStates.map((r) => text(r.context))).toEqual(["a", "a", "b", "c"]);
  });

  it("a delayed ack from an earlier round never confirms a later read", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    const acks: import("../../src/raft/index.ts").Message[] = [];
    net.dropIf = (m) => m.type === "heartbeatResp" && acks.push(m) === 0;
    net.core("n1").readIndex(ctx("x"));
    net.stabilize();
    net.dropIf = null;
    for (const ack of acks) net.deliver(ack); // confirms the first read
    expect(net.node("n1").readStates.map((r) => text(r.context))).toEqual(["x"]);
    // The same context again, but its heartbeats are lost: the old acks, replayed, prove nothing.
    net.dropIf = (m) => m.type === "heartbeat";
    net.core("n1").readIndex(ctx("x"));
    net.stabilize();
    for (const ack of acks) net.deliver(ack);
    expect(net.node("n1").readStates.length).toBe(1);
  });

  it("drops pending reads when leadership is lost", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.isolate("n1");
    net.core("n1").readIndex(ctx("lost"));
    net.stabilize();
    net.heal();
    net.campaign("n2");
    net.tickAll();
    net.stabilize();
    expect(net.node("n1").readStates).toEqual([]);
    expect(net.core("n1").status().role).toBe("follower");
  });
});
