/**
 * The child process of test/unit/log-store-write-behind.test.ts: opens a LevelLogStore with durability
 * "none" (write-behind) in <dir> and runs the crash workload forever, printing "ack <n>" once operation
 * n's promise has resolved. Usage: `node --import tsx log-store-write-behind-child.ts <dir>
 * <flushIntervalMs> <writeBehindBytesMax> [stopAfter]`. With stopAfter, it runs exactly that many
 * operations and then idles (no flush timer fires within the test) until it is killed, so what
 * reached the disk does not depend on how quickly the kill lands on a loaded machine.
 */

import { pathToFileURL } from "node:url";
import { openLevelLogStore } from "../../src/node/log-store-level.ts";
import { CrashWorkload, applyCrashOperation } from "./log-store-crash-child.ts";

/** Idle time after stopAfter operations: the parent kills the child long before. */
const IDLE_MS = 120_000;

async function main(dir: string, flushIntervalMs: number, writeBehindBytesMax: number, stopAfter: number): Promise<void> {
  const store = await openLevelLogStore({ dir, durability: "none", flushIntervalMs, writeBehindBytesMax });
  const workload = new CrashWorkload();
  for (let n = 1; n <= stopAfter; n++) {
    await applyCrashOperation(store, workload.next());
    process.stdout.write(`ack ${n}\n`);
  }
  // Keep the store open (nothing flushed, nothing closed) until the kill.
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  process.exit(3);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [dir, interval, bytes, stop] = process.argv.slice(2);
  if (dir === undefined || interval === undefined || bytes === undefined) {
    throw new Error("usage: log-store-write-behind-child.ts <dir> <flushIntervalMs> <writeBehindBytesMax> [stopAfter]");
  }
  main(dir, Number(interval), Number(bytes), stop === undefined ? Number.POSITIVE_INFINITY : Number(stop)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
