/**
 * Message helpers: shape validation of peer input (the core never trusts a decoder), and the
 * marker a transfer election puts in its vote requests.
 */
import type { Entry, Message, MessageType, Snapshot } from "./types.ts";

/**
 * `context` of a "vote" sent by a leadership-transfer election (after "timeoutNow"): voters grant it
 * even while they hear from a leader (the leader asked for it), like etcd's campaignTransfer.
 */
export const TRANSFER_CONTEXT: Uint8Array = new Uint8Array([0x74, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72]); // "transfer"

export const EMPTY_ENTRIES: readonly Entry[] = Object.freeze([]) as readonly Entry[];

const MESSAGE_TYPES: ReadonlySet<string> = new Set<MessageType>([
  "app",
  "appResp",
  "heartbeat",
  "heartbeatResp",
  "vote",
  "voteResp",
  "preVote",
  "preVoteResp",
  "snap",
  "timeoutNow",
  "readIndex",
  "readIndexResp",
]);

function isIndex(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function isTransferVote(m: Message): boolean {
  return m.context !== undefined && bytesEqual(m.context, TRANSFER_CONTEXT);
}

/**
 * Why `m` is malformed, or null when it is well formed. Checks every field's type and range and,
 * for "app", that the entries are contiguous after `index` with terms that never decrease, are at
 * least `logTerm` and at most the message term (what any correct leader sends).
 */
export function malformedReason(m: unknown): string | null {
  if (typeof m !== "object" || m === null) return "not an object";
  const msg = m as Record<string, unknown>;
  if (typeof msg["type"] !== "string" || !MESSAGE_TYPES.has(msg["type"])) return "unknown type";
  if (!isId(msg["from"]) || !isId(msg["to"])) return "bad from/to";
  if (!isIndex(msg["term"]) || !isIndex(msg["logTerm"]) || !isIndex(msg["index"])) return "bad term/logTerm/index";
  if (!isIndex(msg["commit"]) || !isIndex(msg["rejectHint"])) return "bad commit/rejectHint";
  if (typeof msg["reject"] !== "boolean") return "bad reject";
  if (msg["context"] !== undefined && !(msg["context"] instanceof Uint8Array)) return "bad context";
  const type = msg["type"];
  if (type === "app" || type === "vote" || type === "preVote") {
    // Terms start at 1: index 0 has term 0 and only index 0 does; nothing is above the sender's term.
    if ((msg["index"] === 0) !== (msg["logTerm"] === 0)) return "logTerm does not fit index";
    if ((msg["logTerm"] as number) > (msg["term"] as number)) return "logTerm above term";
  }
  const entries = msg["entries"];
  if (!Array.isArray(entries)) return "bad entries";
  if (entries.length > 0) {
    if (msg["type"] !== "app") return "entries on a non-app message";
    let prevTerm = msg["logTerm"] as number;
    const base = msg["index"] as number;
    const term = msg["term"] as number;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Record<string, unknown> | null;
      if (typeof e !== "object" || e === null) return "bad entry";
      if (e["index"] !== base + 1 + i) return "entries not contiguous";
      if (!isIndex(e["term"]) || (e["term"] as number) < prevTerm || (e["term"] as number) > term) return "bad entry term";
      if (e["type"] !== "normal" && e["type"] !== "conf") return "bad entry type";
      if (!(e["data"] instanceof Uint8Array)) return "bad entry data";
      prevTerm = e["term"] as number;
    }
  }
  if (msg["snapshot"] !== undefined) {
    const reason = malformedSnapshotReason(msg["snapshot"]);
    if (reason !== null) return reason;
    const meta = (msg["snapshot"] as Snapshot).metadata;
    if (meta.term > (msg["term"] as number) || (meta.index === 0) !== (meta.term === 0)) return "snapshot term does not fit";
  }
  if (msg["type"] === "snap" && msg["snapshot"] === undefined) return "snap without snapshot";
  return null;
}

function malformedSnapshotReason(value: unknown): string | null {
  if (typeof value !== "object" || value === null) return "bad snapshot";
  const snap = value as Partial<Snapshot>;
  if (!(snap.data instanceof Uint8Array)) return "bad snapshot data";
  const meta = snap.metadata as unknown as Record<string, unknown> | undefined;
  if (typeof meta !== "object" || meta === null) return "bad snapshot metadata";
  if (!isIndex(meta["index"]) || !isIndex(meta["term"])) return "bad snapshot index/term";
  const conf = meta["confState"] as Record<string, unknown> | undefined;
  if (typeof conf !== "object" || conf === null) return "bad snapshot confState";
  for (const key of ["voters", "learners"]) {
    const ids = conf[key];
    if (!Array.isArray(ids) || !ids.every(isId)) return `bad snapshot ${key}`;
  }
  return null;
}
