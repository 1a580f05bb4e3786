/** Validation of RaftConfig: caller mistakes are TypeErrors (abstract-level style). */
import type { RaftConfig } from "./types.ts";

export function validateConfig(config: RaftConfig): void {
  const positiveInt = (v: unknown): boolean => typeof v === "number" && Number.isSafeInteger(v) && v > 0;
  const nonNegativeInt = (v: unknown): boolean => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (typeof config.id !== "string" || config.id.length === 0) throw new TypeError("raft config: id must be a non-empty string");
  if (!positiveInt(config.heartbeatTicks)) throw new TypeError("raft config: heartbeatTicks must be a positive integer");
  if (!positiveInt(config.electionTicks) || config.electionTicks <= config.heartbeatTicks) {
    throw new TypeError("raft config: electionTicks must be an integer greater than heartbeatTicks");
  }
  if (typeof config.random !== "function") throw new TypeError("raft config: random must be a function");
  if (!nonNegativeInt(config.applied)) throw new TypeError("raft config: applied must be a non-negative integer");
  if (!positiveInt(config.messageBytesMax)) throw new TypeError("raft config: messageBytesMax must be a positive integer");
  if (!positiveInt(config.inflightMessagesMax)) throw new TypeError("raft config: inflightMessagesMax must be a positive integer");
  if (!nonNegativeInt(config.inflightBytesMax)) throw new TypeError("raft config: inflightBytesMax must be a non-negative integer");
  if (!nonNegativeInt(config.uncommittedBytesMax)) throw new TypeError("raft config: uncommittedBytesMax must be a non-negative integer");
  if (config.recovering !== undefined && typeof config.recovering !== "boolean") throw new TypeError("raft config: recovering must be a boolean");
}
