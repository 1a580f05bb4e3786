/**
 * The on-disk format of the log store: keys, checksummed records and snapshot files. Shared by the
 * LevelDB store and its in-memory twin, so both verify exactly the same bytes.
 *
 * Keys (bytes; lexicographic order = the order we iterate in):
 *   "F"                                  format record: identifies a cairn log store and its version
 *   "M" + utf8(key)                      node metadata (node id, cluster id)
 *   "S" + utf8(group)                    group state: hard state, last index/term, current snapshot file
 *   "E" + utf8(group) + 0x00 + u64be(i)  log entry i (group names contain no NUL, so a group's entries are
 *                                        contiguous and big-endian indexes sort numerically)
 *
 * Every record value starts with a CRC32C over (key bytes || the rest of the value), then a format
 * version byte. Covering the key means a flipped key byte (an entry moved to another index or group) is
 * detected too.
 *
 * Entry record: crc u32 | version u8 | type u8 | term u64 | prevTerm u64 | data. A fixed binary layout in
 * one pre-sized buffer, not msgpack: a write of 1024 small entries must be cheap. `prevTerm` (the term of
 * entry i-1, or of the snapshot) chains the log, so a stale entry surviving next to newer ones (a lost
 * truncation) is detected on load as a broken chain.
 *
 * State, format and meta records: crc u32 | version u8 | msgpack body (explicit Packr options).
 *
 * Snapshot file: a 32-byte header (magic "CAIRNSNP", version u32, metadata bytes u32, data bytes u64,
 * crc32c(metadata || data) u32, crc32c(header[0..28)) u32), then msgpack metadata, then the data.
 */

import { createHash } from "node:crypto";
import { Packr } from "msgpackr";
import type { ConfState, Entry, EntryType, HardState, Snapshot } from "../raft/types.ts";
import { CairnError } from "../shared/errors.ts";
import { crc32c } from "./checksum.ts";

export const LOG_STORE_LIMITS = {
  /**
   * Group names are key prefixes and (escaped, hashed when long) file name parts. A bucket group is
   * "b:<bucket>:<index>": 2 + 252 (longest bucket name) + 1 + up to 16 digits = 271 bytes.
   */
  groupNameBytesMax: 300,
  /** Node metadata keys embed a group name behind a short prefix ("left:", "recovered:", ...). */
  metaKeyBytesMax: 400,
  metaValueBytesMax: 64 * 1024,
  /** Entry data size limit; the Raft core's message limits keep real entries far below it. */
  entryDataBytesMax: 64 * 1024 * 1024,
  /** A snapshot is held in memory whole (Snapshot.data is one Uint8Array). */
  snapshotBytesMax: 2 ** 32 - 1,
  /** Records read per LevelDB iterator step while loading or deleting a group. */
  rangeChunkRecordsMax: 1024,
  /** Keys deleted per batch by deleteGroup after the first (atomic) batch removed the group's state. */
  deleteBatchKeysMax: 10_000,
} as const;

/** Entry indexes and terms are stored as u64 but must stay exact JavaScript numbers. */
const NUMBER_MAX = Number.MAX_SAFE_INTEGER;

export const RECORD_VERSION = 1;
const CRC_BYTES = 4;
const RECORD_HEADER_BYTES = CRC_BYTES + 1; // crc + version
const ENTRY_HEADER_BYTES = RECORD_HEADER_BYTES + 1 + 8 + 8; // + type + term + prevTerm

export const KEY_FORMAT = 0x46; // "F"
export const KEY_META = 0x4d; // "M"
export const KEY_STATE = 0x53; // "S"
export const KEY_ENTRY = 0x45; // "E"

export const FORMAT_NAME = "cairn-log-store";
export const FORMAT_VERSION = 1;

/** msgpackr with every option spelled out, so a changed library default cannot change the disk format. */
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: "number",
  moreTypes: false,
  bundleStrings: false,
  structuredClone: false,
  useFloat32: 0,
});

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------------------------------------------
// Validation of caller input (TypeError, as abstract-level does for caller mistakes)

export function validateGroupName(group: unknown): asserts group is string {
  if (typeof group !== "string" || group.length === 0) throw new TypeError("group must be a non-empty string");
  if (group.includes("\u0000")) throw new TypeError("group must not contain NUL");
  if (Buffer.byteLength(group, "utf8") > LOG_STORE_LIMITS.groupNameBytesMax) {
    throw new TypeError(`group name longer than ${LOG_STORE_LIMITS.groupNameBytesMax} bytes`);
  }
}

export function validateMetaKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0) throw new TypeError("meta key must be a non-empty string");
  if (Buffer.byteLength(key, "utf8") > LOG_STORE_LIMITS.metaKeyBytesMax) {
    throw new TypeError(`meta key longer than ${LOG_STORE_LIMITS.metaKeyBytesMax} bytes`);
  }
}

export function validateIndex(value: unknown, what: string): asserts value is number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${what} must be a non-negative safe integer, got ${String(value)}`);
  }
}

export function validateEntry(entry: Entry, what: string): void {
  validateIndex(entry.index, `${what}.index`);
  validateIndex(entry.term, `${what}.term`);
  if (entry.index < 1) throw new TypeError(`${what}.index must be >= 1`);
  if (entry.type !== "normal" && entry.type !== "conf") throw new TypeError(`${what}.type must be normal|conf`);
  if (!(entry.data instanceof Uint8Array)) throw new TypeError(`${what}.data must be a Uint8Array`);
  if (entry.data.length > LOG_STORE_LIMITS.entryDataBytesMax) {
    throw new TypeError(`${what}.data longer than ${LOG_STORE_LIMITS.entryDataBytesMax} bytes`);
  }
}

export function validateHardState(hardState: HardState, what: string): void {
  validateIndex(hardState.term, `${what}.term`);
  validateIndex(hardState.commit, `${what}.commit`);
  if (hardState.vote !== null && typeof hardState.vote !== "string") {
    throw new TypeError(`${what}.vote must be a string or null`);
  }
}

export function validateSnapshot(snapshot: Snapshot, what: string): void {
  validateIndex(snapshot.metadata.index, `${what}.metadata.index`);
  validateIndex(snapshot.metadata.term, `${what}.metadata.term`);
  if (!(snapshot.data instanceof Uint8Array)) throw new TypeError(`${what}.data must be a Uint8Array`);
  if (snapshot.data.length > LOG_STORE_LIMITS.snapshotBytesMax) {
    throw new TypeError(`${what}.data longer than ${LOG_STORE_LIMITS.snapshotBytesMax} bytes`);
  }
  const { voters, learners } = snapshot.metadata.confState;
  if (!Array.isArray(voters) || !Array.isArray(learners)) throw new TypeError(`${what}.metadata.confState is malformed`);
}

// ---------------------------------------------------------------------------------------------------
// Small binary helpers

function writeU64(buffer: Buffer, value: number, offset: number): void {
  buffer.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  buffer.writeUInt32BE(value >>> 0, offset + 4);
}

function readU64(buffer: Uint8Array, offset: number): number {
  const view = asBuffer(buffer);
  const high = view.readUInt32BE(offset);
  const low = view.readUInt32BE(offset + 4);
  return high * 0x1_0000_0000 + low;
}

/** A plain Uint8Array view (no copy) of bytes[start, end): what load() hands out, never a Buffer. */
function plainView(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start);
}

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** CRC32C of key || value[CRC_BYTES..]. */
function recordCrc(key: Uint8Array, value: Uint8Array): number {
  return crc32c(value.subarray(CRC_BYTES), crc32c(key));
}

/** Damage found while decoding a record: the caller decides whether it is a torn tail or corruption. */
export class RecordDamage extends Error {
  override readonly name = "RecordDamage";
}

function checkRecord(key: Uint8Array, value: Uint8Array, headerBytes: number): void {
  if (value.length < headerBytes) throw new RecordDamage(`record is ${value.length} bytes, shorter than its header`);
  const stored = asBuffer(value).readUInt32BE(0);
  const actual = recordCrc(key, value);
  if (stored !== actual) throw new RecordDamage(`checksum mismatch (stored ${hex32(stored)}, computed ${hex32(actual)})`);
  const version = value[CRC_BYTES];
  if (version !== RECORD_VERSION) throw new RecordDamage(`unsupported record version ${String(version)}`);
}

export function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

// ---------------------------------------------------------------------------------------------------
// Keys

export const FORMAT_KEY: Buffer = Buffer.from([KEY_FORMAT]);

export function metaKey(key: string): Buffer {
  return Buffer.concat([Buffer.from([KEY_META]), Buffer.from(key, "utf8")]);
}

export function stateKey(group: string): Buffer {
  return Buffer.concat([Buffer.from([KEY_STATE]), Buffer.from(group, "utf8")]);
}

/** [gte, lt) covering every state key. */
export const STATE_RANGE: readonly [Buffer, Buffer] = [Buffer.from([KEY_STATE]), Buffer.from([KEY_STATE + 1])];

export function groupFromStateKey(key: Uint8Array): string {
  return textDecoder.decode(key.subarray(1));
}

/** The prefix shared by every entry key of a group: "E" + group + NUL. */
export function entryPrefix(group: string): Buffer {
  const groupBytes = Buffer.from(group, "utf8");
  const prefix = Buffer.allocUnsafe(groupBytes.length + 2);
  prefix[0] = KEY_ENTRY;
  groupBytes.copy(prefix, 1);
  prefix[groupBytes.length + 1] = 0;
  return prefix;
}

export function entryKey(prefix: Buffer, index: number): Buffer {
  return entryKeyInto(Buffer.allocUnsafe(prefix.length + 8), 0, prefix, index);
}

export function entryKeyBytes(prefix: Buffer): number {
  return prefix.length + 8;
}

/** Writes an entry key into `target` at `offset` and returns a view of it. */
export function entryKeyInto(target: Buffer, offset: number, prefix: Buffer, index: number): Buffer {
  const key = target.subarray(offset, offset + prefix.length + 8);
  prefix.copy(key, 0);
  writeU64(key, index, prefix.length);
  return key;
}

/** [gte, lt) covering the group's entries with index >= indexLow. */
export function entryRange(prefix: Buffer, indexLow: number): [Buffer, Buffer] {
  const end = Buffer.from(prefix);
  end[end.length - 1] = 1; // "E" + group + 0x01: just past every "E" + group + 0x00 + ...
  return [entryKey(prefix, indexLow), end];
}

/** The index encoded in an entry key of this prefix, or null when the key does not have that shape. */
export function indexFromEntryKey(prefix: Buffer, key: Uint8Array): number | null {
  if (key.length !== prefix.length + 8) return null;
  if (!asBuffer(key).subarray(0, prefix.length).equals(prefix)) return null;
  const index = readU64(key, prefix.length);
  return index <= NUMBER_MAX ? index : null;
}

// ---------------------------------------------------------------------------------------------------
// Entry records

const ENTRY_TYPE_CODES: Readonly<Record<EntryType, number>> = { normal: 0, conf: 1 };

export interface DecodedEntry {
  readonly entry: Entry;
  readonly prevTerm: number;
}

export function entryRecordBytes(entry: Entry): number {
  return ENTRY_HEADER_BYTES + entry.data.length;
}

/**
 * Encodes an entry record into `target` at `offset` (pre-sized by the caller with entryRecordBytes) and
 * returns a view of it. `key` must be the entry's key.
 */
export function encodeEntryRecordInto(
  target: Buffer,
  offset: number,
  key: Uint8Array,
  entry: Entry,
  prevTerm: number,
): Buffer {
  const length = ENTRY_HEADER_BYTES + entry.data.length;
  const value = target.subarray(offset, offset + length);
  value[CRC_BYTES] = RECORD_VERSION;
  value[CRC_BYTES + 1] = ENTRY_TYPE_CODES[entry.type];
  writeU64(value, entry.term, CRC_BYTES + 2);
  writeU64(value, prevTerm, CRC_BYTES + 10);
  value.set(entry.data, ENTRY_HEADER_BYTES);
  value.writeUInt32BE(recordCrc(key, value), 0);
  return value;
}

export function encodeEntryRecord(key: Uint8Array, entry: Entry, prevTerm: number): Buffer {
  return encodeEntryRecordInto(Buffer.allocUnsafe(entryRecordBytes(entry)), 0, key, entry, prevTerm);
}

/** Decodes and verifies an entry record; throws RecordDamage. `data` is a view into `value`. */
export function decodeEntryRecord(key: Uint8Array, index: number, value: Uint8Array): DecodedEntry {
  checkRecord(key, value, ENTRY_HEADER_BYTES);
  const typeCode = value[CRC_BYTES + 1];
  const type: EntryType | null = typeCode === 0 ? "normal" : typeCode === 1 ? "conf" : null;
  if (type === null) throw new RecordDamage(`unknown entry type code ${String(typeCode)}`);
  const term = readU64(value, CRC_BYTES + 2);
  const prevTerm = readU64(value, CRC_BYTES + 10);
  if (term > NUMBER_MAX || prevTerm > NUMBER_MAX) throw new RecordDamage("term out of range");
  return { entry: { index, term, type, data: plainView(value, ENTRY_HEADER_BYTES, value.length) }, prevTerm };
}

// ---------------------------------------------------------------------------------------------------
// msgpack records (state, format, meta)

function encodeBodyRecord(key: Uint8Array, body: Uint8Array): Buffer {
  const value = Buffer.allocUnsafe(RECORD_HEADER_BYTES + body.length);
  value[CRC_BYTES] = RECORD_VERSION;
  value.set(body, RECORD_HEADER_BYTES);
  value.writeUInt32BE(recordCrc(key, value), 0);
  return value;
}

function decodeBodyRecord(key: Uint8Array, value: Uint8Array): Uint8Array {
  checkRecord(key, value, RECORD_HEADER_BYTES);
  return value.subarray(RECORD_HEADER_BYTES);
}

function unpackObject(body: Uint8Array): Record<string, unknown> {
  let decoded: unknown;
  try {
    decoded = packr.unpack(body);
  } catch (error) {
    throw new RecordDamage(`undecodable body (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof decoded !== "object" || decoded === null || Array.isArray(decoded)) {
    throw new RecordDamage("body is not a map");
  }
  return decoded as Record<string, unknown>;
}

function field<T>(body: Record<string, unknown>, name: string, check: (value: unknown) => value is T): T {
  const value = body[name];
  if (!check(value)) throw new RecordDamage(`field ${name} is malformed`);
  return value;
}

const isIndex = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
const isString = (value: unknown): value is string => typeof value === "string";
const isVote = (value: unknown): value is string | null => value === null || typeof value === "string";
const isObjectOrNull = (value: unknown): value is Record<string, unknown> | null =>
  value === null || (typeof value === "object" && !Array.isArray(value));

/** Where a group's current snapshot lives and what it must contain. */
export interface SnapshotRef {
  readonly index: number;
  readonly term: number;
  /** File name inside the snapshots directory. */
  readonly file: string;
  readonly fileBytes: number;
  /** crc32c(metadata || data) as in the file header: ties the state record to this exact file. */
  readonly bodyCrc: number;
}

/** A group's state record. Invariant: snapshot index <= lastIndex; lastTerm = term at lastIndex. */
export interface GroupState {
  readonly hardState: HardState;
  /** Last log index (the snapshot index when no entries follow it; 0 for an empty group). */
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly snapshot: SnapshotRef | null;
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: null, commit: 0 });

export function encodeStateRecord(key: Uint8Array, state: GroupState): Buffer {
  const snapshot = state.snapshot;
  return encodeBodyRecord(
    key,
    packr.pack({
      term: state.hardState.term,
      vote: state.hardState.vote,
      commit: state.hardState.commit,
      lastIndex: state.lastIndex,
      lastTerm: state.lastTerm,
      snapshot:
        snapshot === null
          ? null
          : {
              index: snapshot.index,
              term: snapshot.term,
              file: snapshot.file,
              fileBytes: snapshot.fileBytes,
              bodyCrc: snapshot.bodyCrc,
            },
    }),
  );
}

export function decodeStateRecord(key: Uint8Array, value: Uint8Array): GroupState {
  const body = unpackObject(decodeBodyRecord(key, value));
  const snapshotBody = field(body, "snapshot", isObjectOrNull);
  const snapshot: SnapshotRef | null =
    snapshotBody === null
      ? null
      : {
          index: field(snapshotBody, "index", isIndex),
          term: field(snapshotBody, "term", isIndex),
          file: field(snapshotBody, "file", isString),
          fileBytes: field(snapshotBody, "fileBytes", isIndex),
          bodyCrc: field(snapshotBody, "bodyCrc", isIndex),
        };
  const state: GroupState = {
    hardState: {
      term: field(body, "term", isIndex),
      vote: field(body, "vote", isVote),
      commit: field(body, "commit", isIndex),
    },
    lastIndex: field(body, "lastIndex", isIndex),
    lastTerm: field(body, "lastTerm", isIndex),
    snapshot,
  };
  if (snapshot !== null && snapshot.index > state.lastIndex) {
    throw new RecordDamage(`snapshot index ${snapshot.index} beyond last index ${state.lastIndex}`);
  }
  return state;
}

export function encodeFormatRecord(): Buffer {
  return encodeBodyRecord(FORMAT_KEY, packr.pack({ format: FORMAT_NAME, version: FORMAT_VERSION }));
}

/** Throws RecordDamage when the record is damaged or not ours. */
export function checkFormatRecord(value: Uint8Array): void {
  const body = unpackObject(decodeBodyRecord(FORMAT_KEY, value));
  if (body["format"] !== FORMAT_NAME) throw new RecordDamage(`not a ${FORMAT_NAME} (format ${String(body["format"])})`);
  if (body["version"] !== FORMAT_VERSION) {
    throw new RecordDamage(`unsupported ${FORMAT_NAME} version ${String(body["version"])}`);
  }
}

export function encodeMetaRecord(key: Uint8Array, value: Uint8Array): Buffer {
  return encodeBodyRecord(key, value);
}

export function decodeMetaRecord(key: Uint8Array, value: Uint8Array): Uint8Array {
  return decodeBodyRecord(key, value);
}

// ---------------------------------------------------------------------------------------------------
// Snapshot files

const SNAPSHOT_MAGIC = Buffer.from("CAIRNSNP", "latin1");
const SNAPSHOT_FILE_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 32;
const SNAPSHOT_FILE_SUFFIX = ".snap";
const INDEX_DIGITS = 16;

/** Longest escaped group name used as is in a file name (file names are limited to 255 bytes). */
const SAFE_NAME_CHARS_MAX = 120;

/**
 * A file-name-safe spelling of a group name: [A-Za-z0-9_.] kept, every other byte %XX. A long result
 * is cut and suffixed with a hash of the whole name. Only used to name and find files: the group a file
 * belongs to is recorded (and checked) inside it.
 */
export function safeGroupName(group: string): string {
  let out = "";
  for (const byte of Buffer.from(group, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_.]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  if (out.length <= SAFE_NAME_CHARS_MAX) return out;
  const hash = createHash("sha256").update(group, "utf8").digest("hex").slice(0, 24);
  return `${out.slice(0, SAFE_NAME_CHARS_MAX - 25)}~${hash}`;
}

/** `<safe-group>-<index, 16 digits>-<sequence>.snap`; the sequence keeps every file name unique. */
export function snapshotFileName(group: string, index: number, sequence: number): string {
  return `${safeGroupName(group)}-${String(index).padStart(INDEX_DIGITS, "0")}-${sequence}${SNAPSHOT_FILE_SUFFIX}`;
}

export interface ParsedSnapshotFileName {
  readonly safeGroup: string;
  readonly index: number;
  readonly sequence: number;
}

export function parseSnapshotFileName(name: string): ParsedSnapshotFileName | null {
  const match = /^(.+)-(\d{16})-(\d{1,15})\.snap$/.exec(name);
  if (match === null) return null;
  return { safeGroup: match[1]!, index: Number(match[2]), sequence: Number(match[3]) };
}

export interface EncodedSnapshotFile {
  /** The file's contents in order (header + metadata, then the data, not copied). */
  readonly chunks: readonly Uint8Array[];
  readonly fileBytes: number;
  readonly bodyCrc: number;
}

export function encodeSnapshotFile(group: string, snapshot: Snapshot): EncodedSnapshotFile {
  const { index, term, confState } = snapshot.metadata;
  const metadata = packr.pack({
    group,
    index,
    term,
    voters: [...confState.voters],
    learners: [...confState.learners],
  });
  const head = Buffer.alloc(SNAPSHOT_HEADER_BYTES + metadata.length);
  SNAPSHOT_MAGIC.copy(head, 0);
  head.writeUInt32BE(SNAPSHOT_FILE_VERSION, 8);
  head.writeUInt32BE(metadata.length, 12);
  writeU64(head, snapshot.data.length, 16);
  const bodyCrc = crc32c(snapshot.data, crc32c(metadata));
  head.writeUInt32BE(bodyCrc, 24);
  head.writeUInt32BE(crc32c(head.subarray(0, 28)), 28);
  head.set(metadata, SNAPSHOT_HEADER_BYTES);
  return { chunks: [head, snapshot.data], fileBytes: head.length + snapshot.data.length, bodyCrc };
}

/** Decodes and verifies a snapshot file against what the state record says it holds; throws RecordDamage. */
export function decodeSnapshotFile(group: string, ref: SnapshotRef, file: Uint8Array): Snapshot {
  if (file.length !== ref.fileBytes) throw new RecordDamage(`file is ${file.length} bytes, expected ${ref.fileBytes}`);
  if (file.length < SNAPSHOT_HEADER_BYTES) throw new RecordDamage("file shorter than its header");
  const buffer = asBuffer(file);
  if (!buffer.subarray(0, 8).equals(SNAPSHOT_MAGIC)) throw new RecordDamage("bad magic");
  if (buffer.readUInt32BE(28) !== crc32c(buffer.subarray(0, 28))) throw new RecordDamage("header checksum mismatch");
  const version = buffer.readUInt32BE(8);
  if (version !== SNAPSHOT_FILE_VERSION) throw new RecordDamage(`unsupported snapshot file version ${version}`);
  const metadataBytes = buffer.readUInt32BE(12);
  const dataBytes = readU64(buffer, 16);
  if (SNAPSHOT_HEADER_BYTES + metadataBytes + dataBytes !== file.length) {
    throw new RecordDamage("header lengths do not match the file size");
  }
  const metadata = buffer.subarray(SNAPSHOT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES + metadataBytes);
  const data = plainView(buffer, SNAPSHOT_HEADER_BYTES + metadataBytes, buffer.length);
  const bodyCrc = crc32c(data, crc32c(metadata));
  if (bodyCrc !== buffer.readUInt32BE(24)) throw new RecordDamage("body checksum mismatch");
  if (bodyCrc !== ref.bodyCrc) throw new RecordDamage("file is not the one the state record names (checksum differs)");
  const body = unpackObject(metadata);
  const voters = body["voters"];
  const learners = body["learners"];
  const isNames = (value: unknown): value is string[] => Array.isArray(value) && value.every(isString);
  if (!isNames(voters) || !isNames(learners)) throw new RecordDamage("conf state is malformed");
  const confState: ConfState = { voters, learners };
  const index = field(body, "index", isIndex);
  const term = field(body, "term", isIndex);
  if (body["group"] !== group) throw new RecordDamage(`file belongs to group ${JSON.stringify(body["group"])}`);
  if (index !== ref.index || term !== ref.term) {
    throw new RecordDamage(`file holds index ${index} term ${term}, state record says ${ref.index}/${ref.term}`);
  }
  return { metadata: { index, term, confState }, data };
}

// ---------------------------------------------------------------------------------------------------

export function corrupt(message: string, cause?: unknown): CairnError {
  return new CairnError("CORRUPT_DATA", message, {}, cause === undefined ? undefined : { cause });
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}
