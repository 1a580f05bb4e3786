/**
 * Goal: the CLI's argument parsing and output formatting match natscli (`nats kv`): durations and sizes
 * as flags take them, `kv get` / `kv watch` lines, status columns, tables, errors.
 * Method: the pure functions of src/cli/parse.ts and src/cli/format.ts on fixed inputs.
 */
import { describe, expect, it } from "vitest";
import {
  formatBytes,
  formatClusterStatus,
  formatMembershipChange,
  formatDuration,
  formatGet,
  formatHistory,
  formatRfc822,
  formatStatus,
  formatTimestamp,
  formatWatchLine,
  entryJson,
  printableValue,
  renderTable,
  shortValue,
} from "../../src/cli/format.ts";
import { CliUsageError, parseBytes, parseCount, parseDuration, parseMetadata, parseStorage, resolveServers } from "../../src/cli/parse.ts";
import { configFromFlags } from "../../src/cli/kv.ts";
import { formatError } from "../../src/cli/main.ts";
import type { KvEntry, KvStatus } from "../../src/client/types.ts";
import { CairnError, keyExists } from "../../src/shared/errors.ts";

const created = new Date(Date.UTC(2021, 9, 12, 20, 8, 3));

function entry(fields: Partial<KvEntry> & { text?: string }): KvEntry {
  const value = fields.value ?? new TextEncoder().encode(fields.text ?? "");
  return {
    bucket: "my-kv",
    key: "Key1",
    revision: 1,
    created,
    operation: "PUT",
    delta: 0,
    length: value.length,
    string: () => new TextDecoder().decode(value),
    json: () => JSON.parse(new TextDecoder().decode(value)),
    ...fields,
    value,
  };
}

const status: KvStatus = {
  bucket: "my-kv",
  values: 3,
  history: 5,
  ttlMs: 3_600_000,
  bytes: 1536,
  maxBytes: -1,
  maxValueSize: 1024,
  replicas: 3,
  storage: "file",
  markerTtlMs: 0,
  description: "",
  metadata: {},
  compression: false,
  revision: 7,
  leader: "n1",
  replicasInfo: [
    { node: "n1", current: true, lag: 0, leader: true },
    { node: "n2", current: true, lag: 0, leader: false },
    { node: "n3", current: false, lag: 4, leader: false },
  ],
};

describe("parse", () => {
  it("durations as Go and natscli write them, in ms", () => {
    expect(parseDuration("1h", "--ttl")).toBe(3_600_000);
    expect(parseDuration("1h30m", "--ttl")).toBe(5_400_000);
    expect(parseDuration("250ms", "--ttl")).toBe(250);
    expect(parseDuration("1.5s", "--ttl")).toBe(1500);
    expect(parseDuration("2d", "--ttl")).toBe(172_800_000);
    expect(parseDuration("0", "--ttl")).toBe(0);
    for (const bad of ["", "1", "h", "1x", "1h 2m", "-1s"]) expect(() => parseDuration(bad, "--ttl"), bad).toThrow(CliUsageError);
    expect(() => parseDuration("soon", "--ttl")).toThrow('invalid duration for --ttl: "soon"');
  });

  it("sizes with 1024-based suffixes; -1 is unlimited", () => {
    expect(parseBytes("1024", "--max-value-size")).toBe(1024);
    expect(parseBytes("10KB", "--max-value-size")).toBe(10_240);
    expect(parseBytes("1.5MiB", "--max-value-size")).toBe(1_572_864);
    expect(parseBytes("2G", "--max-value-size")).toBe(2 * 1024 ** 3);
    expect(parseBytes("-1", "--max-value-size")).toBe(-1);
    expect(() => parseBytes("lots", "--max-bucket-size")).toThrow(CliUsageError);
  });

  it("counts, metadata, storage", () => {
    expect(parseCount("13", "revision")).toBe(13);
    expect(() => parseCount("-1", "revision")).toThrow(CliUsageError);
    expect(() => parseCount("0", "--history", 1)).toThrow(CliUsageError);
    expect(parseMetadata(["a=b", "c=d=e"])).toEqual({ a: "b", c: "d=e" });
    expect(() => parseMetadata(["nope"])).toThrow(CliUsageError);
    expect(parseStorage("m")).toBe("memory");
    expect(parseStorage("File")).toBe("file");
    expect(() => parseStorage("disk")).toThrow(CliUsageError);
  });

  it("servers: --server, else CAIRN_SERVER, else the local cluster", () => {
    expect(resolveServers("a:1, b:2", { CAIRN_SERVER: "c:3" })).toEqual(["a:1", "b:2"]);
    expect(resolveServers(undefined, { CAIRN_SERVER: "c:3,d:4" })).toEqual(["c:3", "d:4"]);
    expect(resolveServers(undefined, {})).toEqual(["ws://127.0.0.1:4222", "ws://127.0.0.1:4223", "ws://127.0.0.1:4224"]);
  });

  it("kv add flags become bucket options (only the ones given)", () => {
    expect(configFromFlags({})).toEqual({});
    expect(
      configFromFlags({
        history: "5",
        ttl: "1h",
        replicas: "3",
        maxValueSize: "1KiB",
        maxBucketSize: "-1",
        description: "d",
        storage: "memory",
        compress: true,
        markerTtl: "5s",
        metadata: ["team=core"],
      }),
    ).toEqual({
      history: 5,
      ttlMs: 3_600_000,
      replicas: 3,
      maxValueSize: 1024,
      maxBytes: -1,
      description: "d",
      storage: "memory",
      compression: true,
      markerTtlMs: 5000,
      metadata: { team: "core" },
    });
  });
});

describe("format", () => {
  it("times as natscli prints them (UTC)", () => {
    expect(formatRfc822(created)).toBe("12 Oct 21 20:08 UTC");
    expect(formatTimestamp(created)).toBe("2021-10-12 20:08:03");
  });

  it("bytes and durations as go-humanize and Go print them", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1024)).toBe("1.0 KiB");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(15 * 1024 * 1024)).toBe("15 MiB");
    expect(formatDuration(3_600_000)).toBe("1h0m0s");
    expect(formatDuration(90_000)).toBe("1m30s");
    expect(formatDuration(1500)).toBe("1.5s");
    expect(formatDuration(250)).toBe("250ms");
  });

  it("kv get: header, blank line, value, blank line", () => {
    expect(formatGet(entry({ text: "Value1" }))).toBe("my-kv > Key1 revision: 1 created @ 12 Oct 21 20:08 UTC\n\nValue1\n\n");
    const long = formatGet(entry({ text: "x".repeat(130) }));
    expect(long).toContain("Showing first 120 bytes of 130, use --raw for full data\n\n" + "x".repeat(120) + "\n");
  });

  it("kv watch lines for PUT, DEL and PURGE", () => {
    expect(formatWatchLine(entry({ text: "Value2", revision: 2 }))).toBe("[2021-10-12 20:08:03] PUT my-kv > Key1: Value2");
    expect(formatWatchLine(entry({ operation: "DEL" }))).toBe("[2021-10-12 20:08:03] DEL my-kv > Key1");
    expect(formatWatchLine(entry({ operation: "PURGE" }))).toBe("[2021-10-12 20:08:03] PURGE my-kv > Key1");
  });

  it("binary values print as base64; long ones are shortened in tables", () => {
    expect(printableValue(new Uint8Array([0, 1, 2]))).toBe("AAEC");
    expect(printableValue(new Uint8Array([0xff]))).toBe("/w==");
    expect(printableValue(new TextEncoder().encode("two\nlines"))).toBe("two\nlines");
    expect(shortValue("a".repeat(15) + "b".repeat(20) + "c".repeat(15))).toBe(`${"a".repeat(15)}...${"c".repeat(15)}`);
    expect(entryJson(entry({ value: new Uint8Array([0xff]) }))).toMatchObject({ value: "/w==", encoding: "base64" });
    expect(entryJson(entry({ text: "hi" }))).toMatchObject({ value: "hi", encoding: "utf8", created: created.toISOString() });
  });

  it("kv info: natscli's columns, limits, cluster replicas", () => {
    const text = formatStatus(status);
    expect(text.startsWith("Information for Key-Value Store Bucket my-kv\n\nConfiguration:\n\n")).toBe(true);
    expect(text).toContain("           Bucket Name: my-kv\n");
    expect(text).toContain("          History Kept: 5\n");
    expect(text).toContain("           Maximum Age: 1h0m0s\n");
    expect(text).toContain("    Maximum Value Size: 1.0 KiB\n");
    expect(text).toContain("   Maximum Bucket Size: unlimited\n");
    expect(text).toContain("Cluster Information:\n\n");
    expect(text).toContain("                Leader: n1\n");
    expect(text).toContain("               Replica: n2, current\n");
    expect(text).toContain("               Replica: n3, outdated, 4 operations behind\n");
  });

  it("kv info and cluster status during a replica count change: configured vs running, joining replicas", () => {
    const changing: KvStatus = {
      ...status,
      replicasRunning: 2,
      replicasInfo: [...status.replicasInfo.slice(0, 2).map((r) => ({ ...r, voter: true })), { ...status.replicasInfo[2]!, voter: false }],
    };
    const text = formatStatus(changing);
    expect(text).toContain("              Replicas: 3 (running on 2)\n");
    expect(text).toContain("               Replica: n3, outdated, joining, 4 operations behind\n");
    expect(formatStatus({ ...changing, replicasRunning: 3 })).toContain("              Replicas: 3\n");
    const cluster = formatClusterStatus({
      node: "n1",
      nodes: [{ id: "n1", url: "ws://127.0.0.1:4222", reachable: true }],
      groups: [],
      membership: { members: ["n1"], removed: [], change: { seq: 4, type: "replicas", nodeId: "", bucket: "my-kv", replicas: 3 } },
    });
    expect(cluster).toContain("Membership change in progress: replicas of bucket my-kv to 3");
  });

  it("tables: title, headers, rows, numbers right-aligned", () => {
    expect(renderTable("T", ["Key", "Rev"], [["a", 1], ["bb", 10]])).toBe(
      [
        "╭───────────╮",
        "│     T     │",
        "├─────┬─────┤",
        "│ Key │ Rev │",
        "├─────┼─────┤",
        "│ a   │   1 │",
        "│ bb  │  10 │",
        "╰─────┴─────╯",
      ].join("\n"),
    );
    const history = formatHistory("my-kv", "Key1", [entry({ text: "Value1" }), entry({ revision: 2, operation: "DEL" })]);
    expect(history).toContain("History for my-kv > Key1");
    expect(history).toContain("│ Key  │ Revision │ Op  │ Created             │ Length │ Value  │");
    expect(history).toContain("│ Key1 │        2 │ DEL │ 2021-10-12 20:08:03 │      0 │        │");
  });

  it("cluster status as tables, anything unexpected as JSON", () => {
    const text = formatClusterStatus({
      node: "n1",
      nodes: [{ id: "n1", url: "ws://127.0.0.1:4222", reachable: true }],
      groups: [{ group: "meta", leader: "n1", term: 2, members: [{ node: "n1", role: "leader", commit: 5, applied: 5, lag: 0 }] }],
    });
    expect(text).toContain("Cluster nodes (answered by n1)");
    expect(text).toContain("│ meta  │ n1     │    2 │ n1   │ leader │      5 │       5 │   0 │");
    expect(formatClusterStatus({ other: 1 })).toBe('{\n  "other": 1\n}');
  });

  it("cluster status shows what each node holds for clients when the nodes report it", () => {
    const stats = { connections: 3, watches: 12, requestsInProgress: 1, bufferedBytesMax: 0 };
    const text = formatClusterStatus({
      node: "n1",
      nodes: [
        { id: "n1", url: "ws://127.0.0.1:4222", reachable: true, clients: stats },
        { id: "n2", url: "ws://127.0.0.1:4223", reachable: false },
      ],
      groups: [],
    });
    expect(text).toContain("│ Node │ URL                 │ Reachable │ Clients │ Watches │");
    expect(text).toContain("│ n1   │ ws://127.0.0.1:4222 │ yes       │ 3       │ 12      │");
    expect(text).toContain("│ n2   │ ws://127.0.0.1:4223 │ NO        │ -       │ -       │");
  });

  it("cluster status shows members, removed nodes and a change in progress; remove/add print the membership", () => {
    const text = formatClusterStatus({
      node: "n1",
      nodes: [
        { id: "n1", url: "ws://127.0.0.1:4222", reachable: true },
        { id: "n2", url: "ws://127.0.0.1:4223", reachable: true },
      ],
      groups: [],
      membership: { members: ["n1"], removed: ["n2"], change: { seq: 3, type: "remove", nodeId: "n2" } },
    });
    expect(text).toContain("│ Node │ URL                 │ Reachable │ Member  │");
    expect(text).toContain("│ n2   │ ws://127.0.0.1:4223 │ yes       │ removed │");
    expect(text).toContain("Membership change in progress: remove n2");
    expect(formatMembershipChange("added to", "n2", { members: ["n1", "n2"], removed: [], change: null })).toBe(
      "Node n2 added to the cluster\nMembers: n1, n2\nRemoved: none",
    );
  });

  it("errors: one line with NATS wording, or JSON with the code", () => {
    expect(formatError(keyExists(1), false)).toBe("error: wrong last sequence: 1: key exists\n");
    expect(formatError(new CairnError("BUCKET_NOT_FOUND"), true)).toBe('{"error":{"code":"BUCKET_NOT_FOUND","message":"bucket not found"}}\n');
    expect(formatError(new CliUsageError("key not found", "KEY_NOT_FOUND"), false)).toBe("error: key not found\n");
  });
});
