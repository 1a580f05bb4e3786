/**
 * The snapshot image of the whole KV state.
 *
 *   bytes 0..3   magic "CKVS"
 *   bytes 4..7   format version, uint32 little-endian (SNAPSHOT_FORMAT_VERSION)
 *   bytes 8..11  CRC-32 of the payload, uint32 little-endian
 *   bytes 12..   payload: msgpackr (explicit options below) of SnapshotPayload
 *
 * Records go column-wise as binary blobs (typed arrays, little-endian), so a million records encode and
 * decode in a few copies instead of a million msgpack maps. Everything is in canonical order (buckets by
 * name, keys ascending, records by revision, dedupe entries by age), so equal states give equal bytes.
 * decodeSnapshot validates everything it reads and throws CairnError CORRUPT_DATA on any damage.
 */
import { Packr, RESERVE_START_SPACE } from "msgpackr";
import { assert } from "../shared/assert.ts";
import { CairnError, isErrorCode } from "../shared/errors.ts";
import { configsEqual, normalizeConfig } from "./config.ts";
import { crc32 } from "./crc32.ts";
import type { DedupeEntry } from "./dedupe.ts";
import { isValidBucketName, isValidKey } from "./names.ts";
import { FLAG_MAX_AGE, OP_MASK, OP_PURGE, OP_PUT, type LogColumns } from "./record-log.ts";
import type { BucketConfig, KvResult } from "./types.ts";

export const SNAPSHOT_FORMAT_VERSION = 1;
const MAGIC = [0x43, 0x4b, 0x56, 0x53]; // "CKVS"
const HEADER_BYTES = 12;
/** Keys cannot contain a newline, so the sorted keys travel as one joined string. */
const KEY_SEPARATOR = "\n";

/** Fixed msgpackr options, so a changed library default cannot change the snapshot bytes. */
const PACKR_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  variableMapSize: false,
  useFloat32: 0,
  int64AsType: "number",
  encodeUndefinedAsNil: false,
  copyBuffers: false,
} as const;
const unpackr = new Packr(PACKR_OPTIONS);

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface SnapshotBucket {
  readonly name: string;
  readonly config: BucketConfig;
  readonly lastRevision: number;
  readonly columns: LogColumns;
}

export interface SnapshotState {
  readonly appliedIndex: number;
  readonly now: number;
  readonly dedupe: readonly DedupeEntry[];
  /** Sorted by name. */
  readonly buckets: readonly SnapshotBucket[];
}

function bytesOf(array: Float64Array | Uint32Array | Uint8Array): Uint8Array {
  assert(LITTLE_ENDIAN, "snapshots assume a little-endian platform");
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

export function encodeSnapshot(state: SnapshotState): Uint8Array {
  const payload = {
    version: SNAPSHOT_FORMAT_VERSION,
    appliedIndex: state.appliedIndex,
    now: state.now,
    dedupe: state.dedupe.map((e) => [e.requestId, e.time, e.result]),
    buckets: state.buckets.map((b) => ({
      name: b.name,
      config: b.config,
      lastRevision: b.lastRevision,
      keyCount: b.columns.keys.length,
      keys: b.columns.keys.join(KEY_SEPARATOR),
      recordKey: bytesOf(b.columns.recordKey),
      revision: bytesOf(b.columns.revision),
      created: bytesOf(b.columns.created),
      expiresAt: bytesOf(b.columns.expiresAt),
      op: b.columns.op,
      valueLength: bytesOf(b.columns.valueLength),
      values: b.columns.values,
    })),
  };
  // A Packr per image: it keeps its (image-sized) output buffer for reuse, which must not outlive the
  // image. The header is written into space msgpackr reserves in front of the payload, saving a copy.
  const packr = new Packr(PACKR_OPTIONS);
  const out: Uint8Array = packr.pack(payload, RESERVE_START_SPACE | HEADER_BYTES);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(4, SNAPSHOT_FORMAT_VERSION, true);
  view.setUint32(8, crc32(out.subarray(HEADER_BYTES)), true);
  return out;
}

function corrupt(reason: string): CairnError {
  return new CairnError("CORRUPT_DATA", `corrupt data: KV snapshot ${reason}`);
}

function check(condition: boolean, reason: string): asserts condition {
  if (!condition) throw corrupt(reason);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Copies a blob into a fresh, aligned typed array of `elementBytes` per element. */
function column<T extends Float64Array | Uint32Array>(
  value: unknown,
  make: (length: number) => T,
  elementBytes: number,
  name: string,
): T {
  check(value instanceof Uint8Array && value.length % elementBytes === 0, `column ${name} malformed`);
  const out = make(value.length / elementBytes);
  new Uint8Array(out.buffer).set(value);
  return out;
}

function decodeResult(value: unknown): KvResult {
  check(isRecord(value) && typeof value["ok"] === "boolean", "dedupe result malformed");
  if (value["ok"] === false) {
    check(isErrorCode(value["code"]) && typeof value["message"] === "string", "dedupe result malformed");
  }
  return value as unknown as KvResult;
}

function decodeBucket(raw: unknown): SnapshotBucket {
  check(isRecord(raw), "bucket malformed");
  const name = raw["name"];
  check(isValidBucketName(name), "bucket name invalid");
  let config: BucketConfig;
  try {
    config = normalizeConfig(raw["config"] as Partial<BucketConfig>);
  } catch {
    throw corrupt(`bucket ${name} config invalid`);
  }
  check(configsEqual(config, raw["config"] as BucketConfig), `bucket ${name} config not canonical`);
  const lastRevision = raw["lastRevision"];
  check(isCount(lastRevision), `bucket ${name} revision invalid`);

  const keyCount = raw["keyCount"];
  const joined = raw["keys"];
  check(isCount(keyCount) && typeof joined === "string", `bucket ${name} keys malformed`);
  const keys = keyCount === 0 ? [] : joined.split(KEY_SEPARATOR);
  check(keys.length === keyCount && (keyCount > 0 || joined === ""), `bucket ${name} key count wrong`);
  for (let i = 0; i < keys.length; i++) {
    if (!isValidKey(keys[i]) || (i > 0 && keys[i - 1]! >= keys[i]!)) throw corrupt(`bucket ${name} keys invalid or unordered`);
  }

  const revision = column(raw["revision"], (n) => new Float64Array(n), 8, "revision");
  const n = revision.length;
  const created = column(raw["created"], (n) => new Float64Array(n), 8, "created");
  const expiresAt = column(raw["expiresAt"], (n) => new Float64Array(n), 8, "expiresAt");
  const recordKey = column(raw["recordKey"], (n) => new Uint32Array(n), 4, "recordKey");
  const valueLength = column(raw["valueLength"], (n) => new Uint32Array(n), 4, "valueLength");
  const opRaw = raw["op"];
  const valuesRaw = raw["values"];
  check(opRaw instanceof Uint8Array && valuesRaw instanceof Uint8Array, `bucket ${name} columns malformed`);
  check(
    created.length === n && expiresAt.length === n && recordKey.length === n && valueLength.length === n && opRaw.length === n,
    `bucket ${name} column lengths differ`,
  );
  const op = opRaw;
  const values = valuesRaw; // read once, copied into the restored log's arena

  // One pass over the records; messages are built only on failure (this loop runs a million times).
  const perKey = new Uint32Array(keys.length);
  let valueBytes = 0;
  let problem: string | null = null;
  for (let i = 0; i < n && problem === null; i++) {
    const rev = revision[i]!;
    const code = op[i]!;
    const base = code & OP_MASK;
    const key = recordKey[i]!;
    if (!Number.isSafeInteger(rev) || rev < 1 || rev > lastRevision || (i > 0 && revision[i - 1]! >= rev)) problem = "revisions invalid";
    else if (!Number.isFinite(created[i]!) || (i > 0 && created[i - 1]! > created[i]!)) problem = "times invalid";
    else if (!Number.isFinite(expiresAt[i]!)) problem = "expiry invalid";
    else if (base > OP_PURGE || (code & ~(OP_MASK | FLAG_MAX_AGE)) !== 0) problem = "operation invalid";
    else if ((code & FLAG_MAX_AGE) !== 0 && base !== OP_PURGE) problem = "marker flag invalid";
    else if (base !== OP_PUT && valueLength[i] !== 0) problem = "marker carries a value";
    else if (key >= keys.length) problem = "record key out of range";
    else {
      perKey[key]!++;
      valueBytes += valueLength[i]!;
    }
  }
  check(problem === null, `bucket ${name} ${problem}`);
  check(valueBytes === values.length, `bucket ${name} value bytes wrong`);
  for (let k = 0; k < keys.length; k++) {
    if (perKey[k]! < 1 || perKey[k]! > config.history) throw corrupt(`bucket ${name} key history invalid`);
  }
  return { name, config, lastRevision, columns: { keys, recordKey, revision, created, expiresAt, op, valueLength, values } };
}

/** Reads a snapshot image; throws CairnError CORRUPT_DATA when anything is wrong with it. */
export function decodeSnapshot(data: Uint8Array): SnapshotState {
  check(data instanceof Uint8Array && data.length >= HEADER_BYTES, "too short");
  for (let i = 0; i < MAGIC.length; i++) check(data[i] === MAGIC[i], "magic wrong");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const version = view.getUint32(4, true);
  check(version === SNAPSHOT_FORMAT_VERSION, `format version ${version} unknown`);
  const body = data.subarray(HEADER_BYTES);
  check(crc32(body) === view.getUint32(8, true), "checksum mismatch");
  let payload: unknown;
  try {
    payload = unpackr.unpack(body);
  } catch {
    throw corrupt("payload undecodable");
  }
  check(isRecord(payload) && payload["version"] === SNAPSHOT_FORMAT_VERSION, "payload malformed");
  const { appliedIndex, now, dedupe, buckets } = payload;
  check(isCount(appliedIndex) && typeof now === "number" && Number.isFinite(now), "header fields invalid");
  check(Array.isArray(dedupe) && Array.isArray(buckets), "payload malformed");

  const entries: DedupeEntry[] = [];
  const ids = new Set<string>();
  for (const raw of dedupe as unknown[]) {
    check(Array.isArray(raw) && raw.length === 3, "dedupe entry malformed");
    const [requestId, time, result] = raw as [unknown, unknown, unknown];
    check(typeof requestId === "string" && !ids.has(requestId), "dedupe id invalid");
    check(typeof time === "number" && Number.isFinite(time), "dedupe time invalid");
    ids.add(requestId);
    entries.push({ requestId, time, result: decodeResult(result) });
  }
  const decoded = (buckets as unknown[]).map(decodeBucket);
  for (let i = 1; i < decoded.length; i++) check(decoded[i - 1]!.name < decoded[i]!.name, "buckets unordered");
  return { appliedIndex, now, dedupe: entries, buckets: decoded };
}
