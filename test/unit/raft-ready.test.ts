/**
 * Goal: the Ready/advance cycle itself: nothing to do means hasReady() is false and ready() is the
 * shared empty Ready; soft and hard state appear only when they change; mustSync only when the
 * term, vote, entries or a snapshot must be fsynced; output produced between ready() and advance()
 * (e.g. while the application applies a conf change) lands in the next Ready.
 * Method: single cores driven by hand.
 */
import { describe, expect, it } from "vitest";
import { RaftNetwork, bytes, drain, entriesOf, lone, msg } from "../support/raft-network.ts";

describe("raft ready", () => {
  it("an idle core has nothing ready, and ready() returns the shared empty Ready", () => {
    const { core } = lone("n1", ["n1", "n2", "n3"]);
    expect(core.hasReady()).toBe(false);
    const a = core.ready();
    const b = core.ready();
    expect(a).toBe(b);
    expect(a).toMatchObject({ softState: null, hardState: null, entries: [], committedEntries: [], messages: [], mustSync: false });
    core.advance(a);
    expect(core.hasReady()).toBe(false);
  });

  it("reports soft state and hard state only when they change", () => {
    const { core, storage } = lone("n1", ["n1", "n2", "n3"]);
    core.campaign();
    let rd = drain(core, storage);
    expect(rd.softState).toEqual({ leader: null, role: "candidate" });
    expect(rd.hardState).toEqual({ term: 1, vote: "n1", commit: 0 });
    core.step(msg({ type: "voteResp", from: "n2", to: "n1", term: 1 }));
    rd = drain(core, storage);
    expect(rd.softState).toEqual({ leader: "n1", role: "leader" });
    expect(rd.hardState).toBe(null);
    expect(rd.entries.length).toBe(1);
    expect(rd.mustSync).toBe(true);
    core.tick();
    rd = drain(core, storage);
    expect(rd.softState).toBe(null);
    expect(rd.mustSync).toBe(false);
    expect(rd.messagesBeforePersist.map((m) => m.type)).toEqual(["heartbeat", "heartbeat"]);
  });

  it("proposals between two ready() calls go out as one append per follower", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    for (let i = 0; i < 64; i++) net.core("n1").propose(bytes(`v${i}`));
    const rd = net.core("n1").ready();
    expect(rd.entries.length).toBe(64);
    expect(rd.messagesBeforePersist.map((m) => [m.to, m.entries.length])).toEqual([
      ["n2", 64],
      ["n3", 64],
    ]);
  });

  it("output produced between ready() and advance() comes in the next Ready", () => {
    const { core, storage } = lone("n1", ["n1", "n2", "n3"]);
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 1, entries: entriesOf([1, 1]), commit: 0 }));
    const first = core.ready();
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 1, index: 2, logTerm: 1, entries: entriesOf([1], 3), commit: 2 }));
    expect(core.hasReady()).toBe(true);
    storage.append(first.entries);
    storage.setHardState(first.hardState!);
    core.advance(first);
    const second = core.ready();
    expect(second.entries.map((e) => e.index)).toEqual([3]);
    expect(second.messages).toMatchObject([{ type: "appResp", index: 3 }]);
    expect(second.hardState).toMatchObject({ commit: 2 });
    // Entries 1 and 2 were durable before this Ready: they may be applied now.
    expect(second.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    storage.append(second.entries);
    core.advance(second);
    expect(core.status().applied).toBe(2);
  });

  it("never hands out a committed entry twice", () => {
    const net = RaftNetwork.create(["n1"]);
    net.campaign("n1");
    for (let i = 0; i < 100; i++) {
      net.core("n1").propose(bytes(`v${i}`));
      if (i % 7 === 0) net.processAll();
    }
    net.processAll();
    const indexes = net.node("n1").applied.map((e) => e.index);
    expect(indexes).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
  });
});
