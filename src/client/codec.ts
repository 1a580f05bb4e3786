/**
 * Frame encoding for the client protocol: one msgpackr object per WebSocket binary frame, with the
 * fixed PROTOCOL_PACKR_OPTIONS so a changed library default cannot alter the wire format. Decoding
 * checks only the envelope (response or push); the fields of results are trusted to the server.
 */
import { Packr } from "msgpackr";
import { PROTOCOL_PACKR_OPTIONS, type Push, type Response, type WireError } from "../shared/protocol.ts";
import { CairnError, isErrorCode } from "../shared/errors.ts";

const packr = new Packr({ ...PROTOCOL_PACKR_OPTIONS });

/** Encodes one request frame. Properties whose value is undefined are left out, not sent as nil. */
export function encodeFrame(frame: Record<string, unknown>): Uint8Array {
  const clean: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(frame)) if (value !== undefined) clean[name] = value;
  return packr.pack(clean);
}

export type DecodedFrame = { kind: "response"; frame: Response } | { kind: "push"; frame: Push } | { kind: "invalid"; reason: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Decodes one server frame. Never throws: a frame that is not a response or a push is "invalid". */
export function decodeFrame(data: Uint8Array): DecodedFrame {
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch (error) {
    return { kind: "invalid", reason: `undecodable frame: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!isObject(value)) return { kind: "invalid", reason: "frame is not a map" };
  if (typeof value["push"] === "string") {
    if (typeof value["watchId"] !== "number") return { kind: "invalid", reason: "push without watchId" };
    return { kind: "push", frame: value as unknown as Push };
  }
  if (typeof value["id"] === "number" && typeof value["ok"] === "boolean") {
    if (value["ok"] === false && !isObject(value["error"])) return { kind: "invalid", reason: "error response without error" };
    return { kind: "response", frame: value as unknown as Response };
  }
  return { kind: "invalid", reason: "frame is neither a response nor a push" };
}

/** A server error as a CairnError; an unknown code becomes INTERNAL (the original code in the message). */
export function errorFromWire(error: WireError): CairnError {
  const message = typeof error.message === "string" ? error.message : String(error.code);
  const data = isObject(error.data) ? error.data : {};
  if (isErrorCode(error.code)) return new CairnError(error.code, message, data);
  return new CairnError("INTERNAL", `${String(error.code)}: ${message}`, data);
}

/** A plain Uint8Array view of the bytes (msgpackr may hand out Buffers in Node). */
export function asUint8Array(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) {
    return value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return new Uint8Array(0);
}
