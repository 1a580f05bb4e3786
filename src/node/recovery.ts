/**
 * Start-up safety for a node that may have lost durable state (DESIGN.md: "it never wins an election
 * with damaged data"). Damage is refused elsewhere (the log store throws CORRUPT_DATA); this file
 * handles LOSS, which cannot be told apart from "never had it":
 *   (a) the store's marker file is there but LevelDB holds nothing (log store origin "lost");
 *   (b) a torn tail was truncated on open or on a group's load (we cannot know whether the lost write
 *       had been fsynced and acknowledged, e.g. when someone cut the file);
 *   (c) an empty data directory (origin "new"): a brand-new node, or one whose directory was deleted
 *       while the rest of the cluster kept its history.
 * Any of these starts a recovery EPISODE, recorded durably before any group opens. While it lasts, the
 * groups it covers run in the Raft core's recovering mode (RaftConfig.recovering): no campaigns, no votes
 * or pre-votes, until the group has caught up with a leader of term T to a commit index of term T; it
 * then votes only in terms > T. Which groups an episode covers:
 *   - the meta group, until it has recovered; its commit index at that moment is the episode's
 *     BOUNDARY: every bucket this node could have hosted before the loss was created at a meta index
 *     committed before the loss, so at or below the boundary (the recovery point covers everything
 *     committed before its term);
 *   - every bucket group created at a meta index <= boundary (all of them while the boundary is unknown),
 *     until that group has recovered (recorded per group); buckets created later are new to everyone;
 *   - a group whose load truncated a torn tail.
 * A brand-new cluster has no leader to recover from. So while the meta group has not recovered and this
 * node's meta log is empty, a probe asks EVERY other configured member for its meta group: if all of them
 * answer term 0 with an empty log, no leader ever existed, nothing this node had (if anything) can have
 * been acknowledged or counted as a vote by anyone, and the episode ends. All, not a quorum: with a
 * quorum, a forgotten vote for a candidate outside the answering quorum could elect two leaders in one
 * term. So the very first start of a cluster waits until every configured node has answered once; any
 * answer with history ends the probe and the node recovers from the leader instead. Pre-vote keeps the
 * first nodes to finish from raising anyone's term before the others have asked (recovering nodes refuse
 * pre-votes). The rule assumes one node at a time loses its state: two wiped voters of a 3-voter group
 * are beyond what any quorum system survives. A group this node is the only voter of has nobody to
 * recover from: with a log left (a torn tail cut) it goes on with it (the Raft core lifts the mode when
 * it campaigns); with nothing left it stays down (an R1 bucket whose node lost its disk). A single-node
 * cluster with an empty directory passes the probe (no other member) and starts as new.
 *
 * Durable records (node metadata of the log store): "recovery" = the current episode (or none);
 * "recovered:<group>" = the episode in which that group recovered.
 */
import { createHash, randomBytes } from "node:crypto";
import { CairnError } from "../shared/errors.ts";
import type { LogStore } from "./log-store.ts";
import type { Logger } from "./logger.ts";
import type { PeerTransport } from "./transport.ts";

/** What RaftHost asks when it opens a group, and tells when a recovering group has recovered. */
export interface RecoveryPolicy {
  /**
   * Whether the group must start in recovering mode. Resolves only once that decision is durable. Called
   * after the group's load (a torn tail that load truncated is in store.repairs).
   */
  recovering(group: string): Promise<boolean>;
  /** The group's core left recovering mode and the hard state recording it is durable. */
  onRecovered(group: string, commit: number): void;
  /**
   * The group's load failed with CORRUPT_DATA. Resolves true when the damage is explained by a loss this
   * node already recovers from (then the group is recorded as lost and its state may be discarded).
   */
  lostOnLoad(group: string, error: Error): Promise<boolean>;
}

/** The hooks the probe needs from the running node (kept narrow so tests can fake them). */
export interface RecoveryHost {
  /** This node's own meta group, null before it is open. */
  metaStatus(): { term: number; lastIndex: number } | null;
  /** Lift recovering mode in every open group (and campaign where a bootstrap asked for it). */
  endRecovery(reason: string): void;
}

interface EpisodeRecord {
  readonly episode: string | null;
  readonly reason: string;
  readonly since: string;
  /** Meta commit index when the meta group recovered; null until then. */
  readonly boundary: number | null;
  /** Groups forced into the episode by a torn tail found when they were loaded. */
  readonly groups: readonly string[];
}

const RECORD_KEY = "recovery";
const META_GROUP = "meta";
const META_KEY_BYTES_MAX = 200; // LOG_STORE_LIMITS.metaKeyBytesMax
/** The probe's wait between rounds: from PROBE_DELAY_MS_MIN, doubling, at most PROBE_DELAY_MS_MAX. */
export const PROBE_DELAY_MS_MIN = 50;
export const PROBE_DELAY_MS_MAX = 1000;
/** How long one probe round waits for each peer's answer. */
export const PROBE_REQUEST_TIMEOUT_MS = 1000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bucket groups are named "b:<bucket>:<meta index of its creation>" (meta.ts); null when not. */
export function creationIndexOf(group: string): number | null {
  const match = /^b:.*:(\d+)$/.exec(group);
  if (!match) return null;
  const index = Number(match[1]);
  return Number.isSafeInteger(index) ? index : null;
}

function recoveredKey(group: string): string {
  const key = `recovered:${group}`;
  return Buffer.byteLength(key, "utf8") <= META_KEY_BYTES_MAX ? key : `recovered#${createHash("sha256").update(group).digest("hex")}`;
}

export class NodeRecovery implements RecoveryPolicy {
  #record: EpisodeRecord;
  /** Groups known to have recovered in the current episode. */
  readonly #recovered = new Set<string>();
  #closed = false;
  /** This start truncated a torn tail of the LevelDB log: the last writes, whatever they were, are gone. */
  #tornOnOpen = false;
  #probe: Promise<void> | null = null;
  #wake: (() => void) | null = null;

  private constructor(
    private readonly store: LogStore,
    private readonly logger: Logger,
    record: EpisodeRecord,
  ) {
    this.#record = record;
  }

  /**
   * Reads the episode record and starts a new episode when the store was just found lost, new, or
   * repaired (case a, c, b above). Call after the store is open and before any group is opened.
   */
  static async open(store: LogStore, options: { nodeId: string; logger: Logger }): Promise<NodeRecovery> {
    const stored = await readRecord(store);
    let reason: string | null = null;
    if (store.origin === "lost") reason = `the data directory lost its log store (${store.repairs.join("; ")})`;
    else if (store.origin === "new") reason = "the data directory is empty (a new node, or one whose data was deleted)";
    else if (store.repairs.length > 0) reason = `torn tail(s) truncated on open: ${store.repairs.join("; ")}`;
    const recovery = new NodeRecovery(store, options.logger, stored);
    recovery.#tornOnOpen = store.origin === "existing" && store.repairs.length > 0;
    if (reason !== null) {
      await recovery.#begin(reason, []);
    } else if (stored.episode !== null) {
      options.logger.warn(`node ${options.nodeId} is still recovering lost state: ${stored.reason}`, { since: stored.since, boundary: stored.boundary });
    }
    return recovery;
  }

  /** The current episode (null when none) and what it covers, for status and tests. */
  get state(): { episode: string | null; reason: string; boundary: number | null } {
    const r = this.#record;
    return { episode: r.episode, reason: r.reason, boundary: r.boundary };
  }

  async recovering(group: string): Promise<boolean> {
    const tornOnLoad = this.store.repairs.some((note) => note.startsWith(`group ${group}: `));
    const r = this.#record;
    if (tornOnLoad && !r.groups.includes(group)) {
      // Recorded before the group opens: after a restart the truncated tail is gone and says nothing.
      // A new episode for this group alone (boundary 0: no other bucket), unless it is the meta group.
      if (r.episode === null) await this.#begin(`group ${group}: a torn tail was truncated on load`, [group], group === META_GROUP ? null : 0);
      else await this.#write({ ...r, groups: [...r.groups, group] });
      return true;
    }
    if (r.episode === null) return false;
    if (group === META_GROUP && !r.groups.includes(group)) return r.boundary === null;
    if (this.#recovered.has(group) || (await this.#readRecovered(group)) === r.episode) return false;
    if (r.groups.includes(group)) return true;
    const created = creationIndexOf(group);
    return r.boundary === null || created === null || created <= r.boundary;
  }

  async lostOnLoad(group: string, error: Error): Promise<boolean> {
    // The lost tail may have held the write that pointed the group at its newest snapshot file; the
    // file the surviving state points at was deleted once that write was durable. Nothing else a lost
    // tail explains: other damage still refuses.
    if (!this.#tornOnOpen || !/snapshot file .* is missing/.test(error.message)) return false;
    const r = this.#record;
    if (r.episode === null) await this.#begin(`group ${group}: ${error.message}`, [group], group === META_GROUP ? null : 0);
    else if (!r.groups.includes(group)) await this.#write({ ...r, groups: [...r.groups, group] });
    this.logger.warn(`group ${group}: its state refers to a snapshot file the truncated log tail had replaced; discarding it, the group recovers from its leader`, {
      error: error.message,
    });
    return true;
  }

  onRecovered(group: string, commit: number): void {
    const r = this.#record;
    if (r.episode === null) return;
    this.#recovered.add(group);
    const write = this.store.setMeta(recoveredKey(group), encoder.encode(r.episode)).then(() => {
      if (group === META_GROUP && this.#record.episode === r.episode && this.#record.boundary === null) return this.#write({ ...this.#record, boundary: commit });
    });
    this.logger.info(`group ${group} recovered: caught up with its leader; it votes again`, group === META_GROUP ? { boundary: commit } : {});
    this.#wake?.();
    write.catch((error: unknown) => this.logger.error("cannot record a group's recovery", { group, error: String(error) }));
  }

  /**
   * Starts the brand-new-cluster probe when the current episode still needs it (meta not recovered and
   * this node's meta log empty). Runs in the background until decided or close().
   */
  startProbe(options: { nodeId: string; members: readonly string[]; transport: PeerTransport; host: RecoveryHost }): void {
    if (this.#probe !== null || this.#record.episode === null || this.#record.boundary !== null) return;
    this.#probe = this.#runProbe(options).catch((error: unknown) => {
      this.logger.error("recovery probe failed", { error: String(error) });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#probe;
  }

  async #runProbe(options: { nodeId: string; members: readonly string[]; transport: PeerTransport; host: RecoveryHost }): Promise<void> {
    const others = options.members.filter((m) => m !== options.nodeId);
    for (let round = 0; ; round++) {
      if (this.#closed || this.#record.episode === null || this.#record.boundary !== null) return;
      const own = options.host.metaStatus();
      if (own !== null && (own.term > 0 || own.lastIndex > 0)) {
        this.logger.info("recovery: this node's meta group has history; it recovers from the leader");
        return;
      }
      const answers = own === null ? [] : await Promise.all(others.map((peer) => askPeer(options.transport, peer)));
      if (own !== null && answers.every((a) => a === "new")) {
        const reason = others.length === 0 ? "single-node cluster" : `every other member (${others.join(", ")}) reports a brand-new meta group`;
        await this.#end(reason);
        options.host.endRecovery(reason);
        this.logger.info(`recovery: brand-new cluster (${reason}); this node votes from the start`);
        return;
      }
      const used = others.filter((_, i) => answers[i] === "used");
      if (used.length > 0) {
        this.logger.warn(`recovery: the cluster has history (${used.join(", ")}); this node votes again once each group has caught up from its leader`);
        return;
      }
      await this.#sleep(Math.min(PROBE_DELAY_MS_MAX, PROBE_DELAY_MS_MIN * 2 ** Math.min(round, 10)));
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref?.();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  async #begin(reason: string, groups: readonly string[], boundary: number | null = null): Promise<void> {
    const record: EpisodeRecord = { episode: randomBytes(8).toString("hex"), reason, since: new Date().toISOString(), boundary, groups };
    await this.#write(record);
    this.#recovered.clear();
    this.logger.warn(`this node may have lost acknowledged state (${reason}): it neither votes nor campaigns in a group until it has caught up with that group's leader`, {
      episode: record.episode,
    });
  }

  async #end(reason: string): Promise<void> {
    await this.#write({ episode: null, reason, since: new Date().toISOString(), boundary: null, groups: [] });
    this.#recovered.clear();
  }

  async #write(record: EpisodeRecord): Promise<void> {
    this.#record = record;
    await this.store.setMeta(RECORD_KEY, encoder.encode(JSON.stringify(record)));
  }

  async #readRecovered(group: string): Promise<string | null> {
    const value = await this.store.getMeta(recoveredKey(group));
    return value === null ? null : decoder.decode(value);
  }
}

async function readRecord(store: LogStore): Promise<EpisodeRecord> {
  const value = await store.getMeta(RECORD_KEY);
  if (value === null) return { episode: null, reason: "", since: "", boundary: null, groups: [] };
  let record: unknown;
  try {
    record = JSON.parse(decoder.decode(value));
  } catch (cause) {
    throw new CairnError("CORRUPT_DATA", "node metadata \"recovery\" cannot be decoded", {}, { cause });
  }
  const r = record as Partial<EpisodeRecord>;
  const valid =
    r !== null &&
    typeof r === "object" &&
    (r.episode === null || typeof r.episode === "string") &&
    typeof r.reason === "string" &&
    typeof r.since === "string" &&
    (r.boundary === null || (typeof r.boundary === "number" && Number.isSafeInteger(r.boundary))) &&
    Array.isArray(r.groups) &&
    r.groups.every((g) => typeof g === "string");
  if (!valid) throw new CairnError("CORRUPT_DATA", "node metadata \"recovery\" has an unknown shape");
  return r as EpisodeRecord;
}

/** One peer's meta group: "new" (term 0, empty log), "used" (any history), or "unknown" (no answer). */
async function askPeer(transport: PeerTransport, peer: string): Promise<"new" | "used" | "unknown"> {
  let answer: unknown;
  try {
    answer = await transport.request(peer, { localStatus: true }, PROBE_REQUEST_TIMEOUT_MS);
  } catch {
    return "unknown";
  }
  const groups = (answer as { groups?: unknown } | null)?.groups;
  if (!Array.isArray(groups)) return "unknown";
  const meta = groups.find((g) => (g as { group?: unknown })?.group === META_GROUP) as { term?: unknown; lastIndex?: unknown } | undefined;
  if (meta === undefined) return groups.length > 0 ? "used" : "unknown";
  if (typeof meta.term !== "number" || typeof meta.lastIndex !== "number") return "unknown";
  return meta.term === 0 && meta.lastIndex === 0 ? "new" : "used";
}
