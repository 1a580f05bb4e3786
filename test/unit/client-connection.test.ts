/**
 * Goal: the client connection's own behaviour, deterministically: hello handshake, responses matched by
 * id (also out of order), server errors mapped to CairnError codes, failover to another server with the
 * same requestId when a node dies mid-request, TIMEOUT when a write's outcome cannot be known, retries
 * of NOT_LEADER/UNAVAILABLE, the bounded inflight window, liveness pings, close().
 * Method: fake servers (test/support/fake-server.ts) on loopback, scripted per test through `handler`.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";
import { CairnError } from "../../src/shared/errors.ts";
import { PROTOCOL_LIMITS, PROTOCOL_VERSION } from "../../src/shared/protocol.ts";
import type { ConnectionStatus } from "../../src/client/types.ts";
import { deadPort, FakeServer, type FakeRequest } from "../support/fake-server.ts";

const servers: FakeServer[] = [];
const connections: Connection[] = [];

async function server(options: Parameters<typeof FakeServer.start>[0] = {}): Promise<FakeServer> {
  const s = await FakeServer.start(options);
  servers.push(s);
  return s;
}

async function client(urls: string[], options: { timeoutMs?: number; token?: string; name?: string; pingIntervalMs?: number } = {}): Promise<Connection> {
  const nc = await connect({ servers: urls, noRandomize: true, pingIntervalMs: 0, reconnectDelayMsMin: 5, reconnectDelayMsMax: 20, ...options });
  connections.push(nc);
  return nc;
}

async function rejection(promise: Promise<unknown>): Promise<CairnError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CairnError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

/** Resolves with the first status event of the given type (the iterator is subscribed at once). */
function nextStatus(nc: Connection, type: ConnectionStatus["type"]): Promise<ConnectionStatus> {
  const iterator = nc.status()[Symbol.asyncIterator]();
  return (async () => {
    for (;;) {
      const { value, done } = await iterator.next();
      if (done) throw new Error(`connection closed before a ${type} event`);
      if (value.type === type) {
        await iterator.return?.();
        return value;
      }
    }
  })();
}

afterEach(async () => {
  for (const nc of connections.splice(0)) await nc.close();
  for (const s of servers.splice(0)) await s.kill();
});

describe("connect", () => {
  it("sends hello with the protocol version, token and name, and reports the node", async () => {
    const a = await server({ node: "n7" });
    const nc = await client([a.url], { token: "secret", name: "tester" });
    const hello = a.ops("hello")[0]!;
    expect(hello).toMatchObject({ op: "hello", version: PROTOCOL_VERSION, token: "secret", client: "tester" });
    expect(nc.info?.node).toBe("n7");
    expect(nc.getServer()).toBe(a.url);
    expect(nc.state).toBe("connected");
  });

  it("skips servers that are down and connects to the next one", async () => {
    const port = await deadPort();
    const b = await server({ node: "n2" });
    const nc = await client([`ws://127.0.0.1:${port}`, b.url]);
    expect(nc.info?.node).toBe("n2");
  });

  it("fails with UNAVAILABLE when no server answers within timeoutMs", async () => {
    const port = await deadPort();
    const error = await rejection(connect({ servers: [`127.0.0.1:${port}`], timeoutMs: 200, pingIntervalMs: 0 }));
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.message).toContain(`ws://127.0.0.1:${port}`);
  });

  it("fails with UNAUTHORIZED when every server refuses the token", async () => {
    const a = await server({ handler: (r) => (r.op === "hello" ? { error: { code: "UNAUTHORIZED", message: "unauthorized: bad token" } } : undefined) });
    const error = await rejection(connect({ servers: a.url, timeoutMs: 300, pingIntervalMs: 0 }));
    expect(error.code).toBe("UNAUTHORIZED");
  });

  it("rejects bad options before connecting", async () => {
    await expect(connect({ servers: [] })).rejects.toMatchObject({ code: "INVALID_OPTION" });
    await expect(connect({ servers: "http://x:1" })).rejects.toMatchObject({ code: "INVALID_OPTION" });
    await expect(connect({ servers: "127.0.0.1:1", timeoutMs: -1 })).rejects.toMatchObject({ code: "INVALID_OPTION" });
  });
});

describe("requests", () => {
  it("matches responses to requests by id, also when they arrive out of order", async () => {
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    const a = await server({
      handler: async (r) => {
        if (r.op === "kv.get" && r.key === "first") await firstHeld;
        return undefined;
      },
    });
    a.kv.write("b", "first", "1");
    a.kv.write("b", "second", "2");
    a.kv.bucket("b");
    const nc = await client([a.url]);
    const kv = await new Kvm(nc).open("b");
    const first = kv.get("first");
    const second = await kv.get("second");
    expect(second?.string()).toBe("2");
    releaseFirst();
    expect((await first)?.string()).toBe("1");
    const ids = a.calls().map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("maps server errors to CairnError with code, NATS message and data", async () => {
    const a = await server();
    const nc = await client([a.url]);
    const kv = await new Kvm(nc).create("b");
    const rev = await kv.create("lock", "me");
    const exists = await rejection(kv.create("lock", "you"));
    expect(exists).toBeInstanceOf(CairnError);
    expect(exists.code).toBe("KEY_EXISTS");
    expect(exists.message).toBe(`wrong last sequence: ${rev}: key exists`);
    expect(exists.data.revision).toBe(rev);
    const wrong = await rejection(kv.update("lock", "you", rev + 5));
    expect(wrong.code).toBe("WRONG_LAST_REVISION");
    expect(wrong.message).toBe(`wrong last sequence: ${rev}`);
    const missing = await rejection(new Kvm(nc).open("nope"));
    expect(missing.code).toBe("BUCKET_NOT_FOUND");
  });

  it("maps an unknown server error code to INTERNAL, keeping the code in the message", async () => {
    const a = await server({ handler: (r) => (r.op === "kv.get" ? { error: { code: "SOMETHING_NEW" as never, message: "odd" } } : undefined) });
    a.kv.bucket("b");
    const nc = await client([a.url]);
    const kv = await new Kvm(nc).open("b");
    const error = await rejection(kv.get("k"));
    expect(error.code).toBe("INTERNAL");
    expect(error.message).toBe("SOMETHING_NEW: odd");
  });

  it("gives every write a requestId and reads none", async () => {
    const a = await server();
    const nc = await client([a.url]);
    const kv = await new Kvm(nc).create("b");
    await kv.put("k", "v");
    await kv.put("k", "w");
    await kv.get("k");
    const puts = a.ops("kv.put");
    expect(puts.map((r) => typeof r["requestId"])).toEqual(["string", "string"]);
    expect(puts[0]!["requestId"]).not.toBe(puts[1]!["requestId"]);
    expect(a.ops("kv.get")[0]!["requestId"]).toBeUndefined();
    expect(a.ops("bucket.create")[0]!["requestId"]).toEqual(expect.any(String));
  });

  it("keeps at most inflightRequestsMax requests outstanding on one socket", async () => {
    let outstanding = 0;
    let outstandingMax = 0;
    const held: FakeRequest[] = [];
    const a = await server({
      handler: (r, conn) => {
        if (r.op !== "kv.get") return undefined;
        outstanding++;
        outstandingMax = Math.max(outstandingMax, outstanding);
        held.push(r);
        // Answer the oldest only once the window is full: the client can progress only by waiting.
        if (outstanding === PROTOCOL_LIMITS.inflightRequestsMax) {
          for (const h of held.splice(0)) conn.send({ id: h.id, ok: true, result: { entry: null } });
          outstanding = 0;
        }
        return "drop";
      },
    });
    a.kv.bucket("b");
    const nc = await client([a.url], { timeoutMs: 20_000 });
    const kv = await new Kvm(nc).open("b");
    const total = PROTOCOL_LIMITS.inflightRequestsMax * 2;
    const results = await Promise.all(Array.from({ length: total }, (_, i) => kv.get(`k${i}`)));
    expect(results.every((r) => r === null)).toBe(true);
    expect(outstandingMax).toBe(PROTOCOL_LIMITS.inflightRequestsMax);
    expect(a.ops("kv.get").length).toBe(total);
  });
});

describe("failover", () => {
  it("retries a write on the next server with the same requestId when its node dies mid-request", async () => {
    const a = await server({ node: "n1", handler: (r) => (r.op === "kv.put" ? "drop" : undefined) });
    const b = await server({ node: "n2", kv: a.kv });
    a.kv.bucket("b");
    const nc = await client([a.url, b.url], { timeoutMs: 5000 });
    const kv = await new Kvm(nc).open("b");
    const put = kv.put("k", "v");
    const sentToA = await a.waitForRequest((r) => r.op === "kv.put");
    await a.kill();
    const revision = await put;
    const sentToB = b.ops("kv.put");
    expect(sentToB).toHaveLength(1);
    expect(sentToB[0]!["requestId"]).toBe(sentToA["requestId"]);
    expect(revision).toBe(1);
    expect(a.kv.applyCount.get("kv.put")).toBe(1);
    expect(nc.info?.node).toBe("n2");
  });

  it("never applies a retried write twice: the server's dedupe answers the retry", async () => {
    // n1 applies the put, then dies before answering; n2 sees the same requestId and returns the result.
    const a = await server({
      node: "n1",
      handler: (r, conn) => {
        if (r.op !== "kv.put") return undefined;
        a.kv.applied.set(r["requestId"] as string, { revision: a.kv.write("b", r["key"] as string, r["value"] as Uint8Array) });
        a.kv.applyCount.set("kv.put", 1);
        conn.terminate();
        return "drop";
      },
    });
    const b = await server({ node: "n2", kv: a.kv });
    a.kv.bucket("b");
    const nc = await client([a.url, b.url]);
    const kv = await new Kvm(nc).open("b");
    const revision = await kv.put("k", "v");
    expect(revision).toBe(1);
    expect(a.kv.applyCount.get("kv.put")).toBe(1);
    expect(a.kv.bucket("b").records).toHaveLength(1);
    expect(b.ops("kv.put")[0]!["requestId"]).toBe(a.ops("kv.put")[0]!["requestId"]);
  });

  it("reports TIMEOUT (outcome unknown), not a failure, when a sent write gets no answer", async () => {
    const a = await server({ handler: (r) => (r.op === "kv.put" ? "drop" : undefined) });
    a.kv.bucket("b");
    const nc = await client([a.url]);
    const kv = await new Kvm(nc).open("b");
    const error = await rejection(kv.put("k", "v", { timeoutMs: 150 }));
    expect(error.code).toBe("TIMEOUT");
    expect(error.message).toBe("timeout: the outcome of the operation is unknown");
  });

  it("reports TIMEOUT when the node dies after the write was sent and no other node answers", async () => {
    const a = await server({ handler: (r) => (r.op === "kv.put" ? "drop" : undefined) });
    a.kv.bucket("b");
    const port = await deadPort();
    const nc = await client([a.url, `ws://127.0.0.1:${port}`]);
    const kv = await new Kvm(nc).open("b");
    const put = kv.put("k", "v", { timeoutMs: 300 });
    await a.waitForRequest((r) => r.op === "kv.put");
    await a.kill();
    const error = await rejection(put);
    expect(error.code).toBe("TIMEOUT");
  });

  it("reports UNAVAILABLE (nothing applied) when a request could not be sent at all", async () => {
    const a = await server();
    a.kv.bucket("b");
    const nc = await client([a.url]);
    const kv = await new Kvm(nc).open("b");
    const disconnected = nextStatus(nc, "disconnect");
    await a.kill();
    await disconnected;
    const error = await rejection(kv.put("k", "v", { timeoutMs: 150 }));
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.message).toContain("the request was not sent");
  });

  it("retries NOT_LEADER and UNAVAILABLE answers with the same requestId until one succeeds", async () => {
    let refusals = 0;
    const a = await server({
      handler: (r) => {
        if (r.op !== "kv.put") return undefined;
        refusals++;
        if (refusals === 1) return { error: { code: "NOT_LEADER", message: "not leader", data: { leaderHint: "n2" } } };
        if (refusals === 2) return { error: { code: "UNAVAILABLE", message: "no quorum or no leader available" } };
        return undefined;
      },
    });
    a.kv.bucket("b");
    const nc = await client([a.url]);
    const kv = await new Kvm(nc).open("b");
    expect(await kv.put("k", "v")).toBe(1);
    const puts = a.ops("kv.put");
    expect(puts).toHaveLength(3);
    expect(new Set(puts.map((r) => r["requestId"])).size).toBe(1);
    expect(new Set(puts.map((r) => r.id)).size).toBe(3);
  });

  it("reports UNAVAILABLE at the deadline when every attempt was refused", async () => {
    const a = await server({ handler: (r) => (r.op === "kv.put" ? { error: { code: "NOT_LEADER", message: "not leader" } } : undefined) });
    a.kv.bucket("b");
    const nc = await client([a.url]);
    const kv = await new Kvm(nc).open("b");
    const error = await rejection(kv.put("k", "v", { timeoutMs: 150 }));
    expect(error.code).toBe("UNAVAILABLE");
    expect(a.ops("kv.put").length).toBeGreaterThan(1);
  });

  it("fails over to servers discovered through hello", async () => {
    const b = await server({ node: "n2" });
    const a = await server({ node: "n1", kv: b.kv, servers: [b.url] });
    a.kv.bucket("b");
    const nc = await client([a.url]);
    expect(nc.getServers()).toEqual([a.url, b.url]);
    const reconnected = nextStatus(nc, "reconnect");
    await a.kill();
    expect(await reconnected).toMatchObject({ type: "reconnect", server: b.url, node: "n2" });
    const kv = await new Kvm(nc).open("b");
    expect(await kv.put("k", "v")).toBe(1);
  });

  it("drops a silent socket after an unanswered ping and fails over", async () => {
    const a = await server({ node: "n1" });
    const b = await server({ node: "n2", kv: a.kv });
    const nc = await client([a.url, b.url], { pingIntervalMs: 40 });
    const reconnected = nextStatus(nc, "reconnect");
    a.paused = true; // a stopped process: the socket stays open, nothing answers
    expect(await reconnected).toMatchObject({ server: b.url });
    expect(a.ops("ping").length).toBeGreaterThan(0);
  });
});

describe("close", () => {
  it("fails calls in flight and later calls with CONNECTION_CLOSED and resolves closed", async () => {
    const a = await server({ handler: (r) => (r.op === "kv.get" ? "drop" : undefined) });
    a.kv.bucket("b");
    const nc = await client([a.url]);
    const kv = await new Kvm(nc).open("b");
    const pending = kv.get("k");
    await a.waitForRequest((r) => r.op === "kv.get");
    await nc.close();
    expect((await rejection(pending)).code).toBe("CONNECTION_CLOSED");
    expect((await rejection(kv.get("k"))).code).toBe("CONNECTION_CLOSED");
    expect(await nc.closed).toBeUndefined();
    expect(nc.isClosed()).toBe(true);
  });
});
