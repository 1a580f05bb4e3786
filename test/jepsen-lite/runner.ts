/**
 * One jepsen-lite run: start a cluster of real node processes behind the fault proxy, run the
 * workloads and the nemesis for the given time, heal everything, wait for recovery, read the final
 * state, check, and write the outputs (README.md describes them). `runJepsen` returns the verdict;
 * run.ts is the command line around it, jepsen.test.ts the short profile in `npm test`.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { Kvm, connect, type Connection } from "../../src/client/index.ts";
import type { KV } from "../../src/client/types.ts";
import type { WireClusterStatus } from "../../src/shared/protocol.ts";
import { Prng } from "../support/prng.ts";
import {
  checkAppends,
  checkHistory,
  checkWatches,
  describeOp,
  formatHistoryJsonl,
  summarizeHistory,
  writeFailureTimelines,
  type AppendsResult,
  type CommittedRecord,
  type FinalRecord,
  type HistoryReport,
  type WatchesResult,
} from "./checker/index.ts";
import { DEFAULT_TIMING, FaultContext, expandNemeses, runMainLane, runMembershipLane, type FaultEvent, type NemesisTiming } from "./nemesis.ts";
import { NodeProcesses, PORT_IN_USE } from "./nodes.ts";
import { FaultProxy } from "./proxy.ts";
import {
  BUCKETS,
  NodeWatcher,
  Recorder,
  RotatingKeys,
  STEPS,
  readCommittedLog,
  type ClientProcess,
  type RecordedOp,
  type WorkloadContext,
  type WorkloadName,
} from "./workloads.ts";

const REPO = resolve(import.meta.dirname, "..", "..");

export interface JepsenOptions {
  nodes: number;
  /** Seconds of workload and faults. */
  timeSec: number;
  /** Nemesis names (groups from NEMESIS_GROUPS or single faults). */
  nemesis: string[];
  workloads: WorkloadName[];
  seed: number;
  /** Operations per second over all clients (target). */
  rate: number;
  clients: number;
  /** Output directory; default out/jepsen/<time>-seed<N>. */
  outDir?: string;
  durability: "fsync" | "none";
  /** Client deadline of one operation (retries included). */
  opTimeoutMs: number;
  timing: NemesisTiming;
  /** Wall-clock budget of the linearizability search per key. */
  maxSearchMsPerKey: number;
  /** The run is the negative control: it must find lost writes. */
  negativeControl: boolean;
  /** Progress lines (default: stdout). */
  log?: (line: string) => void;
}

export const DEFAULT_OPTIONS: JepsenOptions = {
  nodes: 3,
  timeSec: 60,
  nemesis: ["kill", "pause", "partition", "membership", "disk"],
  workloads: ["registers", "appends", "watches"],
  seed: 1,
  rate: 50,
  clients: 10,
  durability: "fsync",
  opTimeoutMs: 5000,
  timing: DEFAULT_TIMING,
  maxSearchMsPerKey: 60_000,
  negativeControl: false,
};

/** The negative control: durability none, whole-cluster kill -9 while unique appends run. */
export function negativeControlOptions(base: Partial<JepsenOptions> = {}): JepsenOptions {
  return {
    ...DEFAULT_OPTIONS,
    timeSec: 20,
    rate: 80,
    ...base,
    durability: "none",
    nemesis: ["kill-all"],
    workloads: ["appends"],
    negativeControl: true,
    timing: { holdMsMin: 500, holdMsMax: 1500, quietMsMin: 2000, quietMsMax: 4000 },
  };
}

/** Raft timing of the cluster: production defaults (1-2 s election timeout), robust on a loaded machine. */
const RAFT = { tickMs: 50, heartbeatTicks: 2, electionTicks: 20 };
/** Bounds of the phases around the workload. */
const SETUP_TIMEOUT_MS = 120_000;
const RECOVERY_TIMEOUT_MS = 120_000;
const FINAL_READ_TIMEOUT_MS = 120_000;
const WATCH_CATCH_UP_TIMEOUT_MS = 60_000;

export interface BucketVerdict {
  bucket: string;
  ops: number;
  linearizability: HistoryReport["verdict"];
  counts: HistoryReport["counts"];
  summary: string;
  timelines: string[];
}

export interface RunSummary {
  seed: number;
  command: string;
  outDir: string;
  options: Omit<JepsenOptions, "log">;
  startedAt: string;
  /** The code the nodes ran: commit, and the files of src/ that differed from it (copied at the start). */
  code: { commit: string; uncommitted: string[] };
  durationSec: number;
  ops: number;
  faultsInjected: Record<string, number>;
  faultEvents: number;
  anomalies: { atMs: number; fault: string; nodes?: string[]; detail?: string }[];
  unexpectedExits: { id: string; code: number | null; signal: string | null; atMs: number; log: string }[];
  membership: "exercised" | "skipped (unknown op)" | "not requested" | "not exercised";
  recovery: { ok: boolean; ms: number; detail: string };
  buckets: BucketVerdict[];
  appends: (Omit<AppendsResult, "lost"> & { lost: string[] }) | null;
  watches: {
    ok: boolean;
    watchers: number;
    events: number;
    gaps: number;
    duplicates: number;
    outOfOrder: number;
    mismatches: number;
    unexpected: number;
    unverified: number;
    restarts: number;
    problems: string[];
  } | null;
  finalReadsOk: boolean;
  /** Violations found (each a line). Empty = none. */
  violations: string[];
  /** Why the run could not conclude (search gave up, recovery failed); empty = conclusive. */
  inconclusive: string[];
  verdict: "ok" | "fail" | "unknown";
  negativeControl: { lostWrites: number; detected: boolean } | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Retries `fn` until it resolves or the deadline passes (then throws the last error). */
async function retry<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    try {
      return await fn();
    } catch (error) {
      last = error;
      await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
    }
  }
  throw new Error(`${what}: gave up after ${timeoutMs} ms: ${String((last as Error)?.message ?? last)}`, { cause: last });
}

export function replayCommand(o: JepsenOptions): string {
  if (o.negativeControl) return `npm run jepsen -- --negative-control --nodes ${o.nodes} --time ${o.timeSec} --rate ${o.rate} --clients ${o.clients} --seed ${o.seed}`;
  const workloads = o.workloads.length === 3 ? "all" : o.workloads.join(",");
  return (
    `npm run jepsen -- --nodes ${o.nodes} --time ${o.timeSec} --nemesis ${o.nemesis.join(",")} --workload ${workloads}` +
    ` --rate ${o.rate} --clients ${o.clients}${o.durability === "none" ? " --durability none" : ""} --seed ${o.seed}`
  );
}

/** The commit checked out and the files of src/ that differ from it (best effort: no git, no facts). */
function codeVersion(): { commit: string; uncommitted: string[] } {
  try {
    const git = (args: string[]): string => execFileSync("git", args, { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const commit = git(["rev-parse", "HEAD"]).trim();
    const status = git(["status", "--porcelain", "--", "src"]);
    return { commit, uncommitted: status.split("\n").filter((l) => l.trim() !== "").map((l) => l.slice(3)) };
  } catch {
    return { commit: "unknown", uncommitted: [] };
  }
}

function stamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

function replicasFor(nodes: number, workload: WorkloadName): number {
  // 5 nodes: the appends bucket lives on 3 of them (placement, forwarding); the others on all 5.
  if (nodes >= 5) return workload === "appends" ? 3 : 5;
  return Math.min(3, nodes);
}

/** Waits until every node is reachable and every group has a leader and no lagging member. */
async function waitRecovered(admin: Connection, nodeCount: number, buckets: readonly string[], timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
  const deadline = Date.now() + timeoutMs;
  let detail = "no status yet";
  let stable = 0;
  while (Date.now() < deadline) {
    try {
      const status = (await admin.request("cluster.status", {}, { timeoutMs: 5000 })) as WireClusterStatus;
      const problems: string[] = [];
      const unreachable = status.nodes.filter((n) => !n.reachable).map((n) => n.id);
      if (unreachable.length > 0) problems.push(`unreachable: ${unreachable.join(",")}`);
      if (status.nodes.length !== nodeCount) problems.push(`${status.nodes.length} members, expected ${nodeCount}`);
      for (const bucket of buckets) if (!status.groups.some((g) => g.group === bucket)) problems.push(`no group for ${bucket}`);
      for (const g of status.groups) {
        if (g.leader === null) problems.push(`${g.group}: no leader`);
        const lagging = g.members.filter((m) => m.lag > 0).map((m) => `${m.node}(${m.lag})`);
        if (lagging.length > 0) problems.push(`${g.group}: lagging ${lagging.join(",")}`);
      }
      detail = problems.length === 0 ? "every node reachable, every group led, no lag" : problems.join("; ");
      stable = problems.length === 0 ? stable + 1 : 0;
      if (stable >= 2) return { ok: true, detail };
    } catch (error) {
      detail = `cluster.status failed: ${String((error as Error).message)}`;
      stable = 0;
    }
    await sleep(500);
  }
  return { ok: false, detail };
}

export async function runJepsen(options: JepsenOptions): Promise<RunSummary> {
  const log = options.log ?? ((line: string) => process.stdout.write(line + "\n"));
  const started = new Date();
  const outDir = resolve(options.outDir ?? join(REPO, "out", "jepsen", `${stamp(started)}-seed${options.seed}`));
  await mkdir(outDir, { recursive: true });
  const command = replayCommand(options);
  log(`jepsen-lite: seed ${options.seed}; output ${outDir}`);
  log(`  replay: ${command}`);

  const code = codeVersion();
  if (code.uncommitted.length > 0) log(`  note: the nodes run src/ with uncommitted changes: ${code.uncommitted.join(", ")}`);
  const { faults, membership } = expandNemeses(options.nemesis);
  const rng = new Prng(options.seed);
  const recorder = new Recorder();
  const dataDir = await mkdtemp(join(tmpdir(), "cairn-jepsen-"));
  const proxy = new FaultProxy();
  const faultLines: FaultEvent[] = [];
  const nodes = await NodeProcesses.create({
    dir: dataDir,
    logDir: join(outDir, "nodes"),
    nodes: options.nodes,
    durability: options.durability,
    raft: RAFT,
    requestTimeoutMs: 10_000,
    route: (from, to, real) => proxy.route(from, to, real),
  });
  const connections: Connection[] = [];
  const watchers: NodeWatcher[] = [];
  let admin: Connection | null = null;
  const workloadBuckets = options.workloads.map((w) => BUCKETS[w]);
  try {
    // ---- setup ------------------------------------------------------------------------------------
    for (const id of nodes.ids) nodes.spawn(id);
    for (const id of nodes.ids) {
      let r = await nodes.waitStarted(id, SETUP_TIMEOUT_MS);
      for (let attempt = 1; r.state === "exited" && PORT_IN_USE.test(r.log) && attempt < 10; attempt++) {
        await sleep(2000);
        nodes.spawn(id);
        r = await nodes.waitStarted(id, SETUP_TIMEOUT_MS);
      }
      if (r.state !== "listening") throw new Error(`node ${id} did not start (${r.state}):\n${r.log}`);
    }
    admin = await retry("admin connect", SETUP_TIMEOUT_MS, () => connect({ servers: nodes.urls, timeoutMs: 5000, name: "jepsen-admin" }));
    const kvm = new Kvm(admin);
    for (const w of options.workloads) {
      const history = w === "appends" ? 1 : 64;
      await retry(`create bucket ${BUCKETS[w]}`, SETUP_TIMEOUT_MS, () => kvm.create(BUCKETS[w], { history, replicas: replicasFor(options.nodes, w) }, { timeoutMs: 10_000 }));
    }
    const groups = ["meta", ...workloadBuckets];
    const ctx = new FaultContext(nodes, proxy, admin, rng.fork("nemesis"), () => recorder.now(), groups, (e) => {
      faultLines.push(e);
      if (e.kind !== "note") log(`  [${(e.atMs / 1000).toFixed(1)}s] ${e.fault} ${e.kind}${e.nodes ? ` ${e.nodes.join(",")}` : ""}${e.detail ? `: ${e.detail.split("\n")[0]}` : ""}`);
    });

    // Watchers on every node hosting each bucket of the run, started before any write.
    if (options.workloads.includes("watches")) {
      for (const bucket of workloadBuckets) {
        const status = await retry(`status of ${bucket}`, SETUP_TIMEOUT_MS, () => kvm.status(bucket, { timeoutMs: 5000 }));
        const hosts = status.replicasInfo.length > 0 ? status.replicasInfo.map((r) => r.node) : nodes.ids;
        for (const node of hosts) {
          const watcher = new NodeWatcher(bucket, node, nodes.node(node).clientUrl, recorder, options.opTimeoutMs);
          await retry(`watcher ${watcher.id}`, SETUP_TIMEOUT_MS, () => watcher.start());
          watchers.push(watcher);
        }
      }
    }

    // Client connections, spread over the nodes (each starts at a different server).
    const clients: ClientProcess[] = [];
    for (let i = 0; i < options.clients; i++) {
      const urls = nodes.urls;
      const servers = [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)];
      const conn = await retry(`client ${i} connect`, SETUP_TIMEOUT_MS, () =>
        connect({ servers, noRandomize: true, timeoutMs: options.opTimeoutMs, name: `jepsen-client-${i}` }),
      );
      connections.push(conn);
      const handles = new Map<string, KV>();
      for (const bucket of workloadBuckets) handles.set(bucket, await retry(`open ${bucket}`, SETUP_TIMEOUT_MS, () => new Kvm(conn).open(bucket)));
      clients.push({ index: i, conn, buckets: handles, rng: rng.fork(`client-${i}`), process: recorder.newProcess(), seen: new Map(), counter: 0, appended: [] });
    }

    // ---- workload and nemesis ---------------------------------------------------------------------
    const wctx: WorkloadContext = {
      recorder,
      registerKeys: new RotatingKeys("r", 5),
      watchKeys: new RotatingKeys("w", 6),
      opTimeoutMs: options.opTimeoutMs,
    };
    const deadline = recorder.now() + options.timeSec * 1000;
    log(`  ${options.nodes} nodes up, ${clients.length} clients, ${watchers.length} watchers; running ${options.timeSec} s`);
    let stopWorkers = false;
    const intervalMs = (options.clients / options.rate) * 1000;
    const workers = clients.map(async (client) => {
      // Open-loop pacing: each client starts an op every intervalMs on average, whatever the ops'
      // latency (a client behind schedule by more than one interval starts over instead of bursting).
      let nextAt = recorder.now() + intervalMs * client.rng.float();
      while (!stopWorkers && !recorder.full()) {
        await sleep(nextAt - recorder.now());
        nextAt = Math.max(nextAt, recorder.now() - intervalMs) + intervalMs * (0.5 + client.rng.float());
        if (stopWorkers) break;
        const workload = client.rng.pick(options.workloads);
        await STEPS[workload](wctx, client);
      }
    });
    const lanes = [runMainLane(ctx, faults, deadline, options.timing)];
    if (membership) lanes.push(runMembershipLane(ctx, deadline, options.timing));
    // The lanes end at the deadline, or later until each fault was injected once (bounded).
    await Promise.all(lanes);
    await sleep(deadline - recorder.now());
    stopWorkers = true;
    await Promise.all(workers);
    log(`  workload done: ${recorder.ops.length} ops; healing`);

    // ---- heal, recover, final reads ---------------------------------------------------------------
    await ctx.healAll();
    const recoveryStart = Date.now();
    const recovered = await waitRecovered(admin, options.nodes, workloadBuckets, RECOVERY_TIMEOUT_MS);
    const recovery = { ok: recovered.ok, ms: Date.now() - recoveryStart, detail: recovered.detail };
    log(`  recovery: ${recovery.ok ? "ok" : "FAILED"} after ${(recovery.ms / 1000).toFixed(1)} s (${recovery.detail})`);

    let finalReadsOk = true;
    const finalLogs = new Map<string, CommittedRecord[]>();
    const finalRevisions = new Map<string, number>();
    const reader: ClientProcess = { ...clients[0]!, index: -1, process: recorder.newProcess(), rng: rng.fork("final"), seen: new Map(), appended: [] };
    try {
      if (options.workloads.includes("registers")) {
        const kv = reader.buckets.get(BUCKETS.registers)!;
        for (const key of [...wctx.registerKeys.used].sort()) {
          await retry(`final read of ${key}`, FINAL_READ_TIMEOUT_MS, async () => {
            const op = await recorder.run(reader, BUCKETS.registers, "get", key, {}, () => kv.get(key, { timeoutMs: 10_000 }));
            if (op.outcome !== "ok") throw new Error(`final read of ${key}: ${op.outcome} ${op.errorCode ?? ""}`);
          });
        }
      }
      for (const bucket of workloadBuckets) {
        const kv = reader.buckets.get(bucket)!;
        finalLogs.set(bucket, await retry(`final history of ${bucket}`, FINAL_READ_TIMEOUT_MS, () => readCommittedLog(kv, 30_000)));
        finalRevisions.set(bucket, (await retry(`final status of ${bucket}`, FINAL_READ_TIMEOUT_MS, () => kv.status({ timeoutMs: 10_000 }))).revision);
      }
    } catch (error) {
      finalReadsOk = false;
      log(`  final reads FAILED: ${String((error as Error).message)}`);
    }

    // Watchers: wait until each has seen its bucket's last revision (bounded), then stop them.
    const catchUpDeadline = Date.now() + WATCH_CATCH_UP_TIMEOUT_MS;
    while (Date.now() < catchUpDeadline && watchers.some((w) => w.lastRevision < (finalRevisions.get(w.bucket) ?? 0) && !w.truncated)) await sleep(200);
    await Promise.all(watchers.map((w) => w.stop()));
    for (const conn of connections) await conn.close().catch(() => undefined);
    connections.length = 0;

    // ---- check --------------------------------------------------------------------------------------
    log(`  checking ${recorder.ops.length} ops`);
    const violations: string[] = [];
    const inconclusive: string[] = [];
    const buckets: BucketVerdict[] = [];
    for (const bucket of workloadBuckets) {
      const ops = recorder.ops.filter((op) => op.bucket === bucket);
      await writeFile(join(outDir, `history-${bucket}.jsonl`), formatHistoryJsonl(ops));
      const report = checkHistory(ops, { maxSearchMsPerKey: options.maxSearchMsPerKey });
      const timelines = report.verdict === "ok" ? [] : writeFailureTimelines(join(outDir, `timelines-${bucket}`), ops, report);
      if (report.verdict === "fail") violations.push(`${bucket}: not linearizable (see ${relative(outDir, join(outDir, `timelines-${bucket}`))})`);
      if (report.verdict === "unknown") inconclusive.push(`${bucket}: linearizability search gave up`);
      buckets.push({ bucket, ops: ops.length, linearizability: report.verdict, counts: report.counts, summary: summarizeHistory(report), timelines });
    }

    let appends: RunSummary["appends"] = null;
    if (options.workloads.includes("appends") && finalLogs.has(BUCKETS.appends)) {
      const final: FinalRecord[] = finalLogs.get(BUCKETS.appends)!.map((r) => ({ key: r.key, value: r.value ?? null, revision: r.revision, operation: r.operation }));
      const result = checkAppends(
        recorder.ops.filter((op) => op.bucket === BUCKETS.appends),
        final,
      );
      appends = { ...result, lost: result.lost.map((op) => describeOp(op)) };
      if (result.lostCount > 0) violations.push(`appends: ${result.lostCount} acknowledged writes lost`);
      if (result.phantomCount > 0) violations.push(`appends: ${result.phantomCount} phantom records`);
      if (result.duplicates.length > 0) violations.push(`appends: ${result.duplicates.length} writes applied twice`);
      if (result.failedButPresent.length > 0) violations.push(`appends: ${result.failedButPresent.length} failed writes present`);
      if (result.revisionMismatches.length > 0) violations.push(`appends: ${result.revisionMismatches.length} revision mismatches`);
    } else if (options.workloads.includes("appends")) {
      inconclusive.push("appends: no final read");
    }

    let watches: RunSummary["watches"] = null;
    if (watchers.length > 0) {
      const problems: string[] = [];
      const totals = { gaps: 0, duplicates: 0, outOfOrder: 0, mismatches: 0, unexpected: 0, unverified: 0, events: 0, restarts: 0 };
      let ok = true;
      const results: WatchesResult[] = [];
      for (const bucket of workloadBuckets) {
        const logForBucket = finalLogs.get(bucket);
        const mine = watchers.filter((w) => w.bucket === bucket);
        if (mine.length === 0) continue;
        if (logForBucket === undefined) {
          inconclusive.push(`watches on ${bucket}: no final log`);
          continue;
        }
        const end = finalRevisions.get(bucket);
        const result = checkWatches(
          logForBucket,
          mine.map((w) => w.log(end)),
        );
        results.push(result);
        for (const r of result.watchers) {
          totals.gaps += r.gaps.length;
          totals.duplicates += r.duplicates.length;
          totals.outOfOrder += r.outOfOrder.length;
          totals.mismatches += r.mismatches.length;
          totals.unexpected += r.unexpected.length;
          totals.unverified += r.unverified;
          if (!r.ok) {
            ok = false;
            const first = [...r.gaps.slice(0, 3).map((g) => `gap at ${g.revision} (${g.key})`), ...r.duplicates.slice(0, 3).map((d) => `duplicate ${d.revision}`)];
            problems.push(
              `${r.id}: ${r.gaps.length} gaps, ${r.duplicates.length} duplicates, ${r.outOfOrder.length} out of order, ${r.mismatches.length} mismatches, ${r.unexpected.length} unexpected${first.length > 0 ? ` (${first.join(", ")})` : ""}`,
            );
          }
        }
      }
      for (const w of watchers) {
        totals.restarts += w.restarts;
        totals.events += w.events.length;
      }
      for (const w of watchers) if (w.truncated) inconclusive.push(`watcher ${w.id}: more than the event limit`);
      watches = { ok, watchers: watchers.length, ...totals, problems };
      if (!ok) violations.push(`watches: ${problems.length} watchers saw gaps, duplicates or wrong events`);
      await writeFile(
        join(outDir, "watchers.json"),
        JSON.stringify(
          watchers.map((w) => ({ id: w.id, restarts: w.restarts, endings: w.endings, skipped: w.skipped, events: w.events })),
          null,
          0,
        ),
      );
      await writeFile(join(outDir, "watch-results.json"), JSON.stringify(results, null, 1));
    }
    for (const [bucket, records] of finalLogs) await writeFile(join(outDir, `final-${bucket}.json`), JSON.stringify(records));

    for (const a of ctx.anomalies) violations.push(`${a.fault}: ${a.nodes?.join(",") ?? ""} ${(a.detail ?? "").split("\n")[0]}`);
    for (const exit of nodes.unexpectedExits) violations.push(`node ${exit.id} exited by itself (code ${String(exit.code)}, signal ${String(exit.signal)}): ${exit.log.split("\n").filter((l) => /error/i.test(l)).slice(-1)[0] ?? ""}`);
    if (!recovery.ok) violations.push(`recovery: the cluster did not recover within ${RECOVERY_TIMEOUT_MS / 1000} s after healing (${recovery.detail})`);
    if (!finalReadsOk) inconclusive.push("final reads failed");

    const verdict = violations.length > 0 ? "fail" : inconclusive.length > 0 ? "unknown" : "ok";
    const membershipState: RunSummary["membership"] = !membership
      ? "not requested"
      : ctx.membershipSupported === false
        ? "skipped (unknown op)"
        : (ctx.injected["membership"] ?? 0) > 0
          ? "exercised"
          : "not exercised";
    const { log: _log, ...plainOptions } = options;
    const summary: RunSummary = {
      seed: options.seed,
      command,
      outDir,
      options: plainOptions,
      startedAt: started.toISOString(),
      code,
      durationSec: Math.round((Date.now() - started.getTime()) / 100) / 10,
      ops: recorder.ops.length,
      faultsInjected: ctx.injected,
      faultEvents: ctx.events.length,
      anomalies: ctx.anomalies,
      unexpectedExits: nodes.unexpectedExits,
      membership: membershipState,
      recovery,
      buckets,
      appends,
      watches,
      finalReadsOk,
      violations,
      inconclusive,
      verdict,
      negativeControl: options.negativeControl ? { lostWrites: appends?.lostCount ?? 0, detected: (appends?.lostCount ?? 0) > 0 } : null,
    };
    await writeFile(join(outDir, "history.jsonl"), formatHistoryJsonl(recorder.ops));
    await writeFile(join(outDir, "faults.jsonl"), faultLines.map((e) => JSON.stringify(e)).join("\n") + (faultLines.length > 0 ? "\n" : ""));
    await writeFile(join(outDir, "proxy.json"), JSON.stringify({ links: proxy.allStats(), refusedConnections: proxy.refusedConnections }, null, 1));
    await writeFile(join(outDir, "summary.json"), JSON.stringify(summary, null, 1));
    log(formatSummary(summary));
    return summary;
  } catch (error) {
    // An aborted run (setup failed, a harness bug): keep why, next to whatever it wrote.
    await writeFile(join(outDir, "abort.txt"), `${(error as Error).stack ?? String(error)}\n`).catch(() => undefined);
    throw error;
  } finally {
    for (const w of watchers) await w.stop().catch(() => undefined);
    for (const conn of connections) await conn.close().catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await nodes.stopAll();
    await proxy.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The printed summary of one run. */
export function formatSummary(s: RunSummary): string {
  const lines: string[] = [];
  lines.push(`---- jepsen-lite summary (seed ${s.seed}, ${s.durationSec} s) ----`);
  lines.push(`operations (${s.ops}):`);
  for (const b of s.buckets) {
    const parts = Object.entries(b.counts).map(([type, c]) => `${type} ${c.ok}/${c.fail}/${c.unknown}`);
    lines.push(`  ${b.bucket.padEnd(9)} ok/fail/unknown: ${parts.join(", ")}`);
  }
  const injected = Object.entries(s.faultsInjected).map(([f, n]) => `${f} ${n}`);
  lines.push(`faults: ${injected.length > 0 ? injected.join(", ") : "none"}; membership: ${s.membership}`);
  lines.push(`recovery: ${s.recovery.ok ? "ok" : "FAILED"} in ${(s.recovery.ms / 1000).toFixed(1)} s`);
  lines.push("verdicts:");
  for (const b of s.buckets) lines.push(`  linearizability ${b.bucket}: ${b.linearizability}${b.timelines.length > 0 ? ` (timelines: ${b.timelines.length})` : ""}`);
  if (s.appends) {
    const a = s.appends;
    lines.push(`  appends: ${a.ok ? "ok" : "FAIL"} (acknowledged ${a.acknowledged}, present ${a.present}, lost ${a.lostCount}, unknown-but-present ${a.recoveredUnknown}, phantoms ${a.phantomCount}, duplicates ${a.duplicates.length})`);
    for (const lost of a.lost.slice(0, 5)) lines.push(`    lost: ${lost}`);
  }
  if (s.watches) {
    const w = s.watches;
    lines.push(
      `  watches: ${w.ok ? "ok" : "FAIL"} (${w.watchers} watchers, ${w.events} events, gaps ${w.gaps}, duplicates ${w.duplicates}, out of order ${w.outOfOrder}, mismatches ${w.mismatches}, unverified ${w.unverified}, restarts ${w.restarts})`,
    );
    for (const p of w.problems.slice(0, 5)) lines.push(`    ${p}`);
  }
  for (const v of s.violations) lines.push(`  VIOLATION ${v}`);
  for (const i of s.inconclusive) lines.push(`  inconclusive: ${i}`);
  if (s.negativeControl) {
    lines.push(
      s.negativeControl.detected
        ? `negative control: the checker reported ${s.negativeControl.lostWrites} lost acknowledged writes, as it must (durability none + kill -9 of the whole cluster)`
        : "negative control: NO lost writes reported — the harness could not see what it is looking for",
    );
  }
  lines.push(`verdict: ${s.verdict.toUpperCase()}   seed ${s.seed}`);
  lines.push(`replay: ${s.command}`);
  lines.push(`output: ${s.outDir}`);
  return lines.join("\n");
}
