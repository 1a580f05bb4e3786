/**
 * The `cairn` command: `cairn kv ...` (as `nats kv ...`), `cairn up`, `cairn node --id n1`,
 * `cairn cluster status|remove <id>|add <id>`. `main(argv, io)` returns the exit status, so tests run commands in-process;
 * bin/cairn.mjs runs this file through tsx.
 *
 * Global options: -s/--server (comma-separated; else $CAIRN_SERVER; else the local cluster of
 * cluster.config.ts), --json, --timeout, --token ($CAIRN_TOKEN). Failures print one line,
 * `error: <message>` (with --json: `{"error":{"code":...,"message":...}}`), and exit with status 1.
 */
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { connect, type Connection } from "../client/index.ts";
import { CairnError } from "../shared/errors.ts";
import { formatClusterStatus, formatMembershipChange } from "./format.ts";
import { processIo, type CliIo } from "./io.ts";
import { registerKvCommands, type CliContext } from "./kv.ts";
import { CliUsageError, parseDuration, resolveServers } from "./parse.ts";

interface GlobalOptions {
  server?: string;
  json?: boolean;
  timeout: string;
  token?: string;
}

/** Builds the command tree; actions use ctx for I/O and the (lazily opened) connection. */
export function buildProgram(ctx: CliContext, globals: () => GlobalOptions): Command {
  const program = new Command("cairn")
    .description("cairn: a Raft-replicated key/value cluster with NATS JetStream KV semantics")
    .option("-s, --server <urls>", "Servers to connect to, comma-separated (env CAIRN_SERVER)")
    .option("--json", "Print JSON (one object per line for watch)")
    .option("--timeout <duration>", "Deadline of each call", "5s")
    .option("--token <token>", "Token sent in the handshake (env CAIRN_TOKEN)")
    .version(packageVersion(), "-V, --version", "Print the cairn version")
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (text) => ctx.io.out(text),
      writeErr: (text) => ctx.io.err(text),
    })
    .exitOverride();

  registerKvCommands(program, ctx);

  program
    .command("up")
    .description("Starts the local cluster of cluster.config.ts, one process per node (what `npm start` runs)")
    .option("--config <file>", "Cluster config file (default: cluster.config.ts, env CAIRN_CONFIG)")
    .action(async (flags: { config?: string }) => {
      const hooks = await import("../node/cli-hooks.ts");
      await hooks.runUp(flags.config === undefined ? {} : { config: flags.config });
    });

  program
    .command("node")
    .description("Runs one node of the cluster config in this process")
    .requiredOption("--id <id>", "The node's id in the cluster config (e.g. n1)")
    .option("--config <file>", "Cluster config file (default: cluster.config.ts, env CAIRN_CONFIG)")
    .action(async (flags: { id: string; config?: string }) => {
      const hooks = await import("../node/cli-hooks.ts");
      await hooks.runNode(flags.config === undefined ? { id: flags.id } : { id: flags.id, config: flags.config });
    });

  const cluster = program.command("cluster").description("Cluster operations");
  cluster
    .command("status")
    .description("Nodes, members and removed nodes, Raft groups, leaders, terms, commit/applied indexes and lag")
    .action(async () => {
      const nc = await ctx.connection();
      const status = await nc.request("cluster.status", {});
      if (globals().json) ctx.io.out(`${JSON.stringify(status, null, 2)}\n`);
      else ctx.io.out(`${formatClusterStatus(status)}\n`);
    });
  for (const [name, op, description] of [
    ["remove", "cluster.removeNode", "Takes a node out of the cluster (its replicas move to other nodes, or its buckets run on fewer replicas); waits until done"],
    ["add", "cluster.addNode", "Brings a removed node back (it catches up and gets replicas of buckets below their replica count); waits until done"],
  ] as const) {
    cluster
      .command(`${name} <id>`)
      .description(description)
      .action(async (id: string) => {
        const nc = await ctx.connection();
        const membership = await nc.request(op, { nodeId: id });
        if (globals().json) ctx.io.out(`${JSON.stringify(membership, null, 2)}\n`);
        else ctx.io.out(`${formatMembershipChange(name === "remove" ? "removed from" : "added to", id, membership)}\n`);
      });
  }

  return program;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** One line for a failure. CairnErrors keep their NATS wording (`wrong last sequence: 1: key exists`). */
export function formatError(error: unknown, json: boolean): string {
  const code = error instanceof CairnError || error instanceof CliUsageError ? error.code : "ERROR";
  const message = error instanceof Error ? error.message : String(error);
  return json ? `${JSON.stringify({ error: { code, message } })}\n` : `error: ${message}\n`;
}

/** Runs one command line (without `node cairn`); returns the exit status. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let connection: Connection | null = null;
  let program: Command | null = null;
  const globals = (): GlobalOptions => (program?.opts() ?? { timeout: "5s" }) as GlobalOptions;
  const ctx: CliContext = {
    io,
    json: () => globals().json === true,
    async connection() {
      if (connection) return connection;
      const g = globals();
      const token = g.token ?? io.env["CAIRN_TOKEN"];
      connection = await connect({
        servers: resolveServers(g.server, io.env),
        timeoutMs: parseDuration(g.timeout, "--timeout") || 1,
        name: "cairn-cli",
        ...(token === undefined ? {} : { token }),
      });
      return connection;
    },
  };
  program = buildProgram(ctx, globals);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed its message (or the help); keep its status (0 for --help).
      return error.exitCode;
    }
    io.err(formatError(error, ctx.json()));
    return 1;
  } finally {
    const open = connection as Connection | null;
    if (open) await open.close();
  }
}

/** Entry for bin/cairn.mjs: runs argv and sets the process exit status. */
export async function run(argv: readonly string[]): Promise<void> {
  process.exitCode = await main(argv);
}

// `tsx src/cli/main.ts up` (npm start) runs this file directly; bin/cairn.mjs imports it and calls run().
const entry = process.argv[1];
if (entry !== undefined && isThisFile(entry)) await run(process.argv.slice(2));

function isThisFile(path: string): boolean {
  try {
    return realpathSync(path) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}
