/**
 * The local 3-node cluster that `npm start` (= `cairn up`) runs, one process per node.
 * `cairn node --id n1` starts one node of it. Validated on start (validateClusterConfig).
 */
import { defineCluster } from "./src/node/config.ts";

export default defineCluster({
  // Peers prove they know this secret to each other. Change it (or set CAIRN_CLUSTER_SECRET) for any
  // cluster reachable beyond this machine.
  clusterSecret: process.env.CAIRN_CLUSTER_SECRET ?? "cairn-local-dev-secret",
  dataDir: "./data",
  nodes: [
    { id: "n1", peer: "127.0.0.1:7101", client: "127.0.0.1:4222" },
    { id: "n2", peer: "127.0.0.1:7102", client: "127.0.0.1:4223" },
    { id: "n3", peer: "127.0.0.1:7103", client: "127.0.0.1:4224" },
  ],
  // fsync: a write is acknowledged only once a quorum has it on disk. "none" is unsafe (benchmarks).
  durability: "fsync",
  // 50 ms ticks: heartbeat every 100 ms, election timeout 1-2 s (etcd's defaults).
  raft: { tickMs: 50, heartbeatTicks: 2, electionTicks: 20 },
  limits: {},
  requestTimeoutMs: 10_000,
});
