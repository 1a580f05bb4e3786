/**
 * Goal: the unique-appends checker finds every lost acknowledged write and every value nobody wrote,
 * and stays quiet about writes whose outcome was unknown.
 * Method: small histories of unique-value writes plus a hand-made final read.
 */
import { describe, expect, it } from "vitest";
import { checkAppends, finalRecordsFromReads, type FinalRecord } from "../jepsen-lite/checker/appends.ts";
import { HistoryBuilder } from "../jepsen-lite/checker/builder.ts";

function writes(): HistoryBuilder {
  const b = new HistoryBuilder();
  b.put(1, [0, 1], "1-0", { key: "log.1", revision: 1 });
  b.put(2, [0, 2], "2-0", { key: "log.2", revision: 2 });
  b.create(1, [3, 4], "1-1", { key: "log.3", revision: 3 });
  return b;
}

const present = (key: string, value: string, revision?: number): FinalRecord =>
  revision === undefined ? { key, value } : { key, value, revision, operation: "PUT" };

describe("unique appends", () => {
  it("passes when every acknowledged write is present", () => {
    const b = writes();
    const result = checkAppends(b.ops, [present("log.1", "1-0", 1), present("log.2", "2-0", 2), present("log.3", "1-1", 3)]);
    expect(result).toMatchObject({ ok: true, acknowledged: 3, present: 3, lostCount: 0, phantomCount: 0 });
  });

  it("reports a lost acknowledged write", () => {
    const b = writes();
    const result = checkAppends(b.ops, [present("log.1", "1-0"), present("log.3", "1-1")]);
    expect(result.ok).toBe(false);
    expect(result.lostCount).toBe(1);
    expect(result.lost.map((op) => op.value)).toEqual(["2-0"]);
  });

  it("reports a value present on a key where nobody wrote it", () => {
    const b = writes();
    const final = [present("log.1", "1-0"), present("log.2", "2-0"), present("log.3", "1-1"), present("log.2", "1-1")];
    const result = checkAppends(b.ops, final);
    expect(result.ok).toBe(false);
    expect(result.phantoms).toEqual([present("log.2", "1-1")]);
  });

  it("accepts unknown-outcome writes whether or not they happened, and counts the ones that did", () => {
    const b = writes();
    b.put(3, [5, null], "3-0", { key: "log.4" });
    b.put(3, [6, 7], "3-1", { key: "log.5", fail: "TIMEOUT" });
    b.put(4, [8, null], "4-0", { key: "log.6" });
    const final = [present("log.1", "1-0"), present("log.2", "2-0"), present("log.3", "1-1"), present("log.4", "3-0"), present("log.5", "3-1")];
    const result = checkAppends(b.ops, final);
    expect(result).toMatchObject({ ok: true, recoveredUnknown: 2, lostCount: 0 });
  });

  it("reports a refused write that is present anyway", () => {
    const b = writes();
    const refused = b.put(3, [5, 6], "3-0", { key: "log.4", fail: "UNAVAILABLE" });
    const final = [present("log.1", "1-0"), present("log.2", "2-0"), present("log.3", "1-1"), present("log.4", "3-0")];
    const result = checkAppends(b.ops, final);
    expect(result.ok).toBe(false);
    expect(result.failedButPresent.map((f) => f.op.id)).toEqual([refused.id]);
  });

  it("reports a write applied twice (a retry that was not deduplicated)", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "1-0", { key: "log", revision: 1 });
    const result = checkAppends(b.ops, [present("log", "1-0", 1), present("log", "1-0", 2)]);
    expect(result.ok).toBe(false);
    expect(result.duplicates).toHaveLength(1);
    expect(result.duplicates[0]!.records.map((r) => r.revision)).toEqual([1, 2]);
  });

  it("reports a write found at another revision than the one acknowledged", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "1-0", { key: "log", revision: 1 });
    const result = checkAppends(b.ops, [present("log", "1-0", 5)]);
    expect(result.ok).toBe(false);
    expect(result.revisionMismatches).toHaveLength(1);
  });

  it("does not judge keys that saw a delete, and flags values written twice", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "x", { key: "a", revision: 1 });
    b.delete(1, [2, 3], { key: "a", revision: 2 });
    b.put(1, [4, 5], "y", { key: "b", revision: 3 });
    b.put(2, [4, 5], "y", { key: "b", revision: 4 });
    const result = checkAppends(b.ops, [{ key: "a", value: null, operation: "DEL" }, present("b", "y")]);
    expect(result.ok).toBe(true);
    expect(result.skippedKeys).toEqual(["a"]);
    expect(result.nonUniqueValues).toEqual([{ key: "b", value: "y" }]);
  });

  it("reads a final state from gets", () => {
    const b = new HistoryBuilder();
    b.get(1, [0, 1], "v", { key: "a", revision: 3 });
    b.get(1, [2, 3], null, { key: "b" });
    b.get(1, [4, null], null, { key: "c" });
    expect(finalRecordsFromReads(b.ops)).toEqual([
      { key: "a", value: "v", revision: 3 },
      { key: "b", value: null },
    ]);
  });
});
