/**
 * Follower and (pre-)candidate message handling (etcd stepFollower / stepCandidate): appends with
 * conflict detection, heartbeats, snapshot install, transfer and read-index responses.
 */
import { handleVoteResponse, maybeEndRecovery } from "./election.ts";
import type { Raft } from "./raft.ts";
import type { Message, Snapshot } from "./types.ts";

/** A leader of our term spoke: it leads, so a lingering ex-voter is no longer needed (Raft.lingerCampaigns). */
function heardLeader(r: Raft, m: Message): void {
  r.electionElapsed = 0;
  r.lead = m.from;
  r.lingerCampaigns = 0;
}

export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case "app":
      heardLeader(r, m);
      handleAppendEntries(r, m);
      return;
    case "heartbeat":
      heardLeader(r, m);
      handleHeartbeat(r, m);
      return;
    case "snap":
      heardLeader(r, m);
      handleSnapshot(r, m);
      return;
    case "timeoutNow":
      r.logLine(`campaigning on timeoutNow from ${m.from}`);
      r.hup(true);
      return;
    case "readIndexResp":
      if (m.context === undefined) break;
      r.readStates.push({ index: m.index, context: m.context });
      return;
    default:
      break;
  }
  r.logLine(`follower ignored ${m.type} from ${m.from}`);
}

export function stepCandidate(r: Raft, m: Message): void {
  switch (m.type) {
    case "app":
    case "heartbeat":
    case "snap":
      // A leader exists for our term: it won, we lost.
      r.becomeFollower(m.term, m.from);
      stepFollower(r, m);
      return;
    case "voteResp":
      if (r.role === "candidate") handleVoteResponse(r, m);
      return;
    case "preVoteResp":
      if (r.role === "preCandidate") handleVoteResponse(r, m);
      return;
    default:
      r.logLine(`${r.role} ignored ${m.type} from ${m.from}`);
  }
}

function handleAppendEntries(r: Raft, m: Message): void {
  const log = r.log;
  if (r.isBlank()) {
    // A joining node knows no membership: it needs the leader's snapshot first (see stepLeader).
    r.send(r.message("appResp", m.from, { index: m.index, reject: true }));
    return;
  }
  if (m.index < log.committed) {
    // Everything up to our commit index matches the leader: tell it where we are. (This also keeps
    // any request from overwriting a committed entry.)
    r.send(r.message("appResp", m.from, { index: log.committed }));
    return;
  }
  const lastNewIndex = log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNewIndex >= 0) {
    // Acknowledge the request's own last index, never our lastIndex (which may hold more).
    r.send(r.message("appResp", m.from, { index: lastNewIndex }));
    if (r.recovering) maybeEndRecovery(r, m, lastNewIndex);
    return;
  }
  // Reject with a hint: the largest index <= the probe whose term is <= the probe's term, so the
  // leader can skip a whole term of conflicting entries per round trip.
  const hint = log.findConflictByTerm(Math.min(m.index, log.lastIndex()), m.logTerm);
  r.send(r.message("appResp", m.from, { index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term }));
}

function handleHeartbeat(r: Raft, m: Message): void {
  const log = r.log;
  if (m.commit <= log.lastIndex()) {
    log.commitTo(m.commit);
    // Recovering ends only on an append, which carries the leader's true commit index (a heartbeat's is
    // capped at our match): ask for one by rejecting, with our last index as the hint.
    if (r.recovering) r.send(r.message("heartbeatResp", m.from, { context: m.context, reject: true, rejectHint: log.lastIndex() }));
    else r.send(r.message("heartbeatResp", m.from, { context: m.context }));
    return;
  }
  // A heartbeat never carries a commit index beyond what we acknowledged in this term, so we lost
  // acknowledged entries (a wiped or truncated disk). Say so (reject, with our last index as the
  // hint): the leader then stops counting our old acknowledgements and catches us up, also when
  // the group is idle and no append would reveal it.
  r.logLine(`heartbeat commit ${m.commit} beyond last index ${log.lastIndex()}: acknowledged entries were lost here`);
  r.send(r.message("heartbeatResp", m.from, { context: m.context, reject: true, rejectHint: log.lastIndex() }));
}

function handleSnapshot(r: Raft, m: Message): void {
  const snapshot = m.snapshot!;
  if (restore(r, snapshot)) {
    r.logLine(`restored snapshot ${snapshot.metadata.index} term ${snapshot.metadata.term}`);
    r.send(r.message("appResp", m.from, { index: r.log.lastIndex() }));
  } else {
    r.send(r.message("appResp", m.from, { index: r.log.committed }));
  }
}

/** Installs `snapshot` unless it is stale or our log already matches it. Returns whether installed. */
function restore(r: Raft, snapshot: Snapshot): boolean {
  const { index, term, confState } = snapshot.metadata;
  const log = r.log;
  // A joining node takes even an index-0 snapshot: it carries the membership it lacks.
  const joining = r.isBlank() && confState.voters.length > 0;
  if (!joining) {
    if (index <= log.committed) return false; // older than what we know is committed
    if (log.matchTerm(index, term)) {
      // Our log already has the snapshot's last entry: keep the entries after it, just commit.
      log.commitTo(index);
      return false;
    }
  }
  log.restore(snapshot);
  r.setConf(confState);
  return true;
}
