/**
 * The node processes of a jepsen-lite run: one `src/node/run-node.ts` process per node, each with its
 * own data directory and its OWN generated config file, which names the fault proxy's routes as its
 * peers' addresses (so every peer connection crosses the proxy). Kept apart from
 * test/support/process-cluster.ts because the harness needs per-node configs, exit outcomes (a node
 * that refuses to start with CORRUPT_DATA is an expected result of a disk fault), data wipes, log
 * files, and one snapshot of the code per run. Only processes this module spawned are signalled, by pid.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { copyFile, cp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { createConnection, createServer, type Server } from "node:net";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dirname, "..", "..");

/** How a node reports that its port is taken (by some other process on the machine). */
export const PORT_IN_USE = /cannot listen on|EADDRINUSE/;
/** Lines kept in memory per node (the newest), for error messages. */
const RECENT_LINES_MAX = 200;
/** Bytes written to one node's log file; beyond, lines are counted but not written. */
const LOG_FILE_BYTES_MAX = 64 * 1024 * 1024;

export interface NodeSpec {
  readonly id: string;
  /** host:port the node listens on for peers. */
  readonly peer: string;
  /** host:port the node listens on for clients. */
  readonly client: string;
}

export interface JepsenNode extends NodeSpec {
  readonly clientUrl: string;
  readonly clientPort: number;
  readonly dataDir: string;
  readonly configPath: string;
  child: ChildProcess | null;
  /** SIGSTOPped by us and not yet continued. */
  paused: boolean;
  /** How the last process exited (null while running or before the first start). */
  lastExit: { code: number | null; signal: string | null } | null;
  recent: string[];
  starts: number;
  /** The current process may exit without that being a crash (killed by us, or started to fail). */
  exitExpected: boolean;
}

/** A node process that exited when nothing made it: a crash, or a refusal to start. */
export interface UnexpectedExit {
  id: string;
  code: number | null;
  signal: string | null;
  /** performance.now() of the exit. */
  atMs: number;
  log: string;
}

export interface NodeProcessesOptions {
  /** Directory for configs and data (a fresh temporary directory). */
  dir: string;
  /** Directory for node log files (`<id>.log`), or null for none. */
  logDir: string | null;
  nodes: number;
  durability: "fsync" | "none";
  raft: { tickMs: number; heartbeatTicks: number; electionTicks: number };
  requestTimeoutMs: number;
  /** The address node `from` must dial for peer `to` (a proxy route to `real`). */
  route: (from: string, to: string, real: string) => Promise<string>;
}

/**
 * An ephemeral port held open until release(): the proxy's own ports are allocated meanwhile, so the
 * OS cannot hand a node's port to a proxy route (a port freed at once can come back at the next bind).
 */
async function reservePort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolvePort, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolvePort());
  });
  const address = server.address();
  return { port: typeof address === "object" && address !== null ? address.port : 0, server };
}

/**
 * Copies the node code (src/, package.json, tsconfig.json; node_modules linked) into `dir`, so that
 * every process of a run, restarts included, runs the code as it was when the run started, even while
 * the working tree changes under it.
 */
async function snapshotCode(dir: string): Promise<string> {
  const code = join(dir, "code");
  await mkdir(code, { recursive: true });
  await cp(join(REPO, "src"), join(code, "src"), { recursive: true });
  for (const file of ["package.json", "tsconfig.json"]) await copyFile(join(REPO, file), join(code, file));
  await symlink(join(REPO, "node_modules"), join(code, "node_modules"), "dir");
  return code;
}

export class NodeProcesses {
  readonly nodes = new Map<string, JepsenNode>();
  readonly unexpectedExits: UnexpectedExit[] = [];
  /** Starts that failed because another process held the node's port: the harness's problem, retried. */
  portConflicts = 0;
  private readonly logs = new Map<string, { stream: WriteStream; bytes: number }>();

  private constructor(
    private readonly options: NodeProcessesOptions,
    /** The copy of the code the nodes run (snapshotCode). */
    readonly codeDir: string,
  ) {}

  static async create(options: NodeProcessesOptions): Promise<NodeProcesses> {
    const processes = new NodeProcesses(options, await snapshotCode(options.dir));
    const specs: NodeSpec[] = [];
    const reserved: Server[] = [];
    for (let i = 1; i <= options.nodes; i++) {
      const peer = await reservePort();
      const client = await reservePort();
      reserved.push(peer.server, client.server);
      specs.push({ id: `n${i}`, peer: `127.0.0.1:${peer.port}`, client: `127.0.0.1:${client.port}` });
    }
    const dataRoot = join(options.dir, "data");
    await mkdir(dataRoot, { recursive: true });
    if (options.logDir !== null) await mkdir(options.logDir, { recursive: true });
    for (const me of specs) {
      const nodes = [];
      for (const n of specs) nodes.push(n.id === me.id ? n : { ...n, peer: await options.route(me.id, n.id, n.peer) });
      const config = {
        clusterSecret: "jepsen-lite-cluster-secret",
        dataDir: dataRoot,
        nodes,
        durability: options.durability,
        raft: options.raft,
        requestTimeoutMs: options.requestTimeoutMs,
      };
      const configPath = join(options.dir, `cluster.${me.id}.config.ts`);
      await writeFile(configPath, `export default ${JSON.stringify(config, null, 2)};\n`);
      processes.nodes.set(me.id, {
        ...me,
        clientUrl: `ws://${me.client}`,
        clientPort: Number(me.client.split(":")[1]),
        dataDir: join(dataRoot, me.id),
        configPath,
        child: null,
        paused: false,
        lastExit: null,
        recent: [],
        starts: 0,
        exitExpected: false,
      });
    }
    // Released only now, after the proxy's routes are listening; the caller spawns the nodes next.
    await Promise.all(reserved.map((server) => new Promise<void>((r) => server.close(() => r()))));
    return processes;
  }

  get ids(): string[] {
    return [...this.nodes.keys()];
  }

  get urls(): string[] {
    return [...this.nodes.values()].map((n) => n.clientUrl);
  }

  node(id: string): JepsenNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  isRunning(id: string): boolean {
    return this.node(id).child !== null;
  }

  /**
   * Starts the node's process (it must not be running). `mayExit`: the caller expects it may refuse to
   * start (a disk fault) and judges the outcome itself; otherwise an exit we did not cause is recorded
   * in unexpectedExits.
   */
  spawn(id: string, mayExit = false): void {
    const n = this.node(id);
    if (n.child !== null) throw new Error(`node ${id} is already running`);
    const child = spawn(process.execPath, ["--import", "tsx", join(this.codeDir, "src", "node", "run-node.ts"), "--id", id, "--config", n.configPath], {
      cwd: this.codeDir,
      env: { ...process.env, CAIRN_LOG_LEVEL: process.env.CAIRN_LOG_LEVEL ?? "info", CAIRN_LOG_PRETTY: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    n.child = child;
    // Recent lines are this process's own: an earlier start's error must not be taken for its outcome.
    n.recent = [];
    n.exitExpected = mayExit;
    n.paused = false;
    n.starts++;
    n.lastExit = null;
    this.logLine(id, `---- jepsen-lite: start #${n.starts}, pid ${String(child.pid)}`);
    let partial = "";
    const keep = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) if (line) this.logLine(id, line);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    child.on("exit", (code, signal) => {
      if (partial) this.logLine(id, partial);
      partial = "";
      this.logLine(id, `---- jepsen-lite: exit code ${String(code)} signal ${String(signal)}`);
      if (n.child === child) {
        n.child = null;
        n.paused = false;
        n.lastExit = { code, signal };
        if (n.recent.some((line) => PORT_IN_USE.test(line))) this.portConflicts++;
        else if (!n.exitExpected) {
          this.unexpectedExits.push({ id, code, signal, atMs: performance.now(), log: n.recent.slice(-30).join("\n") });
        }
      }
    });
  }

  private logLine(id: string, line: string): void {
    const n = this.node(id);
    n.recent.push(line);
    if (n.recent.length > RECENT_LINES_MAX) n.recent.splice(0, n.recent.length - RECENT_LINES_MAX);
    if (this.options.logDir === null) return;
    let log = this.logs.get(id);
    if (log === undefined) {
      log = { stream: createWriteStream(join(this.options.logDir, `${id}.log`), { flags: "a" }), bytes: 0 };
      this.logs.set(id, log);
    }
    if (log.bytes > LOG_FILE_BYTES_MAX) return;
    log.bytes += line.length + 1;
    log.stream.write(line + "\n");
  }

  /**
   * Waits until the node's client port accepts connections ("listening") or its process exits
   * ("exited", with the last log lines), bounded by timeoutMs ("timeout").
   */
  async waitStarted(id: string, timeoutMs: number): Promise<{ state: "listening" | "exited" | "timeout"; log: string }> {
    const n = this.node(id);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (n.child === null) return { state: "exited", log: n.recent.slice(-30).join("\n") };
      const ok = await new Promise<boolean>((res) => {
        const s = createConnection({ host: "127.0.0.1", port: n.clientPort });
        s.once("connect", () => {
          s.destroy();
          res(true);
        });
        s.once("error", () => res(false));
      });
      if (ok && n.child !== null) return { state: "listening", log: "" };
      await new Promise((r) => setTimeout(r, 100));
    }
    return { state: "timeout", log: n.recent.slice(-30).join("\n") };
  }

  /** kill -9 (a stopped process dies too). Resolves once it has exited. */
  async kill9(id: string): Promise<void> {
    const n = this.node(id);
    const child = n.child;
    if (child?.pid === undefined) return;
    n.exitExpected = true;
    const exited = new Promise((r) => child.once("exit", r));
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // Already exited; its exit event is on its way.
    }
    await exited;
  }

  pause(id: string): void {
    const n = this.node(id);
    if (n.child?.pid === undefined || n.paused) return;
    process.kill(n.child.pid, "SIGSTOP");
    n.paused = true;
  }

  resume(id: string): void {
    const n = this.node(id);
    if (n.child?.pid === undefined || !n.paused) return;
    process.kill(n.child.pid, "SIGCONT");
    n.paused = false;
  }

  /** Deletes the node's data directory (the node must be down). */
  async wipe(id: string): Promise<void> {
    if (this.isRunning(id)) throw new Error(`wipe ${id}: node is running`);
    await rm(this.node(id).dataDir, { recursive: true, force: true });
  }

  /** Kills every process this instance started and closes the log files. */
  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.nodes.values()].map(async (n) => {
        if (n.child?.pid === undefined) return;
        try {
          process.kill(n.child.pid, "SIGCONT");
        } catch {
          /* gone */
        }
        await this.kill9(n.id).catch(() => undefined);
      }),
    );
    await Promise.all([...this.logs.values()].map((log) => new Promise<void>((r) => log.stream.end(() => r()))));
    this.logs.clear();
  }
}
