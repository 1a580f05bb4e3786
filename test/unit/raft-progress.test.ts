/**
 * Goal: flow control toward each follower: probe / replicate / snapshot states, the bounded
 * inflight window (messages and bytes), the message size limit, the cap on uncommitted bytes, and
 * recovery when every append in the window was lost (RAFT-CHECKLIST item 15).
 * Method: Progress and Inflights directly, then RaftNetworks with responses dropped.
 */
import { describe, expect, it } from "vitest";
import { CairnError } from "../../src/shared/errors.ts";
import { Inflights } from "../../src/raft/inflights.ts";
import { Progress } from "../../src/raft/progress.ts";
import { RaftNetwork, bytes } from "../support/raft-network.ts";

describe("raft progress: Inflights", () => {
  it("is full at sizeMax messages, frees up to an index, and wraps around", () => {
    const inflights = new Inflights(3, 0);
    for (let round = 0; round < 5; round++) {
      const base = round * 10;
      inflights.add(base + 1, 1);
      inflights.add(base + 2, 1);
      expect(inflights.full()).toBe(false);
      inflights.add(base + 3, 1);
      expect(inflights.full()).toBe(true);
      inflights.freeLE(base + 1);
      expect(inflights.count).toBe(2);
      expect(inflights.full()).toBe(false);
      inflights.freeLE(base + 5);
      expect(inflights.count).toBe(0);
      expect(inflights.bytes).toBe(0);
    }
  });

  it("is full once the bytes in flight reach bytesMax", () => {
    const inflights = new Inflights(100, 1000);
    inflights.add(1, 600);
    expect(inflights.full()).toBe(false);
    inflights.add(2, 600); // one message may overshoot
    expect(inflights.full()).toBe(true);
    inflights.freeLE(1);
    expect(inflights.bytes).toBe(600);
    expect(inflights.full()).toBe(false);
    expect(() => {
      inflights.add(3, 500);
      inflights.add(4, 1);
    }).toThrow(/full/);
  });
});

describe("raft progress: state machine", () => {
  it("probe sends one message then pauses; replicate streams within the window", () => {
    const pr = new Progress(5, 2, 0, false);
    expect(pr.state).toBe("probe");
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(3, 30);
    expect(pr.isPaused()).toBe(true);
    expect(pr.next).toBe(5); // probes do not advance next
    expect(pr.maybeUpdate(7)).toBe(true);
    pr.becomeReplicate();
    expect(pr).toMatchObject({ match: 7, next: 8 });
    pr.sentEntries(2, 20);
    expect(pr.next).toBe(10);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(1, 10);
    expect(pr.isPaused()).toBe(true);
    pr.inflights.freeLE(9);
    expect(pr.maybeUpdate(9)).toBe(true);
    expect(pr.isPaused()).toBe(false);
  });

  it("ignores stale rejections and backs off to the hint otherwise", () => {
    const pr = new Progress(11, 8, 0, false);
    pr.maybeUpdate(5);
    pr.next = 11;
    // Probe: only the answer to the latest probe (at next - 1 = 10) counts.
    expect(pr.maybeDecrTo(9, 0)).toBe(false);
    expect(pr.maybeDecrTo(10, 7)).toBe(true);
    expect(pr.next).toBe(8);
    // The hint never takes next below match + 1.
    pr.next = 11;
    expect(pr.maybeDecrTo(10, 2)).toBe(true);
    expect(pr.next).toBe(6);
    // Replicate: rejections at or below match are stale.
    pr.becomeReplicate();
    expect(pr.maybeDecrTo(5, 0)).toBe(false);
    expect(pr.maybeDecrTo(6, 0)).toBe(true);
    expect(pr.next).toBe(6);
  });

  it("snapshot state pauses everything until the snapshot is acknowledged or reported", () => {
    const pr = new Progress(3, 8, 0, false);
    pr.becomeSnapshot(100);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect(pr.next).toBe(101);
  });
});

describe("raft progress: in a group", () => {
  it("bounds the messages in flight to a silent follower", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { inflightMessagesMax: 4 });
    net.campaign("n1");
    // n2's acknowledgements are lost from now on; n3 keeps the group committing.
    net.dropIf = (m) => m.type === "appResp" && m.from === "n2";
    const start = net.delivered.length;
    for (let i = 0; i < 20; i++) {
      net.core("n1").propose(bytes(`v${i}`));
      net.stabilize();
    }
    const apps = net.delivered.slice(start).filter((m) => m.type === "app" && m.to === "n2" && m.entries.length > 0);
    expect(apps.length).toBe(4);
    expect(net.core("n1").status().commit).toBe(21);
    // Recovery: a heartbeat response lets one (empty) append through; its answer resets the window.
    net.dropIf = null;
    net.tickAll();
    net.stabilize();
    net.tickAll();
    net.stabilize();
    expect(net.core("n1").status().progress!["n2"]).toMatchObject({ match: 21, state: "replicate" });
    expect(net.appliedData("n2").length).toBe(20);
  });

  it("bounds the bytes in flight", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { inflightBytesMax: 100 });
    net.campaign("n1");
    net.dropIf = (m) => m.type === "appResp" && m.from === "n2";
    const start = net.delivered.length;
    for (let i = 0; i < 20; i++) {
      net.core("n1").propose(new Uint8Array(30));
      net.stabilize();
    }
    const apps = net.delivered.slice(start).filter((m) => m.type === "app" && m.to === "n2" && m.entries.length > 0);
    const sent = apps.reduce((n, m) => n + m.entries.length, 0);
    expect(sent).toBe(4); // 4 x 30 bytes: full once >= 100
  });

  it("recovers when every append in a full window was lost", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { inflightMessagesMax: 2 });
    net.campaign("n1");
    net.dropIf = (m) => m.type === "app" && m.to === "n2";
    for (let i = 0; i < 10; i++) {
      net.core("n1").propose(bytes(`v${i}`));
      net.stabilize();
    }
    net.dropIf = null;
    net.tickUntil(() => net.appliedData("n2").length === 10, 20);
    expect(net.appliedData("n2")).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`));
  });

  it("a probing follower gets one append until it answers or a heartbeat round passes", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.core("n1").reportUnreachable("n2");
    expect(net.core("n1").status().progress!["n2"]!.state).toBe("probe");
    const appsToN2 = () => net.delivered.filter((m) => m.to === "n2" && m.type === "app").length;
    const before = appsToN2();
    for (let i = 0; i < 5; i++) {
      net.core("n1").propose(bytes(`v${i}`));
      net.processAll();
    }
    const toN2 = net.queue.filter((m) => m.type === "app" && m.to === "n2");
    expect(toN2.map((m) => m.entries.length)).toEqual([1]);
    net.queue = net.queue.filter((m) => m.to !== "n2"); // the probe is lost
    net.stabilize();
    expect(appsToN2()).toBe(before); // nothing more went to n2 while paused
    // A heartbeat round un-pauses the probe; its answer moves n2 back to replicate.
    net.tickAll();
    net.stabilize();
    expect(net.core("n1").status().progress!["n2"]!.state).toBe("replicate");
    net.tickAll();
    net.stabilize();
    expect(net.appliedData("n2").length).toBe(5);
  });

  it("caps uncommitted bytes without quorum, always admitting one entry, freeing on commit", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"], { uncommittedBytesMax: 100 });
    net.campaign("n1");
    net.isolate("n1");
    const leader = net.core("n1");
    leader.propose(new Uint8Array(500)); // larger than the cap, but nothing is uncommitted
    net.processAll();
    expect(() => leader.propose(new Uint8Array(1))).toThrow(CairnError);
    try {
      leader.propose(new Uint8Array(1));
    } catch (err) {
      expect((err as CairnError).code).toBe("PROPOSAL_DROPPED");
    }
    leader.propose(new Uint8Array(0)); // empty entries are always admitted
    net.heal();
    net.tickAll();
    net.stabilize();
    net.tickAll();
    net.stabilize();
    expect(leader.status().commit).toBe(3);
    for (let i = 0; i < 3; i++) leader.propose(new Uint8Array(30));
    net.processAll();
    expect(() => leader.propose(new Uint8Array(30))).toThrow(expect.objectContaining({ code: "PROPOSAL_DROPPED" }));
  });
});
