/**
 * Verifies a closed LevelDB directory before LevelDB opens it, so damage is reported instead of being
 * silently dropped or served.
 *
 * Why: classic-level opens LevelDB with paranoid_checks=false and reads with verify_checksums=false.
 * Then (LevelDB 1.20) log recovery DROPS a record whose checksum fails, together with the rest of its
 * 32 KiB block, and carries on; a damaged filter block makes get() miss keys that exist; a damaged data
 * block may be served. Our own record checksums catch damaged values, but not records that vanished.
 * So on open we check, with the formats documented in LevelDB's doc/log_format.md and doc/table_format.md:
 *   - CURRENT names a MANIFEST that exists (the MANIFEST itself is checked strictly by LevelDB);
 *   - every table file (*.ldb, *.sst): the footer magic and the CRC32C of every block (data, filter,
 *     metaindex, index) reachable from the footer;
 *   - every write-ahead log (*.log): the CRC32C of every record. A damaged record followed by the start of
 *     an intact later record is corruption. Damage that reaches the end of the NEWEST log is a torn tail:
 *     the last batch was being written when the process died. LevelDB drops it on open (a batch is
 *     atomic), and we report it as a repair. Damage in an older log is corruption.
 *
 * Cost: every table file is read once per open. A Raft log store stays small (compaction moves state into
 * snapshot files), so this is cheap next to replaying the log.
 */

import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { crc32c, unmaskCrc32c } from "./checksum.ts";
import { corrupt } from "./log-store-codec.ts";

const LOG_BLOCK_BYTES = 32 * 1024;
const LOG_HEADER_BYTES = 7; // checksum u32, length u16, type u8
const LOG_TYPE_ZERO = 0;
const LOG_TYPE_FULL = 1;
const LOG_TYPE_FIRST = 2;
const LOG_TYPE_LAST = 4;

const TABLE_FOOTER_BYTES = 48;
const TABLE_MAGIC = Buffer.from([0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]); // 0xdb4775248b80fb57 LE
const BLOCK_TRAILER_BYTES = 5; // compression type u8, masked crc32c u32
const COMPRESSION_NONE = 0;
const COMPRESSION_SNAPPY = 1;
/** An index or metaindex block larger than this is treated as damage (LevelDB blocks are ~4 KiB). */
const INDEX_BLOCK_BYTES_MAX = 64 * 1024 * 1024;

/** Damage inside one LevelDB file, with the offset where it was found. */
class FileDamage extends Error {
  override readonly name = "FileDamage";
  /** For a damaged data block: the index keys around it (its keys are after `after`, up to `upTo`). */
  keys?: { readonly after: Uint8Array | null; readonly upTo: Uint8Array };
}

export interface LevelDbCheck {
  /** Notes for LogStore.repairs: torn tails that LevelDB will drop on open. */
  readonly repairs: string[];
}

/** Throws CairnError("CORRUPT_DATA") naming the damaged file; returns notes of torn tails otherwise. */
export async function verifyLevelDbDirectory(dir: string): Promise<LevelDbCheck> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { repairs: [] };
    throw error;
  }
  const dataFiles = names.filter((name) => /^\d+\.(log|ldb|sst)$/.test(name) || name.startsWith("MANIFEST-"));
  if (!names.includes("CURRENT")) {
    if (dataFiles.length > 0) throw corrupt(`LevelDB at ${dir}: CURRENT file is missing`);
    return { repairs: [] };
  }
  const current = await readFile(join(dir, "CURRENT"), "latin1");
  const manifest = /^(MANIFEST-\d+)\n$/.exec(current)?.[1];
  if (manifest === undefined) throw corrupt(`LevelDB at ${dir}: CURRENT file is damaged (${JSON.stringify(current.slice(0, 40))})`);
  if (!names.includes(manifest)) throw corrupt(`LevelDB at ${dir}: CURRENT names ${manifest}, which is missing`);

  for (const name of names.filter((name) => /^\d+\.(ldb|sst)$/.test(name)).sort()) {
    const path = join(dir, name);
    try {
      verifyTable(await readFile(path));
    } catch (error) {
      if (!(error instanceof FileDamage)) throw error;
      const holds = error.keys === undefined ? "" : `; the damaged block holds ${describeKeyRange(error.keys.after, error.keys.upTo)}`;
      throw corrupt(`LevelDB table ${path} is damaged: ${error.message}${holds}`, error);
    }
  }

  const repairs: string[] = [];
  const logs = names.filter((name) => /^\d+\.log$/.test(name)).sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
  for (const [i, name] of logs.entries()) {
    const path = join(dir, name);
    const file = await readFile(path);
    const { verdict, damaged } = scanLogDetailed(file);
    if (verdict.kind === "clean") continue;
    if (verdict.kind === "corrupt") {
      const holds = damaged === null ? "" : describeWrites(file.subarray(damaged.from, damaged.to));
      throw corrupt(`LevelDB log ${path} is damaged: ${verdict.reason}${holds === "" ? "" : `; the damaged write holds ${holds}`}`);
    }
    if (i !== logs.length - 1) {
      throw corrupt(`LevelDB log ${path} is damaged at its end (${verdict.reason}) but it is not the newest log`);
    }
    repairs.push(
      `LevelDB log ${path}: torn tail of ${verdict.bytes} byte(s) at offset ${verdict.offset} (${verdict.reason}); ` +
        "the unfinished last write is dropped",
    );
  }
  return { repairs };
}

// ---------------------------------------------------------------------------------------------------
// Write-ahead log (doc/log_format.md)

export type LogVerdict =
  | { readonly kind: "clean" }
  | { readonly kind: "torn"; readonly offset: number; readonly bytes: number; readonly reason: string }
  | { readonly kind: "corrupt"; readonly reason: string };

/** Classifies a LevelDB log file's contents. Exported for unit tests. */
export function scanLog(file: Uint8Array): LogVerdict {
  return scanLogDetailed(file).verdict;
}

/** scanLog, plus for corruption the byte range from the damage to the intact record after it. */
function scanLogDetailed(file: Uint8Array): { verdict: LogVerdict; damaged: { from: number; to: number } | null } {
  const corruptAt = (damage: { offset: number; reason: string }, intact: number) => ({
    verdict: { kind: "corrupt" as const, reason: `${damage.reason} at offset ${damage.offset}, followed by an intact record at offset ${intact}` },
    damaged: { from: damage.offset, to: intact },
  });
  const buffer = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  let damage: { offset: number; reason: string } | null = null;
  let offset = 0;
  while (offset < buffer.length) {
    const blockEnd = (Math.floor(offset / LOG_BLOCK_BYTES) + 1) * LOG_BLOCK_BYTES;
    if (blockEnd - offset < LOG_HEADER_BYTES) {
      offset = blockEnd; // block trailer: zero padding the writer leaves
      continue;
    }
    const record = readLogRecord(buffer, offset, blockEnd);
    if (record.kind === "ok") {
      if (damage !== null && (record.type === LOG_TYPE_FULL || record.type === LOG_TYPE_FIRST)) return corruptAt(damage, offset);
      offset = record.next;
      continue;
    }
    damage ??= { offset, reason: record.reason };
    // Resynchronize where LevelDB would (the next block), but first look where the damaged record says
    // it ends: an intact record there proves the damage is not at the tail.
    if (record.next !== null && record.next < blockEnd) {
      const after = readLogRecord(buffer, record.next, blockEnd);
      if (after.kind === "ok" && (after.type === LOG_TYPE_FULL || after.type === LOG_TYPE_FIRST)) return corruptAt(damage, record.next);
    }
    offset = blockEnd;
  }
  if (damage === null) return { verdict: { kind: "clean" }, damaged: null };
  return { verdict: { kind: "torn", offset: damage.offset, bytes: buffer.length - damage.offset, reason: damage.reason }, damaged: null };
}

type LogRecord =
  | { readonly kind: "ok"; readonly type: number; readonly next: number }
  | { readonly kind: "bad"; readonly reason: string; readonly next: number | null };

function readLogRecord(buffer: Buffer, offset: number, blockEnd: number): LogRecord {
  if (offset + LOG_HEADER_BYTES > buffer.length) return { kind: "bad", reason: "partial record header", next: null };
  const length = buffer.readUInt16LE(offset + 4);
  const type = buffer[offset + 6]!;
  const next = offset + LOG_HEADER_BYTES + length;
  if (type === LOG_TYPE_ZERO && length === 0) return { kind: "bad", reason: "zeroed region", next: null };
  if (next > blockEnd) return { kind: "bad", reason: "record length crosses its block", next: null };
  if (next > buffer.length) return { kind: "bad", reason: "partial record", next: null };
  if (type < LOG_TYPE_FULL || type > LOG_TYPE_LAST) return { kind: "bad", reason: `unknown record type ${type}`, next };
  const stored = unmaskCrc32c(buffer.readUInt32LE(offset));
  const actual = crc32c(buffer.subarray(offset + 7, next), crc32c(buffer.subarray(offset + 6, offset + 7)));
  if (stored !== actual) return { kind: "bad", reason: "record checksum mismatch", next };
  return { kind: "ok", type, next };
}

// ---------------------------------------------------------------------------------------------------
// Table files (doc/table_format.md)

interface BlockHandle {
  readonly offset: number;
  readonly size: number;
}

/** Throws FileDamage unless the footer and every block reachable from it verify. Exported for tests. */
export function verifyTable(file: Uint8Array): void {
  const buffer = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buffer.length < TABLE_FOOTER_BYTES) throw new FileDamage(`file of ${buffer.length} bytes is shorter than a footer`);
  const footerOffset = buffer.length - TABLE_FOOTER_BYTES;
  if (!buffer.subarray(buffer.length - 8).equals(TABLE_MAGIC)) throw new FileDamage("bad footer magic (truncated?)");
  const cursor = { offset: footerOffset };
  const metaindex = readHandle(buffer, cursor, footerOffset + 40);
  const index = readHandle(buffer, cursor, footerOffset + 40);
  for (const [name, handle] of [["metaindex", metaindex], ["index", index]] as const) {
    const contents = readBlock(buffer, handle, footerOffset, `${name} block`);
    let after: Uint8Array | null = null;
    for (const { key, value } of blockEntries(contents, `${name} block`)) {
      const child = readHandle(value, { offset: 0 }, value.length);
      try {
        readBlock(buffer, child, footerOffset, `block at offset ${child.offset}`);
      } catch (error) {
        // An index entry's key is >= every key of its data block and < every key of the next one.
        if (error instanceof FileDamage && name === "index") error.keys = { after, upTo: key };
        throw error;
      }
      after = key;
    }
  }
}

/** Verifies a block's checksum and returns its (decompressed) contents. */
function readBlock(file: Buffer, handle: BlockHandle, limit: number, what: string): Buffer {
  const end = handle.offset + handle.size;
  if (end + BLOCK_TRAILER_BYTES > limit) throw new FileDamage(`${what}: handle points past the end of the data`);
  const stored = unmaskCrc32c(file.readUInt32LE(end + 1));
  const actual = crc32c(file.subarray(handle.offset, end + 1)); // contents and the compression type byte
  if (stored !== actual) throw new FileDamage(`${what}: checksum mismatch`);
  const contents = file.subarray(handle.offset, end);
  const compression = file[end];
  if (compression === COMPRESSION_NONE) return contents;
  if (compression === COMPRESSION_SNAPPY) return snappyDecompress(contents, what);
  throw new FileDamage(`${what}: unknown compression type ${String(compression)}`);
}

function readHandle(buffer: Uint8Array, cursor: { offset: number }, limit: number): BlockHandle {
  const offset = readVarint(buffer, cursor, limit);
  const size = readVarint(buffer, cursor, limit);
  return { offset, size };
}

function readVarint(buffer: Uint8Array, cursor: { offset: number }, limit: number): number {
  let result = 0;
  let multiplier = 1;
  for (let shift = 0; shift < 64; shift += 7) {
    if (cursor.offset >= limit) throw new FileDamage("truncated varint");
    const byte = buffer[cursor.offset++]!;
    result += (byte & 0x7f) * multiplier;
    if (byte < 0x80) {
      if (!Number.isSafeInteger(result)) throw new FileDamage("varint out of range");
      return result;
    }
    multiplier *= 128;
  }
  throw new FileDamage("varint too long");
}

/** The entries of a block (doc/table_format.md "Block"): keys are prefix-compressed against the previous one. */
function blockEntries(block: Buffer, what: string): { key: Uint8Array; value: Uint8Array }[] {
  if (block.length < 4) throw new FileDamage(`${what}: too short`);
  const restarts = block.readUInt32LE(block.length - 4);
  const entriesEnd = block.length - 4 - restarts * 4;
  if (restarts < 1 || entriesEnd < 0) throw new FileDamage(`${what}: bad restart count ${restarts}`);
  const entries: { key: Uint8Array; value: Uint8Array }[] = [];
  const cursor = { offset: 0 };
  let previous: Uint8Array = new Uint8Array(0);
  while (cursor.offset < entriesEnd) {
    const shared = readVarint(block, cursor, entriesEnd);
    const unshared = readVarint(block, cursor, entriesEnd);
    const valueBytes = readVarint(block, cursor, entriesEnd);
    const valueStart = cursor.offset + unshared;
    const valueEnd = valueStart + valueBytes;
    if (valueEnd > entriesEnd || shared > previous.length) throw new FileDamage(`${what}: entry overruns the block`);
    const key = Buffer.concat([previous.subarray(0, shared), block.subarray(cursor.offset, valueStart)]);
    entries.push({ key, value: block.subarray(valueStart, valueEnd) });
    previous = key;
    cursor.offset = valueEnd;
  }
  return entries;
}

/** Snappy raw-format decompression (format_description.txt), for index and metaindex blocks. */
function snappyDecompress(input: Buffer, what: string): Buffer {
  const cursor = { offset: 0 };
  const length = readVarint(input, cursor, input.length);
  if (length > INDEX_BLOCK_BYTES_MAX) throw new FileDamage(`${what}: implausible uncompressed length ${length}`);
  const output = Buffer.allocUnsafe(length);
  let out = 0;
  let i = cursor.offset;
  const need = (bytes: number): void => {
    if (i + bytes > input.length) throw new FileDamage(`${what}: truncated snappy data`);
  };
  while (i < input.length) {
    const tag = input[i++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let literal = (tag >>> 2) + 1;
      if (literal > 60) {
        const bytes = literal - 60;
        need(bytes);
        literal = input.readUIntLE(i, bytes) + 1;
        i += bytes;
      }
      need(literal);
      if (out + literal > length) throw new FileDamage(`${what}: snappy literal overruns the output`);
      input.copy(output, out, i, i + literal);
      i += literal;
      out += literal;
      continue;
    }
    let copyLength: number;
    let distance: number;
    if (kind === 1) {
      need(1);
      copyLength = ((tag >>> 2) & 7) + 4;
      distance = ((tag >>> 5) << 8) | input[i++]!;
    } else if (kind === 2) {
      need(2);
      copyLength = (tag >>> 2) + 1;
      distance = input.readUInt16LE(i);
      i += 2;
    } else {
      need(4);
      copyLength = (tag >>> 2) + 1;
      distance = input.readUInt32LE(i);
      i += 4;
    }
    if (distance === 0 || distance > out || out + copyLength > length) {
      throw new FileDamage(`${what}: bad snappy copy`);
    }
    for (let k = 0; k < copyLength; k++, out++) output[out] = output[out - distance]!;
  }
  if (out !== length) throw new FileDamage(`${what}: snappy data ends early`);
  return output;
}

// ---------------------------------------------------------------------------------------------------
// Naming what damage hits, in cairn's terms (key layout of log-store-codec.ts: "F" format record,
// "M" + key node metadata, "S" + group hard state, "E" + group + 0x00 + u64be(index) log entry). Best
// effort: damaged bytes may not parse, and index keys may be shortened separators.

const KEY_FORMAT = 0x46;
const KEY_META = 0x4d;
const KEY_STATE = 0x53;
const KEY_ENTRY = 0x45;
/** Longest key worth decoding: "E" + a group name (<= 200 bytes) + NUL + 8 index bytes. */
const KEY_BYTES_MAX = 210;

type CairnKey = { kind: "entry"; group: string; index: number | null } | { kind: "state"; group: string } | { kind: "meta" } | { kind: "format" };

function groupName(bytes: Uint8Array): string | null {
  if (bytes.length === 0 || bytes.length > 200) return null;
  for (const b of bytes) if (b < 0x21 || b > 0x7e) return null;
  return Buffer.from(bytes).toString("latin1");
}

/** Decodes a cairn key; `exact` = the key is whole (an entry key then must carry its 8 index bytes). */
function parseKey(key: Uint8Array, exact: boolean): CairnKey | null {
  if (key.length === 0) return null;
  const rest = key.subarray(1);
  switch (key[0]) {
    case KEY_ENTRY: {
      const nul = rest.indexOf(0);
      const group = groupName(nul < 0 ? rest : rest.subarray(0, nul));
      if (group === null) return null;
      if (nul >= 0 && rest.length === nul + 9) {
        const index = Buffer.from(rest.subarray(nul + 1)).readBigUInt64BE(0);
        return index <= BigInt(Number.MAX_SAFE_INTEGER) ? { kind: "entry", group, index: Number(index) } : null;
      }
      return exact ? null : { kind: "entry", group, index: null };
    }
    case KEY_STATE: {
      const group = groupName(rest);
      return group === null ? null : { kind: "state", group };
    }
    case KEY_META:
      return { kind: "meta" };
    case KEY_FORMAT:
      return key.length === 1 ? { kind: "format" } : null;
    default:
      return null;
  }
}

function describeKey(key: Uint8Array | null): string {
  if (key === null) return "the first key";
  const parsed = parseKey(key, false);
  if (parsed === null) return `key ${Buffer.from(key.subarray(0, 40)).toString("hex")}`;
  switch (parsed.kind) {
    case "entry":
      return parsed.index === null ? `group ${parsed.group} entries` : `group ${parsed.group} entry ${parsed.index}`;
    case "state":
      return `group ${parsed.group} hard state`;
    case "meta":
      return "node metadata";
    case "format":
      return "the format record";
  }
}

/** A data block's keys are after `after` (exclusive) up to `upTo` (inclusive). */
function describeKeyRange(after: Uint8Array | null, upTo: Uint8Array): string {
  return `keys after ${describeKey(after)} up to ${describeKey(upTo)}`;
}

/**
 * The groups whose records appear in a damaged stretch of a LevelDB log: scans for the write batch's
 * put/delete headers (tag 1/0, varint key length) followed by a whole cairn key.
 */
function describeWrites(bytes: Uint8Array): string {
  const groups = new Map<string, { low: number; high: number; state: boolean }>();
  let other = false;
  for (let p = 0; p + 2 < bytes.length; p++) {
    if (bytes[p] !== 0 && bytes[p] !== 1) continue;
    const cursor = { offset: p + 1 };
    let length: number;
    try {
      length = readVarint(bytes, cursor, Math.min(bytes.length, p + 6));
    } catch {
      continue;
    }
    if (length < 1 || length > KEY_BYTES_MAX || cursor.offset + length > bytes.length) continue;
    const parsed = parseKey(bytes.subarray(cursor.offset, cursor.offset + length), true);
    if (parsed === null) continue;
    if (parsed.kind !== "entry" && parsed.kind !== "state") {
      other = true;
      continue;
    }
    let g = groups.get(parsed.group);
    if (g === undefined) groups.set(parsed.group, (g = { low: Infinity, high: -Infinity, state: false }));
    if (parsed.kind === "state") g.state = true;
    else if (parsed.index !== null) {
      g.low = Math.min(g.low, parsed.index);
      g.high = Math.max(g.high, parsed.index);
    }
    p = cursor.offset + length - 1;
  }
  const parts: string[] = [];
  for (const [group, g] of groups) {
    const what: string[] = [];
    if (g.high >= g.low) what.push(g.low === g.high ? `entry ${g.low}` : `entries ${g.low}..${g.high}`);
    if (g.state) what.push("hard state");
    parts.push(`group ${group} ${what.join(" and ")}`);
  }
  if (other) parts.push("node metadata");
  return parts.join(", ");
}
