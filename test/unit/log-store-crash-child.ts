/**
 * The workload of test/unit/log-store-level-crash.test.ts, and its child process.
 *
 * As a child (`node --import tsx log-store-crash-child.ts <dir>`): opens a LevelLogStore in <dir> and runs
 * the workload forever, printing "ack <n>" once operation n's promise has resolved (fsynced). The parent
 * kills it with SIGKILL at some point and checks that the reopened store holds exactly the state after
 * some number of operations m >= the last acknowledged one.
 *
 * The workload is deterministic: `CrashWorkload` yields the same operations to the child and to the
 * parent's model.
 */

import { pathToFileURL } from "node:url";
import type { Entry, HardState, Snapshot } from "../../src/raft/types.ts";
import { openLevelLogStore } from "../../src/node/log-store-level.ts";
import type { GroupWrite, LogStore } from "../../src/node/log-store.ts";

export const CRASH_GROUPS = ["meta", "b:crash"] as const;
const ENTRY_BYTES = 200;
const SNAPSHOT_BYTES = 20_000;
/** Every SNAPSHOT_EVERY-th operation of a group is a compaction at its commit index. */
const SNAPSHOT_EVERY = 25;
const GROUP_COMMIT_EVERY = 7;

export type CrashOperation =
  | { readonly kind: "write"; readonly writes: GroupWrite[] }
  | { readonly kind: "snapshot"; readonly group: string; readonly snapshot: Snapshot };

export interface ModelGroup {
  hardState: HardState;
  snapshotIndex: number | null;
  snapshotData: Uint8Array | null;
  entries: Entry[];
}

export class CrashWorkload {
  readonly groups = new Map<string, ModelGroup>();
  #step = 0;

  /** The next operation; the model is updated as if it had been applied. */
  next(): CrashOperation {
    const step = this.#step++;
    const group = CRASH_GROUPS[step % CRASH_GROUPS.length]!;
    const g = this.groups.get(group) ?? { hardState: { term: 1, vote: "n1", commit: 0 }, snapshotIndex: null, snapshotData: null, entries: [] };
    this.groups.set(group, g);
    const ordinal = Math.floor(step / CRASH_GROUPS.length);
    if (ordinal % SNAPSHOT_EVERY === SNAPSHOT_EVERY - 1 && g.hardState.commit > (g.snapshotIndex ?? 0)) {
      const index = g.hardState.commit;
      const data = new Uint8Array(SNAPSHOT_BYTES).fill(step & 0xff);
      g.snapshotIndex = index;
      g.snapshotData = data;
      g.entries = g.entries.filter((e) => e.index > index);
      return { kind: "snapshot", group, snapshot: { metadata: { index, term: 1, confState: { voters: ["n1"], learners: [] } }, data } };
    }
    const writes = [this.#append(group, g, step, 2)];
    // Every GROUP_COMMIT_EVERY-th step also appends to the other group in the same batch (group commit).
    if (step % GROUP_COMMIT_EVERY === GROUP_COMMIT_EVERY - 1) {
      const other = CRASH_GROUPS[(step + 1) % CRASH_GROUPS.length]!;
      const o = this.groups.get(other);
      if (o !== undefined) writes.push(this.#append(other, o, step, 1));
    }
    return { kind: "write", writes };
  }

  #append(group: string, g: ModelGroup, step: number, count: number): GroupWrite {
    const last = g.entries[g.entries.length - 1]?.index ?? g.snapshotIndex ?? 0;
    const added: Entry[] = Array.from({ length: count }, (_, i) => ({
      index: last + i + 1,
      term: 1,
      type: "normal",
      data: new Uint8Array(ENTRY_BYTES).fill((step + i) & 0xff),
    }));
    g.entries.push(...added);
    g.hardState = { term: 1, vote: "n1", commit: last };
    return { group, hardState: g.hardState, entries: added, snapshot: null };
  }
}

export async function applyCrashOperation(store: LogStore, operation: CrashOperation): Promise<void> {
  if (operation.kind === "write") await store.write(operation.writes, { sync: true });
  else await store.saveSnapshot(operation.group, operation.snapshot);
}

async function main(dir: string): Promise<void> {
  const store = await openLevelLogStore({ dir, durability: "fsync" });
  const workload = new CrashWorkload();
  for (let n = 1; ; n++) {
    await applyCrashOperation(store, workload.next());
    process.stdout.write(`ack ${n}\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error("usage: log-store-crash-child.ts <dir>");
  main(dir).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
