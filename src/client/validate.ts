/**
 * Argument checks that run before anything is sent. Wrong types are TypeErrors (caller bugs, as in
 * abstract-level); well-typed but invalid values are CairnErrors with the code the server would use
 * (INVALID_KEY, INVALID_BUCKET_NAME, INVALID_CONFIG, INVALID_OPTION, VALUE_TOO_LARGE), so a caller sees
 * the same error whether the client or the server caught it. Names use src/shared/names.ts, the rules
 * every layer shares; the bucket config rules mirror KV-SEMANTICS.md ("Bucket config").
 */
import { CairnError } from "../shared/errors.ts";
import * as names from "../shared/names.ts";
import { BUCKET_CONFIG_FIELDS, PROTOCOL_LIMITS, type BucketConfigInput, type Consistency } from "../shared/protocol.ts";
import type { KvWatchInclude } from "./types.ts";

/** TypeError when not a string (a caller bug); CairnError INVALID_BUCKET_NAME when not a valid name. */
export function validateBucketName(name: unknown): asserts name is string {
  if (typeof name !== "string") throw new TypeError(`bucket name must be a string, got ${typeof name}`);
  names.validateBucketName(name);
}

/** TypeError when not a string; CairnError INVALID_KEY when not a valid key (wildcards included). */
export function validateKey(key: unknown): asserts key is string {
  if (typeof key !== "string") throw new TypeError(`key must be a string, got ${typeof key}`);
  names.validateKey(key);
}

/** TypeError when not a string; CairnError INVALID_KEY when not a valid filter. */
export function validateFilter(filter: unknown): asserts filter is string {
  if (typeof filter !== "string") throw new TypeError(`key filter must be a string, got ${typeof filter}`);
  names.validateFilter(filter);
}

const encoder = new TextEncoder();

/** Room left in a frame for everything but the value (key, bucket, ids, msgpack overhead). */
const FRAME_OVERHEAD_BYTES = 64 * 1024;
export const VALUE_BYTES_MAX = PROTOCOL_LIMITS.frameBytesMax - FRAME_OVERHEAD_BYTES;

export const BUCKET_CONFIG_RULES = {
  historyMax: 64,
  ttlMsMin: 100,
  replicasMax: 5,
  markerTtlMsMin: 1000,
  descriptionBytesMax: 4096,
  metadataBytesMax: 128 * 1024,
} as const;

function invalidOption(message: string): CairnError {
  return new CairnError("INVALID_OPTION", `invalid option: ${message}`);
}

function invalidConfig(message: string): CairnError {
  return new CairnError("INVALID_CONFIG", message);
}

/** Options must be an object (or omitted) with only known names: a typo is reported, not ignored. */
export function checkOptions<T extends object>(options: T | undefined, allowed: readonly string[], what: string): Partial<T> {
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw new TypeError(`${what} options must be an object`);
  for (const name of Object.keys(options)) {
    if (!allowed.includes(name)) throw invalidOption(`unknown ${what} option ${JSON.stringify(name)}`);
  }
  return options;
}

/** string → UTF-8 bytes; Uint8Array kept. VALUE_TOO_LARGE when it cannot fit in one frame. */
export function checkValue(value: unknown): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === "string") bytes = encoder.encode(value);
  else if (value instanceof Uint8Array) bytes = value;
  else throw new TypeError(`value must be a string or a Uint8Array, got ${value === null ? "null" : typeof value}`);
  if (bytes.length > VALUE_BYTES_MAX) throw new CairnError("VALUE_TOO_LARGE");
  return bytes;
}

function isInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

/** A revision: an integer >= min (0 for "expected last revision", 1 for "this record"). */
export function checkRevision(value: unknown, name: string, min: number): number {
  if (!isInteger(value) || value < min) throw invalidOption(`${name} must be an integer >= ${min}`);
  return value;
}

export function checkOptionalRevision(value: unknown, name: string, min: number): number | undefined {
  return value === undefined ? undefined : checkRevision(value, name, min);
}

/** A per-record TTL in ms: a positive integer. */
export function checkTtl(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (!isInteger(value) || value <= 0) throw invalidOption("ttlMs must be a positive integer (ms)");
  return value;
}

export function checkTimeout(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw invalidOption("timeoutMs must be a positive number (ms)");
  return value;
}

export function checkBoolean(value: unknown, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw invalidOption(`${name} must be a boolean`);
  return value;
}

export function checkConsistency(value: unknown): Consistency | undefined {
  if (value === undefined) return undefined;
  if (value !== "linearizable" && value !== "stale") throw invalidOption('consistency must be "linearizable" or "stale"');
  return value;
}

export function checkInclude(value: unknown): KvWatchInclude {
  if (value === undefined) return "last";
  if (value !== "last" && value !== "history" && value !== "updates") throw invalidOption('include must be "last", "history" or "updates"');
  return value;
}

export function checkPageSize(value: unknown): number {
  if (value === undefined) return PROTOCOL_LIMITS.pageEntriesDefault;
  if (!isInteger(value) || value < 1 || value > PROTOCOL_LIMITS.pageEntriesMax) {
    throw invalidOption(`pageSize must be an integer in 1..${PROTOCOL_LIMITS.pageEntriesMax}`);
  }
  return value;
}

export function checkPositiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!isInteger(value) || value < 1) throw invalidOption(`${name} must be a positive integer`);
  return value;
}

/** Key filters: one or several (a union); none = `>` (every key). Duplicates dropped. */
export function checkFilters(key: unknown): string[] {
  if (key === undefined) return [">"];
  const list = Array.isArray(key) ? key : [key];
  if (list.length === 0) return [">"];
  const filters: string[] = [];
  for (const filter of list) {
    validateFilter(filter);
    if (!filters.includes(filter)) filters.push(filter);
  }
  return filters;
}

function byteLength(text: string): number {
  return encoder.encode(text).length;
}

const CONFIG_FIELDS = BUCKET_CONFIG_FIELDS;

/** Checks a bucket configuration (every field optional: the server fills defaults). INVALID_CONFIG. */
export function checkBucketConfig(config: unknown): BucketConfigInput {
  if (config === undefined) return {};
  if (typeof config !== "object" || config === null || Array.isArray(config)) throw new TypeError("bucket options must be an object");
  const c = config as Record<string, unknown>;
  for (const name of Object.keys(c)) {
    if (!(CONFIG_FIELDS as readonly string[]).includes(name)) throw invalidConfig(`unknown bucket option ${JSON.stringify(name)}`);
  }
  const out: BucketConfigInput = {};
  const rules = BUCKET_CONFIG_RULES;
  if (c["description"] !== undefined) {
    if (typeof c["description"] !== "string") throw invalidConfig("description must be a string");
    if (byteLength(c["description"]) > rules.descriptionBytesMax) throw invalidConfig(`description limited to ${rules.descriptionBytesMax} bytes`);
    out.description = c["description"];
  }
  if (c["history"] !== undefined) {
    const history = c["history"];
    if (!isInteger(history) || history < 1) throw invalidConfig("history must be an integer >= 1");
    if (history > rules.historyMax) throw invalidConfig(`history limited to a max of ${rules.historyMax}`);
    out.history = history;
  }
  if (c["ttlMs"] !== undefined) {
    const ttlMs = c["ttlMs"];
    if (!isInteger(ttlMs) || ttlMs < 0 || (ttlMs > 0 && ttlMs < rules.ttlMsMin)) throw invalidConfig(`ttlMs must be 0 (forever) or >= ${rules.ttlMsMin}`);
    out.ttlMs = ttlMs;
  }
  for (const name of ["maxBytes", "maxValueSize"] as const) {
    const value = c[name];
    if (value === undefined) continue;
    if (!isInteger(value) || value < -1) throw invalidConfig(`${name} must be -1 (unlimited) or a number of bytes`);
    out[name] = value;
  }
  if (c["replicas"] !== undefined) {
    const replicas = c["replicas"];
    if (!isInteger(replicas) || replicas < 1 || replicas > rules.replicasMax) throw invalidConfig(`replicas must be an integer in 1..${rules.replicasMax}`);
    out.replicas = replicas;
  }
  if (c["storage"] !== undefined) {
    if (c["storage"] !== "file" && c["storage"] !== "memory") throw invalidConfig('storage must be "file" or "memory"');
    out.storage = c["storage"];
  }
  if (c["markerTtlMs"] !== undefined) {
    const markerTtlMs = c["markerTtlMs"];
    if (!isInteger(markerTtlMs) || markerTtlMs < 0 || (markerTtlMs > 0 && markerTtlMs < rules.markerTtlMsMin)) {
      throw invalidConfig(`markerTtlMs must be 0 (off) or >= ${rules.markerTtlMsMin}`);
    }
    out.markerTtlMs = markerTtlMs;
  }
  if (c["metadata"] !== undefined) {
    const metadata = c["metadata"];
    if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) throw invalidConfig("metadata must be a map of strings");
    let bytes = 0;
    const copy: Record<string, string> = {};
    for (const [name, value] of Object.entries(metadata)) {
      if (typeof value !== "string") throw invalidConfig("metadata must be a map of strings");
      bytes += byteLength(name) + byteLength(value);
      copy[name] = value;
    }
    if (bytes > rules.metadataBytesMax) throw invalidConfig(`metadata limited to ${rules.metadataBytesMax} bytes`);
    out.metadata = copy;
  }
  if (c["compression"] !== undefined) {
    if (typeof c["compression"] !== "boolean") throw invalidConfig("compression must be a boolean");
    out.compression = c["compression"];
  }
  return out;
}
