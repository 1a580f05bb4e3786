/**
 * src/kv: the pure, deterministic KV state machine (see ../shared/KV-SEMANTICS.md and issue 3).
 * The public surface used by src/node and the tests; everything else in this folder is internal.
 */
export { KvStateMachine, KEY_TTL_MS_MIN, type PageOptions } from "./state-machine.ts";
export {
  BUCKET_NAME_LENGTH_MAX,
  isValidBucketName,
  isValidFilter,
  isValidKey,
  matchFilter,
  validateBucketName,
  validateFilter,
  validateKey,
} from "./names.ts";
export {
  configUpdateAllowed,
  configsEqual,
  normalizeConfig,
  DESCRIPTION_BYTES_MAX,
  HISTORY_MAX,
  MARKER_TTL_MS_MIN,
  METADATA_BYTES_MAX,
  REPLICAS_MAX,
  TTL_MS_MIN,
} from "./config.ts";
export { SNAPSHOT_FORMAT_VERSION } from "./snapshot.ts";
export * from "./types.ts";
