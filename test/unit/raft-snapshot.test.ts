/**
 * Goal: log compaction and snapshots (RAFT-CHECKLIST item 13): a follower that needs compacted
 * entries gets the leader's snapshot (last index, term and membership); a snapshot older than the
 * commit index is ignored; one the log already matches only advances the commit index and keeps the
 * entries after it; otherwise it replaces the log. Also reportSnapshot and restart from a snapshot.
 * Method: RaftNetworks whose nodes compact through MemoryStorage.createSnapshot/compact, and a
 * follower core fed "snap" messages by hand.
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage, RaftCore, type Snapshot } from "../../src/raft/index.ts";
import { RaftNetwork, bytes, drain, entriesOf, lone, logTerms, msg, testConfig } from "../support/raft-network.ts";

function snap(index: number, term: number, voters = ["n1", "n2", "n3"]): Snapshot {
  return { metadata: { index, term, confState: { voters, learners: [] } }, data: bytes(JSON.stringify(["s"])) };
}

describe("raft snapshot: send and install", () => {
  it("a follower that needs compacted entries gets the snapshot, then the entries after it", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.recordReadies = true;
    net.campaign("n1");
    net.isolate("n3");
    for (let i = 0; i < 10; i++) net.core("n1").propose(bytes(`v${i}`));
    net.stabilize();
    net.compact("n1");
    expect(net.node("n1").storage.firstIndex()).toBe(12);
    net.heal();
    net.core("n1").propose(bytes("after"));
    net.tickAll();
    net.stabilize();
    const snaps = net.delivered.filter((m) => m.type === "snap");
    expect(snaps.length).toBe(1);
    // Snapshots go out with Ready.messages (where drivers look for them to call reportSnapshot).
    expect(net.node("n1").readies.some((rd) => rd.messagesBeforePersist.some((m) => m.type === "snap"))).toBe(false);
    expect(net.node("n1").readies.some((rd) => rd.messages.some((m) => m.type === "snap"))).toBe(true);
    expect(snaps[0]!.snapshot!.metadata).toEqual({ index: 11, term: 1, confState: { voters: ["n1", "n2", "n3"], learners: [] } });
    expect(net.node("n3").restoredFrom).toBe(11);
    net.tickAll();
    net.stabilize();
    expect(net.appliedData("n3")).toEqual([...Array.from({ length: 10 }, (_, i) => `v${i}`), "after"]);
    expect(net.core("n1").status().progress!["n3"]).toMatchObject({ state: "replicate", match: 12 });
    expect(net.node("n3").storage.firstIndex()).toBe(12);
  });

  it("keeps replicating to the others while one follower installs a snapshot", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.isolate("n3");
    for (let i = 0; i < 5; i++) net.core("n1").propose(bytes(`a${i}`));
    net.stabilize();
    net.compact("n1");
    net.heal();
    // The snapshot is in flight (held back) while more proposals commit on n1 and n2.
    net.dropIf = (m) => m.type === "snap";
    net.tickAll();
    net.stabilize();
    expect(net.core("n1").status().progress!["n3"]!.state).toBe("snapshot");
    for (let i = 0; i < 5; i++) net.core("n1").propose(bytes(`b${i}`));
    net.stabilize();
    expect(net.core("n1").status().commit).toBe(11);
    // The transport reports the loss; the leader retries later and n3 catches up.
    net.core("n1").reportSnapshot("n3", false);
    expect(net.core("n1").status().progress!["n3"]!.state).toBe("probe");
    net.dropIf = null;
    for (let i = 0; i < 3; i++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.appliedData("n3")).toEqual(net.appliedData("n1"));
    expect(net.appliedData("n3").length).toBe(10);
  });

  it("retries a snapshot that was lost and never reported, after the snapshot timeout", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    net.isolate("n3");
    for (let i = 0; i < 3; i++) net.core("n1").propose(bytes(`v${i}`));
    net.stabilize();
    net.compact("n1");
    net.heal();
    net.dropIf = (m) => m.type === "snap"; // lost, and the driver does not call reportSnapshot
    net.tickAll();
    net.stabilize();
    net.dropIf = null;
    expect(net.core("n1").status().progress!["n3"]!.state).toBe("snapshot");
    for (let i = 0; i < 10 * 10 - 2; i++) {
      net.tickAll();
      net.stabilize();
    }
    expect(net.core("n1").status().progress!["n3"]!.state).toBe("snapshot");
    net.tickUntil(() => net.appliedData("n3").length === 3, 10);
    expect(net.delivered.filter((m) => m.type === "snap").length).toBe(1);
  });

  it("a snapshot not newer than the commit index is ignored", () => {
    const { core, storage } = lone("n1", ["n1", "n2", "n3"]);
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 2, entries: entriesOf([1, 2, 2]), commit: 3 }));
    drain(core, storage);
    drain(core, storage);
    core.step(msg({ type: "snap", from: "n2", to: "n1", term: 2, snapshot: snap(2, 2) }));
    const rd = drain(core, storage);
    expect(rd.snapshot).toBe(null);
    expect(rd.messages).toMatchObject([{ type: "appResp", index: 3, reject: false }]);
    expect(logTerms(storage)).toEqual([1, 2, 2]);
  });

  it("a snapshot the log already matches advances the commit index and keeps later entries", () => {
    const { core, storage } = lone("n1", ["n1", "n2", "n3"]);
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 2, entries: entriesOf([1, 2, 2, 2]), commit: 1 }));
    drain(core, storage);
    core.step(msg({ type: "snap", from: "n2", to: "n1", term: 2, snapshot: snap(3, 2) }));
    const rd = drain(core, storage);
    expect(rd.snapshot).toBe(null);
    expect(core.status()).toMatchObject({ commit: 3, lastIndex: 4 });
    expect(logTerms(storage)).toEqual([1, 2, 2, 2]);
    expect(rd.messages).toMatchObject([{ type: "appResp", index: 3 }]);
  });

  it("a snapshot that does not match replaces the log, membership included", () => {
    const { core, storage } = lone("n1", ["n1", "n2", "n3"]);
    core.step(msg({ type: "app", from: "n2", to: "n1", term: 2, entries: entriesOf([1, 2, 2]), commit: 1 }));
    drain(core, storage);
    core.step(msg({ type: "snap", from: "n4", to: "n1", term: 3, snapshot: snap(5, 3, ["n1", "n2", "n4"]) }));
    let rd = core.ready();
    expect(rd.snapshot!.metadata.index).toBe(5);
    expect(rd.entries).toEqual([]);
    expect(rd.committedEntries).toEqual([]);
    expect(rd.hardState).toMatchObject({ term: 3, commit: 5 });
    expect(rd.messages).toMatchObject([{ type: "appResp", to: "n4", index: 5 }]);
    storage.applySnapshot(rd.snapshot!);
    storage.setHardState(rd.hardState!);
    core.advance(rd);
    expect(core.status()).toMatchObject({ commit: 5, applied: 5, lastIndex: 5, confState: { voters: ["n1", "n2", "n4"], learners: [] } });
    expect(storage.firstIndex()).toBe(6);
    // Replication continues after the snapshot.
    core.step(msg({ type: "app", from: "n4", to: "n1", term: 3, index: 5, logTerm: 3, entries: entriesOf([3], 6), commit: 6 }));
    rd = drain(core, storage);
    expect(rd.messages).toMatchObject([{ type: "appResp", index: 6, reject: false }]);
    rd = drain(core, storage);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([6]);
  });

  it("a node restarts from its snapshot and the entries after it", () => {
    const net = RaftNetwork.create(["n1", "n2", "n3"]);
    net.campaign("n1");
    for (let i = 0; i < 5; i++) net.core("n1").propose(bytes(`v${i}`));
    net.stabilize();
    net.tickAll();
    net.stabilize();
    net.compact("n2", 4);
    net.core("n1").propose(bytes("later"));
    net.stabilize();
    net.tickAll();
    net.stabilize();
    const storage = net.node("n2").storage;
    expect(storage.firstIndex()).toBe(5);
    const core = new RaftCore(testConfig("n2", { applied: 6 }), storage);
    expect(core.status()).toMatchObject({ commit: 7, lastIndex: 7, applied: 6 });
    const rd = drain(core, storage);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([7]);
  });

  it("an application whose state is older than the snapshot restarts at the snapshot", () => {
    const snapshot = snap(10, 2);
    const storage = new MemoryStorage({ snapshot, hardState: { term: 2, vote: null, commit: 10 } });
    const core = new RaftCore(testConfig("n1", { applied: 0 }), storage);
    expect(core.status()).toMatchObject({ applied: 10, commit: 10, lastIndex: 10 });
    expect(core.status().confState.voters).toEqual(["n1", "n2", "n3"]);
  });
});
