/**
 * Goal: log replication keeps the Log Matching and Leader Completeness properties: a no-op opens
 * every term, the figure-8 commit rule, conflict detection with truncation only on a real conflict,
 * commit = min(leaderCommit, last new index), fast backtracking, and stale or reordered responses
 * ignored (RAFT-CHECKLIST items 1, 7, 8).
 * Method: follower cores fed hand-made "app" messages, and RaftNetworks over hand-built logs.
 */
import { describe, expect, it } from "vitest";
import type { Message } from "../../src/raft/index.ts";
import { RaftNetwork, bytes, drain, entriesOf, lone, logTerms, msg, storageWith } from "../support/raft-network.ts";

function app(fields: Partial<Message>): Message {
  return msg({ type: "app", from: "n2", to: "n1", term: 1, ...fields });
}

describe("raft replication: the leader", () => {
  it("appends an empty no-op at the start of its term", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    const noop = net.node("n1").applied[0]!;
    expect(noop).toMatchObject({ index: 1, term: 1, type: "normal" });
    expect(noop.data.length).toBe(0);
    net.campaign("n2");
    expect(net.node("n2").applied.map((e) => [e.index, e.term, e.data.length])).toEqual([
      [1, 1, 0],
      [2, 2, 0],
    ]);
  });

  it("never commits an entry of an earlier term by counting replicas (figure 8)", () => {
    const ids = ["n1", "n2", "n3"];
    const net = new RaftNetwork();
    // n1 holds (1@1, 2@2): entry 2 from a term-2 leadership it failed to replicate. n2 holds a
    // conflicting 2@3 that never left it. n3 holds only 1@1. Everyone knows term 3.
    net.addNode("n1", storageWith(ids, [1, 2], { term: 3, commit: 1 }));
    net.addNode("n2", storageWith(ids, [1, 3], { term: 3, commit: 1 }));
    net.addNode("n3", storageWith(ids, [1], { term: 3, commit: 1 }));
    net.isolate("n2");
    net.core("n1").campaign(); // term 4 with n3's vote; its no-op is 3@4
    net.dropIf = (m) => m.type === "app";
    net.stabilize();
    const n1 = net.core("n1");
    expect(n1.status()).toMatchObject({ role: "leader", term: 4, commit: 1 });
    // A heartbeat round: n3 answers, n1 probes it at index 2, n3 rejects (it lacks entry 2), and n1
    // probes at index 1: capture that probe.
    const captured: Message[] = [];
    net.dropIf = (m) => m.type === "app" && m.to === "n3" && m.index === 1 && captured.push(m) > 0;
    n1.tick();
    net.stabilize();
    net.dropIf = null;
    const probe = captured[captured.length - 1];
    expect(probe!.entries.map((e) => e.term)).toEqual([2, 4]);
    // n3 gets (and acknowledges) only entry 2 (term 2): it is now on a majority, yet must not commit...
    net.deliver({ ...probe!, entries: probe!.entries.slice(0, 1) });
    const [ack2] = net.take((m) => m.type === "appResp" && m.from === "n3");
    expect(ack2).toMatchObject({ index: 2, reject: false });
    net.deliver(ack2!);
    expect(n1.status().commit).toBe(1);
    // ...until an entry of the current term is on a majority too.
    net.deliver(probe!);
    const [ack3] = net.take((m) => m.type === "appResp" && m.from === "n3");
    net.deliver(ack3!);
    expect(n1.status().commit).toBe(3);
    // n2's conflicting entry is replaced when it hears from the leader.
    net.heal();
    net.stabilize();
    net.tickAll();
    net.stabilize();
    for (const id of ids) expect(logTerms(net.node(id).storage)).toEqual([1, 2, 4]);
  });

  it("sets match from the answered request, not from nextIndex", () => {
    const net = RaftNetwork.create(["n1", "n2"]);
    net.campaign("n1");
    const leader = net.core("n1");
    leader.propose(bytes("a"));
    net.processAll();
    leader.propose(bytes("b"));
    leader.propose(bytes("c"));
    net.processAll();
    const apps = net.take((m) => m.type === "app" && m.to === "n2");
    expect(apps.map((m) => [m.index, m.entries.length])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(leader.status().progress!["n2"]!.next).toBe(5);
    net.deliver(apps[0]!); // only the first request arrives
    const responses = net.take((m) => m.type === "appResp");
    expect(responses.map((m) => m.index)).toEqual([2]);
    net.deliver(responses[0]!);
    expect(leader.status().progress!["n2"]).toMatchObject({ match: 2, next: 5 });
    expect(leader.status().commit).toBe(2);
  });

  it("ignores stale and reordered responses", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    for (const v of ["a", "b", "c"]) net.core("n1").propose(bytes(v));
    net.stabilize();
    const leader = net.core("n1");
    const before = leader.status().progress!["n2"]!;
    expect(before).toMatchObject({ match: 4, next: 5, state: "replicate" });
    // A reordered success for an older request cannot lower match.
    leader.step(msg({ type: "appResp", from: "n2", to: "n1", term: 1, index: 2 }));
    // A rejection answering a request below match is stale: no backtracking.
    leader.step(msg({ type: "appResp", from: "n2", to: "n1", term: 1, index: 3, reject: true, rejectHint: 0 }));
    // A response from an older term is dropped whatever it says.
    leader.step(msg({ type: "appResp", from: "n2", to: "n1", term: 0, index: 99 }));
    expect(leader.status().progress!["n2"]).toEqual(before);
    expect(leader.status().commit).toBe(4);
  });

  it("backtracks over a divergent suffix in a few round trips (conflict term hints)", () => {
    const ids = ["n1", "n2", "n3"];
    const leaderLog = [...Array(5).fill(1), ...Array(95).fill(3)];
    const staleLog = [...Array(5).fill(1), ...Array(45).fill(2)];
    const net = new RaftNetwork();
    net.addNode("n1", storageWith(ids, leaderLog, { term: 3, commit: 5 }));
    net.addNode("n2", storageWith(ids, staleLog, { term: 3, commit: 5 }));
    net.addNode("n3", storageWith(ids, leaderLog, { term: 3, commit: 5 }));
    net.campaign("n1");
    net.tickAll();
    net.stabilize();
    const rejections = net.delivered.filter((m) => m.type === "appResp" && m.from === "n2" && m.reject);
    expect(rejections.length).toBeGreaterThan(0);
    expect(rejections.length).toBeLessThanOrEqual(2);
    expect(rejections[0]).toMatchObject({ rejectHint: 50, logTerm: 2 });
    expect(logTerms(net.node("n2").storage)).toEqual([...leaderLog, 4]);
  });

  it("a lagging follower catches up across many messages (messageBytesMax)", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { messageBytesMax: 10 });
    net.campaign("n1");
    net.isolate("n3");
    for (let i = 0; i < 50; i++) net.core("n1").propose(bytes(`value-${i}`)); // 7-8 bytes each
    net.stabilize();
    net.heal();
    net.tickAll();
    net.stabilize();
    net.tickAll();
    net.stabilize();
    expect(net.appliedData("n3")).toEqual(Array.from({ length: 50 }, (_, i) => `value-${i}`));
    const apps = net.delivered.filter((m) => m.type === "app");
    for (const m of apps) {
      const size = m.entries.reduce((n, e) => n + e.data.length, 0);
      expect(m.entries.length <= 1 || size <= 10).toBe(true);
    }
  });
});

describe("raft replication: the follower", () => {
  function follower() {
    const { core, storage } = lone("n1", ["n1", "n2", "n3"]);
    core.step(app({ entries: entriesOf([1, 1, 1]) }));
    const rd = drain(core, storage);
    expect(rd.messages).toMatchObject([{ type: "appResp", index: 3, reject: false }]);
    return { core, storage };
  }

  it("does not truncate on a stale, shorter append whose entries match", () => {
    const { core, storage } = follower();
    core.step(app({ entries: entriesOf([1]) }));
    const rd = drain(core, storage);
    expect(rd.entries).toEqual([]);
    // It acknowledges what the request covered (1), not its own last index (3).
    expect(rd.messages).toMatchObject([{ type: "appResp", index: 1, reject: false }]);
    expect(core.status().lastIndex).toBe(3);
    expect(logTerms(storage)).toEqual([1, 1, 1]);
  });

  it("truncates at the first real conflict and appends the rest", () => {
    const { core, storage } = follower();
    core.step(app({ term: 2, index: 1, logTerm: 1, entries: entriesOf([1, 2], 2) }));
    const rd = drain(core, storage);
    // Entry 2 matched and is kept; the Ready starts at the conflicting index 3.
    expect(rd.entries.map((e) => [e.index, e.term])).toEqual([[3, 2]]);
    expect(logTerms(storage)).toEqual([1, 1, 2]);
  });

  it("commits min(leaderCommit, index of the last new entry)", () => {
    const { core, storage } = follower();
    // The request covers entries up to 1 only; entries 2..3 here may not match the leader's.
    core.step(app({ index: 1, logTerm: 1, entries: [], commit: 3 }));
    expect(core.status().commit).toBe(1);
    core.step(app({ index: 2, logTerm: 1, entries: [], commit: 3 }));
    expect(core.status().commit).toBe(2);
    drain(core, storage);
  });

  it("rejects a request that does not match, with a conflict hint", () => {
    const { core, storage } = follower();
    core.step(app({ term: 3, index: 7, logTerm: 3, entries: entriesOf([3], 8) }));
    const rd = drain(core, storage);
    expect(rd.messages).toMatchObject([{ type: "appResp", index: 7, reject: true, rejectHint: 3, logTerm: 1 }]);
    expect(core.status().lastIndex).toBe(3);
  });

  it("answers a request below its commit index with the commit index", () => {
    const { core, storage } = follower();
    core.step(app({ index: 3, logTerm: 1, commit: 3 }));
    drain(core, storage);
    core.step(app({ index: 1, logTerm: 1, entries: entriesOf([1], 2) }));
    const rd = drain(core, storage);
    expect(rd.messages).toMatchObject([{ type: "appResp", index: 3, reject: false }]);
  });

  it("never overwrites committed entries, even when a (faulty) leader asks", () => {
    const { core, storage } = lone("n1", ["n1", "n2", "n3"]);
    core.step(app({ entries: entriesOf([1, 1, 1]), commit: 3 }));
    drain(core, storage);
    drain(core, storage);
    core.step(app({ term: 2, index: 1, logTerm: 1, entries: entriesOf([2, 2], 2) }));
    const rd = drain(core, storage);
    expect(rd.entries).toEqual([]);
    expect(rd.messages).toMatchObject([{ type: "appResp", index: 3, reject: false }]);
    expect(logTerms(storage)).toEqual([1, 1, 1]);
  });

  it("learns the commit index from heartbeats, never beyond its log", () => {
    const { core, storage } = follower();
    core.step(msg({ type: "heartbeat", from: "n2", to: "n1", term: 1, commit: 2 }));
    expect(core.status().commit).toBe(2);
    core.step(msg({ type: "heartbeat", from: "n2", to: "n1", term: 1, commit: 9 }));
    expect(core.status().commit).toBe(2);
    const rd = drain(core, storage);
    expect(rd.messages.map((m) => m.type)).toEqual(["heartbeatResp", "heartbeatResp"]);
  });
});
