/**
 * Text output of the CLI, close to natscli's (`nats kv ...`): pure functions from values to strings so
 * they are tested without a cluster. Times are printed in UTC so output is the same on every machine.
 */
import type { KvEntry, KvStatus } from "../client/types.ts";
import type { WireClusterStatus, WireMembership } from "../shared/protocol.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** Go's time.RFC822 in UTC: `12 Oct 21 20:08 UTC` (what `nats kv get` prints). */
export function formatRfc822(date: Date): string {
  return `${pad2(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${pad2(date.getUTCFullYear() % 100)} ${pad2(date.getUTCHours())}:${pad2(date.getUTCMinutes())} UTC`;
}

/** `2021-10-12 13:15:03` in UTC (natscli's time format in watch and history). */
export function formatTimestamp(date: Date): string {
  return `${date.getUTCFullYear()}-${pad2(date.getUTCMonth() + 1)}-${pad2(date.getUTCDate())} ${pad2(date.getUTCHours())}:${pad2(date.getUTCMinutes())}:${pad2(date.getUTCSeconds())}`;
}

/** go-humanize IBytes: `0 B`, `512 B`, `1.0 KiB`, `15 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  // go-humanize rounds to one decimal first, then picks the format.
  const rounded = Math.floor(value * 10 + 0.5) / 10;
  return `${rounded < 10 ? rounded.toFixed(1) : rounded.toFixed(0)} ${units[unit]}`;
}

/** Go's time.Duration String(): `1h0m0s`, `1m30s`, `1.5s`, `250ms`, `0s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  const secondsText = `${Number.isInteger(seconds) ? seconds : seconds.toFixed(3).replace(/0+$/, "")}s`;
  if (hours > 0) return `${hours}h${minutes}m${secondsText}`;
  if (minutes > 0) return `${minutes}m${secondsText}`;
  return secondsText;
}

const fatalDecoder = new TextDecoder("utf-8", { fatal: true });

/** The value as text when it is printable UTF-8 (newlines and tabs allowed), else base64 (as natscli). */
export function printableValue(value: Uint8Array): string {
  let text: string;
  try {
    text = fatalDecoder.decode(value);
  } catch {
    return base64(value);
  }
  // Control characters other than tab/newline/carriage return make the value binary.
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text) ? base64(value) : text;
}

export function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** `nats kv get` output: header line, blank line, the value (first 120 characters when long), blank. */
export function formatGet(entry: KvEntry): string {
  const header = `${entry.bucket} > ${entry.key} revision: ${entry.revision} created @ ${formatRfc822(entry.created)}`;
  const value = printableValue(entry.value);
  if (value.length > 120) {
    return `${header}\n\nShowing first 120 bytes of ${value.length}, use --raw for full data\n\n${value.slice(0, 120)}\n\n`;
  }
  return `${header}\n\n${value}\n\n`;
}

/** One `nats kv watch` line: `[time] PUT bucket > key: value` or `[time] DEL bucket > key`. */
export function formatWatchLine(entry: KvEntry): string {
  const at = `[${formatTimestamp(entry.created)}]`;
  if (entry.operation === "PUT") return `${at} PUT ${entry.bucket} > ${entry.key}: ${printableValue(entry.value)}`;
  return `${at} ${entry.operation} ${entry.bucket} > ${entry.key}`;
}

/** An entry for --json output. `value` is UTF-8 text, or base64 when `encoding` says so. */
export function entryJson(entry: KvEntry): Record<string, unknown> {
  let value: string;
  let encoding: "utf8" | "base64";
  try {
    value = fatalDecoder.decode(entry.value);
    encoding = "utf8";
  } catch {
    value = base64(entry.value);
    encoding = "base64";
  }
  const out: Record<string, unknown> = {
    bucket: entry.bucket,
    key: entry.key,
    revision: entry.revision,
    created: entry.created.toISOString(),
    operation: entry.operation,
    delta: entry.delta,
    length: entry.length,
    value,
    encoding,
  };
  if ("isUpdate" in entry) out["isUpdate"] = (entry as { isUpdate: boolean }).isUpdate;
  return out;
}

/** Shortens long values in tables as natscli: first 15 ... last 15. */
export function shortValue(value: string): string {
  return value.length > 40 ? `${value.slice(0, 15)}...${value.slice(-15)}` : value;
}

/** A table with a title row, in the rounded style of natscli (go-pretty). Numbers align right. */
export function renderTable(title: string, headers: readonly string[], rows: readonly (readonly (string | number | boolean)[])[]): string {
  const cells = rows.map((row) => row.map((cell) => String(cell)));
  const numeric = headers.map((_, c) => rows.length > 0 && rows.every((row) => typeof row[c] === "number"));
  const widths = headers.map((h, c) => Math.max(h.length, ...cells.map((row) => (row[c] ?? "").length)));
  let inner = widths.reduce((sum, w) => sum + w + 3, -1);
  if (title.length + 2 > inner) {
    // Widen the last column so the title fits.
    widths[widths.length - 1]! += title.length + 2 - inner;
    inner = title.length + 2;
  }
  const line = (left: string, mid: string, right: string): string => left + widths.map((w) => "─".repeat(w + 2)).join(mid) + right;
  const row = (values: readonly string[], alignRight: readonly boolean[]): string =>
    "│" + values.map((v, c) => ` ${alignRight[c] ? v.padStart(widths[c]!) : v.padEnd(widths[c]!)} `).join("│") + "│";
  const titleLeft = Math.floor((inner - title.length) / 2);
  const out = [
    `╭${"─".repeat(inner)}╮`,
    `│${" ".repeat(titleLeft)}${title}${" ".repeat(inner - title.length - titleLeft)}│`,
    line("├", "┬", "┤"),
    row(headers, headers.map(() => false)),
    line("├", "┼", "┤"),
    ...cells.map((values) => row(values, numeric)),
    line("╰", "┴", "╯"),
  ];
  return out.join("\n");
}

/** Label/value rows with right-aligned labels, in sections (natscli's columns writer). */
export function renderColumns(heading: string, sections: readonly { title: string; rows: readonly [string, string][] }[]): string {
  const width = Math.max(0, ...sections.flatMap((s) => s.rows.map(([label]) => label.length)));
  const out = [heading, ""];
  for (const section of sections) {
    if (section.rows.length === 0) continue;
    out.push(`${section.title}:`, "");
    for (const [label, value] of section.rows) out.push(`${label.padStart(width + 2)}: ${value}`);
    out.push("");
  }
  return out.join("\n");
}

/** `nats kv info` / `nats kv add` output. */
export function formatStatus(status: KvStatus): string {
  const config: [string, string][] = [
    ["Bucket Name", status.bucket],
    ["History Kept", String(status.history)],
    ["Values Stored", String(status.values)],
    ["Compressed", String(status.compression)],
    ["Backing Store Kind", "cairn"],
  ];
  if (status.description) config.push(["Description", status.description]);
  config.push(
    ["Bucket Size", formatBytes(status.bytes)],
    ["Maximum Bucket Size", status.maxBytes < 0 ? "unlimited" : formatBytes(status.maxBytes)],
    ["Maximum Value Size", status.maxValueSize < 0 ? "unlimited" : formatBytes(status.maxValueSize)],
    ["Maximum Age", status.ttlMs <= 0 ? "unlimited" : formatDuration(status.ttlMs)],
    ["Per-Key TTL Supported", String(status.markerTtlMs > 0)],
  );
  if (status.markerTtlMs > 0) config.push(["Limit Marker TTL", formatDuration(status.markerTtlMs)]);
  config.push(
    ["Storage", status.storage === "memory" ? "Memory (replicated, not fsynced)" : "File"],
    ["Replicas", status.replicasRunning !== undefined && status.replicasRunning !== status.replicas ? `${status.replicas} (running on ${status.replicasRunning})` : String(status.replicas)],
    ["Revision", String(status.revision)],
  );
  for (const [name, value] of Object.entries(status.metadata)) config.push([`Metadata ${name}`, value]);
  const cluster: [string, string][] = [];
  if (status.leader !== null || status.replicasInfo.length > 0) {
    cluster.push(["Leader", status.leader ?? "none"]);
    for (const replica of status.replicasInfo) {
      if (replica.leader) continue;
      const state = [replica.node, replica.current ? "current" : "outdated"];
      if (replica.voter === false) state.push("joining");
      if (replica.lag > 1) state.push(`${replica.lag} operations behind`);
      else if (replica.lag === 1) state.push("1 operation behind");
      cluster.push(["Replica", state.join(", ")]);
    }
  }
  return renderColumns(`Information for Key-Value Store Bucket ${status.bucket}`, [
    { title: "Configuration", rows: config },
    { title: "Cluster Information", rows: cluster },
  ]);
}

/** `nats kv history` table. */
export function formatHistory(bucket: string, filter: string, entries: readonly KvEntry[]): string {
  return renderTable(
    `History for ${bucket} > ${filter}`,
    ["Key", "Revision", "Op", "Created", "Length", "Value"],
    entries.map((e) => [e.key, e.revision, e.operation, formatTimestamp(e.created), e.length, shortValue(printableValue(e.value))]),
  );
}

/** `nats kv ls` (buckets). */
export function formatBucketList(statuses: readonly KvStatus[]): string {
  if (statuses.length === 0) return "No Key-Value buckets found";
  const sorted = [...statuses].sort((a, b) => a.bytes - b.bytes || a.bucket.localeCompare(b.bucket));
  return renderTable(
    "Key-Value Buckets",
    ["Bucket", "Description", "Size", "Values", "Revision", "Replicas", "Leader"],
    sorted.map((s) => [s.bucket, s.description, formatBytes(s.bytes), s.values, s.revision, s.replicas, s.leader ?? "none"]),
  );
}

function isClusterStatus(value: unknown): value is WireClusterStatus {
  const v = value as Partial<WireClusterStatus> | null;
  return typeof v === "object" && v !== null && Array.isArray(v.nodes) && Array.isArray(v.groups);
}

/** `cairn cluster status`: nodes, then one row per member of each Raft group. Anything else as JSON. */
export function formatClusterStatus(status: unknown): string {
  if (!isClusterStatus(status)) return JSON.stringify(status, null, 2);
  const membership = status.membership;
  // What each node holds for clients (connections, watches), when the nodes report it.
  const clients = status.nodes.some((n) => n.clients !== undefined);
  const nodes = renderTable(
    `Cluster nodes (answered by ${status.node})`,
    ["Node", "URL", "Reachable", ...(membership ? ["Member"] : []), ...(clients ? ["Clients", "Watches"] : [])],
    status.nodes.map((n) => [
      n.id,
      n.url,
      n.reachable ? "yes" : "NO",
      ...(membership ? [membership.removed.includes(n.id) ? "removed" : "yes"] : []),
      ...(clients ? (n.clients ? [n.clients.connections, n.clients.watches] : ["-", "-"]) : []),
    ]),
  );
  const c = membership?.change;
  const what = c ? (c.type === "replicas" ? `replicas of bucket ${c.bucket} to ${c.replicas}` : `${c.type} ${c.nodeId}`) : "";
  const change = c ? `\n\nMembership change in progress: ${what}` : "";
  const rows: (string | number)[][] = [];
  for (const group of status.groups) {
    for (const m of group.members) {
      rows.push([group.group, group.leader ?? "none", group.term, m.node, m.role, m.commit, m.applied, m.lag]);
    }
  }
  const groups = renderTable("Raft groups", ["Group", "Leader", "Term", "Node", "Role", "Commit", "Applied", "Lag"], rows);
  return `${nodes}${change}\n\n${groups}`;
}

/** `cairn cluster remove|add <id>`: one line, then the members and removed nodes. */
export function formatMembershipChange(verb: "removed from" | "added to", id: string, membership: WireMembership): string {
  const removed = membership.removed.length > 0 ? membership.removed.join(", ") : "none";
  return `Node ${id} ${verb} the cluster\nMembers: ${membership.members.join(", ")}\nRemoved: ${removed}`;
}
