/**
 * MemoryLogStore: the in-memory twin of LevelLogStore, for the simulator and tests. It runs the same
 * logic and on-disk format (log-store-core.ts, log-store-codec.ts) over maps instead of LevelDB and files.
 *
 * Crash simulation: the engine keeps two images, like a disk and its page cache.
 *   - `current`: everything written; what the running store reads.
 *   - `durable`: what survives a crash. A batch or file written with sync (and durability "fsync") makes
 *     every earlier unsynced write durable too, in order, as an fsync does.
 * `crash()` ends this store and returns a new one over the durable image; `unsyncedWritesKept` keeps a
 * prefix of the unsynced writes (the OS had flushed some of them), each write whole: a LevelDB batch is
 * atomic across a crash. Fault injection: corruptEntry / corruptHardState / corruptSnapshot flip a byte of
 * a stored record in both images, removeEntry drops one, so load() can be tested against torn tails and
 * corruption exactly as on disk.
 */

import { LogStoreCore, type KvOp, type KvRecord, type StoreEngine } from "./log-store-core.ts";
import {
  decodeStateRecord,
  entryKey,
  entryPrefix,
  metaKey,
  stateKey,
} from "./log-store-codec.ts";
import type { LogStoreDurability } from "./log-store.ts";

/** Unsynced writes kept for a crash to discard; beyond it the oldest become durable (OS writeback). */
export const MEMORY_UNSYNCED_WRITES_MAX = 100_000;

type Key = string; // latin1: one char per byte, so string order is byte order

interface Image {
  readonly kv: Map<Key, Uint8Array>;
  readonly files: Map<string, Uint8Array>;
}

type PendingWrite =
  | { readonly type: "batch"; readonly ops: readonly KvOp[] }
  | { readonly type: "file"; readonly name: string; readonly bytes: Uint8Array | null };

function toKey(bytes: Uint8Array): Key {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

function fromKey(key: Key): Uint8Array {
  return Buffer.from(key, "latin1");
}

function cloneImage(image: Image): Image {
  return { kv: new Map(image.kv), files: new Map(image.files) };
}

function applyWrite(image: Image, write: PendingWrite): void {
  if (write.type === "batch") {
    for (const op of write.ops) {
      if (op.type === "put") image.kv.set(toKey(op.key), op.value);
      else image.kv.delete(toKey(op.key));
    }
  } else if (write.bytes === null) {
    image.files.delete(write.name);
  } else {
    image.files.set(write.name, write.bytes);
  }
}

class MemoryEngine implements StoreEngine {
  readonly description = "memory log store";
  readonly current: Image;
  readonly durable: Image;
  /** Writes in `current` but not yet in `durable`, oldest first. Bounded by MEMORY_UNSYNCED_WRITES_MAX. */
  readonly pending: PendingWrite[] = [];

  constructor(durable: Image, current: Image) {
    this.durable = durable;
    this.current = current;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.current.kv.get(toKey(key));
  }

  async range(gte: Uint8Array, lt: Uint8Array, limit: number): Promise<KvRecord[]> {
    const low = toKey(gte);
    const high = toKey(lt);
    const keys: Key[] = [];
    for (const key of this.current.kv.keys()) if (key >= low && key < high) keys.push(key);
    keys.sort();
    return keys.slice(0, limit).map((key) => [fromKey(key), this.current.kv.get(key)!] as const);
  }

  /** Set by MemoryLogStore.failNextWrite: the next batch or file write throws it, changing nothing. */
  failure: Error | null = null;

  #takeFailure(): void {
    const failure = this.failure;
    this.failure = null;
    if (failure !== null) throw failure;
  }

  async batch(ops: readonly KvOp[], sync: boolean): Promise<void> {
    this.#takeFailure();
    // Not copied: the core builds fresh buffers for every batch and never touches them again.
    this.#record({ type: "batch", ops }, sync);
  }

  async writeFile(name: string, chunks: readonly Uint8Array[], sync: boolean): Promise<void> {
    this.#takeFailure();
    this.#record({ type: "file", name, bytes: Buffer.concat(chunks) }, sync);
  }

  async readFile(name: string): Promise<Uint8Array | null> {
    return this.current.files.get(name) ?? null;
  }

  async listFiles(): Promise<string[]> {
    return [...this.current.files.keys()].sort();
  }

  async deleteFiles(names: readonly string[]): Promise<void> {
    // An unlink without a directory fsync: durable only with the next sync.
    for (const name of names) this.#record({ type: "file", name, bytes: null }, false);
  }

  async close(): Promise<void> {}

  #record(write: PendingWrite, sync: boolean): void {
    applyWrite(this.current, write);
    this.pending.push(write);
    if (sync) this.flush();
    while (this.pending.length > MEMORY_UNSYNCED_WRITES_MAX) applyWrite(this.durable, this.pending.shift()!);
  }

  /** fsync: every pending write becomes durable, in order. */
  flush(): void {
    for (const write of this.pending) applyWrite(this.durable, write);
    this.pending.length = 0;
  }

  /** The image a crash leaves: the durable one plus the first `kept` unsynced writes. */
  crashImage(kept: number): Image {
    const image = cloneImage(this.durable);
    for (const write of this.pending.slice(0, Math.max(0, kept))) applyWrite(image, write);
    return image;
  }

  /** Replaces a stored value in both images (fault injection). */
  mutate(key: Uint8Array, change: (value: Uint8Array) => Uint8Array | null): boolean {
    const k = toKey(key);
    let found = false;
    for (const image of [this.current, this.durable]) {
      const value = image.kv.get(k);
      if (value === undefined) continue;
      found = true;
      const next = change(Uint8Array.from(value));
      if (next === null) image.kv.delete(k);
      else image.kv.set(k, next);
    }
    return found;
  }

  mutateFile(name: string, change: (bytes: Uint8Array) => Uint8Array | null): boolean {
    let found = false;
    for (const image of [this.current, this.durable]) {
      const bytes = image.files.get(name);
      if (bytes === undefined) continue;
      found = true;
      const next = change(Uint8Array.from(bytes));
      if (next === null) image.files.delete(name);
      else image.files.set(name, next);
    }
    return found;
  }
}

export interface MemoryLogStoreOptions {
  /** Default "fsync". With "none", nothing is durable until MEMORY_UNSYNCED_WRITES_MAX pushes it out. */
  readonly durability?: LogStoreDurability;
}

export interface CrashOptions {
  /** How many of the unsynced writes (oldest first) survive the crash. Default 0. */
  readonly unsyncedWritesKept?: number;
}

/** Which byte of a record to flip: an offset from its start, or from its end when negative. */
export interface CorruptOptions {
  readonly byteOffset?: number;
}

function flipByte(bytes: Uint8Array, byteOffset: number): Uint8Array {
  const offset = byteOffset < 0 ? bytes.length + byteOffset : byteOffset;
  if (offset < 0 || offset >= bytes.length) throw new RangeError(`byte offset ${byteOffset} outside ${bytes.length} bytes`);
  bytes[offset] = bytes[offset]! ^ 0xff;
  return bytes;
}

/** Hands a crash image to the constructor without making it part of the public options. */
const CRASH_IMAGE = Symbol("crashImage");

export class MemoryLogStore extends LogStoreCore {
  readonly #engine: MemoryEngine;
  readonly #durability: LogStoreDurability;

  /** A fresh, empty store. Opening is synchronous; operations queue behind the (in-memory) open. */
  constructor(options: MemoryLogStoreOptions & { readonly [CRASH_IMAGE]?: Image } = {}) {
    const durability = options.durability ?? "fsync";
    const image = options[CRASH_IMAGE] ?? { kv: new Map(), files: new Map() };
    const engine = new MemoryEngine(image, cloneImage(image));
    super(engine, durability);
    this.#engine = engine;
    this.#durability = durability;
    // Errors of the open (a corrupt format record) reject every operation instead.
    this.beginInit().catch(() => undefined);
  }

  /**
   * Simulates a process crash or power loss: this store stops working (every later call rejects), and
   * the returned store sees only what was durable, plus the first `unsyncedWritesKept` unsynced writes.
   * Operations still in flight on this store when crash() is called are not waited for.
   */
  crash(options: CrashOptions = {}): MemoryLogStore {
    this.markClosed();
    const image = this.#engine.crashImage(options.unsyncedWritesKept ?? 0);
    return new MemoryLogStore({ durability: this.#durability, [CRASH_IMAGE]: image });
  }

  /** Number of writes (batches and file operations) that a crash would lose now. */
  get unsyncedWrites(): number {
    return this.#engine.pending.length;
  }

  /** Flips a byte of the stored record of entry `index` (default: its last byte). Returns false if absent. */
  corruptEntry(group: string, index: number, options: CorruptOptions = {}): boolean {
    return this.#engine.mutate(entryKey(entryPrefix(group), index), (value) => flipByte(value, options.byteOffset ?? -1));
  }

  /** Removes the stored record of entry `index`, as a lost write would. Returns false if absent. */
  removeEntry(group: string, index: number): boolean {
    return this.#engine.mutate(entryKey(entryPrefix(group), index), () => null);
  }

  /**
   * Makes the next batch or snapshot file write fail with `error` (an EIO, a full disk). A failed batch
   * leaves the store refusing every later operation until it is replaced (crash()), as after an fsync
   * error on a real disk.
   */
  failNextWrite(error: Error = Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" })): void {
    this.#engine.failure = error;
  }

  /** Names of the snapshot files currently stored (what a directory listing would show). */
  snapshotFileNames(): string[] {
    return [...this.#engine.current.files.keys()].sort();
  }

  /** Flips a byte of a stored node metadata record. */
  corruptMeta(key: string, options: CorruptOptions = {}): boolean {
    return this.#engine.mutate(metaKey(key), (value) => flipByte(value, options.byteOffset ?? -1));
  }

  /** Flips a byte of the group's state record (hard state, last index, snapshot pointer). */
  corruptHardState(group: string, options: CorruptOptions = {}): boolean {
    return this.#engine.mutate(stateKey(group), (value) => flipByte(value, options.byteOffset ?? -1));
  }

  /** Flips a byte of the group's current snapshot file (default: its last byte), or removes it. */
  corruptSnapshot(group: string, options: CorruptOptions & { remove?: boolean } = {}): boolean {
    const key = stateKey(group);
    const raw = this.#engine.current.kv.get(Buffer.from(key).toString("latin1"));
    if (raw === undefined) return false;
    const file = decodeStateRecord(key, raw).snapshot?.file;
    if (file === undefined) return false;
    return this.#engine.mutateFile(file, (bytes) => (options.remove === true ? null : flipByte(bytes, options.byteOffset ?? -1)));
  }
}
