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
      throw corrupt(`LevelDB table ${path} is damaged: ${error.message}`, error);
    }
  }

  const repairs: string[] = [];
  const logs = names.filter((name) => /^\d+\.log$/.test(name)).sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
  for (const [i, name] of logs.entries()) {
    const path = join(dir, name);
    const verdict = scanLog(await readFile(path));
    if (verdict.kind === "clean") continue;
    if (verdict.kind === "corrupt") throw corrupt(`LevelDB log ${path} is damaged: ${verdict.reason}`);
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
      if (damage !== null && (record.type === LOG_TYPE_FULL || record.type === LOG_TYPE_FIRST)) {
        return {
          kind: "corrupt",
          reason: `${damage.reason} at offset ${damage.offset}, followed by an intact record at offset ${offset}`,
        };
      }
      offset = record.next;
      continue;
    }
    damage ??= { offset, reason: record.reason };
    // Resynchronize where LevelDB would (the next block), but first look where the damaged record says
    // it ends: an intact record there proves the damage is not at the tail.
    if (record.next !== null && record.next < blockEnd) {
      const after = readLogRecord(buffer, record.next, blockEnd);
      if (after.kind === "ok" && (after.type === LOG_TYPE_FULL || after.type === LOG_TYPE_FIRST)) {
        return {
          kind: "corrupt",
          reason: `${damage.reason} at offset ${damage.offset}, followed by an intact record at offset ${record.next}`,
        };
      }
    }
    offset = blockEnd;
  }
  if (damage === null) return { kind: "clean" };
  return { kind: "torn", offset: damage.offset, bytes: buffer.length - damage.offset, reason: damage.reason };
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
    for (const value of blockValues(contents, `${name} block`)) {
      const child = readHandle(value, { offset: 0 }, value.length);
      readBlock(buffer, child, footerOffset, `block at offset ${child.offset}`);
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

/** The values of a block's entries (doc/table_format.md "Block"); keys are not needed to find blocks. */
function blockValues(block: Buffer, what: string): Uint8Array[] {
  if (block.length < 4) throw new FileDamage(`${what}: too short`);
  const restarts = block.readUInt32LE(block.length - 4);
  const entriesEnd = block.length - 4 - restarts * 4;
  if (restarts < 1 || entriesEnd < 0) throw new FileDamage(`${what}: bad restart count ${restarts}`);
  const values: Uint8Array[] = [];
  const cursor = { offset: 0 };
  while (cursor.offset < entriesEnd) {
    readVarint(block, cursor, entriesEnd); // shared key bytes
    const unshared = readVarint(block, cursor, entriesEnd);
    const valueBytes = readVarint(block, cursor, entriesEnd);
    const valueStart = cursor.offset + unshared;
    const valueEnd = valueStart + valueBytes;
    if (valueEnd > entriesEnd) throw new FileDamage(`${what}: entry overruns the block`);
    values.push(block.subarray(valueStart, valueEnd));
    cursor.offset = valueEnd;
  }
  return values;
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
