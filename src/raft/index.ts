/**
 * cairn's Raft consensus core: pure (no I/O, no clock, no ambient randomness), one instance per
 * group. See core.ts for the driving contract and types.ts for the data it exchanges.
 */
export { RaftCore } from "./core.ts";
export { MemoryStorage, RaftLogUnavailable } from "./storage.ts";
export { encodeConfChange, decodeConfChange } from "./conf-change.ts";
export { TRANSFER_CONTEXT } from "./messages.ts";
export * from "./types.ts";
