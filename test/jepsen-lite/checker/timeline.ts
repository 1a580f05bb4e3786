/**
 * A self-contained HTML page (inline SVG, no scripts, no external files) that shows one key's
 * operations around an anomaly, so a person can see it: one lane per process, each operation a bar
 * from invocation to completion (unknown outcomes open-ended and dashed), coloured by outcome, the
 * operations that could not be linearized outlined in red, and the position of each operation in the
 * longest linearizable prefix written above it.
 */
import { writeFileSync } from "node:fs";
import { CONFLICT_ERROR_CODES, describeOp, type Op } from "./history.ts";
import type { KeyFailure } from "./linearizability.ts";

export interface TimelineOptions {
  title?: string;
  /** From checkKey/checkLinearizability: selects the operations around the anomaly and highlights it. */
  failure?: KeyFailure;
  /** More op ids to outline. */
  highlight?: readonly number[];
  /** Operations of the linearized prefix to show before the anomaly (default 30). */
  contextOps?: number;
  /** At most this many operations drawn (default 400), the ones nearest the anomaly. */
  maxOps?: number;
}

const WIDTH_PX = 1100;
const LABEL_PX = 70;
const ROW_PX = 30;
const BAR_PX = 18;
const AXIS_PX = 40;
const COLORS = { ok: "#9ccc65", conflict: "#ffb74d", refused: "#bdbdbd", unknown: "#b39ddb" } as const;

export function writeTimeline(path: string, ops: readonly Op[], options: TimelineOptions = {}): void {
  writeFileSync(path, renderTimeline(ops, options));
}

export function renderTimeline(ops: readonly Op[], options: TimelineOptions = {}): string {
  const failure = options.failure;
  const shown = selectOps(ops, options);
  const anomaly = new Set<number>(options.highlight ?? []);
  if (failure !== undefined) for (const op of failure.unlinearizable) anomaly.add(op.id);
  const order = new Map<number, number>();
  failure?.linearizedPrefix.forEach((op, i) => order.set(op.id, i + 1));

  // The time window: the anomaly and its context (bars from earlier are clipped at the left edge).
  const focus = failure === undefined ? shown : focusOps(failure, options);
  const t0 = Math.min(...focus.map((op) => op.invokeMs));
  const ends = shown.filter((op) => op.completeMs !== null).map((op) => op.completeMs!);
  const tEnd = Math.max(t0 + 1, ...ends.filter((t) => t >= t0), ...shown.map((op) => op.invokeMs));
  const span = (tEnd - t0) * 1.08 || 1; // room on the right for open-ended bars
  const x = (t: number): number => LABEL_PX + (Math.max(t - t0, 0) / span) * WIDTH_PX;

  // Rows: one lane per process, split into sub-rows where its operations overlap.
  const lanes = new Map<number, Op[][]>();
  for (const op of [...shown].sort((a, b) => a.invokeMs - b.invokeMs)) {
    const rows = lanes.get(op.process) ?? [];
    const end = (o: Op): number => o.completeMs ?? Infinity;
    let row = rows.find((r) => end(r[r.length - 1]!) < op.invokeMs);
    if (row === undefined) rows.push((row = []));
    row.push(op);
    lanes.set(op.process, rows);
  }
  const parts: string[] = [];
  let y = AXIS_PX;
  for (const process of [...lanes.keys()].sort((a, b) => a - b)) {
    const rows = lanes.get(process)!;
    parts.push(`<text x="4" y="${y + BAR_PX - 4}" class="lane">p${process}</text>`);
    parts.push(`<line x1="0" x2="${LABEL_PX + WIDTH_PX}" y1="${y - 4}" y2="${y - 4}" class="sep"/>`);
    for (const row of rows) {
      for (const op of row) parts.push(bar(op, x, y, LABEL_PX + WIDTH_PX, anomaly.has(op.id), order.get(op.id), failure));
      y += ROW_PX;
    }
  }
  const height = y + 10;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${LABEL_PX + WIDTH_PX + 10}" height="${height}">
${axis(t0, span, x, height)}
${parts.join("\n")}
</svg>`;
  const title = options.title ?? `key ${JSON.stringify(shown[0]?.key ?? "")}`;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
svg text { font: 11px ui-monospace, monospace; }
svg text.lane { font-weight: bold; }
svg .sep { stroke: #eee; }
svg .tick { stroke: #ddd; }
svg .order { fill: #555; font-size: 9px; }
svg .bad { fill: #d32f2f; font-size: 13px; font-weight: bold; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; border: 1px solid #999; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; }
</style></head><body>
<h2>${escape(title)}</h2>
<p class="legend"><span style="background:${COLORS.ok}">ok</span><span style="background:${COLORS.conflict}">failed (CAS conflict)</span><span style="background:${COLORS.refused}">refused (no effect)</span><span style="background:${COLORS.unknown}">unknown outcome (open-ended)</span><span style="border:3px solid #d32f2f">cannot be linearized</span> #n = position in the longest linearizable prefix</p>
${svg}
${failure === undefined ? "" : explain(failure)}
<p>${shown.length} of ${ops.length} operations shown.</p>
</body></html>
`;
}

/** The anomaly, the tail of the linearized prefix, and every op overlapping them in time. */
function selectOps(ops: readonly Op[], options: TimelineOptions): Op[] {
  const maxOps = options.maxOps ?? 400;
  const failure = options.failure;
  // Reads that never completed say nothing: leave them out.
  const relevant = ops.filter((op) => op.type !== "get" || op.outcome === "ok");
  if (failure === undefined) return [...relevant].sort((a, b) => a.invokeMs - b.invokeMs).slice(-maxOps);
  const core = focusOps(failure, options);
  const from = Math.min(...core.map((op) => op.invokeMs));
  const to = Math.max(...[...failure.unlinearizable, failure.blockedBy].map((op) => op.completeMs ?? op.invokeMs));
  const overlapping = relevant.filter((op) => op.invokeMs <= to && (op.completeMs ?? Infinity) >= from);
  const chosen = new Map<number, Op>();
  for (const op of [...core, ...overlapping]) chosen.set(op.id, op);
  const anchor = failure.blockedBy.invokeMs;
  return [...chosen.values()]
    .sort((a, b) => Math.abs(a.invokeMs - anchor) - Math.abs(b.invokeMs - anchor))
    .slice(0, maxOps)
    .sort((a, b) => a.invokeMs - b.invokeMs);
}

/** The anomaly plus the end of the linearized prefix. */
function focusOps(failure: KeyFailure, options: TimelineOptions): Op[] {
  const context = failure.linearizedPrefix.slice(-(options.contextOps ?? 30));
  return [...failure.unlinearizable, failure.blockedBy, ...(failure.witnesses ?? []), ...context];
}

function bar(
  op: Op,
  x: (t: number) => number,
  y: number,
  rightPx: number,
  highlighted: boolean,
  position: number | undefined,
  failure: KeyFailure | undefined,
): string {
  const x0 = x(op.invokeMs);
  const clipped = x0 <= LABEL_PX && op.invokeMs < Number.MAX_VALUE;
  const open = op.completeMs === null;
  const x1 = open ? rightPx : Math.max(x(op.completeMs!), x0 + 3);
  const kind =
    op.outcome === "ok"
      ? "ok"
      : op.outcome === "unknown"
        ? "unknown"
        : op.errorCode !== undefined && CONFLICT_ERROR_CODES.has(op.errorCode)
          ? "conflict"
          : op.errorCode === undefined || ["TIMEOUT", "CONNECTION_CLOSED", "INTERNAL"].includes(op.errorCode)
            ? "unknown"
            : "refused";
  const stroke = highlighted ? `stroke="#d32f2f" stroke-width="3"` : `stroke="#666" stroke-width="1"`;
  const dash = kind === "unknown" ? ` stroke-dasharray="5 3"` : "";
  const blocked = failure?.blockedBy.id === op.id ? " (returned first: blocks the search)" : "";
  const where = position === undefined ? "" : `\nposition ${position} in the longest linearizable prefix`;
  const problem = highlighted ? "\nCANNOT BE LINEARIZED after the prefix" : "";
  const tooltip = `${describeOp(op)}${blocked}${problem}${where}\ninvoke ${op.invokeMs} ms, complete ${op.completeMs ?? "never"}${op.node !== undefined ? `, node ${op.node}` : ""}`;
  const label = (clipped ? "◀ " : "") + shortLabel(op);
  const fits = Math.floor((x1 - x0 - 6) / 6.6);
  const text = fits >= 3 ? (label.length > fits ? `${label.slice(0, fits - 1)}…` : label) : "";
  const badge =
    highlighted
      ? `<text x="${x0.toFixed(1)}" y="${y - 1}" class="bad">✗</text>`
      : position === undefined || x1 - x0 < 24
        ? ""
        : `<text x="${(x1 - 2).toFixed(1)}" y="${y - 1}" class="order" text-anchor="end">#${position}</text>`;
  return `<g><title>${escape(tooltip)}</title><rect x="${x0.toFixed(1)}" y="${y}" width="${(x1 - x0).toFixed(1)}" height="${BAR_PX}" rx="3" fill="${COLORS[kind]}" ${stroke}${dash}/>${
    text === "" ? "" : `<text x="${(x0 + 3).toFixed(1)}" y="${y + BAR_PX - 5}">${escape(text)}</text>`
  }${badge}</g>`;
}

function shortLabel(op: Op): string {
  const value = (v: string | null | undefined): string => (v === null || v === undefined ? "null" : JSON.stringify(v));
  const rev = (r: number | undefined): string => (r === undefined ? "" : ` r${r}`);
  const expected = op.expectedRevision === undefined ? "" : ` @${op.expectedRevision}`;
  const args = op.type === "get" ? "" : op.value !== undefined ? ` ${value(op.value)}${expected}` : expected;
  let result: string;
  if (op.outcome === "ok") result = op.type === "get" ? `${value(op.readValue)}${rev(op.revision)}` : rev(op.revision).trim();
  else if (op.outcome === "unknown") result = "?";
  else result = `✗${op.errorCode ?? ""}`;
  return `${op.type === "delete" ? "del" : op.type}${args} → ${result}`;
}

function axis(t0: number, span: number, x: (t: number) => number, height: number): string {
  const step = niceStep(span / 8);
  const out: string[] = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t0 + span; t += step) {
    out.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="20" y2="${height}" class="tick"/>`);
    out.push(`<text x="${(x(t) + 2).toFixed(1)}" y="14">${Number(t.toFixed(3))} ms</text>`);
  }
  return out.join("\n");
}

function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function explain(failure: KeyFailure): string {
  const list = (ops: readonly Op[]): string => ops.map((op) => escape(describeOp(op))).join("\n") || "(none)";
  const tail = failure.linearizedPrefix.slice(-20);
  return `<h3>Why key ${escape(JSON.stringify(failure.key))} is not linearizable</h3>
<p><b>${escape(failure.reason)}</b></p>
<p>The longest linearizable prefix has ${failure.linearizedPrefix.length} operations. After it the key is
<code>${escape(JSON.stringify(failure.stateAfterPrefix))}</code>, and none of the operations that must come
next is legal. <b>${escape(describeOp(failure.blockedBy))}</b> returned first, so one of these had to be next:</p>
<pre>${list(failure.unlinearizable)}</pre>
<p>Operations of unknown outcome that could also have come next (none helps):</p>
<pre>${list(failure.pendingUnknown)}</pre>
<p>The end of the prefix, in linearization order:</p>
<pre>${list(tail)}</pre>`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
