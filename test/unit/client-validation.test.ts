/**
 * Goal: argument mistakes are reported before anything is sent, with the code the server would use
 * (INVALID_KEY, INVALID_BUCKET_NAME, INVALID_CONFIG, INVALID_OPTION, VALUE_TOO_LARGE) and NATS wording;
 * wrong types are TypeErrors.
 * Method: a fake server records every request; after each rejected call only the hello is recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";
import type { KV } from "../../src/client/types.ts";
import { CairnError } from "../../src/shared/errors.ts";
import { PROTOCOL_LIMITS } from "../../src/shared/protocol.ts";
import { FakeServer } from "../support/fake-server.ts";

let server: FakeServer;
let nc: Connection;
let kvm: Kvm;
let kv: KV;

beforeAll(async () => {
  server = await FakeServer.start();
  server.kv.bucket("b");
  nc = await connect({ servers: server.url, pingIntervalMs: 0 });
  kvm = new Kvm(nc);
  kv = await kvm.open("b");
});

afterAll(async () => {
  await nc.close();
  await server.kill();
});

/** Runs call, expects a rejection with code (and message), and checks nothing was sent for it. */
async function rejectsBeforeSending(call: () => Promise<unknown> | AsyncIterable<unknown>, code: string, message?: string): Promise<void> {
  const before = server.calls().length;
  let caught: unknown = null;
  try {
    const result = call();
    if (result && typeof (result as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") {
      for await (const _ of result as AsyncIterable<unknown>) break;
    } else await result;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(CairnError);
  expect((caught as CairnError).code).toBe(code);
  if (message !== undefined) expect((caught as CairnError).message).toBe(message);
  expect(server.calls().length).toBe(before);
}

const BAD_KEYS = [" x y", "x ", "x!", "xx$", "*", ">", "x.>", "x.*", ".", ".x", "x.", "a..b", "", "ü", "k".repeat(1025)];
const BAD_BUCKETS = ["", "a.b", "a b", "a*", "é", "x".repeat(253)];
const BAD_FILTERS = ["", ".", "a.", ".a", "a..b", ">.a", "a>", "*a", "a b", "x!"];

describe("argument checks before sending", () => {
  it.each(BAD_KEYS)("key %j is INVALID_KEY for every key method", async (key) => {
    await rejectsBeforeSending(() => kv.put(key, "v"), "INVALID_KEY", "invalid key");
    await rejectsBeforeSending(() => kv.create(key, "v"), "INVALID_KEY");
    await rejectsBeforeSending(() => kv.update(key, "v", 1), "INVALID_KEY");
    await rejectsBeforeSending(() => kv.delete(key), "INVALID_KEY");
    await rejectsBeforeSending(() => kv.purge(key), "INVALID_KEY");
    await rejectsBeforeSending(() => kv.get(key), "INVALID_KEY");
  });

  it("accepts the keys KV-SEMANTICS lists as valid", async () => {
    for (const key of ["foo", "_foo", "-foo", "123", "a/b/c", "a.b.c", "a=b", "k".repeat(1024)]) {
      expect(await kv.put(key, "v")).toBeGreaterThan(0);
    }
  });

  it.each(BAD_BUCKETS)("bucket name %j is INVALID_BUCKET_NAME", async (name) => {
    await rejectsBeforeSending(() => kvm.create(name), "INVALID_BUCKET_NAME", "invalid bucket name");
    await rejectsBeforeSending(() => kvm.open(name), "INVALID_BUCKET_NAME");
    await rejectsBeforeSending(() => kvm.update(name, {}), "INVALID_BUCKET_NAME");
    await rejectsBeforeSending(() => kvm.destroy(name), "INVALID_BUCKET_NAME");
  });

  it.each(BAD_FILTERS)("filter %j is INVALID_KEY for keys, history and watch", async (filter) => {
    await rejectsBeforeSending(() => kv.keys(filter), "INVALID_KEY", "invalid key");
    await rejectsBeforeSending(() => kv.keys(["a", filter]), "INVALID_KEY");
    await rejectsBeforeSending(() => kv.history({ key: filter }), "INVALID_KEY");
    await rejectsBeforeSending(() => kv.watch({ key: filter }), "INVALID_KEY");
  });

  it("bucket configs outside the rules are INVALID_CONFIG", async () => {
    await rejectsBeforeSending(() => kvm.create("c", { history: 65 }), "INVALID_CONFIG", "history limited to a max of 64");
    await rejectsBeforeSending(() => kvm.create("c", { history: 0 }), "INVALID_CONFIG");
    await rejectsBeforeSending(() => kvm.create("c", { ttlMs: 50 }), "INVALID_CONFIG");
    await rejectsBeforeSending(() => kvm.create("c", { maxBytes: -2 }), "INVALID_CONFIG");
    await rejectsBeforeSending(() => kvm.create("c", { maxValueSize: 1.5 }), "INVALID_CONFIG");
    await rejectsBeforeSending(() => kvm.create("c", { replicas: 6 }), "INVALID_CONFIG");
    await rejectsBeforeSending(() => kvm.create("c", { storage: "disk" as never }), "INVALID_CONFIG");
    await rejectsBeforeSending(() => kvm.create("c", { markerTtlMs: 500 }), "INVALID_CONFIG");
    await rejectsBeforeSending(() => kvm.create("c", { description: "x".repeat(4097) }), "INVALID_CONFIG");
    await rejectsBeforeSending(() => kvm.create("c", { metadata: { a: 1 as never } }), "INVALID_CONFIG");
    await rejectsBeforeSending(() => kvm.create("c", { histroy: 2 } as never), "INVALID_CONFIG");
    await rejectsBeforeSending(() => kvm.update("c", { replicas: 0 }), "INVALID_CONFIG");
  });

  it("bad options are INVALID_OPTION", async () => {
    await rejectsBeforeSending(() => kv.update("k", "v", -1), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.update("k", "v", 1.5), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.get("k", { revision: 0 }), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.get("k", { consistency: "eventual" as never }), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.get("k", { revison: 3 } as never), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.delete("k", { revision: -1 }), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.create("k", "v", { ttlMs: 0 }), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.put("k", "v", { timeoutMs: 0 }), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.watch({ include: "all" as never }), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.watch({ resumeFromRevision: 0 }), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.watch({ bufferEntriesMax: 0 }), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.keys(">", { pageSize: PROTOCOL_LIMITS.pageEntriesMax + 1 }), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.history({ consistency: "x" as never }), "INVALID_OPTION");
    await rejectsBeforeSending(() => kv.purgeDeletes({ olderThanMs: 1.5 }), "INVALID_OPTION");
  });

  it("a value too large for one frame is VALUE_TOO_LARGE", async () => {
    const huge = new Uint8Array(PROTOCOL_LIMITS.frameBytesMax);
    await rejectsBeforeSending(() => kv.put("k", huge), "VALUE_TOO_LARGE", "message size exceeds maximum allowed");
  });

  it("wrong argument types are TypeErrors and send nothing", async () => {
    const before = server.calls().length;
    await expect(kv.put(42 as never, "v")).rejects.toBeInstanceOf(TypeError);
    await expect(kv.put("k", 42 as never)).rejects.toBeInstanceOf(TypeError);
    await expect(kvm.create(null as never)).rejects.toBeInstanceOf(TypeError);
    await expect(kv.get("k", "opts" as never)).rejects.toBeInstanceOf(TypeError);
    expect(() => new Kvm({} as never)).toThrow(TypeError);
    expect(server.calls().length).toBe(before);
  });
});
