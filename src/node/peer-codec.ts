/**
 * The peer wire format (version 1): how node-to-node frames are encoded, and the strict validation every
 * decoded frame passes before anything reaches a handler. Pure functions, no sockets: tests feed raw bytes.
 *
 * Encoding: msgpack through one Packr with explicit options (PEER_PACKR_OPTIONS), so a changed library
 * default cannot alter the wire. Every structure is a positional array (compact, and a decoder checks
 * arity and each position), never a record or an extension type.
 *
 *   frame      = [1, [payload, ...]]                       (after authentication; at most frameBytesMax bytes)
 *   payload    = [0, group, message]                       raft message of one group
 *              | [1, requestId, body]                      request (body: plain data)
 *              | [2, requestId, body]                      response
 *              | [3, group, message, snapshotBytes]        a raft "snap" message whose snapshot data follows in chunks
 *              | [4, data]                                 the next chunk of the snapshot being streamed
 *   message    = [type, from, to, term, logTerm, index, [entry...], commit, reject, rejectHint, snapshot|null, context|null]
 *   entry      = [term, index, entryType, data]
 *   snapshot   = [index, term, [voter...], [learner...], data]
 *   type       = index into MESSAGE_TYPES; entryType = index into ENTRY_TYPES (append only, never reorder)
 *
 * Handshake frames (before authentication) are small msgpack maps, see decodeHandshake.
 *
 * Because payloads are self-contained msgpack values (no records, no bundled strings), a frame is built by
 * writing the array headers and concatenating payloads encoded when they were queued: the bytes counted
 * against a peer's queue limit are exactly the bytes sent.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { Packr } from "msgpackr";
import type { Entry, EntryType, Message, MessageType, Snapshot } from "../raft/types.ts";
import { CairnError } from "../shared/errors.ts";

/**
 * Fixed msgpackr options; each is spelled out so no default can change the wire:
 * no records or bundled strings (payloads must be self-contained to be concatenated), maps decode to plain
 * objects (msgpackr renames a "__proto__" key), 64-bit integers decode to numbers (then range-checked),
 * no extension types on encode. Binary values decode as views into the frame (copyBuffers: false, which
 * is 7x faster than msgpackr's per-value copy); the validators then copy them out themselves, the entries
 * of one message into one slab, so a retained entry never pins a whole frame or socket buffer.
 */
export const PEER_PACKR_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: "number",
  moreTypes: false,
  bundleStrings: false,
  structuredClone: false,
  copyBuffers: false,
  encodeUndefinedAsNil: false,
  variableMapSize: false,
} as const;

const packr = new Packr(PEER_PACKR_OPTIONS);

export const PEER_WIRE_VERSION = 1;

/** Wire codes of message types: index in this table. Append only. */
export const MESSAGE_TYPES = [
  "app",
  "appResp",
  "heartbeat",
  "heartbeatResp",
  "vote",
  "voteResp",
  "preVote",
  "preVoteResp",
  "snap",
  "timeoutNow",
  "readIndex",
  "readIndexResp",
] as const satisfies readonly MessageType[];
// Compile-time check that the table covers every MessageType.
const messageTypesComplete: Exclude<MessageType, (typeof MESSAGE_TYPES)[number]> extends never ? true : false = true;
void messageTypesComplete;

export const ENTRY_TYPES = ["normal", "conf"] as const satisfies readonly EntryType[];

const MESSAGE_TYPE_CODES = new Map<string, number>(MESSAGE_TYPES.map((type, code) => [type, code]));
const ENTRY_TYPE_CODES = new Map<string, number>(ENTRY_TYPES.map((type, code) => [type, code]));

/** Shape limits checked on every decoded value (beyond frameBytesMax, which bounds everything). */
export const PEER_CODEC_LIMITS = {
  /** Characters in a node id. */
  nodeIdLengthMax: 256,
  /** Characters in a group name. */
  groupLengthMax: 256,
  /** Voters plus learners in a snapshot's membership. */
  membersMax: 1024,
  /** Nesting depth of a request/response body. */
  bodyDepthMax: 64,
  /** Encoded bytes of a handshake frame. */
  handshakeBytesMax: 1024,
  /** Bytes of a handshake nonce / proof. */
  nonceBytes: 32,
} as const;

const PAYLOAD_RAFT = 0;
const PAYLOAD_REQUEST = 1;
const PAYLOAD_RESPONSE = 2;
const PAYLOAD_SNAPSHOT_BEGIN = 3;
const PAYLOAD_SNAPSHOT_CHUNK = 4;

/** What a transport hands to the encoder: PeerPayload plus the two snapshot-streaming payloads. */
export type WirePayload =
  | { readonly kind: "raft"; readonly group: string; readonly message: Message }
  | { readonly kind: "request"; readonly requestId: number; readonly body: unknown }
  | { readonly kind: "response"; readonly requestId: number; readonly body: unknown }
  /** `message` is a "snap" message whose snapshot.data is empty; `snapshotBytes` bytes follow in chunks. */
  | { readonly kind: "snapshotBegin"; readonly group: string; readonly message: Message; readonly snapshotBytes: number }
  | { readonly kind: "snapshotChunk"; readonly data: Uint8Array };

/** Raised for any frame that is not valid version-1 wire data. The connection that sent it is closed. */
export function protocolError(detail: string, cause?: unknown): CairnError {
  return new CairnError("INVALID_REQUEST", `peer protocol: ${detail}`, {}, cause === undefined ? {} : { cause });
}

// ---------------------------------------------------------------------------------------------------
// Validation: each function checks one wire position and returns the typed value, or throws protocolError.
// A position is named by its parent path and a field (name or index); the path string is only built for an
// error message, so validating a frame allocates no strings.

type Field = string | number;

function where(at: string, field: Field): string {
  return typeof field === "number" ? `${at}[${field}]` : field === "" ? at : `${at}.${field}`;
}

function isUint(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function uint(value: unknown, at: string, field: Field): number {
  if (!isUint(value)) throw protocolError(`${where(at, field)} is not a non-negative safe integer`);
  return value;
}

function bool(value: unknown, at: string, field: Field): boolean {
  if (typeof value !== "boolean") throw protocolError(`${where(at, field)} is not a boolean`);
  return value;
}

function text(value: unknown, at: string, field: Field, lengthMax: number): string {
  if (typeof value !== "string" || value.length === 0 || value.length > lengthMax) {
    throw protocolError(`${where(at, field)} is not a string of 1..${lengthMax} characters`);
  }
  return value;
}

/** Checks a binary value and returns it as is (a view into the frame: copy before retaining it). */
function binaryView(value: unknown, at: string, field: Field): Uint8Array {
  if (!(value instanceof Uint8Array)) throw protocolError(`${where(at, field)} is not binary`);
  return value;
}

/** A plain Uint8Array copy of a binary value (msgpackr hands out Buffer views of the frame). */
function bytes(value: unknown, at: string, field: Field): Uint8Array {
  return new Uint8Array(binaryView(value, at, field));
}

function tuple(value: unknown, arity: number, at: string, field: Field): unknown[] {
  if (!Array.isArray(value) || value.length !== arity) throw protocolError(`${where(at, field)} is not an array of ${arity}`);
  return value;
}

function list(value: unknown, at: string, field: Field): unknown[] {
  if (!Array.isArray(value)) throw protocolError(`${where(at, field)} is not an array`);
  return value;
}

export function nodeId(value: unknown, at: string, field: Field = ""): string {
  return text(value, at, field, PEER_CODEC_LIMITS.nodeIdLengthMax);
}

function groupName(value: unknown, at: string, field: Field): string {
  return text(value, at, field, PEER_CODEC_LIMITS.groupLengthMax);
}

/**
 * Validates the entries of one message and copies their data into one slab (one allocation, not one per
 * entry). With copy = false (checking an outgoing message) the data stays as given.
 */
function entriesFromWire(value: unknown, at: string, copy: boolean): Entry[] {
  const wire = list(value, at, "entries");
  const count = wire.length;
  const terms = new Array<number>(count);
  const indexes = new Array<number>(count);
  const types = new Array<EntryType>(count);
  const views = new Array<Uint8Array>(count);
  let total = 0;
  const entryAt = count === 0 ? at : where(at, "entries");
  for (let i = 0; i < count; i++) {
    const [term, index, type, data] = tuple(wire[i], 4, entryAt, i);
    const code = uint(type, entryAt, i);
    const entryType = ENTRY_TYPES[code];
    if (entryType === undefined) throw protocolError(`${where(entryAt, i)}.type ${code} is unknown`);
    terms[i] = uint(term, entryAt, i);
    indexes[i] = uint(index, entryAt, i);
    types[i] = entryType;
    const view = binaryView(data, entryAt, i);
    views[i] = view;
    total += view.byteLength;
  }
  if (!copy) return views.map((data, i) => ({ term: terms[i]!, index: indexes[i]!, type: types[i]!, data }));
  const slab = new Uint8Array(total);
  const entries = new Array<Entry>(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const view = views[i]!;
    slab.set(view, offset);
    entries[i] = { term: terms[i]!, index: indexes[i]!, type: types[i]!, data: slab.subarray(offset, offset + view.byteLength) };
    offset += view.byteLength;
  }
  return entries;
}

function snapshotFromWire(value: unknown, at: string): Snapshot {
  const [index, term, voters, learners, data] = tuple(value, 5, at, "snapshot");
  const snapshotAt = `${at}.snapshot`;
  const voterList = list(voters, snapshotAt, "voters");
  const learnerList = list(learners, snapshotAt, "learners");
  if (voterList.length + learnerList.length > PEER_CODEC_LIMITS.membersMax) {
    throw protocolError(`${snapshotAt} has more than ${PEER_CODEC_LIMITS.membersMax} members`);
  }
  return {
    metadata: {
      index: uint(index, snapshotAt, "index"),
      term: uint(term, snapshotAt, "term"),
      confState: {
        voters: voterList.map((id, i) => nodeId(id, `${snapshotAt}.voters`, i)),
        learners: learnerList.map((id, i) => nodeId(id, `${snapshotAt}.learners`, i)),
      },
    },
    data: bytes(data, snapshotAt, "data"),
  };
}

/** Validates a wire message and builds a fresh Message (optional fields absent, not undefined). */
export function messageFromWire(value: unknown, at = "message", copy = true): Message {
  const fields = tuple(value, 12, at, "");
  const [type, from, to, term, logTerm, index, entries, commit, reject, rejectHint, snapshot, context] = fields;
  const typeCode = uint(type, at, "type");
  const messageType = MESSAGE_TYPES[typeCode];
  if (messageType === undefined) throw protocolError(`${at}.type ${typeCode} is unknown`);
  const message: Message = {
    type: messageType,
    from: nodeId(from, at, "from"),
    to: nodeId(to, at, "to"),
    term: uint(term, at, "term"),
    logTerm: uint(logTerm, at, "logTerm"),
    index: uint(index, at, "index"),
    entries: entriesFromWire(entries, at, copy),
    commit: uint(commit, at, "commit"),
    reject: bool(reject, at, "reject"),
    rejectHint: uint(rejectHint, at, "rejectHint"),
  };
  if (snapshot === null && context === null) return message;
  const withSnapshot = snapshot === null ? message : { ...message, snapshot: snapshotFromWire(snapshot, at) };
  return context === null ? withSnapshot : { ...withSnapshot, context: bytes(context, at, "context") };
}

export function messageToWire(message: Message): unknown[] {
  const snapshot = message.snapshot;
  return [
    MESSAGE_TYPE_CODES.get(message.type) ?? -1,
    message.from,
    message.to,
    message.term,
    message.logTerm,
    message.index,
    message.entries.map((entry) => [entry.term, entry.index, ENTRY_TYPE_CODES.get(entry.type) ?? -1, entry.data]),
    message.commit,
    message.reject,
    message.rejectHint,
    snapshot === undefined
      ? null
      : [snapshot.metadata.index, snapshot.metadata.term, snapshot.metadata.confState.voters, snapshot.metadata.confState.learners, snapshot.data],
    message.context ?? null,
  ];
}

/**
 * Checks that `value` is plain data that crosses the wire unchanged: null, undefined, boolean, finite
 * number, string, Uint8Array, arrays and plain objects, nested at most bodyDepthMax. Anything else (Date,
 * Map, Set, class instances, functions, bigint, NaN) is refused: msgpackr would encode some of them as
 * extension types, which the receiving side refuses.
 */
export function checkPlainData(value: unknown, path = "body", depth = 0): void {
  if (depth > PEER_CODEC_LIMITS.bodyDepthMax) throw protocolError(`${path} is nested deeper than ${PEER_CODEC_LIMITS.bodyDepthMax}`);
  if (value === null || value === undefined) return;
  switch (typeof value) {
    case "boolean":
    case "string":
      return;
    case "number":
      if (!Number.isFinite(value)) throw protocolError(`${path} is not a finite number`);
      return;
    case "object": {
      if (value instanceof Uint8Array) return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) checkPlainData(value[i], `${path}[${i}]`, depth + 1);
        return;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw protocolError(`${path} is not a plain object`);
      for (const [key, item] of Object.entries(value)) checkPlainData(item, `${path}.${key}`, depth + 1);
      return;
    }
    default:
      throw protocolError(`${path} is a ${typeof value}, not plain data`);
  }
}

/**
 * Validates a decoded body (checkPlainData) and replaces the Buffer views msgpackr produced with plain
 * Uint8Array copies in place (the decoded tree is fresh, so no one else holds it).
 */
function plainDataFromWire(value: unknown, path: string): unknown {
  checkPlainData(value, path);
  return normalizeBinary(value);
}

function normalizeBinary(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = normalizeBinary(value[i]);
    return value;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) record[key] = normalizeBinary(record[key]);
  return record;
}

/** Validates one payload. Error paths start at "payload"; decodeFrame adds which payload of the frame. */
function payloadFromWire(value: unknown, copy = true): WirePayload {
  const at = "payload";
  if (!Array.isArray(value) || value.length === 0) throw protocolError(`${at} is not a non-empty array`);
  const kind = value[0];
  switch (kind) {
    case PAYLOAD_RAFT: {
      const [, group, message] = tuple(value, 3, at, "");
      return { kind: "raft", group: groupName(group, at, "group"), message: messageFromWire(message, "payload.message", copy) };
    }
    case PAYLOAD_REQUEST:
    case PAYLOAD_RESPONSE: {
      const [, requestId, wireBody] = tuple(value, 3, at, "");
      let body = wireBody;
      if (copy) body = plainDataFromWire(wireBody, "payload.body");
      else checkPlainData(wireBody, "payload.body");
      const id = uint(requestId, at, "requestId");
      return kind === PAYLOAD_REQUEST ? { kind: "request", requestId: id, body } : { kind: "response", requestId: id, body };
    }
    case PAYLOAD_SNAPSHOT_BEGIN: {
      const [, group, wireMessage, snapshotBytes] = tuple(value, 4, at, "");
      const message = messageFromWire(wireMessage, "payload.message", copy);
      if (message.type !== "snap" || message.snapshot === undefined || message.snapshot.data.byteLength !== 0) {
        throw protocolError(`${at}.message is not a snap message with empty snapshot data`);
      }
      return { kind: "snapshotBegin", group: groupName(group, at, "group"), message, snapshotBytes: uint(snapshotBytes, at, "snapshotBytes") };
    }
    case PAYLOAD_SNAPSHOT_CHUNK: {
      const [, data] = tuple(value, 2, at, "");
      // Left a view into the frame (no copy): the receiver copies it into the snapshot being reassembled.
      const view = binaryView(data, at, "data");
      return { kind: "snapshotChunk", data: new Uint8Array(view.buffer, view.byteOffset, view.byteLength) };
    }
    default:
      throw protocolError(`${at} has unknown kind ${String(kind)}`);
  }
}

function payloadToWire(payload: WirePayload): unknown[] {
  switch (payload.kind) {
    case "raft":
      return [PAYLOAD_RAFT, payload.group, messageToWire(payload.message)];
    case "request":
      return [PAYLOAD_REQUEST, payload.requestId, payload.body];
    case "response":
      return [PAYLOAD_RESPONSE, payload.requestId, payload.body];
    case "snapshotBegin":
      return [PAYLOAD_SNAPSHOT_BEGIN, payload.group, messageToWire(payload.message), payload.snapshotBytes];
    case "snapshotChunk":
      return [PAYLOAD_SNAPSHOT_CHUNK, payload.data];
  }
}

function unpack(bytesIn: Uint8Array, what: string): unknown {
  try {
    // msgpackr throws on truncated input and on trailing bytes after the first value.
    return packr.unpack(bytesIn);
  } catch (error) {
    throw protocolError(`${what} is not valid msgpack`, error);
  }
}

/**
 * Encodes one payload, validating it exactly as a receiver would (so a local bug cannot make the peer
 * close the connection). Throws protocolError on an invalid payload. The returned bytes may be kept.
 */
export function encodePayload(payload: WirePayload): Uint8Array {
  const wire = payloadToWire(payload);
  payloadFromWire(wire, false);
  return packr.pack(wire);
}

/** Decodes and validates one payload encoded by encodePayload (used by the in-memory transport). */
export function decodePayload(encoded: Uint8Array): WirePayload {
  return payloadFromWire(unpack(encoded, "payload"));
}

function arrayHeader(count: number): Uint8Array {
  if (count < 16) return Uint8Array.of(0x90 | count);
  if (count < 0x10000) return Uint8Array.of(0xdc, count >>> 8, count & 0xff);
  return Uint8Array.of(0xdd, count >>> 24, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff);
}

/** Bytes a frame adds around its payloads (the most it can be: a 32-bit array header). */
export const FRAME_OVERHEAD_BYTES_MAX = 2 + 5;

/** Builds a frame from payloads encoded by encodePayload. */
export function encodeFrame(encodedPayloads: readonly Uint8Array[]): Buffer {
  const header = arrayHeader(encodedPayloads.length);
  let size = 2 + header.byteLength;
  for (const payload of encodedPayloads) size += payload.byteLength;
  const frame = Buffer.allocUnsafe(size);
  frame[0] = 0x92; // fixarray of 2: [version, payloads]
  frame[1] = PEER_WIRE_VERSION;
  frame.set(header, 2);
  let offset = 2 + header.byteLength;
  for (const payload of encodedPayloads) {
    frame.set(payload, offset);
    offset += payload.byteLength;
  }
  return frame;
}

/** Decodes and validates a frame. Throws protocolError (never anything else) on any defect. */
export function decodeFrame(frame: Uint8Array, frameBytesMax: number): WirePayload[] {
  if (frame.byteLength > frameBytesMax) throw protocolError(`frame of ${frame.byteLength} bytes exceeds ${frameBytesMax}`);
  const [version, payloads] = tuple(unpack(frame, "frame"), 2, "frame", "");
  if (version !== PEER_WIRE_VERSION) throw protocolError(`frame version ${String(version)} is not ${PEER_WIRE_VERSION}`);
  const wire = list(payloads, "frame", "payloads");
  const result = new Array<WirePayload>(wire.length);
  for (let i = 0; i < wire.length; i++) {
    try {
      result[i] = payloadFromWire(wire[i]);
    } catch (error) {
      throw protocolError(`frame.payloads[${i}]: ${(error as Error).message.replace(/^peer protocol: /, "")}`, error);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Handshake: mutual HMAC challenge-response. Dialer D, acceptor A, fresh 32-byte nonces nD and nA.
//   D -> A  hello     { t: "hello", v, from: D, to: A, nonce: nD }
//   A -> D  challenge { t: "challenge", v, from: A, nonce: nA, proof: HMAC(secret, "acceptor" | D | A | nD | nA) }
//   D -> A  auth      { t: "auth", proof: HMAC(secret, "dialer" | D | A | nD | nA) }
//   A -> D  ready     { t: "ready" }
// Each side checks the other's proof in constant time; the role label keeps a proof from being reflected.

export type HandshakeFrame =
  | { t: "hello"; v: number; from: string; to: string; nonce: Uint8Array }
  | { t: "challenge"; v: number; from: string; nonce: Uint8Array; proof: Uint8Array }
  | { t: "auth"; proof: Uint8Array }
  | { t: "ready" };

export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(PEER_CODEC_LIMITS.nonceBytes));
}

export function handshakeProof(
  secret: string,
  role: "dialer" | "acceptor",
  dialer: string,
  acceptor: string,
  nonceDialer: Uint8Array,
  nonceAcceptor: Uint8Array,
): Uint8Array {
  const hmac = createHmac("sha256", secret);
  // Length-prefixed fields, so no two different inputs share an encoding.
  for (const field of [role, dialer, acceptor]) {
    const encoded = Buffer.from(field, "utf8");
    hmac.update(Uint8Array.of(encoded.byteLength >>> 8, encoded.byteLength & 0xff));
    hmac.update(encoded);
  }
  hmac.update(nonceDialer);
  hmac.update(nonceAcceptor);
  return new Uint8Array(hmac.digest());
}

/** Constant-time comparison of a received proof with the expected one. */
export function proofMatches(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.byteLength === received.byteLength && timingSafeEqual(expected, received);
}

export function encodeHandshake(frame: HandshakeFrame): Buffer {
  return packr.pack(frame);
}

function exactKeys(value: Record<string, unknown>, keys: readonly string[], path: string): void {
  const actual = Object.keys(value);
  if (actual.length !== keys.length || !keys.every((key) => Object.prototype.hasOwnProperty.call(value, key))) {
    throw protocolError(`${path} must have exactly the fields ${keys.join(", ")}`);
  }
}

function nonce(value: unknown, path: string): Uint8Array {
  const result = bytes(value, path, "");
  if (result.byteLength !== PEER_CODEC_LIMITS.nonceBytes) throw protocolError(`${path} is not ${PEER_CODEC_LIMITS.nonceBytes} bytes`);
  return result;
}

/** Decodes and validates a handshake frame. Throws protocolError on any defect. */
export function decodeHandshake(frame: Uint8Array): HandshakeFrame {
  if (frame.byteLength > PEER_CODEC_LIMITS.handshakeBytesMax) {
    throw protocolError(`handshake frame of ${frame.byteLength} bytes exceeds ${PEER_CODEC_LIMITS.handshakeBytesMax}`);
  }
  const value = unpack(frame, "handshake");
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw protocolError("handshake is not a map");
  }
  const record = value as Record<string, unknown>;
  const version = (): number => {
    if (record["v"] !== PEER_WIRE_VERSION) throw protocolError(`handshake version ${String(record["v"])} is not ${PEER_WIRE_VERSION}`);
    return PEER_WIRE_VERSION;
  };
  switch (record["t"]) {
    case "hello":
      exactKeys(record, ["t", "v", "from", "to", "nonce"], "hello");
      return { t: "hello", v: version(), from: nodeId(record["from"], "hello.from"), to: nodeId(record["to"], "hello.to"), nonce: nonce(record["nonce"], "hello.nonce") };
    case "challenge":
      exactKeys(record, ["t", "v", "from", "nonce", "proof"], "challenge");
      return {
        t: "challenge",
        v: version(),
        from: nodeId(record["from"], "challenge.from"),
        nonce: nonce(record["nonce"], "challenge.nonce"),
        proof: nonce(record["proof"], "challenge.proof"),
      };
    case "auth":
      exactKeys(record, ["t", "proof"], "auth");
      return { t: "auth", proof: nonce(record["proof"], "auth.proof") };
    case "ready":
      exactKeys(record, ["t"], "ready");
      return { t: "ready" };
    default:
      throw protocolError(`handshake type ${String(record["t"])} is unknown`);
  }
}
