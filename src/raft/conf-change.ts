/**
 * Membership changes, one voter or learner at a time (no joint consensus): the binary encoding of a
 * ConfChange inside a "conf" entry, and the pure function that applies one to a ConfState.
 *
 * Encoding (version 1): [1, type (0 addVoter | 1 addLearner | 2 removeNode), UTF-8 node id...].
 */
import { CairnError } from "../shared/errors.ts";
import type { ConfChange, ConfChangeType, ConfState, NodeId } from "./types.ts";

const CONF_CHANGE_VERSION = 1;
const TYPES: readonly ConfChangeType[] = ["addVoter", "addLearner", "removeNode"];
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function encodeConfChange(change: ConfChange): Uint8Array {
  const type = TYPES.indexOf(change.type);
  if (type < 0) throw new TypeError(`invalid conf change type: ${String(change.type)}`);
  if (typeof change.nodeId !== "string" || change.nodeId.length === 0) throw new TypeError("conf change needs a node id");
  const id = encoder.encode(change.nodeId);
  const out = new Uint8Array(2 + id.length);
  out[0] = CONF_CHANGE_VERSION;
  out[1] = type;
  out.set(id, 2);
  return out;
}

/** Throws CairnError CORRUPT_DATA on bytes that are not an encoded ConfChange. */
export function decodeConfChange(bytes: Uint8Array): ConfChange {
  if (!(bytes instanceof Uint8Array) || bytes.length < 3 || bytes[0] !== CONF_CHANGE_VERSION) {
    throw new CairnError("CORRUPT_DATA", "corrupt data: not a conf change");
  }
  const type = TYPES[bytes[1]!];
  if (type === undefined) throw new CairnError("CORRUPT_DATA", `corrupt data: conf change type ${bytes[1]}`);
  let nodeId: NodeId;
  try {
    nodeId = decoder.decode(bytes.subarray(2));
  } catch (cause) {
    throw new CairnError("CORRUPT_DATA", "corrupt data: conf change node id", {}, { cause });
  }
  return { type, nodeId };
}

/**
 * The membership after `change`, or null when the change is a no-op or invalid (it would remove the
 * last voter). Deterministic, so every replica that applies the same entry reaches the same config.
 * addVoter promotes a learner; addLearner demotes a voter.
 */
export function applyChange(conf: ConfState, change: ConfChange): ConfState | null {
  const isVoter = conf.voters.includes(change.nodeId);
  const isLearner = conf.learners.includes(change.nodeId);
  const without = (ids: readonly NodeId[]): NodeId[] => ids.filter((id) => id !== change.nodeId);
  switch (change.type) {
    case "addVoter":
      if (isVoter) return null;
      return { voters: [...conf.voters, change.nodeId], learners: without(conf.learners) };
    case "addLearner":
      if (isLearner) return null;
      if (isVoter && conf.voters.length === 1) return null;
      return { voters: without(conf.voters), learners: [...conf.learners, change.nodeId] };
    case "removeNode":
      if (!isVoter && !isLearner) return null;
      if (isVoter && conf.voters.length === 1) return null;
      return { voters: without(conf.voters), learners: without(conf.learners) };
  }
}

export function isConfChangeType(value: unknown): value is ConfChangeType {
  return typeof value === "string" && (TYPES as readonly string[]).includes(value);
}
