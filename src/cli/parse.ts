/**
 * Parsing of CLI argument values, as natscli does: durations (`1h`, `30m`, `1h30m`, `500ms`, `2d`),
 * byte sizes (`1024`, `10KB`, `1.5MiB`, `-1` = unlimited), server lists (`host:port,host:port`).
 * Every parser throws CliUsageError with a message naming the flag.
 */

/** A CLI-level failure (reported as `error: <message>`, exit status 1); `code` shows in --json errors. */
export class CliUsageError extends Error {
  override readonly name = "CliUsageError";
  constructor(
    message: string,
    readonly code: string = "USAGE",
  ) {
    super(message);
  }
}

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** Go-style durations (`1h30m`, `1.5s`, `250ms`) plus `d` and `w`; `0` alone is zero. Returns ms. */
export function parseDuration(text: string, flag: string): number {
  const value = text.trim();
  if (value === "0") return 0;
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)/y;
  let total = 0;
  let index = 0;
  while (index < value.length) {
    part.lastIndex = index;
    const match = part.exec(value);
    if (!match) throw new CliUsageError(`invalid duration for ${flag}: ${JSON.stringify(text)} (use e.g. 30s, 5m, 1h, 2d)`);
    total += Number(match[1]) * DURATION_UNITS_MS[match[2]!]!;
    index = part.lastIndex;
  }
  if (index === 0) throw new CliUsageError(`invalid duration for ${flag}: ${JSON.stringify(text)} (use e.g. 30s, 5m, 1h, 2d)`);
  return Math.round(total);
}

const BYTE_UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };

/** Byte sizes as natscli: a number with an optional K/M/G/T/P (B, iB) suffix, 1024-based; -1 = unlimited. */
export function parseBytes(text: string, flag: string): number {
  const value = text.trim();
  if (value === "-1") return -1;
  const match = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?$/i.exec(value);
  if (!match) throw new CliUsageError(`invalid size for ${flag}: ${JSON.stringify(text)} (use e.g. 1024, 10KB, 1.5MiB, -1)`);
  return Math.round(Number(match[1]) * BYTE_UNITS[match[2]!.toUpperCase()]!);
}

/** A non-negative integer argument (revisions, counts). */
export function parseCount(text: string, what: string, min = 0): number {
  if (!/^\d+$/.test(text.trim())) throw new CliUsageError(`invalid ${what}: ${JSON.stringify(text)} (must be an integer >= ${min})`);
  const value = Number(text.trim());
  if (!Number.isSafeInteger(value) || value < min) throw new CliUsageError(`invalid ${what}: ${JSON.stringify(text)} (must be an integer >= ${min})`);
  return value;
}

/** `a,b` → ["a", "b"] (empty entries dropped). */
export function parseServerList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The servers to use: --server, else $CAIRN_SERVER, else the first node of the default local cluster. */
export function resolveServers(flag: string | undefined, env: Record<string, string | undefined>): string[] {
  const fromFlag = flag === undefined ? [] : parseServerList(flag);
  if (fromFlag.length > 0) return fromFlag;
  const fromEnv = parseServerList(env["CAIRN_SERVER"] ?? "");
  if (fromEnv.length > 0) return fromEnv;
  return ["ws://127.0.0.1:4222", "ws://127.0.0.1:4223", "ws://127.0.0.1:4224"];
}

/** `--metadata k=v` (repeatable) → { k: v }. */
export function parseMetadata(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new CliUsageError(`invalid metadata ${JSON.stringify(pair)} (use key=value)`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

/** `--storage file|memory` (natscli also accepts f and m). */
export function parseStorage(text: string): "file" | "memory" {
  const value = text.trim().toLowerCase();
  if (value === "file" || value === "f") return "file";
  if (value === "memory" || value === "m") return "memory";
  throw new CliUsageError(`invalid storage ${JSON.stringify(text)} (file or memory)`);
}
