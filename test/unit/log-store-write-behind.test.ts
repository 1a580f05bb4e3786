/**
 * Durability "none" is lazy (write-behind, as NATS's lazy sync): writes are acknowledged from memory and
 * reach LevelDB on a timer, when the buffer is full, before any read or snapshot-file change, and on
 * close. So a kill -9 loses acknowledged writes (which is what the jepsen-lite negative control must
 * see), yet the store reopens as a prefix of its writes, never a mix, and a graceful close keeps all.
 *
 * The kill tests use a flush interval of an hour, so only the buffer limit, the workload's compactions
 * (which flush: they read the log and write snapshot files) and nothing else move data to LevelDB.
 */

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLevelLogStore } from "../../src/node/log-store-level.ts";
import type { LogStore } from "../../src/node/log-store.ts";
import { CrashWorkload, applyCrashOperation, type ModelGroup } from "./log-store-crash-child.ts";

const CHILD = fileURLToPath(new URL("./log-store-write-behind-child.ts", import.meta.url));
const HOUR_MS = 3_600_000;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-write-behind-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * Runs the child until it has acknowledged `acks` operations, then SIGKILLs it. Returns the last ack
 * seen. With `exact`, the child itself stops after `acks` operations, so the kill finds it idle.
 */
function runAndKill(dir: string, acks: number, flushIntervalMs: number, bytesMax: number, exact = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = [CHILD, dir, String(flushIntervalMs), String(bytesMax), ...(exact ? [String(acks)] : [])];
    const child = spawn(process.execPath, ["--import", "tsx", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let lastAck = 0;
    let buffered = "";
    let stderr = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const match = /^ack (\d+)$/.exec(line);
        if (match) lastAck = Number(match[1]);
      }
      if (lastAck >= acks && child.exitCode === null && !child.killed) child.kill("SIGKILL");
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (_code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`child exited by itself (${String(signal)}): ${stderr}`));
      else resolve(lastAck);
    });
  });
}

function plainModel(groups: Map<string, ModelGroup>): string {
  const out: Record<string, unknown> = {};
  for (const [group, g] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    out[group] = {
      hardState: g.hardState,
      snapshotIndex: g.snapshotIndex,
      snapshotData: g.snapshotData === null ? null : Buffer.from(g.snapshotData).toString("base64"),
      entries: g.entries.map((e) => [e.index, e.term, Buffer.from(e.data).toString("base64")]),
    };
  }
  return JSON.stringify(out);
}

async function plainStore(store: LogStore): Promise<string> {
  const groups = new Map<string, ModelGroup>();
  for (const group of await store.listGroups()) {
    const loaded = await store.load(group);
    groups.set(group, {
      hardState: loaded.hardState,
      snapshotIndex: loaded.snapshot?.metadata.index ?? null,
      snapshotData: loaded.snapshot?.data ?? null,
      entries: loaded.entries,
    });
  }
  return plainModel(groups);
}

/** The number of workload operations whose result the store holds, searching 0..upTo; -1 if none. */
function matchingPrefix(actual: string, upTo: number): number {
  const workload = new CrashWorkload();
  for (let m = 0; m <= upTo; m++) {
    if (plainModel(workload.groups) === actual) return m;
    workload.next();
  }
  return -1;
}

describe("LevelLogStore with durability none (write-behind)", () => {
  it("kill -9 before the timer flush loses the acknowledged writes, and the store still opens", async () => {
    const dir = join(root, "no-flush");
    // 20 operations come before the workload's first compaction (which would flush); the child
    // stops after exactly 20, as a loaded machine may deliver the kill many operations later.
    const lastAck = await runAndKill(dir, 20, HOUR_MS, 64 * 1024 * 1024, true);
    expect(lastAck).toBe(20);
    const store = await openLevelLogStore({ dir, durability: "none" });
    // Only what a read forced out survives: the first write of a new group reads the database (it
    // clears leftovers), which flushes the buffer, so operation 1 (the first of group "meta") is there.
    expect(matchingPrefix(await plainStore(store), lastAck)).toBe(1);
    await store.close();
  }, 60_000);

  for (const bytesMax of [64 * 1024 * 1024, 4096]) {
    it(`kill -9 leaves a prefix of the writes (buffer limit ${bytesMax} bytes)`, async () => {
      const dir = join(root, `prefix-${bytesMax}`);
      const lastAck = await runAndKill(dir, 150, HOUR_MS, bytesMax);
      const store = await openLevelLogStore({ dir, durability: "none" });
      const actual = await plainStore(store);
      // Operations after the last ack may have run before the kill landed: search a little past it.
      const m = matchingPrefix(actual, lastAck + 1000);
      expect(m, "the reopened store matches no prefix of the workload").toBeGreaterThanOrEqual(0);
      if (bytesMax === 4096) {
        // Every write beyond the limit waited for a flush: at most one buffer's worth (about 8
        // operations of ~500 bytes) was acknowledged from memory alone.
        expect(m).toBeGreaterThanOrEqual(lastAck - 10);
      }
      // The recovered store keeps working.
      const workload = new CrashWorkload();
      for (let i = 0; i < m; i++) workload.next();
      await applyCrashOperation(store, workload.next());
      expect(await plainStore(store)).toBe(plainModel(workload.groups));
      await store.close();
    }, 60_000);
  }

  it("reads see buffered writes, and close() flushes them", async () => {
    const dir = join(root, "close");
    const workload = new CrashWorkload();
    let store = await openLevelLogStore({ dir, durability: "none", flushIntervalMs: HOUR_MS });
    for (let i = 0; i < 30; i++) await applyCrashOperation(store, workload.next());
    expect(await plainStore(store)).toBe(plainModel(workload.groups));
    await store.close();
    store = await openLevelLogStore({ dir, durability: "none" });
    expect(await plainStore(store)).toBe(plainModel(workload.groups));
    await store.close();
  }, 60_000);

  it("rejects a bad flush interval", async () => {
    await expect(openLevelLogStore({ dir: join(root, "bad"), durability: "none", flushIntervalMs: 0 })).rejects.toThrow(TypeError);
  });
});
