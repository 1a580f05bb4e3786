/**
 * Encoding of log entries (meta and KV envelopes) and client frames. msgpackr with explicit options
 * so a library default change cannot alter what is on disk or on the wire.
 */
import { Packr } from "msgpackr";
import { PROTOCOL_PACKR_OPTIONS } from "../shared/protocol.ts";

/** Log entry payloads (stored in the Raft log, so their encoding is part of the disk format). */
export const logPackr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: "number",
  moreTypes: false,
  bundleStrings: false,
  structuredClone: false,
});

/** Client protocol frames. */
export const clientPackr = new Packr({ ...PROTOCOL_PACKR_OPTIONS });

/** Entry kind tag: the first element of every encoded entry, so a group can refuse foreign data. */
export type LogPayload = { readonly kv: unknown } | { readonly meta: unknown };

export function encodeLogPayload(payload: LogPayload): Uint8Array {
  return logPackr.pack(payload);
}

export function decodeLogPayload(data: Uint8Array): LogPayload {
  return logPackr.unpack(data) as LogPayload;
}
