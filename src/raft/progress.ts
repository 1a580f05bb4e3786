/**
 * The leader's view of one follower (etcd tracker/progress.go).
 *
 * - probe: the leader does not know where the follower's log matches; it sends one "app" per
 *   heartbeat interval and waits for the answer before sending more.
 * - replicate: the logs match up to `match`; the leader streams entries optimistically, bounded by
 *   the inflight window.
 * - snapshot: the follower needs a snapshot; nothing else is sent until it is acknowledged or
 *   reported (reportSnapshot).
 */
import { assert } from "../shared/assert.ts";
import { Inflights } from "./inflights.ts";

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  /** Highest index known to be durable in the follower's log. Invariant: match < next. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = "probe";
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Probe state: one message sent, wait for a response or a heartbeat response. */
  msgAppFlowPaused = false;
  /** Snapshot state: leader ticks since the snapshot was sent (see SNAPSHOT_TIMEOUT_ELECTIONS). */
  snapshotElapsed = 0;
  /** Highest commit index sent to this follower; avoids empty appends that bump nothing. */
  sentCommit = 0;
  readonly inflights: Inflights;

  constructor(
    next: number,
    inflightMessagesMax: number,
    inflightBytesMax: number,
    public isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(inflightMessagesMax, inflightBytesMax);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
    this.snapshotElapsed = 0;
    this.next = snapshotIndex + 1;
    this.sentCommit = snapshotIndex;
  }

  /** Records an acknowledgement of `index`. Returns false if it was stale (<= match). */
  maybeUpdate(index: number): boolean {
    if (index <= this.match) return false;
    this.match = index;
    if (this.next < index + 1) this.next = index + 1;
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * Handles a rejection of the "app" whose previous index was `rejected`; `matchHint` is the leader's
   * estimate (from the follower's hint) of where the logs may match. Returns false if the rejection
   * is stale (answers a request that no longer matters).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      // Rejections below match answer old requests: the follower has since accepted more.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      this.sentCommit = Math.min(this.sentCommit, this.next - 1);
      return true;
    }
    // In probe state only the answer to the latest probe (previous index next-1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Accounts an "app" carrying `entries` entries of `bytes` bytes (sent at next). */
  sentEntries(entries: number, bytes: number): void {
    if (this.state === "replicate") {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === "probe") {
      this.msgAppFlowPaused = true;
    } else {
      assert(false, `progress: sending entries in state ${this.state}`);
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.msgAppFlowPaused;
      case "replicate":
        return this.msgAppFlowPaused;
      case "snapshot":
        return true;
    }
  }
}
