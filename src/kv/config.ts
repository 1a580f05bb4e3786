/**
 * Bucket configuration: defaults, validation (NATS wording where NATS has one) and the rules for
 * updating a bucket. normalizeConfig returns a fresh object with every field present in one fixed order
 * (metadata keys sorted), so equal configs encode to equal bytes in snapshots and the log.
 */
import { CairnError } from "../shared/errors.ts";
import { BUCKET_CONFIG_FIELDS } from "../shared/protocol.ts";
import type { BucketConfig, StorageType } from "./types.ts";

export const HISTORY_MAX = 64;
export const DESCRIPTION_BYTES_MAX = 4096;
export const METADATA_BYTES_MAX = 128 * 1024;
export const TTL_MS_MIN = 100;
export const MARKER_TTL_MS_MIN = 1000;
export const REPLICAS_MAX = 5;
export const REPLICAS_DEFAULT_MAX = 3;

const FIELDS: ReadonlySet<string> = new Set(BUCKET_CONFIG_FIELDS);

function invalid(message: string): CairnError {
  return new CairnError("INVALID_CONFIG", message);
}

/** UTF-8 length of a string, without TextEncoder (kept dependency-free and exact for lone surrogates). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

function integerField(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value)) throw invalid(`${name} must be an integer`);
  return value;
}

/** -1 = unlimited; 0 also means unlimited (as nats.go maps 0 to -1); otherwise a positive size. */
function sizeLimit(value: unknown, name: string): number {
  const n = integerField(value, name);
  if (n === undefined || n === 0 || n === -1) return -1;
  if (n < -1) throw invalid(`${name} must be -1 (unlimited) or a positive number of bytes`);
  return n;
}

function normalizeMetadata(value: unknown): Readonly<Record<string, string>> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid("metadata must be a map of strings");
  const entries = Object.entries(value as Record<string, unknown>);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const [k, v] of entries) {
    if (typeof v !== "string") throw invalid("metadata must be a map of strings");
    bytes += utf8Length(k) + utf8Length(v);
    // defineProperty, not assignment: a key named "__proto__" must stay an ordinary own property.
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  if (bytes > METADATA_BYTES_MAX) throw invalid("metadata is limited to 128KiB");
  return out;
}

/**
 * Fills defaults and validates. Throws CairnError INVALID_CONFIG. `clusterSize`, when known, sets the
 * default replicas (min(3, nodes)) and bounds replicas; without it the default is 1 and only 1..5 is
 * checked (the state machine does not know the cluster size; the node checks before proposing).
 */
export function normalizeConfig(input: Partial<BucketConfig> | undefined, clusterSize?: number): BucketConfig {
  const raw: Record<string, unknown> = input === undefined ? {} : (input as Record<string, unknown>);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw invalid("bucket config must be an object");
  for (const name of Object.keys(raw)) {
    if (!FIELDS.has(name) && raw[name] !== undefined) throw invalid(`unknown bucket config field: ${name}`);
  }

  const description = raw["description"] ?? "";
  if (typeof description !== "string") throw invalid("description must be a string");
  if (utf8Length(description) > DESCRIPTION_BYTES_MAX) throw invalid("description is limited to 4096 bytes");

  let history = integerField(raw["history"], "history") ?? 1;
  if (history === 0) history = 1; // as nats.go: 0 means the default
  if (history > HISTORY_MAX) throw invalid("history limited to a max of 64");
  if (history < 1) throw invalid("history must be at least 1");

  const ttlMs = integerField(raw["ttlMs"], "ttlMs") ?? 0;
  if (ttlMs < 0) throw invalid("ttl must not be negative");
  if (ttlMs !== 0 && ttlMs < TTL_MS_MIN) throw invalid("max age needs to be >= 100ms");

  const maxBytes = sizeLimit(raw["maxBytes"], "maxBytes");
  const maxValueSize = sizeLimit(raw["maxValueSize"], "maxValueSize");

  const replicasDefault = Math.min(REPLICAS_DEFAULT_MAX, clusterSize ?? 1);
  let replicas = integerField(raw["replicas"], "replicas") ?? replicasDefault;
  if (replicas === 0) replicas = replicasDefault;
  if (replicas < 1 || replicas > REPLICAS_MAX) throw invalid("replicas must be between 1 and 5");
  if (clusterSize !== undefined && replicas > clusterSize) {
    throw invalid(`replicas (${replicas}) exceed the cluster size (${clusterSize})`);
  }

  const storage = raw["storage"] ?? "file";
  if (storage !== "file" && storage !== "memory") throw invalid("storage must be file or memory");

  const markerTtlMs = integerField(raw["markerTtlMs"], "markerTtlMs") ?? 0;
  if (markerTtlMs < 0) throw invalid("marker ttl must not be negative");
  if (markerTtlMs !== 0 && markerTtlMs < MARKER_TTL_MS_MIN) throw invalid("marker ttl must be at least 1s");

  const metadata = normalizeMetadata(raw["metadata"]);

  const compression = raw["compression"] ?? false;
  if (typeof compression !== "boolean") throw invalid("compression must be a boolean");

  return {
    description,
    history,
    ttlMs,
    maxBytes,
    maxValueSize,
    replicas,
    storage: storage satisfies StorageType,
    markerTtlMs,
    metadata,
    compression,
  };
}

/**
 * May a bucket with `oldConfig` be updated to `next` (both normalized)? History, ttl, limits,
 * description, metadata, replicas and compression may change. Throws CairnError INVALID_CONFIG when the
 * storage type changes or when per-key TTL (markerTtl) would be switched off again: records already
 * carrying a TTL rely on markers (as NATS, which does not allow disabling per-message TTL).
 */
export function configUpdateAllowed(oldConfig: BucketConfig, next: BucketConfig): void {
  if (oldConfig.storage !== next.storage) throw invalid("storage can not be changed");
  if (oldConfig.markerTtlMs > 0 && next.markerTtlMs === 0) throw invalid("markerTtl can not be disabled once enabled");
}

/** Field-by-field equality of two normalized configs (metadata included). */
export function configsEqual(a: BucketConfig, b: BucketConfig): boolean {
  if (
    a.description !== b.description ||
    a.history !== b.history ||
    a.ttlMs !== b.ttlMs ||
    a.maxBytes !== b.maxBytes ||
    a.maxValueSize !== b.maxValueSize ||
    a.replicas !== b.replicas ||
    a.storage !== b.storage ||
    a.markerTtlMs !== b.markerTtlMs ||
    a.compression !== b.compression
  ) {
    return false;
  }
  const aKeys = Object.keys(a.metadata);
  const bKeys = Object.keys(b.metadata);
  if (aKeys.length !== bKeys.length) return false;
  for (const k of aKeys) if (a.metadata[k] !== b.metadata[k]) return false;
  return true;
}
