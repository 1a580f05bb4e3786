/**
 * Goal: the peer wire format is pinned (golden bytes), round-trips every payload kind, and refuses every
 * malformed input with CairnError INVALID_REQUEST, never another exception and never a partial result.
 * Method: feed raw bytes to decodeFrame / decodeHandshake with no socket (as ws tests its Receiver):
 * random bytes, truncations, trailing bytes, oversize frames, and valid msgpack of wrong shapes built
 * with an independent Packr.
 */
import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
import { CairnError } from "../../src/shared/errors.ts";
import {
  ENTRY_TYPES,
  MESSAGE_TYPES,
  PEER_CODEC_LIMITS,
  checkPlainData,
  decodeFrame,
  decodeHandshake,
  decodePayload,
  encodeFrame,
  encodeHandshake,
  encodePayload,
  handshakeProof,
  messageToWire,
  newNonce,
  proofMatches,
} from "../../src/node/peer-codec.ts";
import type { WirePayload } from "../../src/node/peer-codec.ts";
import { entry, message, snapshot } from "../support/peer-fixtures.ts";

const FRAME_MAX = 1 << 20;
/** An independent encoder for crafting hostile input (same explicit options as the wire). */
const raw = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number", moreTypes: false, bundleStrings: false });

function frameOf(...payloads: WirePayload[]): Buffer {
  return encodeFrame(payloads.map(encodePayload));
}

/** Expects decoding to fail the way the transport handles: a CairnError INVALID_REQUEST. */
function expectRefused(decode: () => unknown, detail?: RegExp): void {
  let error: unknown;
  try {
    decode();
  } catch (caught) {
    error = caught;
  }
  expect(error, "input was accepted").toBeInstanceOf(CairnError);
  expect((error as CairnError).code).toBe("INVALID_REQUEST");
  if (detail !== undefined) expect((error as CairnError).message).toMatch(detail);
}

function wireMessage(overrides: Record<number, unknown>): unknown[] {
  const wire = messageToWire(message({ entries: [entry(1)] }));
  for (const [position, value] of Object.entries(overrides)) wire[Number(position)] = value;
  return wire;
}

function rawFrame(payloads: unknown[]): Buffer {
  return raw.pack([1, payloads]);
}

describe("peer codec: golden wire format", () => {
  it("encodes a heartbeat to pinned bytes (a changed byte is a wire format change)", () => {
    const frame = frameOf({
      kind: "raft",
      group: "g",
      message: message({ type: "heartbeat", term: 3, commit: 7, context: Uint8Array.of(9) }),
    });
    expect(frame.toString("hex")).toBe("92019193 00a167 9c02a26e31a26e320301 0090 07c200 c0c40109".replace(/ /g, ""));
  });

  it("pins the message and entry type tables (append only)", () => {
    expect(MESSAGE_TYPES).toEqual([
      "app", "appResp", "heartbeat", "heartbeatResp", "vote", "voteResp",
      "preVote", "preVoteResp", "snap", "timeoutNow", "readIndex", "readIndexResp",
    ]);
    expect(ENTRY_TYPES).toEqual(["normal", "conf"]);
  });

  it("builds frames that are exactly the msgpack of [1, payloads] (concatenation is sound)", () => {
    for (const count of [0, 1, 15, 16, 300, 70_000]) {
      const payloads = Array.from({ length: count }, (_, i): WirePayload => ({ kind: "request", requestId: i, body: { i } }));
      const frame = frameOf(...payloads);
      expect(frame.equals(raw.pack([1, Array.from({ length: count }, (_, i) => [1, i, { i }])]))).toBe(true);
      expect(decodeFrame(frame, 64 << 20)).toHaveLength(count);
    }
  });
});

describe("peer codec: round trips", () => {
  it("raft messages with entries, snapshot and context", () => {
    const sent = message({
      type: "snap",
      term: 2 ** 40,
      index: Number.MAX_SAFE_INTEGER,
      entries: [entry(1, new Uint8Array(0)), { term: 5, index: 2, type: "conf", data: Uint8Array.of(1, 2, 3) }],
      reject: true,
      rejectHint: 4,
      snapshot: snapshot(Uint8Array.of(7, 7, 7)),
      context: Uint8Array.of(0xff),
    });
    const [decoded] = decodeFrame(frameOf({ kind: "raft", group: "bucket-1", message: sent }), FRAME_MAX);
    expect(decoded).toEqual({ kind: "raft", group: "bucket-1", message: sent });
    // Binary fields come back as plain Uint8Arrays, copied out of the frame.
    const got = (decoded as { message: typeof sent }).message;
    expect(got.entries[1]!.data.constructor).toBe(Uint8Array);
    expect(got.snapshot!.data.constructor).toBe(Uint8Array);
  });

  it("leaves optional fields absent, not undefined", () => {
    const [decoded] = decodeFrame(frameOf({ kind: "raft", group: "g", message: message() }), FRAME_MAX);
    const got = (decoded as { message: object }).message;
    expect("snapshot" in got).toBe(false);
    expect("context" in got).toBe(false);
  });

  it("requests and responses carry plain data, binary as Uint8Array", () => {
    const body = { op: "kv.put", key: "a.b", value: Uint8Array.of(1, 2), nested: [null, true, 1.5, -3, "x", { deep: [] }], none: undefined };
    const payloads = decodeFrame(frameOf({ kind: "request", requestId: 1, body }, { kind: "response", requestId: 2, body: null }), FRAME_MAX);
    expect(payloads).toEqual([{ kind: "request", requestId: 1, body }, { kind: "response", requestId: 2, body: null }]);
    expect(((payloads[0] as { body: typeof body }).body.value).constructor).toBe(Uint8Array);
  });

  it("snapshot streaming payloads", () => {
    const header = message({ type: "snap", snapshot: snapshot(new Uint8Array(0)) });
    expect(decodePayload(encodePayload({ kind: "snapshotBegin", group: "g", message: header, snapshotBytes: 123 }))).toEqual({
      kind: "snapshotBegin",
      group: "g",
      message: header,
      snapshotBytes: 123,
    });
    expect(decodePayload(encodePayload({ kind: "snapshotChunk", data: Uint8Array.of(4, 5) }))).toEqual({ kind: "snapshotChunk", data: Uint8Array.of(4, 5) });
  });

  it("refuses to encode what a receiver would refuse", () => {
    expectRefused(() => encodePayload({ kind: "raft", group: "g", message: message({ term: -1 }) }));
    expectRefused(() => encodePayload({ kind: "raft", group: "g", message: message({ type: "bogus" as "app" }) }));
    expectRefused(() => encodePayload({ kind: "raft", group: "", message: message() }));
    expectRefused(() => encodePayload({ kind: "request", requestId: 1, body: new Date() }));
    expectRefused(() => encodePayload({ kind: "request", requestId: 1.5, body: null }));
    expectRefused(() => encodePayload({ kind: "snapshotBegin", group: "g", message: message(), snapshotBytes: 1 }));
  });
});

describe("peer codec: hostile frames", () => {
  const valid = frameOf(
    { kind: "raft", group: "g", message: message({ entries: [entry(1), entry(2)], snapshot: snapshot(Uint8Array.of(1)) }) },
    { kind: "request", requestId: 9, body: { a: [1, "b"] } },
  );

  it("random bytes", () => {
    let state = 12345;
    const next = () => (state = (state * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: next() % 64 }, () => next() & 0xff);
      try {
        const payloads = decodeFrame(bytes, FRAME_MAX);
        // Vanishingly unlikely, but if random bytes form a valid frame it must be fully valid.
        for (const payload of payloads) expect(() => encodePayload(payload)).not.toThrow();
      } catch (error) {
        expect(error).toBeInstanceOf(CairnError);
        expect((error as CairnError).code).toBe("INVALID_REQUEST");
      }
    }
  });

  it("every truncation of a valid frame, and trailing bytes", () => {
    for (let length = 0; length < valid.byteLength; length++) expectRefused(() => decodeFrame(valid.subarray(0, length), FRAME_MAX));
    expectRefused(() => decodeFrame(Buffer.concat([valid, Buffer.of(0)]), FRAME_MAX));
    expectRefused(() => decodeFrame(Buffer.concat([valid, valid]), FRAME_MAX));
  });

  it("oversize frames", () => {
    expectRefused(() => decodeFrame(valid, valid.byteLength - 1), /exceeds/);
    expect(decodeFrame(valid, valid.byteLength)).toHaveLength(2);
  });

  it("wrong frame envelope", () => {
    expectRefused(() => decodeFrame(raw.pack([2, []]), FRAME_MAX), /version/);
    expectRefused(() => decodeFrame(raw.pack({ v: 1, payloads: [] }), FRAME_MAX));
    expectRefused(() => decodeFrame(raw.pack([1, {}]), FRAME_MAX));
    expectRefused(() => decodeFrame(raw.pack([1, [], 3]), FRAME_MAX));
    expectRefused(() => decodeFrame(raw.pack("hello"), FRAME_MAX));
    expectRefused(() => decodeFrame(raw.pack(null), FRAME_MAX));
  });

  it("wrong payload shapes", () => {
    const cases: unknown[] = [
      [],
      [9, "g", wireMessage({})],
      ["0", "g", wireMessage({})],
      [0, "g"],
      [0, "g", wireMessage({}), 1],
      [0, 7, wireMessage({})],
      [0, "", wireMessage({})],
      [0, "x".repeat(PEER_CODEC_LIMITS.groupLengthMax + 1), wireMessage({})],
      [1, -1, null],
      [1, "1", null],
      [2, 1.5, null],
      [3, "g", wireMessage({}), 10], // begin with a non-snap message
      [3, "g", messageToWire(message({ type: "snap", snapshot: snapshot(Uint8Array.of(1)) })), 10], // begin with inline data
      [4, "not binary"],
      [4],
    ];
    for (const payload of cases) expectRefused(() => decodeFrame(rawFrame([payload]), FRAME_MAX));
  });

  it("wrong message fields", () => {
    const big = 2 ** 53;
    const cases: Record<number, unknown>[] = [
      { 0: 12 }, // unknown type code
      { 0: -1 },
      { 0: "app" },
      { 1: "" },
      { 1: 5 },
      { 2: "x".repeat(PEER_CODEC_LIMITS.nodeIdLengthMax + 1) },
      { 3: -1 },
      { 3: 1.5 },
      { 3: big },
      { 3: Number.NaN },
      { 3: "1" },
      { 4: null },
      { 5: true },
      { 6: {} },
      { 6: [[1, 1, 0]] },
      { 6: [[1, 1, 2, Uint8Array.of(1)]] }, // unknown entry type
      { 6: [[1, 1, 0, "data"]] },
      { 6: [[-1, 1, 0, Uint8Array.of(1)]] },
      { 7: -5 },
      { 8: 0 },
      { 8: "false" },
      { 9: undefined },
      { 10: [1, 1, [], []] },
      { 10: [1, 1, "n1", [], Uint8Array.of(1)] },
      { 10: [1, 1, [""], [], Uint8Array.of(1)] },
      { 10: [1, 1, Array.from({ length: PEER_CODEC_LIMITS.membersMax + 1 }, (_, i) => `n${i}`), [], Uint8Array.of(1)] },
      { 10: [1, 1, [], [], "data"] },
      { 10: {} },
      { 11: "ctx" },
      { 11: [1, 2] },
    ];
    for (const override of cases) expectRefused(() => decodeFrame(rawFrame([[0, "g", wireMessage(override)]]), FRAME_MAX));
    expectRefused(() => decodeFrame(rawFrame([[0, "g", wireMessage({}).slice(0, 11)]]), FRAME_MAX), /array of 12/);
  });

  it("bodies that are not plain data: extension types, too deep", () => {
    // msgpackr decodes the timestamp extension to a Date even with moreTypes off: it must be refused.
    const date = Buffer.from("d6ff00000000", "hex");
    const withDate = Buffer.concat([Buffer.from("920191 93 01 01".replace(/ /g, ""), "hex"), date]);
    expectRefused(() => decodeFrame(withDate, FRAME_MAX), /plain/);
    let deep: unknown = 1;
    for (let i = 0; i <= PEER_CODEC_LIMITS.bodyDepthMax + 1; i++) deep = [deep];
    expectRefused(() => decodeFrame(rawFrame([[1, 1, deep]]), FRAME_MAX), /deeper/);
    // Unknown extension types fail inside msgpackr; still a CairnError.
    expectRefused(() => decodeFrame(Buffer.concat([Buffer.from("92019193010a", "hex"), Buffer.from("d50173", "hex")]), FRAME_MAX));
  });

  it("a __proto__ key cannot change an object's prototype", () => {
    const payloads = decodeFrame(rawFrame([[1, 1, JSON.parse('{"__proto__": {"polluted": 1}}')]]), FRAME_MAX);
    const body = (payloads[0] as { body: object }).body;
    expect(Object.getPrototypeOf(body)).toBe(Object.prototype);
    expect(({} as { polluted?: number }).polluted).toBeUndefined();
  });
});

describe("checkPlainData", () => {
  it("accepts plain data and refuses everything else", () => {
    for (const ok of [null, undefined, true, 0, -1.5, "s", Uint8Array.of(1), [], {}, Object.create(null), { a: [{ b: Buffer.of(1) }] }]) {
      expect(() => checkPlainData(ok)).not.toThrow();
    }
    class Thing {}
    for (const bad of [new Date(), new Map(), new Set(), new Thing(), () => 1, 1n, Number.NaN, Infinity, Symbol("s"), { a: new Map() }, [new Error("e")]]) {
      expectRefused(() => checkPlainData(bad));
    }
  });
});

describe("peer codec: handshake", () => {
  const nonce = newNonce();
  it("round-trips each handshake frame", () => {
    const frames = [
      { t: "hello", v: 1, from: "n1", to: "n2", nonce },
      { t: "challenge", v: 1, from: "n2", nonce, proof: nonce },
      { t: "auth", proof: nonce },
      { t: "ready" },
    ] as const;
    for (const frame of frames) expect(decodeHandshake(encodeHandshake(frame))).toEqual(frame);
  });

  it("refuses malformed handshakes", () => {
    const cases: unknown[] = [
      { t: "hello", v: 2, from: "n1", to: "n2", nonce },
      { t: "hello", v: 1, from: "n1", to: "n2", nonce, extra: 1 },
      { t: "hello", v: 1, from: "n1", to: "n2" },
      { t: "hello", v: 1, from: "", to: "n2", nonce },
      { t: "hello", v: 1, from: "n1", to: "n2", nonce: nonce.subarray(1) },
      { t: "auth", proof: "x".repeat(32) },
      { t: "ready", x: 1 },
      { t: "welcome" },
      [1, 2],
      Uint8Array.of(1),
      "hello",
      null,
    ];
    for (const value of cases) expectRefused(() => decodeHandshake(raw.pack(value)));
    expectRefused(() => decodeHandshake(Buffer.alloc(PEER_CODEC_LIMITS.handshakeBytesMax + 1)), /exceeds/);
    expectRefused(() => decodeHandshake(Buffer.of(0xc1)));
  });

  it("proofs depend on the secret, role, both ids and both nonces", () => {
    const other = newNonce();
    const base = handshakeProof("secret", "dialer", "n1", "n2", nonce, other);
    expect(base).toHaveLength(32);
    expect(proofMatches(base, handshakeProof("secret", "dialer", "n1", "n2", nonce, other))).toBe(true);
    const variants = [
      handshakeProof("secreT", "dialer", "n1", "n2", nonce, other),
      handshakeProof("secret", "acceptor", "n1", "n2", nonce, other),
      handshakeProof("secret", "dialer", "n2", "n1", nonce, other),
      handshakeProof("secret", "dialer", "n1", "n2x", nonce, other),
      handshakeProof("secret", "dialer", "n1", "n2", other, nonce),
      handshakeProof("secret", "dialer", "n1n", "2", nonce, other), // field boundaries are length-prefixed
    ];
    for (const variant of variants) expect(proofMatches(base, variant)).toBe(false);
    expect(proofMatches(base, base.subarray(0, 31))).toBe(false);
  });
});
