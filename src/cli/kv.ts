/**
 * `cairn kv ...`: the subcommands of natscli's `nats kv` (cli/kv_command.go) with the same arguments,
 * flags and output, on the cairn client. Every command also takes the global --json.
 */
import { Command, Option } from "commander";
import type { Connection } from "../client/connection.ts";
import { Kvm } from "../client/kvm.ts";
import type { KvEntry, KvOptions } from "../client/types.ts";
import {
  entryJson,
  formatBucketList,
  formatGet,
  formatHistory,
  formatStatus,
  formatTimestamp,
  formatWatchLine,
  renderTable,
} from "./format.ts";
import { validateBucketName, validateFilter, validateKey } from "../client/validate.ts";
import type { CliIo } from "./io.ts";
import { CliUsageError, parseBytes, parseCount, parseDuration, parseMetadata, parseStorage } from "./parse.ts";

export interface CliContext {
  readonly io: CliIo;
  /** The global options (--server, --json, --timeout, --token). */
  json(): boolean;
  /** The connection for this run (opened on first use, closed by main). */
  connection(): Promise<Connection>;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface ConfigFlags {
  history?: string;
  ttl?: string;
  replicas?: string;
  maxValueSize?: string;
  maxBucketSize?: string;
  description?: string;
  storage?: string;
  compress?: boolean;
  markerTtl?: string;
  metadata?: string[];
}

function addConfigFlags(command: Command): Command {
  return command
    .option("--history <n>", "How many historic values to keep per key (1..64)")
    .option("--ttl <duration>", "How long to keep values for (e.g. 30s, 1h, 2d)")
    .option("--replicas <n>", "How many replicas of the data to store (1..5)")
    .option("--max-value-size <bytes>", "Maximum size for any single value (e.g. 1MiB, -1 = unlimited)")
    .option("--max-bucket-size <bytes>", "Maximum size for the bucket (e.g. 1GiB, -1 = unlimited)")
    .option("--description <text>", "A description for the bucket")
    .option("--storage <type>", "Storage backend to use (file, memory)")
    .option("--compress", "Compress the bucket data")
    .option("--marker-ttl <duration>", "How long delete/expiry markers are kept; enables per-key TTL")
    .option("--metadata <key=value>", "Bucket metadata (repeatable)", collect, [] as string[]);
}

/** Flags → bucket options; only what was given (the server keeps or defaults the rest). */
export function configFromFlags(flags: ConfigFlags): KvOptions {
  const config: KvOptions = {};
  if (flags.history !== undefined) config.history = parseCount(flags.history, "--history", 1);
  if (flags.ttl !== undefined) config.ttlMs = parseDuration(flags.ttl, "--ttl");
  if (flags.replicas !== undefined) config.replicas = parseCount(flags.replicas, "--replicas", 1);
  if (flags.maxValueSize !== undefined) config.maxValueSize = parseBytes(flags.maxValueSize, "--max-value-size");
  if (flags.maxBucketSize !== undefined) config.maxBytes = parseBytes(flags.maxBucketSize, "--max-bucket-size");
  if (flags.description !== undefined) config.description = flags.description;
  if (flags.storage !== undefined) config.storage = parseStorage(flags.storage);
  if (flags.compress) config.compression = true;
  if (flags.markerTtl !== undefined) config.markerTtlMs = parseDuration(flags.markerTtl, "--marker-ttl");
  if (flags.metadata !== undefined && flags.metadata.length > 0) config.metadata = parseMetadata(flags.metadata);
  return config;
}

/** The value argument, or stdin when it was left out and stdin is not a terminal (as natscli). */
async function valueOrStdin(io: CliIo, value: string | undefined): Promise<{ bytes: Uint8Array | string; text: string }> {
  if (value !== undefined && value !== "") return { bytes: value, text: value };
  if (io.stdinIsTTY) return { bytes: "", text: "" };
  const bytes = await io.readStdin();
  // natscli prints the value it stored; a value that is not UTF-8 text is not echoed.
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    text = "";
  }
  return { bytes, text };
}

/** Asks before a destructive action unless --force; refuses without a terminal to ask on. */
async function confirmed(ctx: CliContext, force: boolean | undefined, question: string, skipped: string): Promise<boolean> {
  if (force) return true;
  const answer = await ctx.io.confirm(question);
  if (answer === null) throw new CliUsageError(`${question.replace(/\?$/, "")}: refusing without --force (no terminal to confirm on)`);
  if (!answer) ctx.io.out(`${skipped}\n`);
  return answer;
}

/** Argument mistakes are reported before connecting (as the client does before sending). */
function checkNames(bucket: string, key?: string, filter?: string): void {
  validateBucketName(bucket);
  if (key !== undefined) validateKey(key);
  if (filter !== undefined) validateFilter(filter);
}

function printJson(io: CliIo, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

export function registerKvCommands(program: Command, ctx: CliContext): void {
  const kv = program.command("kv").description("Interacts with a cairn Key-Value store (as `nats kv`)");
  const io = ctx.io;
  const kvm = async (): Promise<Kvm> => new Kvm(await ctx.connection());

  addConfigFlags(kv.command("add").alias("new").description("Adds a new KV Store Bucket").argument("<bucket>", "The bucket to act on")).action(
    async (bucket: string, flags: ConfigFlags) => {
      checkNames(bucket);
      const config = configFromFlags(flags);
      const manager = await kvm();
      await manager.create(bucket, config);
      const status = await manager.status(bucket);
      if (ctx.json()) printJson(io, status);
      else io.out(formatStatus(status));
    },
  );

  addConfigFlags(kv.command("edit").description("Edits the configuration of a KV Store Bucket (a --replicas change waits until the bucket runs on its new replicas: see --timeout)").argument("<bucket>", "The bucket to act on")).action(
    async (bucket: string, flags: ConfigFlags) => {
      checkNames(bucket);
      const config = configFromFlags(flags);
      if (Object.keys(config).length === 0) throw new CliUsageError("nothing to change: give at least one configuration flag");
      const status = await (await kvm()).update(bucket, config);
      if (ctx.json()) printJson(io, status);
      else io.out(formatStatus(status));
    },
  );

  kv.command("put")
    .description("Puts a value into a key")
    .argument("<bucket>", "The bucket to act on")
    .argument("<key>", "The key to act on")
    .argument("[value]", "The value to store, when empty reads STDIN")
    .option("--ttl <duration>", "Per-key TTL (the bucket needs --marker-ttl)")
    .action(async (bucket: string, key: string, value: string | undefined, flags: { ttl?: string }) => {
      checkNames(bucket, key);
      const ttlMs = flags.ttl === undefined ? undefined : parseDuration(flags.ttl, "--ttl");
      const input = await valueOrStdin(io, value);
      const handle = await (await kvm()).open(bucket);
      const revision = await handle.put(key, input.bytes, ttlMs === undefined ? undefined : { ttlMs });
      if (ctx.json()) printJson(io, { bucket, key, revision });
      else io.out(`${input.text}\n`);
    });

  kv.command("get")
    .description("Gets a value for a key")
    .argument("<bucket>", "The bucket to act on")
    .argument("<key>", "The key to act on")
    .option("--revision <n>", "Gets a specific revision")
    .option("--raw", "Show only the value string")
    .action(async (bucket: string, key: string, flags: { revision?: string; raw?: boolean }) => {
      checkNames(bucket, key);
      const revision = flags.revision === undefined ? undefined : parseCount(flags.revision, "--revision", 1);
      const handle = await (await kvm()).open(bucket);
      const entry = await handle.get(key, revision === undefined ? undefined : { revision });
      if (!entry) throw new CliUsageError("key not found", "KEY_NOT_FOUND");
      if (ctx.json()) printJson(io, entryJson(entry));
      else if (flags.raw) io.outBytes(entry.value);
      else io.out(formatGet(entry));
    });

  kv.command("create")
    .description("Puts a value into a key only if the key is new or its last operation was a delete")
    .argument("<bucket>", "The bucket to act on")
    .argument("<key>", "The key to act on")
    .argument("[value]", "The value to store, when empty reads STDIN")
    .option("--ttl <duration>", "Per-key TTL (the bucket needs --marker-ttl)")
    .action(async (bucket: string, key: string, value: string | undefined, flags: { ttl?: string }) => {
      checkNames(bucket, key);
      const ttlMs = flags.ttl === undefined ? undefined : parseDuration(flags.ttl, "--ttl");
      const input = await valueOrStdin(io, value);
      const handle = await (await kvm()).open(bucket);
      const revision = await handle.create(key, input.bytes, ttlMs === undefined ? undefined : { ttlMs });
      if (ctx.json()) printJson(io, { bucket, key, revision });
      else io.out(`${input.text}\n`);
    });

  kv.command("update")
    .description("Updates a key with a new value if the previous value matches the given revision")
    .argument("<bucket>", "The bucket to act on")
    .argument("<key>", "The key to act on")
    .argument("<value>", "The value to store")
    .argument("<revision>", "The revision of the previous value in the bucket")
    .action(async (bucket: string, key: string, value: string, revisionText: string) => {
      checkNames(bucket, key);
      const revision = parseCount(revisionText, "revision", 0);
      const handle = await (await kvm()).open(bucket);
      const written = await handle.update(key, value, revision);
      if (ctx.json()) printJson(io, { bucket, key, revision: written });
      else io.out(`${value}\n`);
    });

  kv.command("del")
    .alias("rm")
    .description("Deletes a key or the entire bucket")
    .argument("<bucket>", "The bucket to act on")
    .argument("[key]", "The key to act on (without it: the bucket)")
    .option("-f, --force", "Act without confirmation")
    .action(async (bucket: string, key: string | undefined, flags: { force?: boolean }) => {
      checkNames(bucket, key);
      if (key === undefined) {
        if (!(await confirmed(ctx, flags.force, `Delete bucket ${bucket}?`, "Skipping delete"))) return;
        await (await kvm()).destroy(bucket);
        if (ctx.json()) printJson(io, { bucket, deleted: true });
        return;
      }
      if (!(await confirmed(ctx, flags.force, `Delete key ${bucket} > ${key}?`, "Skipping delete"))) return;
      const revision = await (await (await kvm()).open(bucket)).delete(key);
      if (ctx.json()) printJson(io, { bucket, key, revision });
    });

  kv.command("purge")
    .description("Deletes a key from the bucket, clearing history before creating a delete marker")
    .argument("<bucket>", "The bucket to act on")
    .argument("<key>", "The key to act on")
    .option("-f, --force", "Act without confirmation")
    .option("--ttl <duration>", "How long the purge marker is kept (the bucket needs --marker-ttl)")
    .action(async (bucket: string, key: string, flags: { force?: boolean; ttl?: string }) => {
      checkNames(bucket, key);
      const ttlMs = flags.ttl === undefined ? undefined : parseDuration(flags.ttl, "--ttl");
      if (!(await confirmed(ctx, flags.force, `Purge key ${bucket} > ${key}?`, "Skipping purge"))) return;
      const revision = await (await (await kvm()).open(bucket)).purge(key, ttlMs === undefined ? undefined : { ttlMs });
      if (ctx.json()) printJson(io, { bucket, key, revision });
    });

  kv.command("history")
    .description("Shows the full history for a key")
    .argument("<bucket>", "The bucket to act on")
    .argument("[key]", "The key (or filter) to act on", ">")
    .action(async (bucket: string, key: string) => {
      checkNames(bucket, undefined, key);
      const handle = await (await kvm()).open(bucket);
      const entries: KvEntry[] = [];
      for await (const entry of handle.history({ key })) entries.push(entry);
      if (ctx.json()) printJson(io, entries.map(entryJson));
      else io.out(`${formatHistory(bucket, key, entries)}\n`);
    });

  kv.command("info")
    .alias("view")
    .alias("status")
    .description("View the status of a KV store")
    .argument("<bucket>", "The bucket to act on")
    .action(async (bucket: string) => {
      checkNames(bucket);
      const status = await (await kvm()).status(bucket);
      if (ctx.json()) printJson(io, status);
      else io.out(formatStatus(status));
    });

  kv.command("watch")
    .description("Watch the bucket or a specific key for updates")
    .argument("<bucket>", "The bucket to act on")
    .argument("[key]", "The key (or filter) to act on", ">")
    .addOption(new Option("--include <mode>", "What to deliver first: the last value of each key, all history, or updates only").choices(["last", "history", "updates"]).default("last"))
    .action(async (bucket: string, key: string, flags: { include: "last" | "history" | "updates" }) => {
      checkNames(bucket, undefined, key);
      const handle = await (await kvm()).open(bucket);
      const watcher = await handle.watch({
        key,
        include: flags.include,
        onSkipped: (range) => {
          if (ctx.json()) io.out(`${JSON.stringify({ skipped: range })}\n`);
          else io.err(`[${formatTimestamp(new Date())}] SKIPPED ${bucket} revisions ${range.fromRevision}-${range.toRevision} (removed by limits while disconnected)\n`);
        },
      });
      void io.interrupted.then(() => watcher.stop());
      for await (const entry of watcher) {
        if (ctx.json()) io.out(`${JSON.stringify(entryJson(entry))}\n`);
        else io.out(`${formatWatchLine(entry)}\n`);
      }
      // Wait for the server to drop the watch before the connection closes.
      await watcher.stop();
    });

  kv.command("ls")
    .alias("list")
    .description("List available buckets or the keys in a bucket")
    .argument("[bucket]", "The bucket to list the keys of")
    .option("-n, --names", "Show just the bucket names")
    .option("-v, --verbose", "Show detailed info about the key")
    .option("--display-value", "Display value in verbose output (has no effect without 'verbose')")
    .action(async (bucket: string | undefined, flags: { names?: boolean; verbose?: boolean; displayValue?: boolean }) => {
      if (bucket !== undefined) checkNames(bucket);
      const manager = await kvm();
      if (bucket === undefined) {
        const statuses = await manager.list();
        if (ctx.json()) printJson(io, flags.names ? statuses.map((s) => s.bucket) : statuses);
        else if (flags.names) io.out(statuses.length === 0 ? "No Key-Value buckets found\n" : statuses.map((s) => `${s.bucket}\n`).join(""));
        else io.out(`${formatBucketList(statuses)}\n`);
        return;
      }
      const handle = await manager.open(bucket);
      const keys: string[] = [];
      for await (const key of handle.keys()) keys.push(key);
      if (!flags.verbose) {
        if (ctx.json()) printJson(io, keys);
        else io.out(keys.length === 0 ? "No keys found in bucket\n" : keys.map((k) => `${k}\n`).join(""));
        return;
      }
      const entries: KvEntry[] = [];
      for (const key of keys) {
        const entry = await handle.get(key);
        if (entry) entries.push(entry);
      }
      if (ctx.json()) {
        printJson(io, entries.map(entryJson));
        return;
      }
      if (entries.length === 0) {
        io.out("No keys found in bucket\n");
        return;
      }
      const headers = ["Key", "Created", "Delta", "Revision", ...(flags.displayValue ? ["Value"] : [])];
      const rows = entries.map((e) => [e.key, formatTimestamp(e.created), e.delta, e.revision, ...(flags.displayValue ? [e.string()] : [])]);
      io.out(`${renderTable(`Contents for bucket '${bucket}'`, headers, rows)}\n`);
    });

  kv.command("compact")
    .description("Reclaim space used by deleted keys")
    .argument("<bucket>", "The bucket to act on")
    .option("-f, --force", "Act without confirmation")
    .option("--older-than <duration>", "Keep the markers younger than this (default 30m; 0 = remove every marker)")
    .action(async (bucket: string, flags: { force?: boolean; olderThan?: string }) => {
      checkNames(bucket);
      const olderThanMs = flags.olderThan === undefined ? undefined : parseDuration(flags.olderThan, "--older-than");
      const question = `Purge all historic values and audit trails for deleted keys in bucket ${bucket}?`;
      if (!(await confirmed(ctx, flags.force, question, "Skipping delete"))) return;
      const handle = await (await kvm()).open(bucket);
      // 0 from the command line means "every marker": the API's negative threshold.
      const removed = await handle.purgeDeletes(olderThanMs === undefined ? undefined : { olderThanMs: olderThanMs === 0 ? -1 : olderThanMs });
      if (ctx.json()) printJson(io, { bucket, removed });
    });
}
