/**
 * bench:kv — the KV state machine's own cost (src/kv, no I/O): applied puts/s on a bucket with 1M keys
 * (64-byte values), gets/s, keys('prefix.>') on 1M keys, memory per key beyond key + value bytes, and
 * snapshot / restore time for 1M keys. Targets (issue 3): >= 500k puts/s, >= 1M gets/s, snapshot +
 * restore < 3 s, overhead < 250 B/key.
 *
 * Envelopes are built as src/node builds a client put (`{ now, requestId, command }`, the client's
 * request id a 36-character UUID, so every write goes through the request-id window as on a replica),
 * encoded and decoded with src/node's log codec in batches before the timed apply loop (key strings as
 * msgpackr decodes them, values as views into the decoded entry), so the figures are the apply cost alone.
 * Keys look like `p17.key.123456` (100 prefixes of 10k keys each). Each figure is the median of
 * several runs.
 *
 *   npm run bench:kv                    # 1M keys, 5 runs
 *   npm run bench:kv -- --keys 200000 --runs 3
 */
import os from "node:os";
import { randomUUID } from "node:crypto";
import { Packr } from "msgpackr";
import { KvStateMachine, normalizeConfig, type KvEnvelope } from "../src/kv/index.ts";
import { decodeLogPayload, encodeLogPayload } from "../src/node/codec.ts";

const args = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? Number(args[at + 1]) : fallback;
}
const KEYS = option("keys", 1_000_000);
const RUNS = option("runs", 5);
const VALUE_BYTES = 64;
const PREFIXES = 100;
const BATCH = 100_000;
/** Commands are decoded this many at a time, outside the timed loop (few, so they die young). */
const DECODE_BATCH = 1_000;
const T0 = 1_700_000_000_000;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error("run with --expose-gc (npm run bench:kv) for the memory figure");
  process.exit(1);
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: "number" });

function keyOf(i: number): string {
  return `p${i % PREFIXES}.key.${i}`;
}

/** Deterministic pseudo-random integers (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Leader time of the next put: one ms per put, so the request-id window evicts by count and by age. */
let stamp = T0;

/**
 * Put envelopes for key numbers [from, to): built as src/node's kvWrite builds them and round-tripped
 * through its log codec, as a replica decodes committed entries.
 */
function decodedPuts(keyNumber: (i: number) => number, from: number, to: number, round: number): KvEnvelope[] {
  const out: KvEnvelope[] = [];
  const value = new Uint8Array(VALUE_BYTES);
  for (let i = from; i < to; i++) {
    const n = keyNumber(i);
    value[0] = n & 0xff;
    value[1] = round;
    const envelope: KvEnvelope = { now: ++stamp, requestId: randomUUID(), command: { type: "put", bucket: "bench", key: keyOf(n), value } };
    const payload = decodeLogPayload(encodeLogPayload({ kv: envelope }));
    if (!("kv" in payload)) throw new Error("bench: not a kv payload");
    out.push(payload.kv as KvEnvelope);
  }
  return out;
}

interface Timing {
  wallMs: number;
  cpuMs: number;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Applies puts for key numbers [from, to): decoded DECODE_BATCH at a time, only apply() is timed. */
function applyPuts(keyNumber: (i: number) => number, from: number, to: number, round: number): Timing {
  const timing = { wallMs: 0, cpuMs: 0 };
  for (let start = from; start < to; start += DECODE_BATCH) {
    const batch = decodedPuts(keyNumber, start, Math.min(to, start + DECODE_BATCH), round);
    const wall = performance.now();
    const cpu = cpuMs();
    let failed = 0;
    for (const envelope of batch) if (!sm.apply(++index, envelope).result.ok) failed++;
    timing.cpuMs += cpuMs() - cpu;
    timing.wallMs += performance.now() - wall;
    if (failed > 0) throw new Error(`bench: ${failed} puts failed`);
  }
  return timing;
}

function rates(count: number, timings: Timing[]): string {
  const wall = median(timings.map((t) => count / (t.wallMs / 1000)));
  const cpu = median(timings.map((t) => count / (t.cpuMs / 1000)));
  return `${fmt(wall)} (per CPU second: ${fmt(cpu)})`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function memoryBytes(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  if (process.env["BENCH_DEBUG"]) console.log("heapUsed", m.heapUsed, "arrayBuffers", m.arrayBuffers);
  return m.heapUsed + m.arrayBuffers;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function report(name: string, value: string): void {
  console.log(`${name.padEnd(44)} ${value}`);
}

let index = 0;
const sm = new KvStateMachine();
console.log(`bench:kv: ${fmt(KEYS)} keys, ${VALUE_BYTES}-byte values, medians of ${RUNS} runs; load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs`);
sm.apply(++index, { now: T0, command: { type: "bucketCreate", bucket: "bench", config: normalizeConfig({ history: 1 }) } });

// ---- insert KEYS new keys ----
const memoryBefore = memoryBytes();
const insertTimings: Timing[] = [];
for (let from = 0; from < KEYS; from += BATCH) insertTimings.push(applyPuts((i) => i, from, Math.min(KEYS, from + BATCH), 0));
const memoryAfter = memoryBytes();
let keyBytes = 0;
for (let i = 0; i < KEYS; i++) keyBytes += keyOf(i).length;
const payload = keyBytes + KEYS * VALUE_BYTES;
const status = sm.status("bench");
if (status.keys !== KEYS || status.bytes !== payload) throw new Error(`bench state wrong: ${JSON.stringify(status)}`);
report(`insert: puts/s of new keys (median of ${insertTimings.length} batches)`, rates(BATCH, insertTimings));
report("memory: overhead per key beyond key+value", `${((memoryAfter - memoryBefore - payload) / KEYS).toFixed(1)} B (heap+arrayBuffers ${fmt((memoryAfter - memoryBefore) / 1048576)} MiB for ${fmt(payload / 1048576)} MiB of keys+values)`);

// ---- overwrite random existing keys ----
const next = random(42);
const overwriteTimings: Timing[] = [];
for (let run = 0; run < RUNS; run++) {
  const numbers = Int32Array.from({ length: 2 * BATCH }, () => Math.floor(next() * KEYS));
  overwriteTimings.push(applyPuts((i) => numbers[i]!, 0, numbers.length, run + 1));
}
report(`overwrite: puts/s on ${fmt(KEYS)} keys (median of ${RUNS})`, rates(2 * BATCH, overwriteTimings));
const memoryAfterOverwrite = memoryBytes();
report("memory: overhead per key after overwrites", `${((memoryAfterOverwrite - memoryBefore - payload) / KEYS).toFixed(1)} B`);

// ---- gets ----
const lookups = Array.from({ length: 200_000 }, () => packr.unpack(packr.pack(keyOf(Math.floor(next() * KEYS)))) as string);
const getTimings: Timing[] = [];
let found = 0;
for (let run = 0; run < RUNS; run++) {
  const wall = performance.now();
  const cpu = cpuMs();
  for (let r = 0; r < 5; r++) for (const key of lookups) if (sm.get("bench", key) !== null) found++;
  getTimings.push({ wallMs: performance.now() - wall, cpuMs: cpuMs() - cpu });
}
if (found !== RUNS * 5 * lookups.length) throw new Error("gets missed keys");
report(`get: gets/s on ${fmt(KEYS)} keys (median of ${RUNS})`, rates(5 * lookups.length, getTimings));

// ---- keys with a prefix filter ----
const prefixTimes: number[] = [];
let listed = 0;
for (let run = 0; run < 2 * RUNS + 1; run++) {
  const start = performance.now();
  listed = sm.keys("bench", [`p${run % PREFIXES}.>`]).keys.length;
  prefixTimes.push(performance.now() - start);
}
report(`keys('pN.>'): ${fmt(listed)} of ${fmt(KEYS)} keys, ms (median)`, median(prefixTimes).toFixed(2));
const pageTimes: number[] = [];
for (let run = 0; run < 2 * RUNS + 1; run++) {
  const start = performance.now();
  sm.keys("bench", [">"], { afterRevision: Math.floor(next() * KEYS), limit: 1000 });
  pageTimes.push(performance.now() - start);
}
report(`keys('>') page of 1,000 at a random revision, ms`, median(pageTimes).toFixed(2));
const historyTimes: number[] = [];
for (let run = 0; run < 2 * RUNS + 1; run++) {
  const start = performance.now();
  sm.history("bench", [keyOf(Math.floor(next() * KEYS))]);
  historyTimes.push(performance.now() - start);
}
report("history(one key), ms", median(historyTimes).toFixed(3));

// ---- snapshot and restore ----
const snapshotTimings: Timing[] = [];
const restoreTimings: Timing[] = [];
let image: Uint8Array = new Uint8Array(0);
for (let run = 0; run < RUNS; run++) {
  let wall = performance.now();
  let cpu = cpuMs();
  image = sm.snapshot();
  snapshotTimings.push({ wallMs: performance.now() - wall, cpuMs: cpuMs() - cpu });
  const copy = new KvStateMachine();
  wall = performance.now();
  cpu = cpuMs();
  copy.restore(image);
  restoreTimings.push({ wallMs: performance.now() - wall, cpuMs: cpuMs() - cpu });
  if (copy.status("bench").keys !== KEYS) throw new Error("restore lost keys");
}
const ms = (timings: Timing[], field: keyof Timing): number => median(timings.map((t) => t[field]));
report(`snapshot of ${fmt(KEYS)} keys, ms (median of ${RUNS})`, `${fmt(ms(snapshotTimings, "wallMs"))} (CPU ${fmt(ms(snapshotTimings, "cpuMs"))}; ${fmt(image.length / 1048576)} MiB)`);
report(`restore of ${fmt(KEYS)} keys, ms (median of ${RUNS})`, `${fmt(ms(restoreTimings, "wallMs"))} (CPU ${fmt(ms(restoreTimings, "cpuMs"))})`);
report(
  "snapshot + restore, ms",
  `${fmt(ms(snapshotTimings, "wallMs") + ms(restoreTimings, "wallMs"))} (CPU ${fmt(ms(snapshotTimings, "cpuMs") + ms(restoreTimings, "cpuMs"))})`,
);
