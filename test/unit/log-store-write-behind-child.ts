/**
 * The child process of test/unit/log-store-write-behind.test.ts: opens a LevelLogStore with durability
 * "none" (write-behind) in <dir> and runs the crash workload forever, printing "ack <n>" once operation
 * n's promise has resolved. Usage: `node --import tsx log-store-write-behind-child.ts <dir>
 * <flushIntervalMs> <writeBehindBytesMax>`.
 */

import { pathToFileURL } from "node:url";
import { openLevelLogStore } from "../../src/node/log-store-level.ts";
import { CrashWorkload, applyCrashOperation } from "./log-store-crash-child.ts";

async function main(dir: string, flushIntervalMs: number, writeBehindBytesMax: number): Promise<void> {
  const store = await openLevelLogStore({ dir, durability: "none", flushIntervalMs, writeBehindBytesMax });
  const workload = new CrashWorkload();
  for (let n = 1; ; n++) {
    await applyCrashOperation(store, workload.next());
    process.stdout.write(`ack ${n}\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [dir, interval, bytes] = process.argv.slice(2);
  if (dir === undefined || interval === undefined || bytes === undefined) {
    throw new Error("usage: log-store-write-behind-child.ts <dir> <flushIntervalMs> <writeBehindBytesMax>");
  }
  main(dir, Number(interval), Number(bytes)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
