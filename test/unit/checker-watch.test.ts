/**
 * Goal: the watch checker accepts a watcher that saw exactly the committed log through its filter,
 * and names every way a watcher can go wrong: a gap, a duplicate, a delivery out of order, a wrong
 * record, a record it should not have received, a stale initial value. Ranges the watcher was told
 * it skipped are reported apart and are not failures.
 * Method: one small committed log and hand-written watcher deliveries.
 */
import { describe, expect, it } from "vitest";
import {
  checkWatch,
  checkWatches,
  matchesFilter,
  type CommittedRecord,
  type WatchEvent,
  type WatcherLog,
} from "../jepsen-lite/checker/watch.ts";

const log: CommittedRecord[] = [
  { revision: 1, key: "a.x", operation: "PUT", value: "1" },
  { revision: 2, key: "b.x", operation: "PUT", value: "2" },
  { revision: 3, key: "a.y", operation: "PUT", value: "3" },
  { revision: 4, key: "a.x", operation: "DEL" },
  { revision: 5, key: "a.x", operation: "PUT", value: "5" },
  { revision: 6, key: "b.x", operation: "PUT", value: "6" },
  { revision: 7, key: "a.y", operation: "PURGE" },
  { revision: 8, key: "a.z", operation: "PUT", value: "8" },
];

const event = (revision: number, isUpdate = true): WatchEvent => {
  const record = log.find((r) => r.revision === revision)!;
  return { ...record, isUpdate };
};

const watcher = (events: WatchEvent[], more: Partial<WatcherLog> = {}): WatcherLog => ({ id: "w", events, ...more });

describe("watch checker", () => {
  it("accepts a watcher that saw the whole log, and one that saw its filter's part", () => {
    expect(checkWatch(log, watcher(log.map((r) => event(r.revision)))).ok).toBe(true);
    const filtered = checkWatch(log, watcher([1, 3, 4, 5, 7, 8].map((r) => event(r)), { filters: ["a.*"] }));
    expect(filtered).toMatchObject({ ok: true, delivered: 6, window: { fromRevision: 1, toRevision: 8 } });
  });

  it("accepts a union of filters and ignoreDeletes", () => {
    const result = checkWatch(log, watcher([2, 5, 6, 8].map((r) => event(r)), { filters: ["b.x", "a.x", "a.z"], ignoreDeletes: true }));
    expect(result.ok).toBe(true);
  });

  it("reports a gap", () => {
    const result = checkWatch(log, watcher([1, 2, 3, 5, 6, 7, 8].map((r) => event(r))));
    expect(result.ok).toBe(false);
    expect(result.gaps.map((r) => r.revision)).toEqual([4]);
  });

  it("reports a gap before the first delivery when the start revision is known", () => {
    const result = checkWatch(log, watcher([3, 4].map((r) => event(r)), { startRevision: 2, endRevision: 5 }));
    expect(result.gaps.map((r) => r.revision)).toEqual([2, 5]);
  });

  it("reports a duplicate", () => {
    const result = checkWatch(log, watcher([1, 2, 3, 3, 4, 5, 6, 7, 8].map((r) => event(r))));
    expect(result.ok).toBe(false);
    expect(result.duplicates.map((e) => e.revision)).toEqual([3]);
    expect(result.outOfOrder).toEqual([]);
  });

  it("reports a delivery out of order", () => {
    const result = checkWatch(log, watcher([1, 2, 4, 3, 5, 6, 7, 8].map((r) => event(r))));
    expect(result.ok).toBe(false);
    expect(result.outOfOrder).toEqual([{ event: event(3), afterRevision: 4 }]);
  });

  it("reports a delivery whose value, key or operation differs from the committed record", () => {
    const events = log.map((r) => event(r.revision));
    events[4] = { ...events[4]!, value: "wrong" };
    events[5] = { ...events[5]!, key: "b.y" };
    const result = checkWatch(log, watcher(events));
    expect(result.mismatches.map((m) => m.event.revision)).toEqual([5, 6]);
    expect(result.ok).toBe(false);
  });

  it("does not compare values of metaOnly deliveries", () => {
    const events = log.map(({ value: _value, ...rest }) => rest);
    expect(checkWatch(log, watcher(events)).ok).toBe(true);
  });

  it("reports deliveries outside the filter, ignored deletes, and records beyond the log", () => {
    const result = checkWatch(log, watcher([event(1), event(2), event(4), { revision: 9, key: "a.q", operation: "PUT", value: "9" }], {
      filters: ["a.>"],
      ignoreDeletes: true,
    }));
    expect(result.unexpected.map((e) => e.revision)).toEqual([2, 4, 9]);
    expect(result.ok).toBe(false);
  });

  it("counts deliveries the log no longer holds as unverified, not as failures", () => {
    const trimmed = log.filter((r) => r.revision !== 2);
    const result = checkWatch(trimmed, watcher(log.map((r) => event(r.revision))));
    expect(result).toMatchObject({ ok: true, unverified: 1 });
  });

  it("reports skipped ranges apart from gaps", () => {
    const result = checkWatch(log, watcher([1, 2, 6, 7, 8].map((r) => event(r)), { skipped: [{ fromRevision: 3, toRevision: 5 }] }));
    expect(result.ok).toBe(true);
    expect(result.gaps).toEqual([]);
    expect(result.skipped).toEqual([{ fromRevision: 3, toRevision: 5, records: [log[2], log[3], log[4]] }]);
  });

  it("checks an include-last initial part: latest record per key, then every later record live", () => {
    // Snapshot between revisions 4 and 5: a.x's DEL, b.x@2, a.y@3; then 5..8 live.
    const live = [5, 6, 7, 8].map((r) => event(r));
    const good = [event(2, false), event(3, false), event(4, false), ...live];
    expect(checkWatch(log, watcher(good, { initialLatestOnly: true })).ok).toBe(true);

    const stale = checkWatch(log, watcher([event(1, false), event(2, false), event(3, false), event(4, false), ...live], { initialLatestOnly: true }));
    expect(stale.staleInitial.map((s) => [s.event.revision, s.newer.revision])).toEqual([[1, 4]]);
    expect(stale.ok).toBe(false);

    const missingKey = checkWatch(log, watcher([event(3, false), event(4, false), ...live], { initialLatestOnly: true }));
    expect(missingKey.gaps.map((r) => r.key)).toEqual(["b.x"]);

    const missingLive = checkWatch(log, watcher([event(2, false), event(3, false), event(4, false), ...live.slice(0, 3)], {
      initialLatestOnly: true,
      endRevision: 8,
    }));
    expect(missingLive.gaps.map((r) => r.revision)).toEqual([8]);
  });

  it("combines watchers", () => {
    const result = checkWatches(log, [watcher(log.map((r) => event(r.revision))), { id: "gappy", events: [event(1), event(3)] }]);
    expect(result.ok).toBe(false);
    expect(result.watchers.map((w) => [w.id, w.ok])).toEqual([
      ["w", true],
      ["gappy", false],
    ]);
  });
});

describe("key filters", () => {
  it("match as NATS subjects", () => {
    expect(matchesFilter("a.b", "a.>")).toBe(true);
    expect(matchesFilter("a.b.c", "a.>")).toBe(true);
    expect(matchesFilter("a", "a.>")).toBe(false);
    expect(matchesFilter("a.b", "a.*")).toBe(true);
    expect(matchesFilter("a.b.c", "a.*")).toBe(false);
    expect(matchesFilter("x.b.y", "*.b.*")).toBe(true);
    expect(matchesFilter("anything/at.all", ">")).toBe(true);
    expect(matchesFilter("a.b", "a.b")).toBe(true);
    expect(matchesFilter("a.bc", "a.b")).toBe(false);
  });
});
