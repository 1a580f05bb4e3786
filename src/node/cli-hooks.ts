/**
 * What `cairn up` (= `npm start`) and `cairn node --id <id>` run. `up` starts every node of the
 * cluster config as its own process, prefixes their log lines, prints where clients connect, and on
 * Ctrl-C stops them gracefully (each hands off its leaderships before exiting).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { resolve, join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createInterface } from "node:readline";
import { validateClusterConfig, parseHostPort, type ClusterConfig } from "./config.ts";
import { startNode } from "./embed.ts";
import { createLogger } from "./logger.ts";
import { CairnError } from "../shared/errors.ts";

export interface UpOptions {
  config?: string;
}

export interface NodeOptions {
  id: string;
  config?: string;
}

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "..", "..");
const DEFAULT_CONFIG = join(REPO, "cluster.config.ts");

export async function loadClusterConfig(path?: string): Promise<{ config: ClusterConfig; path: string }> {
  const file = resolve(path ?? process.env.CAIRN_CONFIG ?? DEFAULT_CONFIG);
  let mod: { default?: ClusterConfig };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: ClusterConfig };
  } catch (cause) {
    throw new CairnError("INVALID_CONFIG", `cannot load cluster config ${file}: ${String(cause)}`, {}, { cause });
  }
  if (!mod.default) throw new CairnError("INVALID_CONFIG", `${file} has no default export`);
  validateClusterConfig(mod.default);
  return { config: mod.default, path: file };
}

function nodeDataDir(config: ClusterConfig, configPath: string, id: string): string {
  const node = config.nodes.find((n) => n.id === id)!;
  const base = dirname(configPath);
  return resolve(base, node.dataDir ?? join(config.dataDir, id));
}

/** `cairn node --id n1`: runs one node of the config in this process until SIGINT/SIGTERM. */
export async function runNode(options: NodeOptions): Promise<void> {
  const { config, path } = await loadClusterConfig(options.config);
  const me = config.nodes.find((n) => n.id === options.id);
  if (!me) throw new CairnError("INVALID_CONFIG", `node ${options.id} is not in ${path} (nodes: ${config.nodes.map((n) => n.id).join(", ")})`);
  const dataDir = nodeDataDir(config, path, me.id);
  await mkdir(dataDir, { recursive: true });
  const peers = Object.fromEntries(config.nodes.map((n) => [n.id, `ws://${n.peer}`]));
  const clientUrls = Object.fromEntries(config.nodes.map((n) => [n.id, `ws://${n.client}`]));
  const pretty = process.env.CAIRN_LOG_PRETTY === "1" || process.stderr.isTTY === true;
  const logger = createLogger({ node: me.id, pretty });
  const running = await startNode({
    id: me.id,
    peers,
    clientUrls,
    clientListen: parseHostPort(me.client, "client"),
    dataDir,
    clusterSecret: config.clusterSecret,
    durability: config.durability ?? "fsync",
    ...(config.raft ? { raft: config.raft } : {}),
    ...(config.limits ? { limits: config.limits } : {}),
    requestTimeoutMs: config.requestTimeoutMs ?? 10_000,
    ...(config.clientToken !== undefined ? { clientToken: config.clientToken } : {}),
    logger,
  });
  logger.info(`node ${me.id} serving clients at ${running.url}, data in ${dataDir}`);
  await new Promise<void>((resolveStop, rejectStop) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info(`${signal}: stopping gracefully`);
      running.stop().then(
        () => {
          logger.info(`node ${me.id} stopped`);
          resolveStop();
        },
        (error) => {
          logger.error("error while stopping", { error: String(error) });
          resolveStop();
        },
      );
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
    // A damaged group found after start (a bucket's log or snapshot) or a storage failure: the node
    // stops serving; the process exits non-zero with the error (run-node.ts prints it).
    void running.failed.then((error) => {
      if (stopping) return;
      stopping = true;
      rejectStop(error);
    });
  });
}

/** `cairn up`: every node of the config as its own child process. */
export async function runUp(options: UpOptions): Promise<void> {
  const { config, path } = await loadClusterConfig(options.config);
  const children = new Map<string, ChildProcess>();
  const main = join(REPO, "src", "node", "run-node.ts");
  for (const n of config.nodes) {
    await mkdir(nodeDataDir(config, path, n.id), { recursive: true });
    const child = spawn(process.execPath, ["--import", "tsx", main, "--id", n.id, "--config", path], {
      cwd: REPO,
      env: { ...process.env, CAIRN_LOG_PRETTY: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.set(n.id, child);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => process.stdout.write(`[${n.id}] ${line}\n`));
    }
    child.on("exit", (code, signal) => {
      process.stdout.write(`[${n.id}] exited (${signal ?? `code ${code}`})\n`);
      children.delete(n.id);
    });
  }
  const servers = config.nodes.map((n) => `ws://${n.client}`).join(",");
  process.stdout.write(
    [
      "",
      `cairn: ${config.nodes.length}-node cluster starting (config ${path}, data under ${resolve(dirname(path), config.dataDir)})`,
      ...config.nodes.map((n) => `  ${n.id}: clients ws://${n.client}   peers ${n.peer}`),
      "",
      "Talk to it:",
      `  export CAIRN_SERVER=${servers}`,
      "  npx cairn kv add demo --history 5",
      "  npx cairn kv put demo greeting hello",
      "  npx cairn kv get demo greeting",
      "  npx cairn cluster status",
      "or from code:  const nc = await connect({ servers: [" + config.nodes.map((n) => `"ws://${n.client}"`).join(", ") + "] })",
      "Ctrl-C stops every node gracefully.",
      "",
    ].join("\n") + "\n",
  );
  await new Promise<void>((resolveAll) => {
    const check = () => {
      if (children.size === 0) resolveAll();
    };
    for (const c of children.values()) c.on("exit", check);
    let signalled = 0;
    const onSignal = () => {
      signalled++;
      for (const c of children.values()) c.kill(signalled > 1 ? "SIGKILL" : "SIGTERM");
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
