/**
 * LevelLogStore: the production log store. One `level` (LevelDB) database per node in <dir>/level holds
 * every group's entries, state records and the node metadata; snapshots are files in <dir>/snapshots.
 * The logic and record format are shared with the memory twin (log-store-core.ts, log-store-codec.ts).
 *
 * Durability ("fsync"): every write() is ONE LevelDB batch, written with { sync: true } when asked (group
 * commit: the driver batches all groups of one loop turn). Snapshot files are written to a temp file,
 * fsynced, renamed and the directory fsynced before the batch that points at them.
 *
 * Durability "none" is NATS's lazy sync, and UNSAFE (benchmarks and negative-control fault tests only):
 * writes are acknowledged from memory and reach LevelDB later, from a write-behind buffer flushed every
 * flushIntervalMs or as soon as it holds writeBehindBytesMax bytes, and never fsynced. A kill -9 loses
 * up to flushIntervalMs of acknowledged writes (a plain write without sync would survive a process crash
 * in the OS page cache, which would make "none" look safe under process faults). Buffered batches are
 * flushed, in order and as one LevelDB batch, before anything reads the database, writes or deletes a
 * snapshot file, and on close; so a crash leaves a prefix of the writes, never a mix.
 *
 * Integrity: before LevelDB opens the directory, log-store-leveldb-verify.ts checks every table block and
 * write-ahead-log record, because LevelDB (as classic-level opens it) would otherwise drop damaged log
 * records silently. Open failures LevelDB reports as corruption, or as a missing file, become
 * CairnError("CORRUPT_DATA"); a data directory in use by another process is INTERNAL.
 */

import { access, mkdir, open, readFile, readdir, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Level } from "level";
import { CairnError } from "../shared/errors.ts";
import { LogStoreCore, type KvOp, type KvRecord, type StoreEngine } from "./log-store-core.ts";
import { asBuffer, corrupt, describe } from "./log-store-codec.ts";
import { verifyLevelDbDirectory } from "./log-store-leveldb-verify.ts";
import type { LevelLogStoreOptions, LogStore, LogStoreDurability } from "./log-store.ts";

const SNAPSHOT_DIR = "snapshots";
const LEVEL_DIR = "level";
const TEMP_SUFFIX = ".tmp";

/**
 * Written (and fsynced) once the LevelDB format record is durable. If LevelDB later opens without that
 * record (its files wiped or a damaged MANIFEST dropping every table), the marker tells data loss apart
 * from a brand-new store, which would otherwise come up empty and rejoin the cluster with no log.
 */
const MARKER_FILE = "CAIRN-LOG-STORE";
const MARKER_TEXT = "cairn log store: a level database in level/, snapshot files in snapshots/\n";

type Db = Level<Buffer, Buffer>;

async function writeMarker(dir: string, path: string, sync: boolean): Promise<void> {
  const handle = await open(path, "w");
  try {
    await handle.writeFile(MARKER_TEXT);
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
  if (sync) await syncDirectory(dir);
}

/** fsync a directory so a rename or create inside it survives power loss. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

class LevelEngine implements StoreEngine {
  readonly description: string;
  readonly #db: Db;
  readonly #snapshotDir: string;

  constructor(db: Db, levelDir: string, snapshotDir: string) {
    this.#db = db;
    this.#snapshotDir = snapshotDir;
    this.description = `LevelDB at ${levelDir}`;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return (await this.#db.get(asBuffer(key))) ?? undefined;
  }

  async range(gte: Uint8Array, lt: Uint8Array, limit: number): Promise<KvRecord[]> {
    // all() closes the iterator, also when it fails.
    return await this.#db.iterator({ gte: asBuffer(gte), lt: asBuffer(lt), limit }).all();
  }

  async batch(ops: readonly KvOp[], sync: boolean): Promise<void> {
    // A chained batch: abstract-level's array form clones and re-encodes every operation object, which
    // measured 4-6x slower for 1024-entry batches (bench/log-store.ts).
    const batch = this.#db.batch();
    try {
      for (const op of ops) {
        if (op.type === "put") batch.put(asBuffer(op.key), asBuffer(op.value));
        else batch.del(asBuffer(op.key));
      }
    } catch (error) {
      await batch.close();
      throw error;
    }
    await batch.write({ sync });
  }

  async writeFile(name: string, chunks: readonly Uint8Array[], sync: boolean): Promise<void> {
    const path = join(this.#snapshotDir, name);
    const temp = path + TEMP_SUFFIX;
    const handle = await open(temp, "w");
    try {
      for (const chunk of chunks) {
        for (let written = 0; written < chunk.length; ) {
          const { bytesWritten } = await handle.write(chunk, written, chunk.length - written);
          written += bytesWritten;
        }
      }
      if (sync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    if (sync) await syncDirectory(this.#snapshotDir);
  }

  async readFile(name: string): Promise<Uint8Array | null> {
    try {
      return await readFile(join(this.#snapshotDir, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }

  async listFiles(): Promise<string[]> {
    return (await readdir(this.#snapshotDir)).sort();
  }

  async deleteFiles(names: readonly string[]): Promise<void> {
    for (const name of names) {
      await unlink(join(this.#snapshotDir, name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") throw error;
      });
    }
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}

/** The write-behind buffer of durability "none" (see the module comment). */
export const WRITE_BEHIND_DEFAULTS = {
  /** Longest time an acknowledged write stays in memory only. */
  flushIntervalMs: 1000,
  /** Buffered bytes (keys + values) at which a write waits for a flush instead of returning at once. */
  writeBehindBytesMax: 16 * 1024 * 1024,
} as const;

/**
 * Wraps the LevelDB engine for durability "none": batch() returns once the batch is buffered. Flushes are
 * serialized; a failed flush leaves the engine's state unknown, so every later call throws its error.
 */
class WriteBehindEngine implements StoreEngine {
  readonly description: string;
  readonly #inner: StoreEngine;
  readonly #flushIntervalMs: number;
  readonly #bytesMax: number;
  /** Batches not yet written, oldest first. Their size is bounded by #bytesMax (plus one batch). */
  #pending: (readonly KvOp[])[] = [];
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  #failure: unknown = null;

  constructor(inner: StoreEngine, flushIntervalMs: number, bytesMax: number) {
    this.#inner = inner;
    this.#flushIntervalMs = flushIntervalMs;
    this.#bytesMax = bytesMax;
    this.description = `${inner.description} (durability none: write-behind, ${flushIntervalMs} ms)`;
  }

  async batch(ops: readonly KvOp[], _sync: boolean): Promise<void> {
    this.#throwIfFailed();
    this.#pending.push(ops.slice());
    for (const op of ops) this.#pendingBytes += op.key.length + (op.type === "put" ? op.value.length : 0);
    if (this.#pendingBytes >= this.#bytesMax) {
      await this.flush();
      return;
    }
    if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        // A failure is kept in #failure and thrown by the next call.
        this.flush().catch(() => undefined);
      }, this.#flushIntervalMs);
      this.#timer.unref();
    }
  }

  /** Writes every buffered batch (one LevelDB batch, no fsync); resolves when they are in LevelDB. */
  async flush(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing.catch(() => undefined);
    this.#throwIfFailed();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#pending.length === 0) return;
    const ops = this.#pending.length === 1 ? this.#pending[0]! : this.#pending.flat();
    this.#pending = [];
    this.#pendingBytes = 0;
    const flushing = this.#inner.batch(ops, false);
    this.#flushing = flushing;
    try {
      await flushing;
    } catch (error) {
      this.#failure = error;
      throw error;
    } finally {
      this.#flushing = null;
    }
  }

  #throwIfFailed(): void {
    if (this.#failure !== null) throw this.#failure;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    await this.flush();
    return this.#inner.get(key);
  }

  async range(gte: Uint8Array, lt: Uint8Array, limit: number): Promise<KvRecord[]> {
    await this.flush();
    return this.#inner.range(gte, lt, limit);
  }

  async writeFile(name: string, chunks: readonly Uint8Array[], sync: boolean): Promise<void> {
    await this.flush();
    return this.#inner.writeFile(name, chunks, sync);
  }

  readFile(name: string): Promise<Uint8Array | null> {
    return this.#inner.readFile(name);
  }

  listFiles(): Promise<string[]> {
    return this.#inner.listFiles();
  }

  /** A batch that stops pointing at these files may still be buffered: write it first. */
  async deleteFiles(names: readonly string[]): Promise<void> {
    await this.flush();
    return this.#inner.deleteFiles(names);
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.#inner.close();
    }
  }
}

class LevelLogStore extends LogStoreCore {
  constructor(engine: StoreEngine, durability: LogStoreDurability, repairs: readonly string[], existed: boolean, recoverLost: boolean) {
    super(engine, durability, { repairs, existed, recoverLost });
  }

  open(): Promise<void> {
    return this.beginInit();
  }
}

/** Maps a failed LevelDB open to CORRUPT_DATA (damage, missing files) or INTERNAL (lock, I/O). */
function openError(error: unknown, levelDir: string): CairnError {
  const cause = (error as { cause?: unknown }).cause ?? error;
  const code = (cause as { code?: unknown }).code;
  const message = describe(cause);
  if (code === "LEVEL_LOCKED") {
    return new CairnError("INTERNAL", `LevelDB at ${levelDir} is in use by another process: ${message}`, {}, { cause: error });
  }
  if (code === "LEVEL_CORRUPTION" || /No such file|missing files?/i.test(message)) {
    return corrupt(`LevelDB at ${levelDir} cannot be opened, its files are damaged: ${message}`, error);
  }
  return new CairnError("INTERNAL", `LevelDB at ${levelDir} cannot be opened: ${message}`, {}, { cause: error });
}

function positiveOption(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive integer`);
  return value;
}

/**
 * Opens (creating if needed) the log store in `options.dir`. Throws CairnError("CORRUPT_DATA") naming
 * the damaged file when the directory fails verification.
 */
export async function openLevelLogStore(options: LevelLogStoreOptions): Promise<LogStore> {
  if (typeof options?.dir !== "string" || options.dir.length === 0) throw new TypeError("dir must be a non-empty string");
  if (options.durability !== "fsync" && options.durability !== "none") {
    throw new TypeError('durability must be "fsync" or "none"');
  }
  if (options.lostStore !== undefined && options.lostStore !== "refuse" && options.lostStore !== "recover") {
    throw new TypeError('lostStore must be "refuse" or "recover"');
  }
  const levelDir = join(options.dir, LEVEL_DIR);
  const snapshotDir = join(options.dir, SNAPSHOT_DIR);
  await mkdir(levelDir, { recursive: true });
  await mkdir(snapshotDir, { recursive: true });
  if (options.durability === "fsync") await syncDirectory(options.dir);
  const check = await verifyLevelDbDirectory(levelDir);
  const db: Db = new Level<Buffer, Buffer>(levelDir, { keyEncoding: "buffer", valueEncoding: "buffer" });
  try {
    await db.open();
  } catch (error) {
    throw openError(error, levelDir);
  }
  const marker = join(options.dir, MARKER_FILE);
  const existed = await access(marker).then(
    () => true,
    () => false,
  );
  const level = new LevelEngine(db, levelDir, snapshotDir);
  const writeBehind =
    options.durability === "none"
      ? new WriteBehindEngine(
          level,
          positiveOption(options.flushIntervalMs, "flushIntervalMs", WRITE_BEHIND_DEFAULTS.flushIntervalMs),
          positiveOption(options.writeBehindBytesMax, "writeBehindBytesMax", WRITE_BEHIND_DEFAULTS.writeBehindBytesMax),
        )
      : null;
  const store = new LevelLogStore(writeBehind ?? level, options.durability, check.repairs, existed, options.lostStore === "recover");
  try {
    await store.open();
    // The marker says "this directory held a store": the format record must be in LevelDB before it.
    await writeBehind?.flush();
    if (!existed) await writeMarker(options.dir, marker, options.durability === "fsync");
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
  return store;
}
