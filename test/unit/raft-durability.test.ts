/**
 * Goal: the Ready contract never reports anything committed before it is durable on a quorum, this
 * node included: the leader sends its appends in parallel with its own write but counts itself
 * only after advance(); followers answer only after persisting; a single-node group never commits
 * an entry in the Ready that asks to persist it; stableTo checks (index, term) (RAFT-CHECKLIST
 * items 2, 3, 7). Method: cores driven Ready by Ready, some messages delivered before advance().
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage, RaftCore } from "../../src/raft/index.ts";
import { RaftNetwork, bytes, drain, entriesOf, lone, msg, testConfig } from "../support/raft-network.ts";

describe("raft durability: single node", () => {
  it("never reports an entry committed in the Ready that asks to persist it", () => {
    const { core, storage } = lone("n1", ["n1"]);
    core.campaign();
    let rd = core.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([1]); // the no-op
    expect(rd.hardState).toMatchObject({ term: 1, vote: "n1", commit: 0 });
    expect(rd.committedEntries).toEqual([]);
    expect(rd.mustSync).toBe(true);
    storage.append(rd.entries);
    storage.setHardState(rd.hardState!);
    core.advance(rd);
    rd = drain(core, storage);
    expect(rd.hardState!.commit).toBe(1);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1]);
    expect(rd.entries).toEqual([]);

    core.propose(bytes("x"));
    rd = core.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.committedEntries).toEqual([]);
    expect(rd.hardState).toBe(null);
    expect(core.status().commit).toBe(1);
    storage.append(rd.entries);
    core.advance(rd);
    expect(core.status().commit).toBe(2);
    rd = drain(core, storage);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2]);
    expect(rd.hardState!.commit).toBe(2);
    expect(rd.mustSync).toBe(false); // a commit-index change alone need not be fsynced
  });

  it("a crash before advance() loses the entry but never an acknowledged one", () => {
    const { core, storage } = lone("n1", ["n1"]);
    core.campaign();
    drain(core, storage);
    drain(core, storage);
    core.propose(bytes("lost"));
    core.ready(); // handed out, never persisted: the process dies here
    const restarted = new RaftCore(testConfig("n1", { applied: 1 }), storage);
    expect(restarted.status()).toMatchObject({ term: 1, commit: 1, lastIndex: 1 });
  });
});

describe("raft durability: leader and followers", () => {
  it("the leader sends appends before persisting but counts itself only after advance()", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    const leader = net.node("n1");
    leader.core.propose(bytes("x"));
    const rd = leader.core.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.messagesBeforePersist.map((m) => [m.type, m.to])).toEqual([
      ["app", "n2"],
      ["app", "n3"],
    ]);
    expect(rd.messages).toEqual([]);
    // n2 persists and acknowledges while n1's own write is still in flight.
    net.deliver(rd.messagesBeforePersist[0]!);
    const [ack] = net.take((m) => m.type === "appResp");
    expect(ack).toMatchObject({ from: "n2", index: 2 });
    leader.core.step(ack!);
    // One durable copy (n2) of three is not a quorum: n1's copy is not durable yet.
    expect(leader.core.status().commit).toBe(1);
    leader.storage.append(rd.entries);
    leader.core.advance(rd);
    expect(leader.core.status().commit).toBe(2);
  });

  it("a quorum of followers commits even while the leader's own write is slow", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    const leader = net.node("n1");
    leader.core.propose(bytes("x"));
    const rd = leader.core.ready();
    for (const m of rd.messagesBeforePersist) net.deliver(m);
    for (const ack of net.take((m) => m.type === "appResp")) leader.core.step(ack);
    expect(leader.core.status().commit).toBe(2);
    leader.storage.append(rd.entries);
    leader.core.advance(rd);
    // Committed entries are handed out only once durable locally.
    const next = leader.core.ready();
    expect(next.committedEntries.map((e) => e.index)).toEqual([2]);
  });

  it("followers answer only after persisting (messages, never messagesBeforePersist)", () => {
    const { core } = lone("n1", ["n1", "n2", "n3"]);
    core.step(msg({ type: "vote", from: "n2", to: "n1", term: 1 }));
    core.step(msg({ type: "app", from: "n3", to: "n1", term: 2, entries: entriesOf([2]) }));
    core.step(msg({ type: "heartbeat", from: "n3", to: "n1", term: 2 }));
    const rd = core.ready();
    expect(rd.messagesBeforePersist).toEqual([]);
    expect(rd.messages.map((m) => m.type)).toEqual(["voteResp", "appResp", "heartbeatResp"]);
    expect(rd.mustSync).toBe(true);
  });

  it("a follower applies only entries durable locally, never those of the same Ready", () => {
    const { core, storage } = lone("n1", ["n1", "n2", "n3"]);
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 1, entries: entriesOf([1, 1]), commit: 2 }));
    let rd = core.ready();
    expect(rd.entries.length).toBe(2);
    expect(rd.hardState!.commit).toBe(2);
    expect(rd.committedEntries).toEqual([]);
    storage.append(rd.entries);
    storage.setHardState(rd.hardState!);
    core.advance(rd);
    rd = drain(core, storage);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    expect(core.hasReady()).toBe(false);
  });

  it("a new leader's term is durable before its appends may leave early", () => {
    // One voter and a learner: the election is won without any message round trip, so the
    // term-1 appends must wait for the hard state of term 1 to be persisted.
    const storage = new MemoryStorage({ confState: { voters: ["n1"], learners: ["n2"] } });
    const core = new RaftCore(testConfig("n1"), storage);
    core.campaign();
    let rd = core.ready();
    expect(rd.hardState).toMatchObject({ term: 1, vote: "n1" });
    expect(rd.messagesBeforePersist).toEqual([]);
    expect(rd.messages.map((m) => [m.type, m.to])).toEqual([["app", "n2"]]);
    storage.append(rd.entries);
    storage.setHardState(rd.hardState!);
    core.advance(rd);
    core.step(msg({ type: "appResp", from: "n2", to: "n1", term: 1, index: 1 }));
    core.propose(bytes("x"));
    rd = core.ready();
    expect(rd.messagesBeforePersist.map((m) => [m.type, m.to, m.entries.length])).toEqual([["app", "n2", 1]]);
  });
});

describe("raft durability: stableTo checks index and term (ABA)", () => {
  it("does not acknowledge entries replaced between ready() and advance()", () => {
    const { core, storage } = lone("n1", ["n1", "n2", "n3"]);
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 1, entries: entriesOf([1, 1]) }));
    const first = core.ready(); // hands out 1@1, 2@1
    // Before the write completes, a new leader replaces entry 2.
    core.step(msg({ type: "app", from: "n3", to: "n1", term: 2, index: 1, logTerm: 1, entries: entriesOf([2], 2) }));
    storage.append(first.entries);
    core.advance(first);
    // 2@2 is still unstable: it must come in the next Ready, not be taken as already durable.
    const second = core.ready();
    expect(second.entries.map((e) => [e.index, e.term])).toEqual([[2, 2]]);
    storage.append(second.entries);
    if (second.hardState !== null) storage.setHardState(second.hardState);
    core.advance(second);
    expect(storage.term(2)).toBe(2);
    expect(core.hasReady()).toBe(false);
  });

  it("a leader does not count an acknowledged write whose entry was replaced", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    const n1 = net.node("n1");
    n1.core.propose(bytes("x")); // 2@1
    const rd = n1.core.ready();
    // Before n1's write completes, n2 wins term 2 and overwrites index 2 on n1.
    n1.core.step(msg({ type: "app", from: "n2", to: "n1", term: 2, index: 1, logTerm: 1, entries: [{ term: 2, index: 2, type: "normal", data: new Uint8Array(0) }], commit: 1 }));
    n1.storage.append(rd.entries);
    n1.core.advance(rd);
    expect(n1.core.status()).toMatchObject({ role: "follower", term: 2, commit: 1 });
    const next = n1.core.ready();
    expect(next.entries.map((e) => [e.index, e.term])).toEqual([[2, 2]]);
  });
});

describe("raft durability: restart", () => {
  it("recovers term, vote, commit and log from storage and re-applies after config.applied", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    for (const v of ["a", "b", "c"]) net.core("n1").propose(bytes(v));
    net.stabilize();
    net.tickAll();
    net.stabilize();
    const storage = net.node("n2").storage;
    const core = new RaftCore(testConfig("n2", { applied: 2 }), storage);
    expect(core.status()).toMatchObject({ term: 1, vote: "n1", commit: 4, lastIndex: 4, applied: 2, role: "follower" });
    const rd = drain(core, storage);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([3, 4]);
  });

  it("refuses to start when the hard state commits past the log (lost or corrupt log)", () => {
    const storage = new MemoryStorage({ confState: { voters: ["n1"], learners: [] }, hardState: { term: 3, vote: null, commit: 5 } });
    expect(() => new RaftCore(testConfig("n1"), storage)).toThrow(expect.objectContaining({ code: "CORRUPT_DATA" }));
    const ok = new MemoryStorage({ confState: { voters: ["n1"], learners: [] } });
    expect(() => new RaftCore(testConfig("n1", { applied: 3 }), ok)).toThrow(expect.objectContaining({ code: "CORRUPT_DATA" }));
  });
});
