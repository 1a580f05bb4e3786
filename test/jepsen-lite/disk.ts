/**
 * Storage faults on a stopped node's LevelDB directory (<dataDir>/level), between its kill and restart:
 *   - truncateLogTail: cut bytes off the end of the newest write-ahead log (*.log), as a crash during a
 *     write leaves it. The node must start (a torn tail is repaired) and rejoin.
 *   - flipByte: flip one byte inside a record that is followed by another record (newest log first),
 *     or inside a table file; the node must refuse to start with CORRUPT_DATA.
 * File formats as in LevelDB's doc/log_format.md (32 KiB blocks of records: crc32c u32, length u16,
 * type u8, data) and doc/table_format.md (every block of a table is checksummed, footer 48 bytes).
 */
import { open, readdir, readFile, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import type { Prng } from "../support/prng.ts";

const LOG_BLOCK_BYTES = 32 * 1024;
const LOG_HEADER_BYTES = 7;
const TABLE_FOOTER_BYTES = 48;
/** Largest tail cut, in bytes. */
export const TRUNCATE_BYTES_MAX = 16 * 1024;

export interface DiskFaultResult {
  /** What was done, or why nothing could be (no suitable file). */
  done: boolean;
  file?: string;
  offset?: number;
  bytes?: number;
  note: string;
}

async function levelFiles(dataDir: string, ext: string): Promise<{ name: string; path: string; size: number }[]> {
  const dir = join(dataDir, "level");
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const files = [];
  for (const name of names.filter((n) => n.endsWith(ext)).sort()) {
    const path = join(dir, name);
    files.push({ name, path, size: (await stat(path)).size });
  }
  // LevelDB file numbers grow: the newest file has the largest number.
  return files.sort((a, b) => Number.parseInt(a.name, 10) - Number.parseInt(b.name, 10));
}

/** Cuts 1..TRUNCATE_BYTES_MAX bytes (at most half the file) off the newest non-empty write-ahead log. */
export async function truncateLogTail(dataDir: string, rng: Prng): Promise<DiskFaultResult> {
  const logs = (await levelFiles(dataDir, ".log")).filter((f) => f.size > 0);
  const newest = logs[logs.length - 1];
  if (newest === undefined) return { done: false, note: "no non-empty write-ahead log to truncate" };
  const bytes = rng.range(1, Math.max(1, Math.min(TRUNCATE_BYTES_MAX, Math.floor(newest.size / 2))));
  await truncate(newest.path, newest.size - bytes);
  return { done: true, file: newest.name, offset: newest.size - bytes, bytes, note: `cut ${bytes} of ${newest.size} bytes off ${newest.name}` };
}

/** Data byte ranges of the records of a LevelDB log: [start, end) of each record's data. */
function logRecords(data: Buffer): { start: number; end: number }[] {
  const records = [];
  for (let block = 0; block < data.length; block += LOG_BLOCK_BYTES) {
    let offset = block;
    const blockEnd = Math.min(block + LOG_BLOCK_BYTES, data.length);
    while (offset + LOG_HEADER_BYTES <= blockEnd) {
      const length = data.readUInt16LE(offset + 4);
      const type = data[offset + 6]!;
      if (type === 0 && length === 0) break; // zero padding to the end of the block
      const start = offset + LOG_HEADER_BYTES;
      if (start + length > blockEnd) break; // torn
      if (length > 0) records.push({ start, end: start + length });
      offset = start + length;
    }
  }
  return records;
}

async function flipAt(path: string, offset: number): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const one = Buffer.alloc(1);
    await handle.read(one, 0, 1, offset);
    one[0] = one[0]! ^ 0xff;
    await handle.write(one, 0, 1, offset);
  } finally {
    await handle.close();
  }
}

/**
 * Flips one byte that verification must catch: in the data of a log record that has a later record
 * after it (a damaged record followed by an intact one is not a torn tail), newest log first; else
 * anywhere before the footer of the largest table file (every table byte is under a block checksum).
 */
export async function flipByte(dataDir: string, rng: Prng): Promise<DiskFaultResult> {
  const logs = await levelFiles(dataDir, ".log");
  for (const log of logs.reverse()) {
    const records = logRecords(await readFile(log.path));
    if (records.length < 2) continue;
    const record = records[rng.int(records.length - 1)]!;
    const offset = record.start + rng.int(record.end - record.start);
    await flipAt(log.path, offset);
    return { done: true, file: log.name, offset, note: `flipped byte ${offset} of ${log.name} (a record followed by ${records.length - 1 - records.indexOf(record)} more)` };
  }
  const tables = (await levelFiles(dataDir, ".ldb")).filter((f) => f.size > TABLE_FOOTER_BYTES);
  const largest = tables.sort((a, b) => b.size - a.size)[0];
  if (largest === undefined) return { done: false, note: "no log with two records and no table file to damage" };
  const offset = rng.int(largest.size - TABLE_FOOTER_BYTES);
  await flipAt(largest.path, offset);
  return { done: true, file: largest.name, offset, note: `flipped byte ${offset} of table ${largest.name}` };
}
