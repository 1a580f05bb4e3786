/**
 * Goal: `cairn kv ...` commands parse their arguments like `nats kv`, send the right requests, print
 * natscli-like output (or --json), read stdin for a missing value, ask before destroying, and exit 1
 * with one `error: ...` line on failure.
 * Method: main(argv, io) in-process with captured I/O, against a fake server (test/support).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import type { CliIo } from "../../src/cli/io.ts";
import { deadPort, FakeServer } from "../support/fake-server.ts";

let server: FakeServer;

interface Run {
  code: number;
  out: string;
  err: string;
}

interface IoOptions {
  /** Called with everything written to stdout so far, after each write. */
  onOut?: (out: string) => void;
  stdin?: string;
  env?: Record<string, string>;
  confirm?: boolean | null;
  interrupted?: Promise<void>;
}

function fakeIo(options: IoOptions, sink: { out: string; err: string }): CliIo {
  return {
    out: (text) => {
      sink.out += text;
      options.onOut?.(sink.out);
    },
    outBytes: (bytes) => (sink.out += new TextDecoder().decode(bytes)),
    err: (text) => (sink.err += text),
    env: options.env ?? {},
    stdinIsTTY: options.stdin === undefined,
    readStdin: async () => new TextEncoder().encode(options.stdin ?? ""),
    confirm: async () => options.confirm ?? null,
    interrupted: options.interrupted ?? new Promise<void>(() => undefined),
  };
}

async function cairn(args: string[], options: IoOptions = {}): Promise<Run> {
  const sink = { out: "", err: "" };
  const env = options.env ?? { CAIRN_SERVER: server.url };
  const code = await main(args, fakeIo({ ...options, env }, sink));
  return { code, ...sink };
}

beforeEach(async () => {
  server = await FakeServer.start();
});

afterEach(async () => {
  await server.kill();
});

describe("cairn kv", () => {
  it("add sends the flags as bucket config and prints the status", async () => {
    const run = await cairn(["kv", "add", "my-kv", "--history", "5", "--ttl", "1h", "--replicas", "3", "--max-value-size", "1KiB", "--storage", "memory"]);
    expect(run).toMatchObject({ code: 0, err: "" });
    expect(server.ops("bucket.create")[0]).toMatchObject({
      bucket: "my-kv",
      config: { history: 5, ttlMs: 3_600_000, replicas: 3, maxValueSize: 1024, storage: "memory" },
    });
    expect(run.out).toContain("Information for Key-Value Store Bucket my-kv");
  });

  it("put prints the value; get prints header and value; --json prints the entry", async () => {
    server.kv.bucket("my-kv");
    expect(await cairn(["kv", "put", "my-kv", "Key1", "Value1"])).toEqual({ code: 0, out: "Value1\n", err: "" });
    const get = await cairn(["kv", "get", "my-kv", "Key1"]);
    expect(get.code).toBe(0);
    expect(get.out).toMatch(/^my-kv > Key1 revision: 1 created @ \d\d \w{3} \d\d \d\d:\d\d UTC\n\nValue1\n\n$/);
    const json = await cairn(["kv", "get", "my-kv", "Key1", "--json"]);
    expect(JSON.parse(json.out)).toMatchObject({ bucket: "my-kv", key: "Key1", revision: 1, operation: "PUT", value: "Value1" });
    expect((await cairn(["kv", "get", "my-kv", "Key1", "--raw"])).out).toBe("Value1");
  });

  it("put reads the value from stdin when it is left out", async () => {
    server.kv.bucket("b");
    const run = await cairn(["kv", "put", "b", "k"], { stdin: "from stdin" });
    expect(run.code).toBe(0);
    expect(new TextDecoder().decode(server.ops("kv.put")[0]!["value"] as Uint8Array)).toBe("from stdin");
    expect(run.out).toBe("from stdin\n");
  });

  it("create on an existing key fails with NATS's message and exit status 1", async () => {
    server.kv.bucket("my-sem");
    expect((await cairn(["kv", "create", "my-sem", "Semaphore1", "Value1"])).code).toBe(0);
    expect(await cairn(["kv", "create", "my-sem", "Semaphore1", "Value1"])).toEqual({
      code: 1,
      out: "",
      err: "error: wrong last sequence: 1: key exists\n",
    });
  });

  it("update is a compare-and-swap on the given revision", async () => {
    server.kv.bucket("my-sem");
    await cairn(["kv", "put", "my-sem", "Semaphore1", "Value1"]);
    expect(await cairn(["kv", "update", "my-sem", "Semaphore1", "Value2", "1"])).toMatchObject({ code: 0, out: "Value2\n" });
    expect(await cairn(["kv", "update", "my-sem", "Semaphore1", "Value2", "1"])).toMatchObject({ code: 1, err: "error: wrong last sequence: 2\n" });
    expect(server.ops("kv.update").map((r) => r["revision"])).toEqual([1, 1]);
  });

  it("--json errors carry the code", async () => {
    server.kv.bucket("b");
    const run = await cairn(["--json", "kv", "get", "b", "missing"]);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.err)).toEqual({ error: { code: "KEY_NOT_FOUND", message: "key not found" } });
    const conflict = await cairn(["kv", "update", "b", "k", "v", "9", "--json"]);
    expect(JSON.parse(conflict.err)).toEqual({ error: { code: "WRONG_LAST_REVISION", message: "wrong last sequence: 0" } });
  });

  it("del asks first: refuses without a terminal, skips on no, deletes with --force", async () => {
    server.kv.bucket("b");
    const refused = await cairn(["kv", "del", "b", "k"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toBe("error: Delete key b > k: refusing without --force (no terminal to confirm on)\n");
    expect(await cairn(["kv", "del", "b", "k"], { confirm: false })).toMatchObject({ code: 0, out: "Skipping delete\n" });
    expect(server.ops("kv.delete")).toHaveLength(0);
    expect((await cairn(["kv", "del", "b", "k", "--force"])).code).toBe(0);
    expect((await cairn(["kv", "del", "b", "k"], { confirm: true })).code).toBe(0);
    expect(server.ops("kv.delete")).toHaveLength(2);
  });

  it("rm (and del without a key) deletes the bucket; a second rm says bucket not found", async () => {
    server.kv.bucket("b");
    expect((await cairn(["kv", "rm", "b", "-f"])).code).toBe(0);
    expect(server.ops("bucket.delete")).toHaveLength(1);
    expect(await cairn(["kv", "del", "b", "-f"])).toMatchObject({ code: 1, err: "error: bucket not found\n" });
  });

  it("purge and compact send their requests", async () => {
    server.kv.bucket("b");
    expect((await cairn(["kv", "purge", "b", "k", "-f"])).code).toBe(0);
    expect((await cairn(["kv", "compact", "b", "-f", "--older-than", "0"])).code).toBe(0);
    expect(server.ops("kv.purge")[0]).toMatchObject({ bucket: "b", key: "k" });
    expect(server.ops("kv.purgeDeletes")[0]).toMatchObject({ bucket: "b", olderThanMs: -1 });
  });

  it("ls lists buckets (table, names) and keys", async () => {
    expect((await cairn(["kv", "ls"])).out).toBe("No Key-Value buckets found\n");
    server.kv.write("b", "x", "1");
    server.kv.write("b", "y", "2");
    expect((await cairn(["kv", "ls"])).out).toContain("│ b      │");
    expect((await cairn(["kv", "ls", "-n"])).out).toBe("b\n");
    expect((await cairn(["kv", "ls", "b"])).out).toBe("x\ny\n");
    expect(JSON.parse((await cairn(["kv", "ls", "b", "--json"])).out)).toEqual(["x", "y"]);
    expect((await cairn(["kv", "ls", "b", "-v", "--display-value"])).out).toContain("Contents for bucket 'b'");
  });

  it("history prints the table of every record of the key", async () => {
    server.kv.write("b", "k", "one");
    server.kv.write("b", "k", "", "DEL");
    const run = await cairn(["kv", "history", "b", "k"]);
    expect(run.out).toContain("History for b > k");
    expect(run.out).toMatch(/│ k   │ +1 │ PUT │ [\d-]+ [\d:]+ │ +3 │ one +│/);
    expect(run.out).toMatch(/│ k   │ +2 │ DEL │/);
  });

  it("watch prints nats-style lines until interrupted, then stops the watch", async () => {
    server.kv.write("my-kv", "Key1", "Value1");
    server.kv.write("my-kv", "Key1", "", "DEL");
    let interrupt!: () => void;
    const interrupted = new Promise<void>((resolve) => (interrupt = resolve));
    const sink = { out: "", err: "" };
    // Ctrl-C once the live line is printed.
    const onOut = (out: string): void => {
      if (out.includes("Value2")) interrupt();
    };
    const running = main(["kv", "watch", "my-kv"], fakeIo({ env: { CAIRN_SERVER: server.url }, interrupted, onOut }, sink));
    await server.waitForRequest((r) => r.op === "watch.start");
    server.kv.write("my-kv", "Key1", "Value2");
    expect(await running).toBe(0);
    expect(sink.out).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] DEL my-kv > Key1\n\[[\d -:]+\] PUT my-kv > Key1: Value2\n$/);
    expect(server.ops("watch.start")[0]).toMatchObject({ filters: [">"], include: "last" });
    expect(server.ops("watch.stop")).toHaveLength(1);
  });

  it("takes --server anywhere on the line and reports connection failures in one line", async () => {
    server.kv.bucket("b");
    expect((await cairn(["kv", "put", "b", "k", "v", "--server", server.url], { env: {} })).code).toBe(0);
    const port = await deadPort();
    const run = await cairn(["--server", `127.0.0.1:${port}`, "--timeout", "200ms", "kv", "ls"], { env: {} });
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/^error: cannot connect to any server \(ws:\/\/127\.0\.0\.1:\d+\): .*\n$/);
  });

  it("usage mistakes exit 1 before connecting", async () => {
    const missing = await cairn(["kv", "get", "b"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe("error: missing required argument 'key'\n");
    const badTtl = await cairn(["kv", "add", "b", "--ttl", "soon"]);
    expect(badTtl).toMatchObject({ code: 1, err: 'error: invalid duration for --ttl: "soon" (use e.g. 30s, 5m, 1h, 2d)\n' });
    const badKey = await cairn(["kv", "put", "b", "a.*", "v"]);
    expect(badKey).toMatchObject({ code: 1, err: "error: invalid key\n" });
    expect(await cairn(["kv", "add", "bad.name"])).toMatchObject({ code: 1, err: "error: invalid bucket name\n" });
    expect(await cairn(["kv", "watch", "b", "a.>.b"])).toMatchObject({ code: 1, err: "error: invalid key\n" });
    expect(server.calls()).toHaveLength(0);
    expect(server.ops("hello")).toHaveLength(0);
  });

  it("cluster status prints the cluster tables", async () => {
    const run = await cairn(["cluster", "status"]);
    expect(run.code).toBe(0);
    expect(run.out).toContain("Cluster nodes (answered by n1)");
  });

  it("cluster remove / add send cluster.removeNode / cluster.addNode and print the membership", async () => {
    const removed = await cairn(["cluster", "remove", "n3"]);
    expect(removed).toMatchObject({ code: 0, out: "Node n3 removed from the cluster\nMembers: n1, n2\nRemoved: n3\n" });
    expect(server.ops("cluster.removeNode")).toEqual([expect.objectContaining({ nodeId: "n3", requestId: expect.any(String) })]);
    const status = await cairn(["cluster", "status"]);
    expect(status.out).toContain("│ n1   │");
    expect(status.out).toContain("Member");
    const json = await cairn(["--json", "cluster", "add", "n3"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toEqual({ members: ["n1", "n2", "n3"], removed: [], change: null });
    const unknown = await cairn(["cluster", "remove", "n9"]);
    expect(unknown).toMatchObject({ code: 1, err: "error: node n9 is not in the cluster config\n" });
    expect(await cairn(["cluster", "remove"])).toMatchObject({ code: 1 });
  });
});
