/**
 * Goal: pin down the core's behaviour in the classic hard cases with readable, reviewable
 * transcripts, and fail loudly when a scenario's explicit expectations (expect-leader,
 * expect-no-readstate, ...) or any safety checker do not hold.
 * Method: each test/sim/testdata/<name>.txt script runs through the scenario interpreter
 * (scenario.ts); its transcript must equal test/sim/testdata/<name>.golden (update with
 * `npx vitest run --project sim -u` after reviewing the diff).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runScenario } from "./scenario.ts";

const dir = join(import.meta.dirname, "testdata");
const scripts = readdirSync(dir).filter((name) => name.endsWith(".txt")).sort();

const REQUIRED = [
  "figure-8.txt",
  "membership-partition.txt",
  "prevote-checkquorum-flapping.txt",
  "readindex-isolated-leader.txt",
  "snapshot-mid-replication.txt",
  "transfer-concurrent-proposals.txt",
];

describe("scenarios", () => {
  it("has every required scenario", () => {
    for (const name of REQUIRED) expect(scripts).toContain(name);
  });

  for (const script of scripts) {
    it(script.replace(/\.txt$/, ""), async () => {
      const transcript = runScenario(readFileSync(join(dir, script), "utf8"));
      expect(transcript).toContain("> expect-");
      await expect(transcript).toMatchFileSnapshot(join(dir, script.replace(/\.txt$/, ".golden")));
    });
  }
});
