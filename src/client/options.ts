/** Connection options: defaults, checks, server URLs, request ids. */
import { CairnError } from "../shared/errors.ts";

export const DEFAULTS = {
  timeoutMs: 5000,
  reconnectDelayMsMin: 25,
  reconnectDelayMsMax: 2000,
  pingIntervalMs: 5000,
  /** Backoff between retries of one call after a retryable answer. */
  retryDelayMsMin: 10,
  retryDelayMsMax: 500,
  /** Status events buffered per status() iterator before the oldest are dropped. */
  statusEventsMax: 256,
  /** Orphan watch ids remembered per socket (pushes for a watch nobody holds: stopped once). */
  orphanWatchesMax: 1024,
} as const;

export interface ResolvedOptions {
  readonly timeoutMs: number;
  readonly token: string | undefined;
  readonly name: string | undefined;
  readonly discoverServers: boolean;
  readonly reconnectDelayMsMin: number;
  readonly reconnectDelayMsMax: number;
  readonly pingIntervalMs: number;
}

export function positiveNumber(value: unknown, name: string, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new CairnError("INVALID_OPTION", `invalid option: ${name} must be a ${allowZero ? "non-negative" : "positive"} number`);
  }
  return value;
}

export function parseServers(servers: unknown): string[] {
  const list = typeof servers === "string" ? servers.split(",") : servers;
  if (!Array.isArray(list)) throw new TypeError("servers must be a string or an array of strings");
  const urls: string[] = [];
  for (const entry of list) {
    if (typeof entry !== "string") throw new TypeError("servers must be a string or an array of strings");
    const url = normalizeServerUrl(entry);
    if (!urls.includes(url)) urls.push(url);
  }
  if (urls.length === 0) throw new CairnError("INVALID_OPTION", "invalid option: servers is empty");
  return urls;
}

/** `host:port` → `ws://host:port`; ws:// and wss:// URLs kept. Anything else is INVALID_OPTION. */
export function normalizeServerUrl(server: string): string {
  const trimmed = server.trim();
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `ws://${trimmed}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CairnError("INVALID_OPTION", `invalid option: bad server URL ${JSON.stringify(server)}`);
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new CairnError("INVALID_OPTION", `invalid option: server URL must use ws:// or wss://, got ${JSON.stringify(server)}`);
  }
  return url;
}

/** A globally unique id for a write, kept across its retries. */
export function newRequestId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string; getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
