/**
 * Goal: the `cairn` binary as users run it (issue 5): `node bin/cairn.mjs ...` child processes against a
 * cluster of node processes. The README walkthrough prints what the README shows; every `kv` command
 * and `cluster status` prints its text, and valid JSON with --json; `--server` and CAIRN_SERVER,
 * `--token` and CAIRN_TOKEN; `kv put` reads stdin; failures exit non-zero with exactly one line;
 * `kv watch` prints events until stopped by its pid.
 * Method: one 3-node cluster (test/support/process-cluster.ts) that requires a client token; every
 * command is a fresh process (independent ones run side by side); waits poll output with a bound.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, Kvm, type Connection } from "../../src/client/index.ts";
import { ProcessCluster } from "../support/process-cluster.ts";

const REPO = resolve(import.meta.dirname, "..", "..");
const BIN = join(REPO, "bin", "cairn.mjs");
const TOKEN = "cli-process-token";
/** A command that has not exited by then is killed (by its pid) and fails the test. */
const COMMAND_TIMEOUT_MS = 60_000;

let cluster: ProcessCluster;
let nc: Connection;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Running {
  readonly pid: number;
  readonly stdout: () => string;
  readonly done: Promise<Result>;
}

/** Starts `cairn <args>` with CAIRN_TOKEN set and no CAIRN_SERVER unless `env` says otherwise. */
function start(args: readonly string[], options: { env?: Record<string, string | undefined>; stdin?: string } = {}): Running {
  const env: Record<string, string | undefined> = { ...process.env, CAIRN_SERVER: undefined, CAIRN_TOKEN: TOKEN, ...options.env };
  for (const name of Object.keys(env)) if (env[name] === undefined) delete env[name];
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: env as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.stdin ?? "");
  const done = new Promise<Result>((resolveDone, reject) => {
    const timer = setTimeout(() => {
      if (child.pid) process.kill(child.pid, "SIGKILL");
      reject(new Error(`cairn ${args.join(" ")} did not exit within ${COMMAND_TIMEOUT_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, COMMAND_TIMEOUT_MS);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolveDone({ code, signal, stdout, stderr });
    });
  });
  return { pid: child.pid!, stdout: () => stdout, done };
}

function cairn(args: readonly string[], options: { env?: Record<string, string | undefined>; stdin?: string } = {}): Promise<Result> {
  return start(args, options).done;
}

function server(): string[] {
  return ["--server", cluster.urls.join(",")];
}

/** Exit 0, nothing on stderr; returns stdout. */
function ok(result: Result, what: string): string {
  expect({ what, code: result.code, stderr: result.stderr }).toEqual({ what, code: 0, stderr: "" });
  return result.stdout;
}

/** Exit status 1, nothing on stdout, exactly one line on stderr; returns that line. */
function failed(result: Result, what: string): string {
  expect({ what, code: result.code, stdout: result.stdout }).toEqual({ what, code: 1, stdout: "" });
  expect(result.stderr, what).toMatch(/^[^\n]+\n$/);
  return result.stderr.trimEnd();
}

async function json<T = any>(result: Promise<Result>, what: string): Promise<T> {
  return JSON.parse(ok(await result, what)) as T;
}

/** Polls until `done()` (bounded). */
async function until(what: string, done: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Times differ from run to run: `created @ 21 Nov 26 12:29 UTC` and `2026-11-21 12:29:13` become placeholders of equal width. */
function withoutTimes(text: string): string {
  return text
    .replace(/created @ \d\d [A-Z][a-z]{2} \d\d \d\d:\d\d UTC/g, "created @ DD Mon YY hh:mm UTC")
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, "YYYY-MM-DD hh:mm:ss");
}

/** Expected lines where `...` stands for any number of lines; trailing blank lines ignored on both sides. */
function expectLines(actual: string, expected: readonly string[], what: string): void {
  const got = withoutTimes(actual).replace(/\n+$/, "").split("\n");
  const want = expected.map(withoutTimes);
  if (want.length === 0) {
    expect(actual, what).toBe("");
    return;
  }
  let at = 0;
  for (let i = 0; i < want.length; i++) {
    if (want[i] === "...") {
      const next = want[i + 1];
      if (next === undefined) return; // anything may follow
      const found = got.indexOf(next, at);
      expect(found, `${what}: expected a line ${JSON.stringify(next)} after line ${at}\n${got.join("\n")}`).toBeGreaterThanOrEqual(0);
      at = found;
      continue;
    }
    expect(got[at], `${what}: line ${at + 1}\n${got.join("\n")}`).toBe(want[i]);
    at++;
  }
  expect(got.length, `${what}: unexpected lines after the expected output\n${got.join("\n")}`).toBe(at);
}

interface WalkthroughStep {
  readonly args: string[];
  /** The command line carries a comment and shows no output: its output is not shown in the README. */
  readonly elided: boolean;
  readonly expected: string[];
}

/** The `console` block of the README's walkthrough, as commands and their printed output. */
function readmeWalkthrough(): { servers: string; steps: WalkthroughStep[] } {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## The NATS KV walkthrough"));
  const block = /```console\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error("README: no console block in the walkthrough section");
  let servers = "";
  const steps: WalkthroughStep[] = [];
  for (const line of block.replace(/\n$/, "").split("\n")) {
    if (!line.startsWith("$ ")) {
      steps.at(-1)?.expected.push(line);
      continue;
    }
    const comment = /\s{2,}#\s.*$/.exec(line);
    const command = (comment ? line.slice(0, comment.index) : line).slice(2).trim();
    if (command.startsWith("export CAIRN_SERVER=")) {
      servers = command.slice("export CAIRN_SERVER=".length);
      continue;
    }
    const words = command.match(/'[^']*'|\S+/g)!.map((w) => w.replace(/^'(.*)'$/, "$1"));
    expect(words.slice(0, 2), `README command ${command}`).toEqual(["npx", "cairn"]);
    steps.push({ args: words.slice(2), elided: comment !== null, expected: [] });
  }
  return { servers, steps };
}

beforeAll(async () => {
  cluster = await ProcessCluster.start({ nodes: 3, clientToken: TOKEN });
  nc = await connect({ servers: cluster.urls, token: TOKEN, timeoutMs: 15_000 });
});

afterAll(async () => {
  await nc?.close().catch(() => undefined);
  await cluster?.stop();
});

describe("cairn CLI against 3 node processes", () => {
  it("the README walkthrough prints what the README shows (CAIRN_SERVER from the environment)", async () => {
    const { servers, steps } = readmeWalkthrough();
    expect(servers.split(",")).toHaveLength(3);
    expect(steps.map((s) => s.args.slice(0, 2).join(" "))).toEqual(expect.arrayContaining(["kv add", "kv put", "kv get", "kv watch", "kv history", "kv rm"]));
    const env = { CAIRN_SERVER: cluster.urls.join(",") };
    for (const step of steps) {
      const what = `cairn ${step.args.join(" ")}`;
      if (step.args[0] === "kv" && step.args[1] === "watch") {
        // Runs until stopped: wait for the lines the README shows, then stop it by its pid.
        const watch = start(step.args, { env });
        const lines = step.expected.filter((l) => l !== "...").length;
        await until(`${what} to print ${lines} lines`, () => watch.stdout().split("\n").length > lines);
        process.kill(watch.pid, "SIGTERM");
        const result = await watch.done;
        expectLines(ok(result, what), step.expected, what);
        continue;
      }
      const result = await cairn(step.args, { env });
      if (step.expected[0]?.startsWith("error: ")) {
        expect(failed(result, what)).toBe(step.expected.join("\n"));
        continue;
      }
      const stdout = ok(result, what);
      if (!(step.elided && step.expected.length === 0)) expectLines(stdout, step.expected, what);
    }
    await expect(new Kvm(nc).open("my-kv")).rejects.toMatchObject({ code: "BUCKET_NOT_FOUND" });
  });

  it("every kv command and cluster status: text, --json, stdin, --server/CAIRN_SERVER, --token/CAIRN_TOKEN, one-line failures", async () => {
    const s = server();
    // add with every configuration flag, text output.
    const added = ok(
      await cairn([
        "kv", "add", "demo", "--history", "5", "--ttl", "1h", "--replicas", "3", "--max-value-size", "1KiB", "--max-bucket-size", "1MiB",
        "--description", "demo bucket", "--storage", "file", "--marker-ttl", "2s", "--metadata", "team=core", ...s,
      ]),
      "kv add",
    );
    for (const line of [
      "Information for Key-Value Store Bucket demo",
      "           History Kept: 5",
      "            Maximum Age: 1h0m0s",
      "     Maximum Value Size: 1.0 KiB",
      "    Maximum Bucket Size: 1.0 MiB",
      "  Per-Key TTL Supported: true",
      "       Limit Marker TTL: 2s",
      "            Description: demo bucket",
      "          Metadata team: core",
      "               Replicas: 3",
    ]) {
      expect(added.split("\n"), "kv add").toContain(line);
    }
    // edit: text and --json; nothing to change is a usage error.
    const [edited, nothing] = await Promise.all([json(cairn(["kv", "edit", "demo", "--history", "10", "--json", ...s]), "kv edit --json"), cairn(["kv", "edit", "demo", ...s])]);
    expect(edited).toMatchObject({ bucket: "demo", history: 10, description: "demo bucket", metadata: { team: "core" }, ttlMs: 3_600_000 });
    expect(failed(nothing, "kv edit without flags")).toBe("error: nothing to change: give at least one configuration flag");

    // Text output of put/get/create/update/del/history is what the README walkthrough checks; here
    // --json, stdin, TTL flags and the remaining failures.
    // put: --json, stdin, per-key TTL.
    expect(await json(cairn(["kv", "put", "demo", "Key1", "Value1", "--json", ...s]), "kv put --json")).toEqual({ bucket: "demo", key: "Key1", revision: 1 });
    const [fromStdin, ttlPut] = await Promise.all([
      cairn(["kv", "put", "demo", "Key2", ...s], { stdin: "from stdin\nsecond line\n" }),
      json(cairn(["kv", "put", "demo", "short", "lived", "--ttl", "1h", "--json", ...s]), "kv put --ttl"),
    ]);
    ok(fromStdin, "kv put from stdin");
    expect(ttlPut).toMatchObject({ bucket: "demo", key: "short" });

    // get: --raw (the stdin value, byte for byte), --json, a missing key fails.
    const [raw, asJson, missing] = await Promise.all([
      cairn(["kv", "get", "demo", "Key2", "--raw", ...s]),
      json(cairn(["kv", "get", "demo", "Key1", "--json", ...s]), "kv get --json"),
      cairn(["kv", "get", "demo", "nope", ...s]),
    ]);
    expect(ok(raw, "kv get --raw")).toBe("from stdin\nsecond line\n");
    expect(asJson).toMatchObject({ bucket: "demo", key: "Key1", revision: 1, operation: "PUT", value: "Value1", encoding: "utf8", length: 6, delta: 0 });
    expect(Number.isNaN(Date.parse(asJson.created))).toBe(false);
    expect(failed(missing, "kv get of a missing key")).toBe("error: key not found");

    // create / update with --json; a conflict with --json prints the error as JSON on one line.
    expect(await json(cairn(["kv", "create", "demo", "lock", "me", "--json", ...s]), "kv create --json")).toEqual({ bucket: "demo", key: "lock", revision: 4 });
    const [takenJson, lease] = await Promise.all([
      cairn(["kv", "create", "demo", "lock", "you", "--json", ...s]),
      json(cairn(["kv", "create", "demo", "lease", "x", "--ttl", "1h", "--json", ...s]), "kv create --ttl --json"),
    ]);
    const updated = await json(cairn(["kv", "update", "demo", "lock", "them", "4", "--json", ...s]), "kv update --json");
    expect(JSON.parse(failed(takenJson, "kv create --json on a live key"))).toEqual({ error: { code: "KEY_EXISTS", message: "wrong last sequence: 4: key exists" } });
    expect(updated).toMatchObject({ bucket: "demo", key: "lock" });
    expect(lease).toMatchObject({ bucket: "demo", key: "lease" });

    // del / purge: --force (no terminal to confirm on without it), --json, purge --ttl.
    const [noForce, deleted, purged] = await Promise.all([
      cairn(["kv", "del", "demo", "short", ...s]),
      json(cairn(["kv", "del", "demo", "Key1", "--force", "--json", ...s]), "kv del --json"),
      cairn(["kv", "purge", "demo", "lease", "--force", ...s]),
    ]);
    expect(failed(noForce, "kv del without --force")).toBe("error: Delete key demo > short: refusing without --force (no terminal to confirm on)");
    expect(deleted).toMatchObject({ bucket: "demo", key: "Key1" });
    expect(ok(purged, "kv purge")).toBe("");
    const gonePurge = await json(cairn(["kv", "purge", "demo", "gone", "--force", "--ttl", "10s", "--json", ...s]), "kv purge --ttl --json");
    expect(gonePurge).toMatchObject({ bucket: "demo", key: "gone" });
    const lastRevision: number = gonePurge.revision;
    expect(lastRevision).toBe(9); // Key1, Key2, short, lock, lock, lease, Key1 (DEL), lease (PURGE), gone (PURGE)

    // history, ls, info: text and --json, side by side.
    const [historyJson, ls, lsJson, names, keys, verbose, info, infoJson] = await Promise.all([
      json(cairn(["kv", "history", "demo", "Key1", "--json", ...s]), "kv history --json"),
      cairn(["kv", "ls", ...s]),
      json(cairn(["kv", "ls", "--json", ...s]), "kv ls --json"),
      cairn(["kv", "ls", "--names", ...s]),
      cairn(["kv", "ls", "demo", ...s]),
      cairn(["kv", "ls", "demo", "-v", "--display-value", ...s]),
      cairn(["kv", "info", "demo", ...s]),
      json(cairn(["kv", "info", "demo", "--json", ...s]), "kv info --json"),
    ]);
    expect(historyJson.map((e: { revision: number; operation: string }) => `${e.revision}:${e.operation}`)).toEqual(["1:PUT", `${deleted.revision}:DEL`]);
    expect(ok(ls, "kv ls")).toMatch(/│ demo +│ demo bucket │ .* │ +3 │ n[123] +│/);
    expect(lsJson.map((b: { bucket: string }) => b.bucket)).toContain("demo");
    expect(ok(names, "kv ls --names").split("\n")).toContain("demo");
    expect(ok(keys, "kv ls demo").split("\n").filter(Boolean).sort()).toEqual(["Key2", "lock", "short"]);
    expect(ok(verbose, "kv ls -v")).toMatch(new RegExp(`│ lock +│ \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d │ +0 │ +${updated.revision} │ them +│`));
    expect(ok(info, "kv info").split("\n")).toContain(`               Revision: ${lastRevision}`);
    expect(infoJson).toMatchObject({ bucket: "demo", revision: lastRevision, history: 10, replicas: 3, markerTtlMs: 2000, storage: "file" });
    expect(infoJson.replicasInfo).toHaveLength(3);

    // compact: every marker goes with --older-than 0; --json counts the records removed.
    const compacted = await json(cairn(["kv", "compact", "demo", "--force", "--older-than", "0", "--json", ...s]), "kv compact --json");
    expect(compacted).toEqual({ bucket: "demo", removed: 4 }); // Key1: PUT and DEL; lease: PURGE; gone: PURGE
    expect(await new Kvm(nc).open("demo").then((kv) => kv.get("Key1", { includeDeleted: true }))).toBeNull();

    // cluster status: text and --json.
    const [status, statusJson] = await Promise.all([cairn(["cluster", "status", ...s]), json(cairn(["cluster", "status", "--json", ...s]), "cluster status --json")]);
    const statusText = ok(status, "cluster status");
    expect(statusText).toMatch(/Cluster nodes \(answered by n[123]\)/);
    expect(statusText).toMatch(/│ demo +│ n[123] +│/);
    expect(statusText).toContain("│ Clients │ Watches │");
    expect(statusJson.nodes.every((n: { clients?: { connections: number } }) => typeof n.clients?.connections === "number")).toBe(true);
    expect(statusJson.nodes.map((n: { id: string; reachable: boolean }) => `${n.id}:${n.reachable}`)).toEqual(["n1:true", "n2:true", "n3:true"]);
    expect(statusJson.groups.map((g: { group: string }) => g.group)).toEqual(expect.arrayContaining(["meta", "demo"]));
    expect(statusJson.groups[0].group).toBe("meta");

    // --server over CAIRN_SERVER, CAIRN_SERVER alone, --token over CAIRN_TOKEN; no or a wrong token fails.
    const deadServer = "ws://127.0.0.1:1";
    const [flagWins, fromEnv, flagToken, noToken] = await Promise.all([
      cairn(["kv", "get", "demo", "lock", "--raw", ...s], { env: { CAIRN_SERVER: deadServer } }),
      cairn(["kv", "get", "demo", "lock", "--raw"], { env: { CAIRN_SERVER: cluster.urls.join(",") } }),
      cairn(["kv", "get", "demo", "lock", "--raw", "--token", TOKEN, ...s], { env: { CAIRN_TOKEN: "wrong" } }),
      cairn(["kv", "get", "demo", "lock", ...s], { env: { CAIRN_TOKEN: undefined } }),
    ]);
    expect(ok(flagWins, "--server over CAIRN_SERVER")).toBe("them");
    expect(ok(fromEnv, "CAIRN_SERVER")).toBe("them");
    expect(ok(flagToken, "--token over CAIRN_TOKEN")).toBe("them");
    expect(failed(noToken, "no token")).toBe("error: unauthorized: bad or missing token");

    // Argument mistakes fail before connecting (no server needed); so does an unreachable server.
    const [badKey, badDuration, unreachable] = await Promise.all([
      cairn(["kv", "get", "demo", "a b", "--server", deadServer]),
      cairn(["kv", "put", "demo", "k", "v", "--ttl", "soon", "--server", deadServer]),
      cairn(["kv", "info", "demo", "--server", deadServer, "--timeout", "300ms"]),
    ]);
    expect(failed(badKey, "invalid key")).toBe("error: invalid key");
    expect(failed(badDuration, "invalid duration")).toBe('error: invalid duration for --ttl: "soon" (use e.g. 30s, 5m, 1h, 2d)');
    expect(failed(unreachable, "unreachable server")).toMatch(/^error: cannot connect to any server \(ws:\/\/127\.0\.0\.1:1\)/);

    // rm: the bucket goes; a second rm and info fail with bucket not found.
    expect(await json(cairn(["kv", "rm", "demo", "--force", "--json", ...s]), "kv rm --json")).toEqual({ bucket: "demo", deleted: true });
    expect(failed(await cairn(["kv", "rm", "demo", "--force", ...s]), "second kv rm")).toBe("error: bucket not found");
  });

  it("kv watch prints the initial values and every change until stopped by its pid (text and --json)", async () => {
    const kv = await new Kvm(nc).create("watched", { history: 5 });
    await kv.put("a", "1");
    const text = start(["kv", "watch", "watched", ...server()]);
    const asJson = start(["kv", "watch", "watched", "a", "--include", "history", "--json", ...server()]);
    await until("both watches to print the initial value", () => text.stdout().includes("PUT watched > a: 1") && asJson.stdout().includes('"value":"1"'));
    await kv.put("b", "2");
    await kv.delete("a");
    await kv.purge("b");
    await until("both watches to print the changes", () => text.stdout().includes("PURGE watched > b") && asJson.stdout().includes('"operation":"DEL"'));
    for (const running of [text, asJson]) process.kill(running.pid, "SIGTERM");
    const [textResult, jsonResult] = await Promise.all([text.done, asJson.done]);
    expectLines(
      ok(textResult, "kv watch"),
      [
        "[2026-11-21 12:29:13] PUT watched > a: 1",
        "[2026-11-21 12:29:13] PUT watched > b: 2",
        "[2026-11-21 12:29:13] DEL watched > a",
        "[2026-11-21 12:29:13] PURGE watched > b",
      ],
      "kv watch",
    );
    const events = ok(jsonResult, "kv watch --json")
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as { revision: number; operation: string; key: string; isUpdate: boolean });
    expect(events.map((e) => `${e.revision}:${e.operation}:${e.key}:${e.isUpdate}`)).toEqual(["1:PUT:a:false", "3:DEL:a:true"]);
  });
});
