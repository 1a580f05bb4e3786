/**
 * Goal: the history format round-trips, malformed histories are refused with a reason, the
 * bucket-wide revision facts are checked, the timeline shows the anomaly, and the report ties it
 * together as the harness will call it.
 * Method: small histories written with HistoryBuilder, files in a temporary directory.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  HistoryBuilder,
  checkHistory,
  checkLinearizability,
  checkRevisionOrder,
  classifyOp,
  describeOp,
  parseHistoryJsonl,
  readHistoryJsonl,
  renderTimeline,
  splitByKey,
  summarizeHistory,
  validateHistory,
  writeFailureTimelines,
  writeHistoryJsonl,
  type Op,
} from "../jepsen-lite/checker/index.ts";

const dir = mkdtempSync(join(tmpdir(), "cairn-checker-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function staleRead(): HistoryBuilder {
  const b = new HistoryBuilder();
  b.put(1, [0, 1], "a", { revision: 1, node: "n1" });
  b.put(1, [2, 3], "b", { revision: 2 });
  b.get(2, [4, 5], "a", { revision: 1 });
  b.put(3, [1, null], "<script>");
  return b;
}

describe("history format", () => {
  it("round-trips through JSONL", () => {
    const ops = staleRead().ops;
    const path = join(dir, "history.jsonl");
    writeHistoryJsonl(path, ops);
    expect(readFileSync(path, "utf8").split("\n")).toHaveLength(ops.length + 1);
    expect(readHistoryJsonl(path)).toEqual(ops);
    expect(parseHistoryJsonl("\n" + JSON.stringify(ops[0]) + "\n\n")).toEqual([ops[0]]);
  });

  it("names the line of invalid JSON", () => {
    expect(() => parseHistoryJsonl('{"id":0}\n{oops\n')).toThrow(/line 2/);
  });

  it("splits by key in first-appearance order, keeping each key's order", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "1", { key: "b", revision: 1 });
    b.put(1, [2, 3], "2", { key: "a", revision: 2 });
    b.get(1, [4, 5], "1", { key: "b", revision: 1 });
    const byKey = splitByKey(b.ops);
    expect([...byKey.keys()]).toEqual(["b", "a"]);
    expect(byKey.get("b")!.map((op) => op.id)).toEqual([0, 2]);
  });

  it("lists what is malformed", () => {
    const bad = [
      { id: 0, process: 1, type: "put", key: "k", invokeMs: 0, completeMs: 1, outcome: "ok" },
      { id: 0, process: 1, type: "update", key: "k", value: "v", invokeMs: 0, completeMs: null, outcome: "ok" },
      { id: 2, process: 1, type: "get", key: "k", invokeMs: 0, completeMs: 1, outcome: "ok" },
      { id: 3, process: 1, type: "put", key: "k", value: "v", invokeMs: 0, completeMs: 1, outcome: "fail", errorCode: "KEY_EXISTS" },
      { id: 4, process: 1, type: "scan", key: "k", invokeMs: 0, completeMs: 1, outcome: "ok" },
    ] as unknown as Op[];
    const problems = validateHistory(bad).join("\n");
    expect(problems).toMatch(/op 0: put without a value/);
    expect(problems).toMatch(/op 0: duplicate id/);
    expect(problems).toMatch(/update without expectedRevision/);
    expect(problems).toMatch(/ok op without completeMs/);
    expect(problems).toMatch(/ok get without readValue/);
    expect(problems).toMatch(/KEY_EXISTS on a put/);
    expect(problems).toMatch(/unknown type scan/);
    expect(validateHistory(staleRead().ops)).toEqual([]);
  });

  it("classifies outcomes for the checkers", () => {
    const b = new HistoryBuilder();
    const cases: [Op, string][] = [
      [b.put(1, [0, 1], "v", { revision: 1 }), "effect"],
      [b.create(1, [0, 1], "v", { fail: "KEY_EXISTS" }), "conflict"],
      [b.put(1, [0, 1], "v", { fail: "TIMEOUT" }), "unknown"],
      [b.put(1, [0, null], "v"), "unknown"],
      [b.put(1, [0, 1], "v", { fail: "UNAVAILABLE" }), "none"],
      [b.get(1, [0, null], null), "none"],
      [b.get(1, [0, 1], null, { fail: "TIMEOUT" }), "none"],
    ];
    expect(cases.map(([op]) => classifyOp(op))).toEqual(cases.map(([, cls]) => cls));
    expect(describeOp(cases[1]![0])).toBe('#1 p1 create("k", "v") -> fail KEY_EXISTS');
  });
});

describe("revision order across keys", () => {
  it("accepts concurrent writes in either revision order and ordered ones in order", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 10], "a", { key: "x", revision: 2 });
    b.put(2, [0, 10], "b", { key: "y", revision: 1 });
    b.put(1, [11, 12], "c", { key: "y", revision: 3 });
    expect(checkRevisionOrder(b.ops).ok).toBe(true);
  });

  it("reports a revision given twice and a revision below one acknowledged earlier", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { key: "x", revision: 5 });
    b.put(2, [2, 3], "b", { key: "y", revision: 5 });
    b.put(3, [4, 5], "c", { key: "z", revision: 4 });
    const result = checkRevisionOrder(b.ops);
    expect(result.ok).toBe(false);
    expect(result.duplicates.map((d) => [d.revision, d.ops.map((op) => op.id)])).toEqual([[5, [0, 1]]]);
    expect(result.realTimeViolations.map((v) => [v.earlier.id, v.later.id])).toEqual([
      [0, 1],
      [0, 2],
    ]);
  });
});

describe("report and timeline", () => {
  it("summarizes a passing history", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { revision: 1 });
    b.get(2, [2, 3], "a", { revision: 1 });
    const report = checkHistory(b.ops);
    expect(report.verdict).toBe("ok");
    expect(report.counts).toEqual({ put: { ok: 1, fail: 0, unknown: 0 }, get: { ok: 1, fail: 0, unknown: 0 } });
    expect(summarizeHistory(report)).toMatch(/^verdict: ok/);
  });

  it("fails a history whose revisions break real-time order even if each key is linearizable", () => {
    const b = new HistoryBuilder();
    b.put(1, [0, 1], "a", { key: "x", revision: 5 });
    b.put(2, [2, 3], "b", { key: "y", revision: 4 });
    const report = checkHistory(b.ops);
    expect(report.linearizability.verdict).toBe("ok");
    expect(report.verdict).toBe("fail");
    expect(summarizeHistory(report)).toMatch(/revision order: #0 .* returned before #1/);
  });

  it("writes a self-contained timeline of a failing key that marks the anomaly", () => {
    const ops = staleRead().ops;
    const report = checkHistory(ops);
    expect(report.verdict).toBe("fail");
    expect(summarizeHistory(report)).toMatch(/key "k": fail/);
    const paths = writeFailureTimelines(join(dir, "out"), ops, report);
    expect(paths).toEqual([join(dir, "out", "timeline-k.html")]);
    expect(readdirSync(join(dir, "out"))).toEqual(["timeline-k.html"]);
    const html = readFileSync(paths[0]!, "utf8");
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain("<svg");
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/); // nothing to run, nothing to fetch
    expect(html).toContain("&lt;script&gt;"); // values are escaped
    expect(html).toMatch(/stroke="#d32f2f"/); // the stale read is outlined
    expect(html).toContain('stroke-dasharray="5 3"'); // the unknown put is open-ended
    expect(html).toContain(">p1<");
    expect(html).toContain(">p2<");
    expect(html).toContain("Why key");
  });

  it("renders a timeline of any history without a failure", () => {
    const html = renderTimeline(staleRead().ops, { title: "all ops" });
    expect(html).toContain("<title>all ops</title>");
    expect(html).not.toContain('stroke="#d32f2f"');
    const result = checkLinearizability(staleRead().ops);
    const highlighted = renderTimeline(staleRead().ops, { failure: result.keys[0]!.failure! });
    expect(highlighted.match(/stroke="#d32f2f"/g)).toHaveLength(1);
  });
});

describe("command line", () => {
  it("checks a JSONL file, writes the timeline next to it and exits 1 on a violation", () => {
    const path = join(dir, "cli", "history.jsonl");
    const ops = staleRead().ops;
    mkdirSync(join(dir, "cli"));
    writeHistoryJsonl(path, ops);
    const run = spawnSync(process.execPath, ["--import", "tsx", "test/jepsen-lite/checker/cli.ts", path], { encoding: "utf8" });
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/^verdict: fail/);
    expect(run.stdout).toContain(`timeline: ${join(dir, "cli", "timeline-k.html")}`);
    expect(readdirSync(join(dir, "cli")).sort()).toEqual(["history.jsonl", "timeline-k.html"]);
  });
});
