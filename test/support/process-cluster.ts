/**
 * A multi-process cluster on loopback for tests: writes a cluster config with free ports into a
 * fresh temporary directory, runs each node as its own process (`src/node/run-node.ts`), and lets a
 * test kill -9, stop/cont, and restart nodes by the pids it started. Every process it starts is
 * killed by stop(), which tests must call (afterAll).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createConnection } from "node:net";

const REPO = resolve(import.meta.dirname, "..", "..");

/** Ports this process has handed out: the OS may offer a just-closed port again, and a config must not get it twice. */
const handedOut = new Set<number>();
/** Attempts to find a port not handed out before (the OS rarely repeats itself more than a few times). */
const FREE_PORT_ATTEMPTS_MAX = 100;

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < FREE_PORT_ATTEMPTS_MAX; attempt++) {
    const port = await new Promise<number>((resolvePort, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        const p = typeof address === "object" && address ? address.port : 0;
        server.close(() => resolvePort(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no port not handed out before after ${FREE_PORT_ATTEMPTS_MAX} attempts`);
}

export interface ProcessNode {
  readonly id: string;
  readonly clientUrl: string;
  readonly peerPort: number;
  readonly clientPort: number;
  readonly dataDir: string;
  process: ChildProcess | null;
  log: string[];
}

export interface ProcessClusterOptions {
  nodes: number;
  durability?: "fsync" | "none";
  raft?: { tickMs: number; heartbeatTicks: number; electionTicks: number };
  limits?: Record<string, number>;
  /** Extra environment for node processes. */
  env?: Record<string, string>;
  /** Clients must send this token in hello (cluster config `clientToken`). */
  clientToken?: string;
}

/** Log lines kept per node (the newest). */
const LOG_LINES_MAX = 2000;

export class ProcessCluster {
  readonly nodes = new Map<string, ProcessNode>();
  private constructor(
    readonly dir: string,
    readonly configPath: string,
    private readonly env: Record<string, string>,
  ) {}

  static async start(options: ProcessClusterOptions): Promise<ProcessCluster> {
    const dir = await mkdtemp(join(tmpdir(), "cairn-proc-"));
    const ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
    const nodes = [];
    for (const id of ids) nodes.push({ id, peer: `127.0.0.1:${await freePort()}`, client: `127.0.0.1:${await freePort()}` });
    const config = {
      clusterSecret: "test-cluster-secret",
      dataDir: join(dir, "data"),
      nodes,
      durability: options.durability ?? "fsync",
      raft: options.raft ?? { tickMs: 25, heartbeatTicks: 2, electionTicks: 16 },
      limits: options.limits ?? {},
      requestTimeoutMs: 10_000,
      ...(options.clientToken !== undefined ? { clientToken: options.clientToken } : {}),
    };
    const configPath = join(dir, "cluster.config.ts");
    await writeFile(configPath, `export default ${JSON.stringify(config, null, 2)};\n`);
    const cluster = new ProcessCluster(dir, configPath, options.env ?? {});
    for (const n of nodes) {
      cluster.nodes.set(n.id, {
        id: n.id,
        clientUrl: `ws://${n.client}`,
        peerPort: Number(n.peer.split(":")[1]),
        clientPort: Number(n.client.split(":")[1]),
        dataDir: join(dir, "data", n.id),
        process: null,
        log: [],
      });
    }
    for (const id of ids) cluster.spawn(id);
    for (const id of ids) await cluster.waitListening(id);
    return cluster;
  }

  get urls(): string[] {
    return [...this.nodes.values()].map((n) => n.clientUrl);
  }

  node(id: string): ProcessNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  spawn(id: string): void {
    const n = this.node(id);
    if (n.process) throw new Error(`node ${id} already running`);
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "src", "node", "run-node.ts"), "--id", id, "--config", this.configPath], {
      cwd: REPO,
      env: { ...process.env, CAIRN_LOG_LEVEL: "info", ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    n.process = child;
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line) n.log.push(line);
      if (n.log.length > LOG_LINES_MAX) n.log.splice(0, n.log.length - LOG_LINES_MAX);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    child.on("exit", () => {
      if (n.process === child) n.process = null;
    });
  }

  /** Resolves when the node's client port accepts connections (bounded wait). */
  async waitListening(id: string, timeoutMs = 30_000): Promise<void> {
    const n = this.node(id);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!n.process) throw new Error(`node ${id} exited:\n${n.log.slice(-20).join("\n")}`);
      const ok = await new Promise<boolean>((res) => {
        const s = createConnection({ host: "127.0.0.1", port: n.clientPort });
        s.once("connect", () => {
          s.destroy();
          res(true);
        });
        s.once("error", () => res(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`node ${id} did not listen within ${timeoutMs} ms:\n${n.log.slice(-20).join("\n")}`);
  }

  /** Waits for the process to exit (bounded). Returns its exit code (null when killed by a signal). */
  async waitExit(id: string, timeoutMs = 15_000): Promise<number | null> {
    const child = this.node(id).process;
    if (!child) return null;
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    return new Promise((res, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${id} did not exit within ${timeoutMs} ms`)), timeoutMs);
      child.once("exit", (code) => {
        clearTimeout(timer);
        res(code);
      });
    });
  }

  async kill9(id: string): Promise<void> {
    const child = this.node(id).process;
    if (!child?.pid) return;
    const exited = new Promise((r) => child.once("exit", r));
    process.kill(child.pid, "SIGKILL");
    await exited;
  }

  stopSignal(id: string): void {
    const pid = this.node(id).process?.pid;
    if (pid) process.kill(pid, "SIGSTOP");
  }

  contSignal(id: string): void {
    const pid = this.node(id).process?.pid;
    if (pid) process.kill(pid, "SIGCONT");
  }

  async restart(id: string): Promise<void> {
    if (this.node(id).process) await this.kill9(id);
    this.spawn(id);
    await this.waitListening(id);
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.values()) {
      const child = n.process;
      if (child?.pid) {
        try {
          process.kill(child.pid, "SIGCONT");
          process.kill(child.pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
    }
    await new Promise((r) => setTimeout(r, 100));
    await rm(this.dir, { recursive: true, force: true });
  }
}
