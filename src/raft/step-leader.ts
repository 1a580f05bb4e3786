/**
 * The leader's side of replication (etcd stepLeader and the send helpers): handling appResp and
 * heartbeatResp, sending appends, heartbeats and snapshots under the progress/inflight limits,
 * ReadIndex confirmation and leadership transfer.
 */
import { assert } from "../shared/assert.ts";
import { entriesBytes } from "./storage.ts";
import type { Progress } from "./progress.ts";
import type { Raft } from "./raft.ts";
import type { Entry, Message, NodeId } from "./types.ts";
import { EMPTY_ENTRIES } from "./messages.ts";

export function stepLeader(r: Raft, m: Message): void {
  const pr = r.progress.get(m.from);
  switch (m.type) {
    case "appResp":
      if (pr === undefined) break;
      handleAppendResponse(r, pr, m);
      return;
    case "heartbeatResp":
      if (pr === undefined) break;
      handleHeartbeatResponse(r, pr, m);
      return;
    case "readIndex":
      if (m.context === undefined) break;
      handleReadIndexRequest(r, m.from, m.context);
      return;
    default:
      break;
  }
  r.logLine(`leader ignored ${m.type} from ${m.from}`);
}

function handleAppendResponse(r: Raft, pr: Progress, m: Message): void {
  if (m.index > r.log.lastIndex()) {
    r.logLine(`ignored appResp from ${m.from} for index ${m.index} beyond our last index`);
    return;
  }
  pr.recentActive = true;
  if (m.reject) {
    if (m.index === 0 && pr.state === "probe" && pr.next === 1) {
      // Only a blank (joining) node rejects an append after index 0: it knows no membership and
      // must start from a snapshot, which carries the configuration the log alone does not.
      sendSnapshot(r, m.from, pr);
      return;
    }
    // The answer to our latest probe says the follower's log now ends (or diverges) below what it
    // acknowledged in this term: it lost durable entries. maybeDecrTo then moves next below match.
    if (pr.state === "probe" && m.index === pr.next - 1 && m.rejectHint < pr.match) forgetLostMatch(r, pr, m);
    // Fast backtracking: skip every entry of a term the follower cannot have.
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0) nextProbe = r.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      if (pr.state === "replicate") pr.becomeProbe();
      maybeSendAppend(r, m.from, pr, true);
    }
    return;
  }
  // The response's index is the last index of the request it answers (not our nextIndex), so an
  // old or reordered response can only repeat a smaller match.
  const updated = pr.maybeUpdate(m.index);
  if (!updated && !(pr.match === m.index && (pr.state === "probe" || pr.state === "snapshot"))) return;
  if (pr.state === "probe") {
    pr.becomeReplicate();
  } else if (pr.state === "snapshot") {
    if (pr.match + 1 >= r.log.firstIndex() || pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    }
  } else {
    pr.inflights.freeLE(m.index);
  }
  if (!r.maybeCommit()) {
    // Keep the pipeline full: the window just opened.
    if (pr.state === "replicate") while (maybeSendAppend(r, m.from, pr, false));
    else maybeSendAppend(r, m.from, pr, false);
  }
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
    r.logLine(`sending timeoutNow to ${m.from}: it caught up`);
    sendTimeoutNow(r, m.from);
  }
}

/**
 * A follower lost entries it had acknowledged in this term (a wiped or truncated disk; it restarts
 * in recovering mode). Its old acknowledgements must not count toward commit any more, and it must
 * be caught up from where its log really ends (or by a snapshot): forget its match and probe.
 */
function forgetLostMatch(r: Raft, pr: Progress, m: Message): void {
  r.logLine(`${m.from} lost acknowledged entries (match ${pr.match}, its log hints ${m.rejectHint}): catching it up from there`);
  pr.match = 0;
}

function handleHeartbeatResponse(r: Raft, pr: Progress, m: Message): void {
  pr.recentActive = true;
  pr.msgAppFlowPaused = false;
  // A rejected heartbeat: the follower is recovering and asks for an append (which carries our commit
  // index), or its log lacks our commit index, which is never above its match: it lost entries.
  // Probe from its last index then.
  if (m.reject && m.rejectHint < pr.match && pr.state !== "snapshot") {
    forgetLostMatch(r, pr, m);
    pr.becomeProbe();
    pr.next = m.rejectHint + 1;
  }
  // Even with a full window this sends an (empty) append, so a follower whose appends were all
  // lost recovers (its rejection moves it to probe).
  if (pr.match < r.log.lastIndex() || pr.state === "probe" || m.reject) maybeSendAppend(r, m.from, pr, true);
  if (m.context === undefined || r.readOnly.size === 0) return;
  for (const request of r.readOnly.recvAck(m.from, m.context, r.voters, r.id)) respondToReadIndex(r, request.from, request.index, request.context);
}

/**
 * Sends the follower the entries it needs (or a snapshot if they are compacted). With
 * `sendIfEmpty` an empty append goes out too (probe, commit propagation). Returns whether a
 * message was sent.
 */
export function maybeSendAppend(r: Raft, to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
  if (pr.isPaused()) return false;
  const log = r.log;
  const prevIndex = pr.next - 1;
  const prevTerm = log.term(prevIndex);
  if (prevTerm === -1) return sendSnapshot(r, to, pr);
  const lastIndex = log.lastIndex();
  let entries: readonly Entry[] = EMPTY_ENTRIES;
  if (pr.next <= lastIndex && (pr.state !== "replicate" || !pr.inflights.full())) {
    entries = log.slice(pr.next, lastIndex + 1, r.config.messageBytesMax);
  }
  if (entries.length === 0 && !sendIfEmpty) return false;
  const commit = log.committed;
  r.send(r.message("app", to, { index: prevIndex, logTerm: prevTerm, entries, commit }));
  pr.sentEntries(entries.length, entries.length === 0 ? 0 : entriesBytes(entries));
  if (pr.sentCommit < commit) pr.sentCommit = commit;
  return true;
}

function sendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  if (!pr.recentActive) {
    r.logLine(`not sending snapshot to ${to}: not recently active`);
    return false;
  }
  const snapshot = r.log.snapshot();
  pr.becomeSnapshot(snapshot.metadata.index);
  r.logLine(`sending snapshot ${snapshot.metadata.index} to ${to}`);
  const m = r.message("snap", to, { index: snapshot.metadata.index, logTerm: snapshot.metadata.term });
  r.send({ ...m, snapshot });
  return true;
}

/**
 * Sends every follower what it lacks: in replicate state as many appends as the window allows; an
 * empty append where only the commit index would advance entries the follower has or is receiving.
 */
export function bcastAppend(r: Raft): void {
  const committed = r.log.committed;
  for (const [id, pr] of r.progress) {
    if (id === r.id) continue;
    let sent = false;
    while (maybeSendAppend(r, id, pr, false)) {
      sent = true;
      if (pr.state !== "replicate") break;
    }
    if (!sent && pr.sentCommit < committed && pr.sentCommit < pr.next - 1) maybeSendAppend(r, id, pr, true);
  }
}

export function bcastHeartbeat(r: Raft, context: Uint8Array | undefined): void {
  const committed = r.log.committed;
  for (const [id, pr] of r.progress) {
    if (id === r.id) continue;
    // Never tell a follower to commit past what it is known to hold: its log beyond match may differ.
    const commit = Math.min(pr.match, committed);
    r.send(r.message("heartbeat", id, { commit, context }));
  }
}

export function sendTimeoutNow(r: Raft, to: NodeId): void {
  // The transferee holds our whole log: a lingering ex-voter is no longer needed (Raft.lingerCampaigns).
  if (!r.isVoter(r.id)) r.lingerCampaigns = 0;
  r.send(r.message("timeoutNow", to, {}));
}

/**
 * ReadIndex (thesis §6.4): the read index is the commit index once an entry of this term is
 * committed; it is released only after a heartbeat round confirms leadership with a quorum.
 */
export function handleReadIndexRequest(r: Raft, from: NodeId, context: Uint8Array): void {
  assert(r.role === "leader", "readIndex: not leader");
  if (!r.committedEntryInCurrentTerm()) {
    r.queuePendingReadIndex(from, context);
    return;
  }
  const index = r.log.committed;
  if (r.voters.length === 1 && r.voters[0] === r.id) {
    respondToReadIndex(r, from, index, context);
    return;
  }
  const heartbeatContext = r.readOnly.add({ index, context, from });
  if (heartbeatContext === null) {
    r.logLine("dropped read index request: too many pending");
    return;
  }
  bcastHeartbeat(r, heartbeatContext);
}

function respondToReadIndex(r: Raft, from: NodeId, index: number, context: Uint8Array): void {
  if (from === r.id) r.readStates.push({ index, context });
  else r.send(r.message("readIndexResp", from, { index, context }));
}

/** The node reports it could not reach `id` (transport failure): stop pipelining to it. */
export function reportUnreachable(r: Raft, id: NodeId): void {
  const pr = r.progress.get(id);
  if (r.role !== "leader" || pr === undefined) return;
  if (pr.state === "replicate") pr.becomeProbe();
}

/** The node reports the outcome of sending a snapshot to `id`. */
export function reportSnapshot(r: Raft, id: NodeId, ok: boolean): void {
  const pr = r.progress.get(id);
  if (r.role !== "leader" || pr === undefined || pr.state !== "snapshot") return;
  if (!ok) pr.pendingSnapshot = 0;
  pr.becomeProbe();
  // Wait for the follower's response (or a heartbeat round) before the next append.
  pr.msgAppFlowPaused = true;
}
