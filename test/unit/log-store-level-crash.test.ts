/**
 * LevelLogStore under kill -9: a child process writes fsynced batches and compactions and reports each
 * acknowledged operation; the parent SIGKILLs it at several points and reopens the store. Every
 * acknowledged operation must be there, and the store must hold exactly the state after some prefix of
 * the operations (a batch or a compaction is never half applied).
 *
 * Method: the child and the parent run the same deterministic workload (log-store-crash-child.ts); the
 * parent compares the reopened store with its model after m operations, for m from the last ack on.
 * Process crashes keep the OS page cache, so this proves atomicity and ack-after-write; power loss is
 * covered by the memory twin's crash model and the on-disk damage tests.
 */

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLevelLogStore } from "../../src/node/log-store-level.ts";
import type { LogStore } from "../../src/node/log-store.ts";
import { CRASH_GROUPS, CrashWorkload, applyCrashOperation, type ModelGroup } from "./log-store-crash-child.ts";

const CHILD = fileURLToPath(new URL("./log-store-crash-child.ts", import.meta.url));
/** How far past the last ack the child may have got before the kill landed. */
const OPERATIONS_AFTER_ACK_MAX = 100_000;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-log-crash-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Runs the child until it has acknowledged `acks` operations, then SIGKILLs it. Returns the last ack seen. */
function runAndKill(dir: string, acks: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dir], { stdio: ["ignore", "pipe", "pipe"] });
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

describe("LevelLogStore survives kill -9", () => {
  for (const acks of [15, 80, 260]) {
    it(`after ${acks} acknowledged operations the store holds a prefix that includes every ack`, async () => {
      const dir = join(root, `kill-${acks}`);
      const lastAck = await runAndKill(dir, acks);
      expect(lastAck).toBeGreaterThanOrEqual(acks);

      const store = await openLevelLogStore({ dir, durability: "fsync" });
      const actual = await plainStore(store);
      const workload = new CrashWorkload();
      let m = 0;
      for (; m < lastAck; m++) workload.next();
      let matched = -1;
      for (; m <= lastAck + OPERATIONS_AFTER_ACK_MAX; m++) {
        if (plainModel(workload.groups) === actual) {
          matched = m;
          break;
        }
        workload.next();
      }
      expect(matched, `store matches no prefix at or after ack ${lastAck}`).toBeGreaterThanOrEqual(lastAck);
      expect(store.repairs.every((note) => /torn tail/.test(note))).toBe(true);
      expect([...(await store.listGroups())].sort()).toEqual([...CRASH_GROUPS].sort());

      // The recovered store keeps working: the workload's next operation applies and reloads.
      await applyCrashOperation(store, workload.next());
      expect(await plainStore(store)).toBe(plainModel(workload.groups));
      await store.close();
    }, 60_000);
  }
});
