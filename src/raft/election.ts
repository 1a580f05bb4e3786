/**
 * Elections (etcd raft.go hup/campaign/poll and the MsgVote handling in Step): pre-vote, vote
 * requests and responses. Term handling, including the leader lease, happens before these run
 * (Raft.step).
 */
import { TRANSFER_CONTEXT } from "./messages.ts";
import { voteResult, type VoteResult } from "./quorum.ts";
import type { Raft } from "./raft.ts";
import type { Message, MessageType, NodeId } from "./types.ts";

type CampaignKind = "preElection" | "election" | "transfer";

export function hup(r: Raft, transfer: boolean): void {
  if (r.role === "leader") return;
  if (!r.promotable()) {
    if (r.lingerCampaigns <= 0) {
      r.logLine("not campaigning: not a voter");
      return;
    }
    r.lingerCampaigns--;
    r.logLine(`campaigning outside the voters to hand the log over (removed while handing off; ${r.lingerCampaigns} such campaigns left)`);
  }
  if (r.recovering) {
    if (r.voters.length === 1 && r.voters[0] === r.id && r.log.lastIndex() > 0) {
      // No one else holds this group's log: there is nobody to recover from, and what we kept (a
      // prefix of it: a torn tail was cut) is all there is. Waiting would only keep it down forever.
      endRecovery(r, "the only voter of its group: nobody to recover from; going on with the log it kept");
    } else {
      r.logLine("not campaigning: recovering (may have lost acknowledged state)");
      return;
    }
  }
  if (hasUnappliedConfChanges(r)) {
    // The membership we would campaign under is about to change (etcd does the same).
    r.logLine("not campaigning: committed conf changes not yet applied");
    return;
  }
  if (transfer) campaign(r, "transfer");
  else campaign(r, r.config.preVote ? "preElection" : "election");
}

function hasUnappliedConfChanges(r: Raft): boolean {
  const log = r.log;
  const lo = Math.max(log.applied + 1, log.firstIndex());
  const hi = Math.min(log.committed, log.lastIndex()) + 1;
  if (lo >= hi) return false;
  const entries = log.slice(lo, hi, Number.MAX_SAFE_INTEGER);
  for (const entry of entries) if (entry.type === "conf") return true;
  return false;
}

function campaign(r: Raft, kind: CampaignKind): void {
  let voteType: MessageType;
  let voteTerm: number;
  if (kind === "preElection") {
    r.becomePreCandidate();
    voteType = "preVote";
    voteTerm = r.term + 1; // the term we would campaign at; our own term is unchanged
  } else {
    r.becomeCandidate();
    voteType = "vote";
    voteTerm = r.term;
  }
  if (poll(r, r.id, true) === "won") {
    // Single voter: the election is won at once.
    if (kind === "preElection") campaign(r, "election");
    else r.becomeLeader();
    return;
  }
  const lastIndex = r.log.lastIndex();
  const lastTerm = r.log.lastTerm();
  const context = kind === "transfer" ? TRANSFER_CONTEXT : undefined;
  for (const id of r.voters) {
    if (id === r.id) continue;
    r.send(r.message(voteType, id, { term: voteTerm, index: lastIndex, logTerm: lastTerm, context }));
  }
  r.logLine(`campaigning (${kind}) at term ${voteTerm}`);
}

/** Records a vote and returns the election's state. Only the first response per voter counts. */
function poll(r: Raft, from: NodeId, granted: boolean): VoteResult {
  if (!r.votes.has(from)) r.votes.set(from, granted);
  return voteResult(r.voters, r.votes);
}

/** A vote or pre-vote response for the current (pre-)candidacy. */
export function handleVoteResponse(r: Raft, m: Message): void {
  const result = poll(r, m.from, !m.reject);
  if (result === "won") {
    if (r.role === "preCandidate") campaign(r, "election");
    else r.becomeLeader(); // its no-op goes out with the next ready() (needsBcast)
  } else if (result === "lost") {
    r.logLine(`lost the election (${m.type} rejected by a majority)`);
    r.becomeFollower(r.term, null);
  }
}

export function handleVoteRequest(r: Raft, m: Message): void {
  const pre = m.type === "preVote";
  const responseType: MessageType = pre ? "preVoteResp" : "voteResp";
  // We may grant when we already voted for this candidate, when we have neither voted nor know a
  // leader in this term, or for a pre-vote of a future term (pre-votes change nothing).
  // A recovering node grants nothing: it may have voted in this term, or acknowledged entries the
  // candidate lacks, and forgotten (see maybeEndRecovery).
  const canVote = !r.recovering && (r.vote === m.from || (r.vote === null && r.lead === null) || (pre && m.term > r.term));
  if (canVote && r.log.isUpToDate(m.index, m.logTerm)) {
    // A grant carries the request's term so that a pre-candidate (at term - 1) accepts it.
    r.send(r.message(responseType, m.from, { term: m.term }));
    if (!pre) {
      r.electionElapsed = 0;
      r.vote = m.from;
    }
  } else {
    r.send(r.message(responseType, m.from, { term: r.term, reject: true }));
  }
}

/**
 * Ends recovering mode once this node has caught up with the leader of its term T: `m` is an append
 * from that leader which our log now matches through `lastNewIndex`. Two conditions:
 *   - we hold every entry up to the leader's commit index (m.commit <= lastNewIndex), and
 *   - that commit index is an entry of term T. A leader's commit index covers everything committed
 *     before its term only once it has committed an entry of its own term (figure 8), so then we hold
 *     every entry that could have been committed with acknowledgements we have forgotten.
 * We may also have voted in T (or earlier) and forgotten it. Recording a vote for the leader of T
 * (unless we hold a vote already) makes us grant votes only in terms > T, restarts included: the
 * leader of T never asks for a vote in T again, so this vote adds to nobody's election.
 */
export function maybeEndRecovery(r: Raft, m: Message, lastNewIndex: number): void {
  if (!r.recovering || m.commit > lastNewIndex || r.log.term(m.commit) !== r.term) return;
  r.recovering = false;
  if (r.vote === null) r.vote = m.from;
  r.logLine(`recovered: caught up with leader ${m.from} to its commit index ${m.commit}; votes only in terms > ${r.term} from now on`);
}

/** The node learned it cannot have lost anything (e.g. the whole cluster is brand new). */
export function endRecovery(r: Raft, reason: string): void {
  if (!r.recovering) return;
  r.recovering = false;
  r.logLine(`recovering mode lifted: ${reason}`);
}
