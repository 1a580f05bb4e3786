/**
 * LevelLogStore against real damage on disk: bytes flipped in LevelDB's write-ahead log (*.log), table
 * files (*.ldb), MANIFEST and CURRENT, logs truncated, snapshot files damaged, records of our own format
 * damaged behind LevelDB's back. The rule under test: damage ends in a clean repair (a prefix of what was
 * written, reported in `repairs`) or in CairnError("CORRUPT_DATA") naming what is damaged; never an
 * unexplained crash and never silently different data.
 *
 * Method: write a known history of batches and remember the state after each; close; copy the directory,
 * damage the copy for real, reopen it and classify the outcome against the remembered states.
 */

import { cp, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Level } from "level";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Entry, HardState, Snapshot } from "../../src/raft/types.ts";
import { CairnError } from "../../src/shared/errors.ts";
import { encodeEntryRecord, entryKey, entryPrefix, stateKey } from "../../src/node/log-store-codec.ts";
import { openLevelLogStore } from "../../src/node/log-store-level.ts";
import type { GroupWrite, LogStore } from "../../src/node/log-store.ts";

const GROUPS = ["meta", "b:orders"] as const;
const BATCHES = 60;
const ENTRY_BYTES = 300;


let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-log-corrupt-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let dirCounter = 0;
async function freshDir(): Promise<string> {
  return join(root, `d${dirCounter++}`);
}

function entry(index: number, term: number, seed: number): Entry {
  const data = new Uint8Array(ENTRY_BYTES);
  for (let i = 0; i < data.length; i++) data[i] = (seed * 13 + i * 7) & 0xff;
  return { index, term, type: "normal", data };
}

type GroupImage = { hardState: HardState; indexes: number[]; terms: number[]; dataHex: string[]; snapshotIndex: number | null };
type Image = Record<string, GroupImage>;

/** Batch k appends 3 entries to one group and advances its commit to the entry before them. */
function batch(k: number, lastIndexes: Map<string, number>): GroupWrite {
  const group = GROUPS[k % GROUPS.length]!;
  const last = lastIndexes.get(group) ?? 0;
  const term = 1 + Math.floor(k / 20);
  const added = [1, 2, 3].map((i) => entry(last + i, term, k * 10 + i));
  lastIndexes.set(group, last + 3);
  return { group, hardState: { term, vote: "n1", commit: last }, entries: added, snapshot: null };
}

async function image(store: LogStore): Promise<Image> {
  const out: Image = {};
  for (const group of await store.listGroups()) {
    const loaded = await store.load(group);
    out[group] = {
      hardState: loaded.hardState,
      indexes: loaded.entries.map((e) => e.index),
      terms: loaded.entries.map((e) => e.term),
      dataHex: loaded.entries.map((e) => Buffer.from(e.data).toString("hex")),
      snapshotIndex: loaded.snapshot?.metadata.index ?? null,
    };
  }
  return out;
}

/** Writes BATCHES synced batches; returns the image after each prefix (states[k] = after k batches). */
async function writeHistory(dir: string): Promise<Image[]> {
  const store = await openLevelLogStore({ dir, durability: "fsync" });
  const states: Image[] = [await image(store)];
  const lastIndexes = new Map<string, number>();
  for (let k = 0; k < BATCHES; k++) {
    await store.write([batch(k, lastIndexes)], { sync: true });
    states.push(await image(store));
  }
  await store.close();
  return states;
}

type Outcome =
  | { kind: "corrupt"; message: string }
  | { kind: "state"; prefix: number; repairs: readonly string[] };

/** Opens the (damaged) directory and classifies what happened. Anything but CORRUPT_DATA or a known state fails. */
async function outcome(dir: string, states: readonly Image[]): Promise<Outcome> {
  let store: LogStore | null = null;
  try {
    store = await openLevelLogStore({ dir, durability: "fsync" });
    const loaded = await image(store);
    const prefix = states.findIndex((state) => JSON.stringify(state) === JSON.stringify(loaded));
    if (prefix < 0) throw new Error(`silently wrong data: ${JSON.stringify(loaded).slice(0, 300)}`);
    return { kind: "state", prefix, repairs: store.repairs };
  } catch (error) {
    if (error instanceof CairnError && error.code === "CORRUPT_DATA") return { kind: "corrupt", message: error.message };
    throw error;
  } finally {
    await store?.close();
  }
}

async function filesOf(dir: string, pattern: RegExp): Promise<string[]> {
  return (await readdir(join(dir, "level"))).filter((name) => pattern.test(name)).map((name) => join(dir, "level", name));
}

async function flipByte(path: string, offset: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[offset] = bytes[offset]! ^ 0x5a;
  await writeFile(path, bytes);
}

async function damagedCopy(pristine: string): Promise<string> {
  const dir = await freshDir();
  await cp(pristine, dir, { recursive: true });
  return dir;
}

function sampleOffsets(size: number, count: number): number[] {
  const offsets = new Set<number>([0, 1, 6, 7, 100, size - 1, size - 2, size - 100]);
  for (let i = 0; i < count; i++) offsets.add(Math.floor(((i + 0.5) * size) / count));
  return [...offsets].filter((o) => o >= 0 && o < size).sort((a, b) => a - b);
}

describe("LevelDB write-ahead log damage", () => {
  let pristine: string;
  let states: Image[];
  let logPath: string;
  /** Where the first LevelDB log record (the store's format record) ends: 7-byte header + length. */
  let firstRecordEnd: number;

  beforeAll(async () => {
    pristine = await freshDir();
    states = await writeHistory(pristine);
    const logs = await filesOf(pristine, /\.log$/);
    expect(logs).toHaveLength(1);
    logPath = logs[0]!.slice(pristine.length);
    firstRecordEnd = 7 + (await readFile(logs[0]!)).readUInt16LE(4);
    expect((await stat(logs[0]!)).size).toBeGreaterThan(2 * 32 * 1024); // spans several log blocks
  });

  it("a clean copy opens to the full history", async () => {
    expect(await outcome(await damagedCopy(pristine), states)).toEqual({ kind: "state", prefix: BATCHES, repairs: [] });
  });

  it("a flipped byte early in the log is CORRUPT_DATA naming the log file", async () => {
    const dir = await damagedCopy(pristine);
    await flipByte(dir + logPath, 200);
    const result = await outcome(dir, states);
    expect(result.kind).toBe("corrupt");
    expect((result as { message: string }).message).toMatch(/LevelDB log .*\.log is damaged: record checksum mismatch at offset \d+, followed by an intact record at offset \d+/);
  });

  it("CORRUPT_DATA for a record in the middle of the log names the groups and entries of the damaged write", async () => {
    const dir = await damagedCopy(pristine);
    const size = (await stat(dir + logPath)).size;
    await flipByte(dir + logPath, Math.floor(size / 2));
    const result = await outcome(dir, states);
    expect(result.kind).toBe("corrupt");
    expect((result as { message: string }).message).toMatch(/; the damaged write holds group (meta|b:orders) (entries \d+\.\.\d+ and hard state|hard state)/);
  });

  it("a flipped byte in the last record is a torn tail: the last batch is dropped and reported", async () => {
    const dir = await damagedCopy(pristine);
    const size = (await stat(dir + logPath)).size;
    await flipByte(dir + logPath, size - 10);
    const result = await outcome(dir, states);
    expect(result).toMatchObject({ kind: "state", prefix: BATCHES - 1 });
    expect((result as { repairs: readonly string[] }).repairs.join("\n")).toMatch(/torn tail of \d+ byte\(s\) at offset \d+ \(record checksum mismatch\)/);
  });

  it("flips anywhere in the log end in a repair or CORRUPT_DATA, never in other data", async () => {
    const size = (await stat(pristine + logPath)).size;
    const seen = { corrupt: 0, repaired: 0, unchanged: 0 };
    for (const offset of sampleOffsets(size, 40)) {
      const dir = await damagedCopy(pristine);
      await flipByte(dir + logPath, offset);
      const result = await outcome(dir, states);
      if (result.kind === "corrupt") {
        expect(result.message).toMatch(/LevelDB log .*\.log/);
        seen.corrupt++;
      } else if (result.prefix < BATCHES) {
        expect(result.repairs.length, `offset ${offset}: lost batches without a repair note`).toBeGreaterThan(0);
        seen.repaired++;
      } else {
        seen.unchanged++; // a block trailer's padding: nobody reads it
      }
      await rm(dir, { recursive: true, force: true });
    }
    expect(seen.corrupt).toBeGreaterThan(30);
    expect(seen.repaired).toBeGreaterThan(0);
  });

  it("a truncated log always opens to a prefix of the history; a cut inside a record is reported", async () => {
    const size = (await stat(pristine + logPath)).size;
    let previous = 0;
    let reported = 0;
    for (const length of [...sampleOffsets(size, 30), size]) {
      const dir = await damagedCopy(pristine);
      await truncate(dir + logPath, length);
      const result = await outcome(dir, states);
      if (length < firstRecordEnd) {
        // Cut inside the store's first record (the format record): every record is gone, and the marker
        // file says a store lived here, so this is data loss, not a fresh store.
        expect(result).toMatchObject({ kind: "corrupt", message: expect.stringMatching(/data lost/) });
        continue;
      }
      expect(result.kind, `length ${length}`).toBe("state");
      const { prefix, repairs } = result as { prefix: number; repairs: readonly string[] };
      expect(prefix).toBeGreaterThanOrEqual(previous);
      previous = prefix;
      if (repairs.length > 0) reported++;
      await rm(dir, { recursive: true, force: true });
    }
    expect(previous).toBe(BATCHES);
    expect(reported).toBeGreaterThan(10);
  });
});

describe("LevelDB table, MANIFEST and CURRENT damage", () => {
  let pristine: string;
  let states: Image[];

  beforeAll(async () => {
    pristine = await freshDir();
    states = await writeHistory(pristine);
    // Reopening replays the log into a table file (*.ldb).
    const store = await openLevelLogStore({ dir: pristine, durability: "fsync" });
    await store.close();
    expect(await filesOf(pristine, /\.ldb$/)).toHaveLength(1);
  });

  it("flips anywhere in a table file are CORRUPT_DATA naming the table, or change nothing", async () => {
    const table = (await filesOf(pristine, /\.ldb$/))[0]!.slice(pristine.length);
    const size = (await stat(pristine + table)).size;
    let corrupt = 0;
    const named: string[] = [];
    for (const offset of sampleOffsets(size, 40)) {
      const dir = await damagedCopy(pristine);
      await flipByte(dir + table, offset);
      const result = await outcome(dir, states);
      if (result.kind === "corrupt") {
        expect(result.message).toMatch(/LevelDB table .*\.ldb is damaged/);
        if (/block at offset 0:/.test(result.message)) named.push(result.message);
        corrupt++;
      } else {
        expect(result, `offset ${offset}`).toEqual({ kind: "state", prefix: BATCHES, repairs: [] });
      }
      await rm(dir, { recursive: true, force: true });
    }
    expect(corrupt).toBeGreaterThan(35);
    // A damaged data block is named by the keys around it: here the first block, which starts the table.
    expect(named.length).toBeGreaterThan(0);
    for (const message of named) expect(message).toMatch(/; the damaged block holds keys after the first key up to group (meta|b:orders) (entry \d+|entries|hard state)/);
  });

  it("a truncated table file is CORRUPT_DATA", async () => {
    const table = (await filesOf(pristine, /\.ldb$/))[0]!.slice(pristine.length);
    const size = (await stat(pristine + table)).size;
    for (const length of [0, 10, Math.floor(size / 2), size - 1]) {
      const dir = await damagedCopy(pristine);
      await truncate(dir + table, length);
      expect(await outcome(dir, states)).toMatchObject({ kind: "corrupt", message: expect.stringMatching(/\.ldb is damaged/) });
    }
  });

  it("a deleted table file is CORRUPT_DATA", async () => {
    const dir = await damagedCopy(pristine);
    await rm((await filesOf(dir, /\.ldb$/))[0]!);
    expect(await outcome(dir, states)).toMatchObject({ kind: "corrupt" });
  });

  it("flips in the MANIFEST are CORRUPT_DATA or change nothing", async () => {
    const manifest = (await filesOf(pristine, /^MANIFEST-/))[0]!.slice(pristine.length);
    const size = (await stat(pristine + manifest)).size;
    let corrupt = 0;
    for (const offset of sampleOffsets(size, 10)) {
      const dir = await damagedCopy(pristine);
      await flipByte(dir + manifest, offset);
      const result = await outcome(dir, states);
      if (result.kind === "corrupt") corrupt++;
      else expect(result, `offset ${offset}`).toEqual({ kind: "state", prefix: BATCHES, repairs: [] });
    }
    expect(corrupt).toBeGreaterThan(0);
  });

  it("a damaged or missing CURRENT file is CORRUPT_DATA", async () => {
    const dir = await damagedCopy(pristine);
    await writeFile(join(dir, "level", "CURRENT"), "MANIFEST-00x0\n");
    expect(await outcome(dir, states)).toMatchObject({ kind: "corrupt", message: expect.stringMatching(/CURRENT file is damaged/) });
    const other = await damagedCopy(pristine);
    await rm(join(other, "level", "CURRENT"));
    expect(await outcome(other, states)).toMatchObject({ kind: "corrupt", message: expect.stringMatching(/CURRENT file is missing/) });
  });

  it("a wiped LevelDB directory next to the store marker is data loss, not a new store", async () => {
    const dir = await damagedCopy(pristine);
    await rm(join(dir, "level"), { recursive: true });
    expect(await outcome(dir, states)).toMatchObject({ kind: "corrupt", message: expect.stringMatching(/format record is gone .*data lost/) });
  });

  it("with lostStore \"recover\" a wiped LevelDB directory opens empty as origin \"lost\", reported; then it is an existing store", async () => {
    const dir = await damagedCopy(pristine);
    const intact = await openLevelLogStore({ dir, durability: "fsync", lostStore: "recover" });
    expect(intact.origin).toBe("existing");
    expect(intact.repairs).toEqual([]);
    await intact.close();
    await rm(join(dir, "level"), { recursive: true });
    const wiped = await openLevelLogStore({ dir, durability: "fsync", lostStore: "recover" });
    expect(wiped.origin).toBe("lost");
    expect(wiped.repairs).toEqual([expect.stringMatching(/format record is gone .*everything it held is lost/)]);
    expect(await wiped.listGroups()).toEqual([]);
    await wiped.close();
    const reopened = await openLevelLogStore({ dir, durability: "fsync" });
    expect(reopened.origin).toBe("existing");
    await reopened.close();
    const fresh = await openLevelLogStore({ dir: await freshDir(), durability: "fsync", lostStore: "recover" });
    expect(fresh.origin).toBe("new");
    await fresh.close();
  });
});

describe("damage to cairn records behind LevelDB's back", () => {
  const CONF = { voters: ["n1"], learners: [] };

  async function seeded(): Promise<string> {
    const dir = await freshDir();
    const store = await openLevelLogStore({ dir, durability: "fsync" });
    const added = [1, 2, 3, 4, 5, 6].map((i) => entry(i, i <= 4 ? 1 : 2, i));
    await store.write([{ group: "b:x", hardState: { term: 2, vote: null, commit: 3 }, entries: added, snapshot: null }], { sync: true });
    await store.close();
    return dir;
  }

  async function withRawDb(dir: string, change: (db: Level<Buffer, Buffer>) => Promise<void>): Promise<void> {
    const db = new Level<Buffer, Buffer>(join(dir, "level"), { keyEncoding: "buffer", valueEncoding: "buffer" });
    await db.open();
    try {
      await change(db);
    } finally {
      await db.close();
    }
  }

  async function flipRecord(dir: string, key: Buffer, offset: number): Promise<void> {
    await withRawDb(dir, async (db) => {
      const value = await db.get(key);
      expect(value).toBeDefined();
      value![offset] = value![offset]! ^ 1;
      await db.put(key, value!, { sync: true });
    });
  }

  const key = (index: number): Buffer => entryKey(entryPrefix("b:x"), index);

  async function openLoad(dir: string): Promise<{ store: LogStore; indexes: number[] } | CairnError> {
    const store = await openLevelLogStore({ dir, durability: "fsync" });
    try {
      const loaded = await store.load("b:x");
      return { store, indexes: loaded.entries.map((e) => e.index) };
    } catch (error) {
      await store.close();
      if (error instanceof CairnError) return error;
      throw error;
    }
  }

  it("a damaged last entry is a torn tail: truncated durably and reported", async () => {
    const dir = await seeded();
    await flipRecord(dir, key(6), 30);
    const first = await openLoad(dir);
    if (first instanceof CairnError) throw first;
    expect(first.indexes).toEqual([1, 2, 3, 4, 5]);
    expect(first.store.repairs).toEqual([expect.stringMatching(/group b:x: truncated a torn tail of 1 record\(s\) from entry 6 \(entry 6: checksum mismatch/)]);
    await first.store.close();
    const second = await openLoad(dir);
    if (second instanceof CairnError) throw second;
    expect(second.indexes).toEqual([1, 2, 3, 4, 5]);
    expect(second.store.repairs).toEqual([]);
    await second.store.close();
  });

  it("a damaged entry in the middle is CORRUPT_DATA naming group and index", async () => {
    const dir = await seeded();
    await flipRecord(dir, key(4), 5);
    const result = await openLoad(dir);
    expect(result).toBeInstanceOf(CairnError);
    expect((result as CairnError).code).toBe("CORRUPT_DATA");
    expect((result as CairnError).message).toMatch(/group b:x: entry 4 is damaged \(entry 4: checksum mismatch.*\) but entry 5 after it is intact/);
  });

  it("a missing entry is a gap: CORRUPT_DATA", async () => {
    const dir = await seeded();
    await withRawDb(dir, (db) => db.del(key(2), { sync: true }));
    expect(await openLoad(dir)).toMatchObject({ code: "CORRUPT_DATA", message: expect.stringMatching(/group b:x: entries 2\.\.2 are missing/) });
  });

  it("an intact but stale entry (a lost truncation) breaks the term chain: CORRUPT_DATA", async () => {
    const dir = await seeded();
    // Entry 5 as an older leader wrote it (term 1): intact checksum, but entry 6 (term 2) says its
    // predecessor had term 2.
    await withRawDb(dir, (db) => db.put(key(5), encodeEntryRecord(key(5), entry(5, 1, 5), 1), { sync: true }));
    expect(await openLoad(dir)).toMatchObject({ code: "CORRUPT_DATA", message: expect.stringMatching(/group b:x: entry 6 follows a term-2 entry but entry 5 has term 1/) });
  });

  it("a damaged hard state is CORRUPT_DATA; the group is still listed and refuses writes", async () => {
    const dir = await seeded();
    await flipRecord(dir, stateKey("b:x"), 7);
    expect(await openLoad(dir)).toMatchObject({ code: "CORRUPT_DATA", message: expect.stringMatching(/group b:x: hard state record damaged/) });
    const store = await openLevelLogStore({ dir, durability: "fsync" });
    expect(await store.listGroups()).toEqual(["b:x"]);
    await expect(store.write([{ group: "b:x", hardState: { term: 3, vote: null, commit: 3 }, entries: [], snapshot: null }], { sync: true })).rejects.toMatchObject({ code: "CORRUPT_DATA" });
    await store.close();
  });

  it("a foreign LevelDB (no cairn format record) is refused", async () => {
    const dir = await freshDir();
    const db = new Level<string, string>(join(dir, "level"));
    await db.open();
    await db.put("hello", "world");
    await db.close();
    await expect(openLevelLogStore({ dir, durability: "fsync" })).rejects.toMatchObject({ code: "CORRUPT_DATA", message: expect.stringMatching(/no cairn format record/) });
  });

  it("damaged, truncated or missing snapshot files are CORRUPT_DATA naming group and file", async () => {
    const snapshot: Snapshot = { metadata: { index: 3, term: 1, confState: CONF }, data: new Uint8Array(5000).fill(9) };
    const damages: Array<[string, (path: string) => Promise<void>, RegExp]> = [
      ["flip in data", (path) => flipByte(path, 4000), /damaged: body checksum mismatch/],
      ["flip in header", (path) => flipByte(path, 3), /damaged: bad magic/],
      ["truncated", (path) => truncate(path, 1000), /damaged: file is 1000 bytes, expected \d+/],
      ["deleted", (path) => rm(path), /is missing/],
    ];
    for (const [name, damage, pattern] of damages) {
      const dir = await seeded();
      const store = await openLevelLogStore({ dir, durability: "fsync" });
      await store.saveSnapshot("b:x", snapshot);
      await store.close();
      const files = await readdir(join(dir, "snapshots"));
      expect(files, name).toEqual([expect.stringMatching(/^b%3Ax-0000000000000003-\d+\.snap$/)]);
      await damage(join(dir, "snapshots", files[0]!));
      const result = await openLoad(dir);
      expect(result, name).toMatchObject({ code: "CORRUPT_DATA", message: expect.stringMatching(/group b:x: snapshot file b%3Ax-0000000000000003-\d+\.snap \(index 3\)/) });
      expect((result as CairnError).message, name).toMatch(pattern);
    }
  });

  it("removes orphan and temporary snapshot files on open, and never reuses a file name", async () => {
    const dir = await seeded();
    await writeFile(join(dir, "snapshots", "b%3Ax-0000000000000002-41.snap"), "orphan");
    await writeFile(join(dir, "snapshots", "b%3Ax-0000000000000003-42.snap.tmp"), "partial");
    const store = await openLevelLogStore({ dir, durability: "fsync" });
    expect(await readdir(join(dir, "snapshots"))).toEqual([]);
    await store.saveSnapshot("b:x", { metadata: { index: 2, term: 1, confState: CONF }, data: new Uint8Array([1]) });
    expect(await readdir(join(dir, "snapshots"))).toEqual(["b%3Ax-0000000000000002-42.snap"]);
    await store.close();
  });

  it("a second open of the same directory is refused while the first is open", async () => {
    const dir = await seeded();
    const store = await openLevelLogStore({ dir, durability: "fsync" });
    await expect(openLevelLogStore({ dir, durability: "fsync" })).rejects.toMatchObject({ code: "INTERNAL", message: expect.stringMatching(/in use/) });
    await store.close();
  });
});
