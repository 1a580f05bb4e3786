/**
 * Goal: for every valid payload the peer codec round-trips exactly, and for every byte string the decoder
 * either returns fully valid payloads or throws CairnError INVALID_REQUEST (nothing else escapes).
 * Method: fast-check arbitraries for Raft messages, RPC bodies and frames; corrupted frames built by
 * flipping, inserting and cutting bytes of valid ones.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CairnError } from "../../src/shared/errors.ts";
import type { Entry, Message, Snapshot } from "../../src/raft/types.ts";
import { MESSAGE_TYPES, checkPlainData, decodeFrame, decodePayload, encodeFrame, encodePayload } from "../../src/node/peer-codec.ts";
import type { WirePayload } from "../../src/node/peer-codec.ts";

const FRAME_MAX = 64 << 20;

const uint = fc.oneof(fc.nat(1000), fc.maxSafeNat());
const id = fc.string({ minLength: 1, maxLength: 12 });
const bytes = fc.uint8Array({ maxLength: 64 });

const entryArb: fc.Arbitrary<Entry> = fc.record({ term: uint, index: uint, type: fc.constantFrom("normal" as const, "conf" as const), data: bytes });

const snapshotArb: fc.Arbitrary<Snapshot> = fc.record({
  metadata: fc.record({
    index: uint,
    term: uint,
    confState: fc.record({ voters: fc.array(id, { maxLength: 5 }), learners: fc.array(id, { maxLength: 3 }) }),
  }),
  data: bytes,
});

const messageArb: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(...MESSAGE_TYPES),
    from: id,
    to: id,
    term: uint,
    logTerm: uint,
    index: uint,
    entries: fc.array(entryArb, { maxLength: 4 }),
    commit: uint,
    reject: fc.boolean(),
    rejectHint: uint,
    snapshot: fc.option(snapshotArb, { nil: undefined }),
    context: fc.option(bytes, { nil: undefined }),
  })
  .map(({ snapshot, context, ...rest }) => ({
    ...rest,
    ...(snapshot === undefined ? {} : { snapshot }),
    ...(context === undefined ? {} : { context }),
  }));

/** Plain data as the RPC layer allows it (no undefined inside arrays: it is kept, but toEqual is strict enough). */
const bodyArb: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.string(),
    bytes,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.string().filter((key) => key !== "__proto__"), tie("value"), { maxKeys: 4 }),
  ),
})).value;

const payloadArb: fc.Arbitrary<WirePayload> = fc.oneof(
  fc.record({ kind: fc.constant("raft" as const), group: id, message: messageArb }),
  fc.record({ kind: fc.constant("request" as const), requestId: uint, body: bodyArb }),
  fc.record({ kind: fc.constant("response" as const), requestId: uint, body: bodyArb }),
  fc.record({ kind: fc.constant("snapshotChunk" as const), data: bytes }),
);

/** -0 survives msgpack as 0 only when encoded as an integer; compare numbers with Object.is semantics relaxed for it. */
function normalize(value: unknown): unknown {
  if (typeof value === "number" && Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(normalize);
  if (value instanceof Uint8Array) return Array.from(value);
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  return value;
}

function hasProtoKey(value: unknown): boolean {
  if (typeof value !== "object" || value === null || value instanceof Uint8Array) return false;
  if (Object.prototype.hasOwnProperty.call(value, "__proto__")) return true;
  return Object.values(value).some(hasProtoKey);
}

function decodeOrRefuse(frame: Uint8Array): void {
  try {
    const payloads = decodeFrame(frame, FRAME_MAX);
    for (const payload of payloads) encodePayload(payload); // whatever is accepted re-validates
  } catch (error) {
    expect(error).toBeInstanceOf(CairnError);
    expect((error as CairnError).code).toBe("INVALID_REQUEST");
  }
}

describe("peer codec properties", () => {
  it("round-trips every valid payload", () => {
    fc.assert(
      fc.property(payloadArb, (payload) => {
        expect(normalize(decodePayload(encodePayload(payload)))).toEqual(normalize(payload));
      }),
      { numRuns: 500 },
    );
  });

  it("round-trips frames of many payloads in order", () => {
    fc.assert(
      fc.property(fc.array(payloadArb, { maxLength: 40 }), (payloads) => {
        const decoded = decodeFrame(encodeFrame(payloads.map(encodePayload)), FRAME_MAX);
        expect(normalize(decoded)).toEqual(normalize(payloads));
      }),
      { numRuns: 200 },
    );
  });

  it("decoded raft messages are exactly the sent ones (types and optional fields preserved)", () => {
    fc.assert(
      fc.property(id, messageArb, (group, message) => {
        const [decoded] = decodeFrame(encodeFrame([encodePayload({ kind: "raft", group, message })]), FRAME_MAX);
        expect(decoded).toEqual({ kind: "raft", group, message });
      }),
      { numRuns: 300 },
    );
  });

  it("arbitrary bytes are refused with INVALID_REQUEST or decode to valid payloads", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (frame) => decodeOrRefuse(frame)), { numRuns: 2000 });
  });

  it("corrupted valid frames are refused with INVALID_REQUEST or decode to valid payloads", () => {
    const corruption = fc.oneof(
      fc.record({ op: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant("insert" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant("cut" as const), at: fc.nat(), value: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.array(payloadArb, { minLength: 1, maxLength: 6 }), fc.array(corruption, { minLength: 1, maxLength: 4 }), (payloads, edits) => {
        let frame = Buffer.from(encodeFrame(payloads.map(encodePayload)));
        for (const edit of edits) {
          const at = edit.at % (frame.byteLength + 1);
          if (edit.op === "flip" && at < frame.byteLength) frame[at] = edit.value;
          if (edit.op === "insert") frame = Buffer.concat([frame.subarray(0, at), Buffer.of(edit.value), frame.subarray(at)]);
          if (edit.op === "cut") frame = frame.subarray(0, at);
        }
        decodeOrRefuse(frame);
      }),
      { numRuns: 2000 },
    );
  });

  it("checkPlainData accepts only values that cross the wire unchanged", () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true }), (value) => {
        let plain = true;
        try {
          checkPlainData(value);
        } catch (error) {
          expect(error).toBeInstanceOf(CairnError);
          plain = false;
        }
        if (plain) {
          const decoded = decodePayload(encodePayload({ kind: "request", requestId: 1, body: value }));
          expect(decoded.kind).toBe("request");
          // msgpackr renames a "__proto__" key (safely); everything else must come back equal.
          if (!hasProtoKey(value)) expect(normalize((decoded as { body: unknown }).body)).toEqual(normalize(value));
        }
      }),
      { numRuns: 1000 },
    );
  });
});
