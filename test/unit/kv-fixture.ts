/**
 * Shared helpers for the kv-*.test.ts files: a KvStateMachine driven like the node drives it (increasing
 * log indexes, a leader clock the test advances by hand), plus small value helpers.
 */
import { expect } from "vitest";
import {
  KvStateMachine,
  normalizeConfig,
  type ApplyOutcome,
  type BucketConfig,
  type KvCommand,
  type KvLimits,
  type KvRecord,
  type KvResult,
} from "../../src/kv/index.ts";

export const T0 = 1_700_000_000_000;

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function str(value: Uint8Array): string {
  return new TextDecoder().decode(value);
}

/** The fields of a record a test usually compares. */
export function brief(record: KvRecord | null): string | null {
  if (record === null) return null;
  return `${record.revision}:${record.operation}:${record.key}=${str(record.value)}`;
}

export class Harness {
  readonly sm: KvStateMachine;
  index = 0;
  now = T0;

  constructor(limits?: KvLimits) {
    this.sm = limits === undefined ? new KvStateMachine() : new KvStateMachine(limits);
  }

  apply(command: KvCommand, options: { requestId?: string; now?: number } = {}): ApplyOutcome {
    const now = options.now ?? this.now;
    return this.sm.apply(++this.index, options.requestId === undefined ? { now, command } : { now, command, requestId: options.requestId });
  }

  /** Applies and expects success; returns the result. */
  ok(command: KvCommand, options: { requestId?: string; now?: number } = {}): KvResult & { ok: true } {
    const { result } = this.apply(command, options);
    expect(result, JSON.stringify(command, (_k, v) => (v instanceof Uint8Array ? str(v) : v))).toMatchObject({ ok: true });
    return result as KvResult & { ok: true };
  }

  /** Applies and expects failure with `code`; returns the result. */
  fail(command: KvCommand, code: string): KvResult & { ok: false } {
    const { result } = this.apply(command);
    expect(result).toMatchObject({ ok: false, code });
    return result as KvResult & { ok: false };
  }

  bucket(name: string, config: Partial<BucketConfig> = {}): void {
    this.ok({ type: "bucketCreate", bucket: name, config: normalizeConfig(config) });
  }

  put(bucket: string, key: string, value: string, ttlMs?: number): number {
    const command: KvCommand =
      ttlMs === undefined
        ? { type: "put", bucket, key, value: bytes(value) }
        : { type: "put", bucket, key, value: bytes(value), ttlMs };
    return revisionOf(this.ok(command));
  }

  advance(ms: number): void {
    this.now += ms;
  }
}

export function revisionOf(result: KvResult): number {
  expect(result.ok).toBe(true);
  expect("revision" in result).toBe(true);
  return (result as { revision: number }).revision;
}
