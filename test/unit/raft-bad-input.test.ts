/**
 * Goal: bad peer input never throws and never corrupts state: malformed messages, misaddressed or
 * self-addressed ones, messages from unknown nodes, terms from the future carrying stale logs, and
 * random well-formed garbage are dropped or answered without breaking an invariant.
 * Method: hand-made messages, then fast-check fuzzing of a live 3-node group.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Message, MessageType } from "../../src/raft/index.ts";
import { RaftNetwork, bytes, entriesOf, lone, msg } from "../support/raft-network.ts";

function leaderGroup() {
  const net = RaftNetwork.create(["n1", "n2", "n3"]);
  net.campaign("n1");
  for (const v of ["a", "b"]) net.core("n1").propose(bytes(v));
  net.stabilize();
  net.tickAll();
  net.stabilize();
  return net;
}

describe("raft bad input", () => {
  it("drops malformed messages without a trace", () => {
    const lines: string[] = [];
    const { core } = lone("n1", ["n1", "n2", "n3"], { logger: (l) => lines.push(l) });
    const base = msg({ type: "app", from: "n2", to: "n1", term: 1 });
    const bad: unknown[] = [
      null,
      42,
      "app",
      {},
      { ...base, type: "bogus" },
      { ...base, from: "" },
      { ...base, to: 7 },
      { ...base, term: -1 },
      { ...base, term: 1.5 },
      { ...base, index: Number.NaN },
      { ...base, commit: "3" },
      { ...base, reject: 0 },
      { ...base, entries: null },
      { ...base, entries: [null] },
      { ...base, entries: entriesOf([1], 5) }, // not contiguous after index 0
      { ...base, entries: entriesOf([1, 0]) }, // terms decrease
      { ...base, entries: entriesOf([2]) }, // entry term above the message term
      { ...base, entries: [{ term: 1, index: 1, type: "weird", data: new Uint8Array(0) }] },
      { ...base, entries: [{ term: 1, index: 1, type: "normal", data: "x" }] },
      { ...base, type: "heartbeat", entries: entriesOf([1]) },
      { ...base, type: "snap" },
      { ...base, type: "snap", snapshot: { metadata: { index: 1, term: 1 }, data: new Uint8Array(0) } },
      { ...base, type: "snap", snapshot: { metadata: { index: 1, term: 1, confState: { voters: [1], learners: [] } }, data: new Uint8Array(0) } },
      { ...base, context: "ctx" },
    ];
    const before = core.status();
    for (const m of bad) expect(() => core.step(m as Message)).not.toThrow();
    expect(core.status()).toEqual(before);
    expect(core.hasReady()).toBe(false);
    expect(lines.filter((l) => l.includes("malformed")).length).toBe(bad.length);
  });

  it("drops misaddressed, self-sent and unknown-sender messages", () => {
    const net = leaderGroup();
    const leader = net.core("n1");
    const before = leader.status();
    leader.step(msg({ type: "appResp", from: "n2", to: "n3", term: 1, index: 3 }));
    leader.step(msg({ type: "appResp", from: "n1", to: "n1", term: 1, index: 3 }));
    leader.step(msg({ type: "appResp", from: "n9", to: "n1", term: 1, index: 3 }));
    leader.step(msg({ type: "heartbeatResp", from: "n9", to: "n1", term: 1 }));
    leader.step(msg({ type: "readIndex", from: "n9", to: "n1", term: 1, context: bytes("x") }));
    expect(leader.status()).toEqual(before);
    expect(leader.hasReady()).toBe(false);
  });

  it("a vote request from the future with a stale log moves the term but wins nothing", () => {
    const net = leaderGroup();
    const follower = net.core("n2");
    const last = follower.status().lastIndex;
    follower.step(msg({ type: "vote", from: "n3", to: "n2", term: 50, index: 1, logTerm: 1 }));
    const rd = follower.ready();
    expect(rd.messages).toMatchObject([{ type: "voteResp", to: "n3", term: 50, reject: true }]);
    expect(follower.status()).toMatchObject({ term: 50, vote: null, lastIndex: last, commit: 3 });
    // The rest of the group recovers at a higher term with every committed entry intact.
    net.node("n2").storage.setHardState(rd.hardState!);
    follower.advance(rd);
    net.tickUntil(() => net.leaders().length === 1 && net.core(net.leader()).status().term > 50, 300);
    net.core(net.leader()).propose(bytes("c"));
    net.stabilize();
    net.tickAll();
    net.stabilize();
    for (const id of ["n1", "n2", "n3"]) expect(net.appliedData(id)).toEqual(["a", "b", "c"]);
  });

  it("ignores heartbeat commits beyond its log and appResp indexes beyond the leader's log", () => {
    const net = leaderGroup();
    const follower = net.core("n2");
    follower.step(msg({ type: "heartbeat", from: "n1", to: "n2", term: 1, commit: 1000 }));
    expect(follower.status().commit).toBe(3);
    const leader = net.core("n1");
    leader.step(msg({ type: "appResp", from: "n2", to: "n1", term: 1, index: 1000 }));
    expect(leader.status().progress!["n2"]!.match).toBe(3);
    expect(leader.status().commit).toBe(3);
  });

  it("survives fuzzing with random well-formed messages and keeps its invariants", () => {
    const types: MessageType[] = ["app", "appResp", "heartbeat", "heartbeatResp", "vote", "voteResp", "preVote", "preVoteResp", "snap", "timeoutNow", "readIndex", "readIndexResp"];
    const small = fc.integer({ min: 0, max: 12 });
    const arbMessage = fc.record({
      type: fc.constantFrom(...types),
      from: fc.constantFrom("n1", "n2", "n3", "n9"),
      to: fc.constantFrom("n1", "n2", "n3"),
      term: small,
      logTerm: small,
      index: small,
      commit: small,
      reject: fc.boolean(),
      rejectHint: small,
      nEntries: fc.integer({ min: 0, max: 3 }),
      snapIndex: small,
      withContext: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(arbMessage, { minLength: 1, maxLength: 40 }), fc.array(fc.nat(3), { maxLength: 40 }), (raw, actions) => {
        const net = leaderGroup();
        raw.forEach((r, i) => {
          const entries = r.type === "app" ? entriesOf(Array(r.nEntries).fill(Math.max(1, Math.min(r.term, r.logTerm))), r.index + 1) : [];
          const valid = entries.every((e) => e.term >= r.logTerm && e.term <= r.term);
          const m: Message = {
            ...msg({ type: r.type, from: r.from, to: r.to }),
            term: r.term,
            logTerm: r.logTerm,
            index: r.index,
            commit: r.commit,
            reject: r.reject,
            rejectHint: r.rejectHint,
            entries: valid ? entries : [],
            ...(r.type === "snap" ? { snapshot: { metadata: { index: r.snapIndex, term: r.logTerm, confState: { voters: ["n1", "n2", "n3"], learners: [] } }, data: bytes("[]") } } : {}),
            ...(r.withContext ? { context: bytes(`c${i}`) } : {}),
          };
          net.node(m.to).core.step(m);
          net.process(m.to);
          const action = actions[i] ?? 0;
          if (action === 1) net.tickAll();
          if (action === 2) net.pump(50);
          for (const node of net.nodes.values()) {
            const s = node.core.status();
            expect(s.commit).toBeLessThanOrEqual(s.lastIndex);
            expect(s.applied).toBeLessThanOrEqual(s.commit);
          }
        });
        net.pump(500);
      }),
      { numRuns: 200 },
    );
  });
});
