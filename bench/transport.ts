/**
 * Peer transport throughput over loopback: two WsPeerTransports (n1 dials n2) with the default cluster
 * frame size. Scenarios: heartbeats (tiny messages), "app" messages carrying 16 entries of 100 bytes
 * (a batch of puts), 64 KiB entries (raw bandwidth), and one 256 MiB snapshot streamed in chunks.
 * The sender keeps its queue under half of sendQueueBytesMax so nothing is dropped (checked at the end).
 *
 *   npm run bench:transport            (DURATION_MS=3000 per scenario by default)
 */
import { WsPeerTransport } from "../src/node/transport-ws.ts";
import type { Entry, Message } from "../src/raft/types.ts";

const DURATION_MS = Number(process.env["DURATION_MS"] ?? 3000);
const LIMITS = { frameBytesMax: 8 << 20, sendQueueBytesMax: 64 << 20, reconnectDelayMsMin: 50, reconnectDelayMsMax: 1000 };
/** Messages offered per event-loop turn while the queue has room. */
const SEND_BURST = 512;

function message(entries: readonly Entry[], type: Message["type"] = "app"): Message {
  return { type, from: "n1", to: "n2", term: 7, logTerm: 7, index: 1000, entries, commit: 999, reject: false, rejectHint: 0 };
}

function entries(count: number, bytes: number): Entry[] {
  return Array.from({ length: count }, (_, i) => ({ term: 7, index: 1001 + i, type: "normal" as const, data: new Uint8Array(bytes).fill(i) }));
}

async function main(): Promise<void> {
  const a = new WsPeerTransport({ nodeId: "n1", listen: { host: "127.0.0.1", port: 0 }, peers: {}, clusterSecret: "bench", limits: LIMITS });
  const b = new WsPeerTransport({ nodeId: "n2", listen: { host: "127.0.0.1", port: 0 }, peers: {}, clusterSecret: "bench", limits: LIMITS });
  const portA = (await a.start()).port;
  const portB = (await b.start()).port;
  b.setPeers({ n1: `ws://127.0.0.1:${portA}` });
  a.setPeers({ n2: `ws://127.0.0.1:${portB}` });
  for (let i = 0; i < 500 && !a.stats().peers["n2"]!.connected; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  let received = 0;
  let receivedBytes = 0;
  b.onRaft((_from, _group, m) => {
    received++;
    for (const entry of m.entries) receivedBytes += entry.data.byteLength;
    if (m.snapshot !== undefined) receivedBytes += m.snapshot.data.byteLength;
  });

  const rows: string[] = [];
  async function scenario(name: string, make: () => Message): Promise<void> {
    received = 0;
    receivedBytes = 0;
    const sample = make();
    let sent = 0;
    const startMs = performance.now();
    const cpuStart = process.cpuUsage();
    while (performance.now() - startMs < DURATION_MS) {
      if (a.stats().peers["n2"]!.queuedBytes < LIMITS.sendQueueBytesMax / 2) {
        for (let i = 0; i < SEND_BURST; i++) a.send("n2", { kind: "raft", group: `bucket-${sent % 16}`, message: sample });
        sent += SEND_BURST;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (let i = 0; i < 3000 && received < sent; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    const seconds = (performance.now() - startMs) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const line =
      `${name.padEnd(34)} ${Math.round(received / seconds).toLocaleString("en").padStart(12)} msg/s ${(receivedBytes / seconds / 1e6).toFixed(1).padStart(9)} MB/s payload` +
      `   (${Math.round(received / cpuSeconds).toLocaleString("en")} msg per CPU-second, both ends in this one process)`;
    rows.push(line);
    console.log(line);
  }

  await scenario("heartbeat (no entries)", () => message([], "heartbeat"));
  await scenario("app, 16 entries x 100 B", () => message(entries(16, 100)));
  await scenario("app, 1 entry x 64 KiB", () => message(entries(1, 64 * 1024)));

  // One large snapshot, streamed in chunks as the socket drains.
  received = 0;
  receivedBytes = 0;
  const snapshotBytes = 256 << 20;
  const snap: Message = {
    ...message([], "snap"),
    snapshot: { metadata: { index: 5000, term: 7, confState: { voters: ["n1", "n2", "n3"], learners: [] } }, data: new Uint8Array(snapshotBytes).fill(7) },
  };
  const startMs = performance.now();
  a.send("n2", { kind: "raft", group: "bucket-0", message: snap });
  for (let i = 0; i < 600_000 && received === 0; i++) await new Promise((resolve) => setImmediate(resolve));
  const seconds = (performance.now() - startMs) / 1000;
  const line = `${"snapshot 256 MiB (chunked)".padEnd(34)} ${seconds.toFixed(2).padStart(12)} s     ${(snapshotBytes / seconds / 1e6).toFixed(1).padStart(9)} MB/s`;
  rows.push(line);
  console.log(line);

  const dropped = a.stats().peers["n2"]!.dropped;
  console.log(`dropped: ${dropped} (must be 0), frames sent: ${a.stats().peers["n2"]!.framesSent}`);
  await a.close();
  await b.close();
  if (dropped !== 0) process.exitCode = 1;
}

await main();
