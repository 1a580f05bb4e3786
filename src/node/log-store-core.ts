/**
 * The log store's logic, written once over a small storage engine (an ordered key/value map with atomic
 * batches, plus a directory of snapshot files). LevelLogStore runs it over `level` and the file system;
 * MemoryLogStore over maps with a "durable" and an "unsynced" image. Both therefore share the write path,
 * the checksums and the torn-tail-vs-corruption rules, and the conformance suite proves both engines.
 *
 * Crash atomicity comes from the engine's batch: every write(), saveSnapshot() and the first step of
 * deleteGroup() is one batch. Snapshot files are written (temp file, fsync, rename, directory fsync) before
 * the batch that points the group at them, and superseded files are removed after it; a crash in between
 * leaves an unreferenced file that the next open removes.
 */

import type { Entry, HardState, Snapshot } from "../raft/types.ts";
import { AssertionError, assert } from "../shared/assert.ts";
import { CairnError } from "../shared/errors.ts";
import {
  EMPTY_HARD_STATE,
  FORMAT_KEY,
  LOG_STORE_LIMITS,
  RecordDamage,
  STATE_RANGE,
  checkFormatRecord,
  corrupt,
  decodeEntryRecord,
  decodeMetaRecord,
  decodeSnapshotFile,
  decodeStateRecord,
  describe,
  encodeEntryRecordInto,
  encodeFormatRecord,
  encodeMetaRecord,
  encodeSnapshotFile,
  encodeStateRecord,
  entryKey,
  entryKeyBytes,
  entryKeyInto,
  entryPrefix,
  entryRange,
  entryRecordBytes,
  groupFromStateKey,
  indexFromEntryKey,
  metaKey,
  parseSnapshotFileName,
  safeGroupName,
  snapshotFileName,
  stateKey,
  validateEntry,
  validateGroupName,
  validateHardState,
  validateMetaKey,
  validateSnapshot,
  type GroupState,
  type SnapshotRef,
} from "./log-store-codec.ts";
import type { GroupWrite, LoadedGroup, LogStore, LogStoreDurability, LogStoreOrigin } from "./log-store.ts";

export type KvOp =
  | { readonly type: "put"; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: "del"; readonly key: Uint8Array };

export type KvRecord = readonly [key: Uint8Array, value: Uint8Array];

/** What the core needs from a storage engine. Errors are thrown raw; the core names the context. */
export interface StoreEngine {
  /** Where the data lives, for messages ("LevelDB at /data/n1/level"). */
  readonly description: string;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Up to `limit` records with gte <= key < lt, ascending. */
  range(gte: Uint8Array, lt: Uint8Array, limit: number): Promise<KvRecord[]>;
  /** Applies every op or none, in order; with sync=true durable before resolving. */
  batch(ops: readonly KvOp[], sync: boolean): Promise<void>;
  /** Atomically creates or replaces a file of the snapshots directory (temp + fsync + rename + dir fsync). */
  writeFile(name: string, chunks: readonly Uint8Array[], sync: boolean): Promise<void>;
  /** null when the file does not exist. */
  readFile(name: string): Promise<Uint8Array | null>;
  listFiles(): Promise<string[]>;
  deleteFiles(names: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

const EVERY_KEY: readonly [Uint8Array, Uint8Array] = [new Uint8Array(0), new Uint8Array([0xff, 0xff])];

/** Maps an engine error to a CairnError naming what was being read or written. */
export function engineError(error: unknown, context: string): CairnError {
  if (error instanceof CairnError) return error;
  if (error instanceof AssertionError) throw error;
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 8; depth++) {
    if ((cause as { code?: unknown }).code === "LEVEL_CORRUPTION") {
      return corrupt(`${context}: storage engine reports corruption: ${cause.message}`, error);
    }
    cause = (cause as { cause?: unknown }).cause;
  }
  return new CairnError("INTERNAL", `${context}: ${describe(error)}`, {}, { cause: error });
}

/** Per-write() bookkeeping: the terms of entries staged so far, per group (several GroupWrites per group). */
type StagedTerms = Map<number, number>;

interface WritePlan {
  readonly ops: KvOp[];
  readonly states: Map<string, GroupState>;
  readonly terms: Map<string, StagedTerms>;
  readonly newFiles: string[];
  readonly oldFiles: string[];
}

export class LogStoreCore implements LogStore {
  readonly #engine: StoreEngine;
  readonly #durable: boolean;
  /** The decodable state record of every stored group. Invariant: mirrors the engine after each batch. */
  readonly #states = new Map<string, GroupState>();
  /** Groups whose state record is damaged, with why: every operation on them throws CORRUPT_DATA. */
  readonly #damaged = new Map<string, string>();
  readonly #repairs: string[];
  /** Every operation runs alone, in call order: the write path reads state that earlier writes change. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** After a failed write the engine's state is unknown (fsyncgate): refuse everything until restart. */
  #failure: CairnError | null = null;
  #fileSequence = 1;

  /** True when the engine is known to have held a store before (so a missing format record means loss). */
  readonly #existed: boolean;
  /** With #existed and no format record: start empty (origin "lost") instead of throwing CORRUPT_DATA. */
  readonly #recoverLost: boolean;
  #origin: LogStoreOrigin = "existing";

  protected constructor(
    engine: StoreEngine,
    durability: LogStoreDurability,
    options: { readonly repairs?: readonly string[]; readonly existed?: boolean; readonly recoverLost?: boolean } = {},
  ) {
    this.#engine = engine;
    this.#durable = durability === "fsync";
    this.#repairs = [...(options.repairs ?? [])];
    this.#existed = options.existed ?? false;
    this.#recoverLost = options.recoverLost ?? false;
  }

  get repairs(): readonly string[] {
    return this.#repairs;
  }

  get origin(): LogStoreOrigin {
    return this.#origin;
  }

  // -------------------------------------------------------------------------------------------------
  // Opening

  /**
   * Starts opening the store: every operation queues behind it, and if it fails every operation rejects
   * with its error. Subclasses call it once from their constructor; await the result to surface open
   * errors at once (openLevelLogStore does).
   */
  protected beginInit(): Promise<void> {
    const init = this.#init();
    this.#queue = init.catch((error: unknown) => {
      this.#failure = error instanceof CairnError ? error : engineError(error, "opening the log store");
    });
    return init;
  }

  async #init(): Promise<void> {
    const engine = this.#engine;
    const format = await this.#get(FORMAT_KEY, "format record");
    if (format === undefined) {
      if (this.#existed && !this.#recoverLost) {
        throw corrupt(`${engine.description}: the format record is gone although this directory held a cairn log store (data lost)`);
      }
      const any = await this.#range(EVERY_KEY[0], EVERY_KEY[1], 1, "first key");
      if (any.length > 0) {
        throw corrupt(`${engine.description}: holds data but no cairn format record (foreign or damaged data directory)`);
      }
      this.#origin = this.#existed ? "lost" : "new";
      if (this.#existed) {
        this.#repairs.push(`${engine.description}: the format record is gone although this directory held a cairn log store: everything it held is lost, starting empty`);
      }
      await this.#batch([{ type: "put", key: FORMAT_KEY, value: encodeFormatRecord() }], this.#durable, "format record");
    } else {
      try {
        checkFormatRecord(format);
      } catch (error) {
        throw corrupt(`${engine.description}: format record: ${describe(error)}`, error);
      }
    }
    await this.#loadStates();
    await this.#removeOrphanFiles();
  }

  async #loadStates(): Promise<void> {
    let gte: Uint8Array = STATE_RANGE[0];
    for (;;) {
      const chunk = await this.#range(gte, STATE_RANGE[1], LOG_STORE_LIMITS.rangeChunkRecordsMax, "group states");
      for (const [key, value] of chunk) {
        let group: string;
        try {
          group = groupFromStateKey(key);
        } catch (error) {
          throw corrupt(`${this.#engine.description}: state key ${Buffer.from(key).toString("hex")} is not a group name`, error);
        }
        try {
          this.#states.set(group, decodeStateRecord(key, value));
        } catch (error) {
          if (!(error instanceof RecordDamage)) throw error;
          this.#damaged.set(group, `hard state record damaged: ${error.message}`);
        }
      }
      if (chunk.length < LOG_STORE_LIMITS.rangeChunkRecordsMax) return;
      gte = keyAfter(chunk[chunk.length - 1]![0]);
    }
  }

  /** Removes snapshot files no group points at (left by a crash between a file write and its batch). */
  async #removeOrphanFiles(): Promise<void> {
    const names = await this.#engine.listFiles().catch((error: unknown) => {
      throw engineError(error, "listing snapshot files");
    });
    for (const name of names) {
      const parsed = parseSnapshotFileName(name);
      if (parsed !== null) this.#fileSequence = Math.max(this.#fileSequence, parsed.sequence + 1);
    }
    // With a damaged state record we cannot tell which file it names: keep every file for inspection.
    if (this.#damaged.size > 0) return;
    const referenced = new Set<string>();
    for (const state of this.#states.values()) if (state.snapshot !== null) referenced.add(state.snapshot.file);
    await this.#deleteFilesQuietly(names.filter((name) => !referenced.has(name)));
  }

  // -------------------------------------------------------------------------------------------------
  // Public operations: validate, then run serialized

  write(writes: readonly GroupWrite[], options: { sync: boolean }): Promise<void> {
    if (!Array.isArray(writes)) return Promise.reject(new TypeError("writes must be an array"));
    if (typeof options?.sync !== "boolean") return Promise.reject(new TypeError("options.sync must be a boolean"));
    try {
      writes.forEach((write, i) => validateGroupWrite(write, `writes[${i}]`));
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(() => this.#write(writes, options.sync));
  }

  saveSnapshot(group: string, snapshot: Snapshot): Promise<void> {
    try {
      validateGroupName(group);
      validateSnapshot(snapshot, "snapshot");
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(() => this.#saveSnapshot(group, snapshot));
  }

  load(group: string): Promise<LoadedGroup> {
    try {
      validateGroupName(group);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(() => this.#load(group));
  }

  listGroups(): Promise<string[]> {
    return this.#run(async () => [...this.#states.keys(), ...this.#damaged.keys()].sort());
  }

  deleteGroup(group: string): Promise<void> {
    try {
      validateGroupName(group);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(() => this.#deleteGroup(group));
  }

  getMeta(key: string): Promise<Uint8Array | null> {
    try {
      validateMetaKey(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(async () => {
      const storedKey = metaKey(key);
      const value = await this.#get(storedKey, `node metadata ${JSON.stringify(key)}`);
      if (value === undefined) return null;
      try {
        return Uint8Array.from(decodeMetaRecord(storedKey, value));
      } catch (error) {
        throw corrupt(`node metadata ${JSON.stringify(key)} damaged: ${describe(error)}`, error);
      }
    });
  }

  setMeta(key: string, value: Uint8Array): Promise<void> {
    try {
      validateMetaKey(key);
      if (!(value instanceof Uint8Array)) throw new TypeError("meta value must be a Uint8Array");
      if (value.length > LOG_STORE_LIMITS.metaValueBytesMax) {
        throw new TypeError(`meta value longer than ${LOG_STORE_LIMITS.metaValueBytesMax} bytes`);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(async () => {
      const storedKey = metaKey(key);
      const op: KvOp = { type: "put", key: storedKey, value: encodeMetaRecord(storedKey, value) };
      await this.#batch([op], this.#durable, `node metadata ${JSON.stringify(key)}`);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    await this.#engine.close();
  }

  /** For twins that simulate a crash: refuse every later call without waiting for anything. */
  protected markClosed(): void {
    this.#closed = true;
  }

  // -------------------------------------------------------------------------------------------------
  // Serialization and engine access

  #run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new CairnError("INTERNAL", "log store is closed"));
    const result = this.#queue.then(() => {
      if (this.#failure !== null) throw this.#failure;
      return operation();
    });
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #get(key: Uint8Array, context: string): Promise<Uint8Array | undefined> {
    try {
      return await this.#engine.get(key);
    } catch (error) {
      throw engineError(error, context);
    }
  }

  async #range(gte: Uint8Array, lt: Uint8Array, limit: number, context: string): Promise<KvRecord[]> {
    try {
      return await this.#engine.range(gte, lt, limit);
    } catch (error) {
      throw engineError(error, context);
    }
  }

  /** A failed batch leaves the engine in an unknown state: the store refuses all later operations. */
  async #batch(ops: readonly KvOp[], sync: boolean, context: string): Promise<void> {
    try {
      await this.#engine.batch(ops, sync);
    } catch (error) {
      this.#failure = new CairnError(
        "INTERNAL",
        `log store failed while writing ${context}; restart the node: ${describe(error)}`,
        {},
        { cause: error },
      );
      throw this.#failure;
    }
  }

  async #deleteFilesQuietly(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    // Best effort: a file left behind is removed by the next open.
    await this.#engine.deleteFiles(names).catch(() => undefined);
  }

  #stateOf(group: string): GroupState | null {
    const damage = this.#damaged.get(group);
    if (damage !== undefined) throw corrupt(`group ${group}: ${damage}`);
    return this.#states.get(group) ?? null;
  }

  // -------------------------------------------------------------------------------------------------
  // write()

  async #write(writes: readonly GroupWrite[], sync: boolean): Promise<void> {
    const plan: WritePlan = { ops: [], states: new Map(), terms: new Map(), newFiles: [], oldFiles: [] };
    for (const write of writes) await this.#planGroupWrite(write, plan);
    if (plan.ops.length === 0) return;
    await this.#batch(plan.ops, sync && this.#durable, `a batch of ${plan.states.size} group(s)`);
    for (const [group, state] of plan.states) this.#states.set(group, state);
    const current = new Set([...plan.states.values()].map((state) => state.snapshot?.file));
    const obsolete = [...plan.oldFiles, ...plan.newFiles].filter((name) => !current.has(name));
    await this.#deleteFilesQuietly([...new Set(obsolete)]);
  }

  async #planGroupWrite(write: GroupWrite, plan: WritePlan): Promise<void> {
    if (write.hardState === null && write.entries.length === 0 && write.snapshot === null) return;
    const group = write.group;
    const prefix = entryPrefix(group);
    let terms = plan.terms.get(group);
    if (terms === undefined) plan.terms.set(group, (terms = new Map()));
    let state = plan.states.get(group) ?? this.#stateOf(group);
    if (state === null) {
      // A new group. Entries may be left from a deleteGroup() that crashed after its first batch.
      await this.#planClearEntries(group, prefix, plan.ops);
      state = { hardState: EMPTY_HARD_STATE, lastIndex: 0, lastTerm: 0, snapshot: null };
    }
    if (write.snapshot !== null) state = await this.#planSnapshotInstall(group, prefix, state, write.snapshot, plan, terms);
    if (write.entries.length > 0) state = await this.#planAppend(group, prefix, state, write.entries, plan.ops, terms);
    if (write.hardState !== null) state = { ...state, hardState: copyHardState(write.hardState) };
    const key = stateKey(group);
    plan.ops.push({ type: "put", key, value: encodeStateRecord(key, state) });
    plan.states.set(group, state);
  }

  async #planClearEntries(group: string, prefix: Buffer, ops: KvOp[]): Promise<void> {
    const [gte, lt] = entryRange(prefix, 0);
    for (let from: Uint8Array = gte; ; ) {
      const chunk = await this.#range(from, lt, LOG_STORE_LIMITS.rangeChunkRecordsMax, `group ${group}: leftover entries`);
      for (const [key] of chunk) ops.push({ type: "del", key });
      if (chunk.length < LOG_STORE_LIMITS.rangeChunkRecordsMax) return;
      from = keyAfter(chunk[chunk.length - 1]![0]);
    }
  }

  /** Raft §7 install: keep the entries after the snapshot only if the log holds its last entry. */
  async #planSnapshotInstall(
    group: string,
    prefix: Buffer,
    state: GroupState,
    snapshot: Snapshot,
    plan: WritePlan,
    terms: StagedTerms,
  ): Promise<GroupState> {
    const { index, term } = snapshot.metadata;
    const currentIndex = state.snapshot?.index ?? 0;
    assert(index >= currentIndex, `group ${group}: installing snapshot ${index} older than the stored one at ${currentIndex}`);
    const ref = await this.#writeSnapshotFile(group, snapshot);
    plan.newFiles.push(ref.file);
    if (state.snapshot !== null) plan.oldFiles.push(state.snapshot.file);
    const keep = index <= state.lastIndex && (await this.#termAt(group, prefix, state, index, terms)) === term;
    const deleteHigh = keep ? index : state.lastIndex;
    for (let i = currentIndex + 1; i <= deleteHigh; i++) {
      plan.ops.push({ type: "del", key: entryKey(prefix, i) });
      terms.delete(i);
    }
    return keep
      ? { ...state, snapshot: ref }
      : { hardState: state.hardState, lastIndex: index, lastTerm: term, snapshot: ref };
  }

  async #planAppend(
    group: string,
    prefix: Buffer,
    state: GroupState,
    entries: readonly Entry[],
    ops: KvOp[],
    terms: StagedTerms,
  ): Promise<GroupState> {
    const snapshotIndex = state.snapshot?.index ?? 0;
    let start = 0;
    while (start < entries.length && entries[start]!.index <= snapshotIndex) start++;
    if (start === entries.length) return state;
    const first = entries[start]!;
    const last = entries[entries.length - 1]!;
    assert(
      first.index <= state.lastIndex + 1,
      `group ${group}: entries start at ${first.index}, leaving a gap after last index ${state.lastIndex}`,
    );
    const prevTerm = await this.#termAt(group, prefix, state, first.index - 1, terms);
    assert(prevTerm !== undefined, `group ${group}: no term for entry ${first.index - 1}`);
    // One buffer for every key and value of this group's entries: one allocation per write.
    const keyBytes = entryKeyBytes(prefix);
    let bytes = 0;
    for (let i = start; i < entries.length; i++) bytes += keyBytes + entryRecordBytes(entries[i]!);
    const buffer = Buffer.allocUnsafe(bytes);
    let offset = 0;
    let previous = prevTerm;
    for (let i = start; i < entries.length; i++) {
      const entry = entries[i]!;
      assert(entry.term >= previous, `group ${group}: entry ${entry.index} has term ${entry.term} < ${previous}`);
      const key = entryKeyInto(buffer, offset, prefix, entry.index);
      offset += keyBytes;
      const value = encodeEntryRecordInto(buffer, offset, key, entry, previous);
      offset += value.length;
      ops.push({ type: "put", key, value });
      terms.set(entry.index, entry.term);
      previous = entry.term;
    }
    for (let i = last.index + 1; i <= state.lastIndex; i++) {
      ops.push({ type: "del", key: entryKey(prefix, i) });
      terms.delete(i);
    }
    return { ...state, lastIndex: last.index, lastTerm: last.term };
  }

  /** The term of the entry at `index` (the snapshot's at its index, 0 at 0); undefined when not in the log. */
  async #termAt(
    group: string,
    prefix: Buffer,
    state: GroupState,
    index: number,
    terms: StagedTerms | null,
  ): Promise<number | undefined> {
    const snapshotIndex = state.snapshot?.index ?? 0;
    if (index === snapshotIndex) return state.snapshot?.term ?? 0;
    if (index === state.lastIndex) return state.lastTerm;
    if (index < snapshotIndex || index > state.lastIndex) return undefined;
    const staged = terms?.get(index);
    if (staged !== undefined) return staged;
    const key = entryKey(prefix, index);
    const value = await this.#get(key, `group ${group}: entry ${index}`);
    if (value === undefined) throw corrupt(`group ${group}: entry ${index} is missing (last index ${state.lastIndex})`);
    try {
      return decodeEntryRecord(key, index, value).entry.term;
    } catch (error) {
      throw corrupt(`group ${group}: entry ${index} damaged: ${describe(error)}`, error);
    }
  }

  async #writeSnapshotFile(group: string, snapshot: Snapshot): Promise<SnapshotRef> {
    const { index, term } = snapshot.metadata;
    const name = snapshotFileName(group, index, this.#fileSequence++);
    const encoded = encodeSnapshotFile(group, snapshot);
    try {
      await this.#engine.writeFile(name, encoded.chunks, this.#durable);
    } catch (error) {
      throw engineError(error, `group ${group}: writing snapshot file ${name}`);
    }
    return { index, term, file: name, fileBytes: encoded.fileBytes, bodyCrc: encoded.bodyCrc };
  }

  // -------------------------------------------------------------------------------------------------
  // saveSnapshot()

  async #saveSnapshot(group: string, snapshot: Snapshot): Promise<void> {
    const state = this.#stateOf(group);
    assert(state !== null, `saveSnapshot: group ${group} has no stored state`);
    const { index, term } = snapshot.metadata;
    const currentIndex = state.snapshot?.index ?? 0;
    if (index <= currentIndex) return;
    assert(index <= state.lastIndex, `group ${group}: snapshot ${index} is beyond the last index ${state.lastIndex}`);
    const prefix = entryPrefix(group);
    const storedTerm = await this.#termAt(group, prefix, state, index, null);
    assert(storedTerm === term, `group ${group}: snapshot term ${term} differs from entry ${index}'s term ${storedTerm}`);
    const ref = await this.#writeSnapshotFile(group, snapshot);
    const next: GroupState = { ...state, snapshot: ref };
    const ops: KvOp[] = [];
    for (let i = currentIndex + 1; i <= index; i++) ops.push({ type: "del", key: entryKey(prefix, i) });
    const key = stateKey(group);
    ops.push({ type: "put", key, value: encodeStateRecord(key, next) });
    await this.#batch(ops, this.#durable, `group ${group}: snapshot ${index}`);
    this.#states.set(group, next);
    if (state.snapshot !== null) await this.#deleteFilesQuietly([state.snapshot.file]);
  }

  // -------------------------------------------------------------------------------------------------
  // load(): verify, repair a torn tail, or refuse

  async #load(group: string): Promise<LoadedGroup> {
    const key = stateKey(group);
    const raw = await this.#get(key, `group ${group}: hard state`);
    if (raw === undefined) {
      this.#states.delete(group);
      this.#damaged.delete(group);
      return { hardState: { ...EMPTY_HARD_STATE }, snapshot: null, entries: [] };
    }
    let state: GroupState;
    try {
      state = decodeStateRecord(key, raw);
    } catch (error) {
      throw corrupt(`group ${group}: hard state record damaged: ${describe(error)}`, error);
    }
    const snapshot = await this.#loadSnapshot(group, state.snapshot);
    const scan = await this.#scanEntries(group, state);
    if (scan.torn !== null) state = await this.#repairTornTail(group, state, scan.entries, scan.torn);
    const lastEntry = scan.entries[scan.entries.length - 1];
    const lastTerm = lastEntry?.term ?? state.snapshot?.term ?? 0;
    if (state.lastTerm !== lastTerm) {
      throw corrupt(`group ${group}: last entry ${state.lastIndex} has term ${lastTerm}, the state record says ${state.lastTerm}`);
    }
    const hardState = state.hardState;
    if (hardState.commit > state.lastIndex) {
      throw corrupt(`group ${group}: hard state commit ${hardState.commit} is beyond the last log index ${state.lastIndex}`);
    }
    if (hardState.term < lastTerm) {
      throw corrupt(`group ${group}: hard state term ${hardState.term} is below the last entry's term ${lastTerm}`);
    }
    this.#states.set(group, state);
    this.#damaged.delete(group);
    return { hardState: copyHardState(hardState), snapshot, entries: scan.entries };
  }

  async #loadSnapshot(group: string, ref: SnapshotRef | null): Promise<Snapshot | null> {
    if (ref === null) return null;
    const what = `group ${group}: snapshot file ${ref.file} (index ${ref.index})`;
    let file: Uint8Array | null;
    try {
      file = await this.#engine.readFile(ref.file);
    } catch (error) {
      throw engineError(error, `reading ${what}`);
    }
    if (file === null) throw corrupt(`${what} is missing`);
    try {
      return decodeSnapshotFile(group, ref, file);
    } catch (error) {
      throw corrupt(`${what} damaged: ${describe(error)}`, error);
    }
  }

  /**
   * Reads the group's entries after its snapshot and classifies damage. A record that fails verification
   * followed only by records that fail too is a torn tail; one followed by an intact record, a gap, a broken
   * term chain or a missing tail is corruption.
   */
  async #scanEntries(group: string, state: GroupState): Promise<EntryScan> {
    const prefix = entryPrefix(group);
    const firstIndex = (state.snapshot?.index ?? 0) + 1;
    const [gte, lt] = entryRange(prefix, firstIndex);
    const entries: Entry[] = [];
    let expected = firstIndex;
    let previousTerm = state.snapshot?.term ?? 0;
    let torn: TornTail | null = null;
    for (let from: Uint8Array = gte; ; ) {
      const chunk = await this.#range(from, lt, LOG_STORE_LIMITS.rangeChunkRecordsMax, `group ${group}: entries`);
      for (const [key, value] of chunk) {
        const index = indexFromEntryKey(prefix, key);
        const name = index === null ? `record with key ${Buffer.from(key).toString("hex")}` : `entry ${index}`;
        let decoded: ReturnType<typeof decodeEntryRecord> | null = null;
        let damage = "malformed key";
        if (index !== null) {
          try {
            decoded = decodeEntryRecord(key, index, value);
          } catch (error) {
            if (!(error instanceof RecordDamage)) throw error;
            damage = error.message;
          }
        }
        if (torn !== null) {
          if (decoded !== null) {
            throw corrupt(
              `group ${group}: entry ${torn.index} is damaged (${torn.reason}) but ${name} after it is intact: not a torn tail`,
            );
          }
          torn.keys.push(key);
          continue;
        }
        if (index !== null && index > state.lastIndex) {
          throw corrupt(`group ${group}: unexpected ${name} after the recorded last index ${state.lastIndex}`);
        }
        if (decoded === null) {
          torn = { index: expected, reason: `${name}: ${damage}`, keys: [key] };
          continue;
        }
        if (index !== expected) {
          throw corrupt(`group ${group}: entries ${expected}..${(index ?? expected) - 1} are missing (gap before entry ${index})`);
        }
        if (decoded.prevTerm !== previousTerm) {
          throw corrupt(
            `group ${group}: entry ${index} follows a term-${decoded.prevTerm} entry but entry ${index - 1} has term ${previousTerm} (stale or lost entries)`,
          );
        }
        entries.push(decoded.entry);
        previousTerm = decoded.entry.term;
        expected++;
      }
      if (chunk.length < LOG_STORE_LIMITS.rangeChunkRecordsMax) break;
      from = keyAfter(chunk[chunk.length - 1]![0]);
    }
    if (torn === null && expected - 1 !== state.lastIndex) {
      throw corrupt(`group ${group}: entries ${expected}..${state.lastIndex} are missing (the log ends at ${expected - 1})`);
    }
    return { entries, torn };
  }

  async #repairTornTail(group: string, state: GroupState, entries: readonly Entry[], torn: TornTail): Promise<GroupState> {
    if (torn.index <= state.hardState.commit) {
      throw corrupt(
        `group ${group}: entry ${torn.index} is damaged (${torn.reason}) and committed (commit ${state.hardState.commit}): refusing to truncate committed entries`,
      );
    }
    const lastIndex = torn.index - 1;
    const lastTerm = entries[entries.length - 1]?.term ?? state.snapshot?.term ?? 0;
    const repaired: GroupState = { ...state, lastIndex, lastTerm };
    const key = stateKey(group);
    const ops: KvOp[] = torn.keys.map((tornKey) => ({ type: "del", key: tornKey }));
    ops.push({ type: "put", key, value: encodeStateRecord(key, repaired) });
    await this.#batch(ops, this.#durable, `group ${group}: torn tail repair`);
    this.#repairs.push(
      `group ${group}: truncated a torn tail of ${torn.keys.length} record(s) from entry ${torn.index} ` +
        `(${torn.reason}); last index ${state.lastIndex} -> ${lastIndex}`,
    );
    return repaired;
  }

  // -------------------------------------------------------------------------------------------------
  // deleteGroup()

  async #deleteGroup(group: string): Promise<void> {
    const prefix = entryPrefix(group);
    const [gte, lt] = entryRange(prefix, 0);
    // First batch: the state record (the group is gone atomically) with the first keys of its log. Later
    // batches remove the rest; if they are interrupted, the next write to a group of this name clears them.
    let first = true;
    for (let from: Uint8Array = gte; ; ) {
      const chunk = await this.#range(from, lt, LOG_STORE_LIMITS.deleteBatchKeysMax, `group ${group}: entries`);
      const ops: KvOp[] = chunk.map(([key]) => ({ type: "del", key }));
      if (first) ops.push({ type: "del", key: stateKey(group) });
      await this.#batch(ops, this.#durable, `group ${group}: delete`);
      if (first) {
        this.#states.delete(group);
        this.#damaged.delete(group);
        first = false;
      }
      if (chunk.length < LOG_STORE_LIMITS.deleteBatchKeysMax) break;
      from = keyAfter(chunk[chunk.length - 1]![0]);
    }
    const safe = safeGroupName(group);
    const names = await this.#engine.listFiles().catch(() => [] as string[]);
    await this.#deleteFilesQuietly(names.filter((name) => parseSnapshotFileName(name)?.safeGroup === safe));
  }
}

interface TornTail {
  /** The first index that is unreadable: the log is cut before it. */
  readonly index: number;
  readonly reason: string;
  /** Keys of every record from the first damaged one on. */
  readonly keys: Uint8Array[];
}

interface EntryScan {
  readonly entries: Entry[];
  readonly torn: TornTail | null;
}

/** The smallest key greater than `key`. */
function keyAfter(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}

function copyHardState(hardState: HardState): HardState {
  return { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
}

function validateGroupWrite(write: GroupWrite, what: string): void {
  if (typeof write !== "object" || write === null) throw new TypeError(`${what} must be an object`);
  validateGroupName(write.group);
  if (write.hardState !== null) validateHardState(write.hardState, `${what}.hardState`);
  if (!Array.isArray(write.entries)) throw new TypeError(`${what}.entries must be an array`);
  write.entries.forEach((entry, i) => {
    validateEntry(entry, `${what}.entries[${i}]`);
    const previous = write.entries[i - 1];
    if (previous !== undefined && entry.index !== previous.index + 1) {
      throw new TypeError(`${what}.entries must be contiguous: index ${entry.index} follows ${previous.index}`);
    }
  });
  if (write.snapshot !== null) validateSnapshot(write.snapshot, `${what}.snapshot`);
}
