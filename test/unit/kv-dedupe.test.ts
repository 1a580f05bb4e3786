/**
 * Goal: request-id deduplication (KV-SEMANTICS.md "Writes", DESIGN.md "Retries are idempotent"): a retry
 * with the same id inside the window returns the original result with `duplicate: true` and no events,
 * failures included; the window is bounded by leader time and by count; it survives snapshot/restore.
 * Method: commands with request ids through a state machine with small limits.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_KV_LIMITS, KvStateMachine } from "../../src/kv/index.ts";
import { bytes, Harness } from "./kv-fixture.ts";

const limits = { ...DEFAULT_KV_LIMITS, dedupeWindowMs: 10_000, dedupeEntriesMax: 3 };

function setup(): Harness {
  const h = new Harness(limits);
  h.bucket("b");
  return h;
}

describe("request-id window", () => {
  it("answers a retried write with the original result, applying nothing", () => {
    const h = setup();
    const first = h.apply({ type: "put", bucket: "b", key: "k", value: bytes("1") }, { requestId: "r1" });
    expect(first).toMatchObject({ result: { ok: true, revision: 1 }, duplicate: false });
    expect(first.events).toHaveLength(1);
    h.advance(1000);
    const retry = h.apply({ type: "put", bucket: "b", key: "k", value: bytes("1") }, { requestId: "r1" });
    expect(retry).toEqual({ result: { ok: true, revision: 1 }, events: [], duplicate: true });
    expect(h.sm.status("b").revision).toBe(1);
  });

  it("returns the original failure too (a retried create that lost stays lost)", () => {
    const h = setup();
    h.put("b", "k", "1");
    const first = h.apply({ type: "create", bucket: "b", key: "k", value: bytes("2") }, { requestId: "c" }).result;
    expect(first).toMatchObject({ ok: false, code: "KEY_EXISTS" });
    h.ok({ type: "delete", bucket: "b", key: "k" });
    // The key is deleted now, so a fresh create would succeed; the retry must not apply it.
    const retry = h.apply({ type: "create", bucket: "b", key: "k", value: bytes("2") }, { requestId: "c" });
    expect(retry).toEqual({ result: first, events: [], duplicate: true });
    expect(h.sm.get("b", "k")).toBeNull();
  });

  it("covers bucket commands as well", () => {
    const h = setup();
    h.ok({ type: "bucketDelete", bucket: "b" }, { requestId: "d" });
    expect(h.apply({ type: "bucketDelete", bucket: "b" }, { requestId: "d" })).toMatchObject({ result: { ok: true }, duplicate: true });
  });

  it("forgets ids once they are dedupeWindowMs old (leader time)", () => {
    const h = setup();
    h.ok({ type: "put", bucket: "b", key: "k", value: bytes("1") }, { requestId: "r" });
    h.advance(9_999);
    expect(h.apply({ type: "put", bucket: "b", key: "k", value: bytes("1") }, { requestId: "r" }).duplicate).toBe(true);
    h.advance(1);
    const late = h.apply({ type: "put", bucket: "b", key: "k", value: bytes("1") }, { requestId: "r" });
    expect(late).toMatchObject({ result: { ok: true, revision: 2 }, duplicate: false });
  });

  it("keeps at most dedupeEntriesMax ids, forgetting the oldest", () => {
    const h = setup();
    for (const id of ["a", "b", "c", "d"]) h.ok({ type: "put", bucket: "b", key: id, value: bytes("v") }, { requestId: id });
    expect(h.apply({ type: "put", bucket: "b", key: "d", value: bytes("v") }, { requestId: "d" }).duplicate).toBe(true);
    expect(h.apply({ type: "put", bucket: "b", key: "b", value: bytes("v") }, { requestId: "b" }).duplicate).toBe(true);
    expect(h.apply({ type: "put", bucket: "b", key: "a", value: bytes("v") }, { requestId: "a" }).duplicate).toBe(false);
  });

  it("survives snapshot and restore", () => {
    const h = setup();
    h.ok({ type: "put", bucket: "b", key: "k", value: bytes("1") }, { requestId: "r" });
    const restored = new KvStateMachine(limits);
    restored.restore(h.sm.snapshot());
    const retry = restored.apply(h.index + 1, { now: h.now, requestId: "r", command: { type: "put", bucket: "b", key: "k", value: bytes("1") } });
    expect(retry).toEqual({ result: { ok: true, revision: 1 }, events: [], duplicate: true });
  });

  it("rejects a non-string request id as INVALID_REQUEST", () => {
    const h = setup();
    const { result } = h.sm.apply(++h.index, { now: h.now, requestId: 7 as never, command: { type: "expire", bucket: "b" } });
    expect(result).toMatchObject({ ok: false, code: "INVALID_REQUEST" });
  });
});
