/**
 * The one table of error codes. Every layer (raft, kv, node, client) reports operating errors as a
 * CairnError with one of these codes; clients match on `code`, never on the message. Messages keep
 * the NATS wording where one exists. Caller mistakes in the library API (wrong argument types) are
 * plain TypeErrors, as in abstract-level; assertion failures are AssertionErrors.
 */
export const ErrorCodes = {
  // Caller input
  INVALID_KEY: "invalid key",
  INVALID_BUCKET_NAME: "invalid bucket name",
  INVALID_CONFIG: "invalid bucket configuration",
  INVALID_OPTION: "invalid option",
  INVALID_REQUEST: "malformed request",
  // KV outcomes
  BUCKET_NOT_FOUND: "bucket not found",
  BUCKET_EXISTS: "bucket name already in use",
  KEY_EXISTS: "wrong last sequence: N: key exists",
  WRONG_LAST_REVISION: "wrong last sequence: N",
  VALUE_TOO_LARGE: "message size exceeds maximum allowed",
  BUCKET_FULL: "maximum bytes exceeded",
  // Cluster membership
  NODE_NOT_FOUND: "node not found",
  MEMBERSHIP_CHANGE_REFUSED: "membership change refused",
  // Availability and transport
  TIMEOUT: "timeout: the outcome of the operation is unknown",
  UNAVAILABLE: "no quorum or no leader available",
  UNAUTHORIZED: "unauthorized",
  CONNECTION_CLOSED: "connection closed",
  WATCH_OVERFLOW: "watcher could not keep up",
  // Internal, normally retried by the node or the client
  NOT_LEADER: "not leader",
  PROPOSAL_DROPPED: "proposal dropped",
  // Storage
  CORRUPT_DATA: "corrupt data",
  INTERNAL: "internal error",
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(ErrorCodes, value);
}

/** Extra, code-specific facts an error carries (all optional, all plain data so they cross the wire). */
export interface ErrorData {
  /** NOT_LEADER: the leader this node knows of, if any. */
  leaderHint?: string | null;
  /** WRONG_LAST_REVISION / KEY_EXISTS: the key's actual last revision. */
  revision?: number;
  /** WATCH_OVERFLOW: the revision a new watch should resume from. */
  resumeFromRevision?: number;
}

export class CairnError extends Error {
  override readonly name = "CairnError";
  readonly code: ErrorCode;
  readonly data: ErrorData;

  constructor(code: ErrorCode, message?: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super(message ?? ErrorCodes[code], options);
    this.code = code;
    this.data = data;
  }

  toJSON(): { code: ErrorCode; message: string; data: ErrorData } {
    return { code: this.code, message: this.message, data: this.data };
  }
}

/** `wrong last sequence: N` — update/delete/purge with an expected revision that does not match. */
export function wrongLastRevision(actual: number): CairnError {
  return new CairnError("WRONG_LAST_REVISION", `wrong last sequence: ${actual}`, { revision: actual });
}

/** `wrong last sequence: N: key exists` — create on a key that has a live value. */
export function keyExists(actual: number): CairnError {
  return new CairnError("KEY_EXISTS", `wrong last sequence: ${actual}: key exists`, { revision: actual });
}
