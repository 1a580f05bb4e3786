/**
 * Goal: the simulator's own parts do what the safety argument relies on: the PRNG is deterministic
 * and forks are independent, a seed replays bit for bit, the event queue orders by (time, tie), the
 * disk model loses exactly what it may lose, and the history checker rejects non-linearizable
 * histories.
 * Method: direct unit tests on each part, plus one full run replayed twice with its trace compared.
 */
import { describe, expect, it } from "vitest";
import type { Entry, Snapshot } from "../../src/raft/types.ts";
import { Prng } from "../support/prng.ts";
import { SimDisk, emptySnapshot, termAt, type DiskObserver, type DurableImage } from "./disk.ts";
import { EventQueue, type Timed } from "./event-queue.ts";
import { History, HistoryViolation } from "./history.ts";
import { paramsForSeed } from "./params.ts";
import { profileOptions } from "./seeds.ts";
import { encodePut, RegisterMachine } from "./state-machine.ts";
import { runSim } from "./swarm.ts";

describe("Prng", () => {
  it("is deterministic per seed and differs across seeds", () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const xs = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(xs);
  });

  it("forks by label from the seed, not from the parent's position", () => {
    const parent = new Prng(7);
    const early = parent.fork("net").nextU32();
    for (let i = 0; i < 100; i++) parent.nextU32();
    expect(parent.fork("net").nextU32()).toBe(early);
    expect(parent.fork("disk").nextU32()).not.toBe(early);
  });

  it("draws roughly uniformly within bounds", () => {
    const rng = new Prng(1);
    const counts = new Array<number>(10).fill(0);
    let outOfRange = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = rng.float();
      if (!(x >= 0 && x < 1)) outOfRange++;
      else counts[Math.floor(x * 10)]!++;
    }
    expect(outOfRange).toBe(0);
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(600);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(rng.range(-2, 2));
    expect([...seen].sort()).toEqual([-1, -2, 0, 1, 2]);
  });
});

describe("EventQueue", () => {
  it("pops by time, then tie, then sequence", () => {
    const queue = new EventQueue<Timed & { name: string }>();
    const events = [
      { time: 5, tie: 1, seq: 0, name: "c" },
      { time: 1, tie: 9, seq: 1, name: "b" },
      { time: 1, tie: 2, seq: 2, name: "a" },
      { time: 5, tie: 1, seq: 3, name: "d" },
      { time: 9, tie: 0, seq: 4, name: "e" },
    ];
    for (const event of new Prng(3).shuffle(events.slice())) queue.push(event);
    const order: string[] = [];
    while (queue.size > 0) order.push(queue.pop()!.name);
    expect(order).toEqual(["a", "b", "c", "d", "e"]);
  });
});

describe("SimDisk", () => {
  const conf = { voters: ["n1"], learners: [] };
  const entry = (index: number, term: number): Entry => ({ index, term, type: "normal", data: encodePut("k", `v${index}`) });
  const applyState = { applied: 0, confState: conf };
  const silent: DiskObserver = {
    durableAppend: () => {},
    durableTruncate: () => {},
    durableSnapshot: () => {},
    contractViolation: (_node, what) => {
      throw new Error(what);
    },
    durabilityViolation: (_node, what) => {
      throw new Error(what);
    },
  };
  const fresh = (): DurableImage => ({ hardState: { term: 0, vote: null, commit: 0 }, snapshot: emptySnapshot(conf), entries: [], applyState });

  it("keeps synced writes and loses an in-flight one or an unsynced suffix on crash", () => {
    let lostInflight = 0;
    let landedInflight = 0;
    for (let seed = 0; seed < 60; seed++) {
      const disk = new SimDisk("n1", fresh(), silent);
      disk.beginWrite({ hardState: { term: 1, vote: "n1", commit: 0 }, snapshot: null, entries: [entry(1, 1)], applyState, sync: true });
      disk.completeWrite();
      disk.beginWrite({ hardState: { term: 1, vote: "n1", commit: 1 }, snapshot: null, entries: [], applyState, sync: false });
      disk.completeWrite();
      disk.beginWrite({ hardState: null, snapshot: null, entries: [entry(2, 1)], applyState, sync: true });
      const outcome = disk.crash(new Prng(seed));
      expect(termAt(disk.durable, 1)).toBe(1);
      if (outcome === "inflight-landed") {
        landedInflight++;
        expect(termAt(disk.durable, 2)).toBe(1);
        expect(disk.durable.hardState.commit).toBe(1);
      } else {
        lostInflight++;
        expect(termAt(disk.durable, 2)).toBeUndefined();
      }
    }
    expect(lostInflight).toBeGreaterThan(0);
    expect(landedInflight).toBeGreaterThan(0);
  });

  it("truncates a conflicting suffix and reports it; refuses gaps", () => {
    const truncated: number[] = [];
    const disk = new SimDisk("n1", fresh(), { ...silent, durableTruncate: (_n, removed) => truncated.push(...removed.map((e) => e.index)) });
    const write = (entries: Entry[]) => {
      disk.beginWrite({ hardState: null, snapshot: null, entries, applyState, sync: true });
      disk.completeWrite();
    };
    write([entry(1, 1), entry(2, 1), entry(3, 1)]);
    write([entry(2, 2)]);
    expect(truncated).toEqual([2, 3]);
    expect(disk.durable.entries.map((e) => `${e.index}/${e.term}`)).toEqual(["1/1", "2/2"]);
    expect(() => write([entry(5, 2)])).toThrow(/gap/);
  });

  it("a snapshot replaces the log; entries after it follow", () => {
    const disk = new SimDisk("n1", fresh(), silent);
    const machine = new RegisterMachine();
    const snapshot: Snapshot = { metadata: { index: 10, term: 3, confState: conf }, data: machine.snapshot() };
    disk.beginWrite({ hardState: null, snapshot, entries: [entry(11, 3)], applyState, sync: true });
    disk.completeWrite();
    expect(termAt(disk.durable, 10)).toBe(3);
    expect(termAt(disk.durable, 11)).toBe(3);
    expect(termAt(disk.durable, 9)).toBeUndefined();
  });
});

describe("History (register linearizability)", () => {
  const commit = (history: History, index: number, key: string, value: string) =>
    history.committed({ index, term: 1, type: "normal", data: encodePut(key, value) });

  it("accepts a read that observes the latest acknowledged write", () => {
    const history = new History();
    const write = history.invokeWrite(0, "a", "v1", 0);
    commit(history, 2, "a", "v1");
    history.writeAcked(write, 2, 1);
    const read = history.invokeRead(1, "a", "r1", 2);
    history.readStateObserved(read, 2);
    history.readServed(read, { value: "v1", index: 2 }, 2, 3);
    expect(history.counts.readsServed).toBe(1);
  });

  it("rejects a read index below an acknowledged write, a stale value, and a failed write that commits", () => {
    const history = new History();
    const write = history.invokeWrite(0, "a", "v1", 0);
    commit(history, 2, "a", "v1");
    history.writeAcked(write, 2, 1);
    const read = history.invokeRead(1, "a", "r1", 2);
    expect(() => history.readStateObserved(read, 1)).toThrow(HistoryViolation);
    const stale = history.invokeRead(1, "a", "r2", 2);
    expect(() => history.readServed(stale, null, 1, 3)).toThrow(/older than the write at 2/);
    const lost = history.invokeWrite(0, "a", "v2", 4);
    history.writeFailed(lost, true, 5);
    expect(() => commit(history, 3, "a", "v2")).toThrow(/reported failed but committed/);
  });

  it("rejects reads going back in time", () => {
    const history = new History();
    commit(history, 2, "a", "v1");
    commit(history, 3, "a", "v2");
    const first = history.invokeRead(1, "a", "r1", 0);
    history.readServed(first, { value: "v2", index: 3 }, 3, 1);
    const second = history.invokeRead(2, "a", "r2", 2);
    expect(() => history.readServed(second, { value: "v1", index: 2 }, 2, 3)).toThrow(/older than what a read completed before it saw/);
  });
});

describe("replay", () => {
  it("a seed replays bit for bit (same trace, same result)", () => {
    const params = paramsForSeed(11, profileOptions("test"));
    const runs = [0, 1].map(() => {
      const lines: string[] = [];
      const result = runSim(params, { trace: (line) => lines.push(line) });
      return { lines, result };
    });
    expect(runs[0]!.lines.length).toBeGreaterThan(50);
    expect(runs[1]!.lines).toEqual(runs[0]!.lines);
    expect(runs[1]!.result).toEqual(runs[0]!.result);
  });
});
