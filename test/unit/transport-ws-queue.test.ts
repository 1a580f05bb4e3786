/**
 * Goal: the per-peer send queue packs payloads and streamed snapshots into frames that never exceed
 * frameBytesMax, keep order, respect the byte/count limits, and that the receiver's reassembly rebuilds
 * each snapshot exactly (and refuses out-of-protocol chunks).
 * Method: no sockets; pack frames, decode them with the real codec, feed the receiver, compare.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CairnError } from "../../src/shared/errors.ts";
import type { Message } from "../../src/raft/types.ts";
import { decodeFrame, encodePayload } from "../../src/node/peer-codec.ts";
import { resolvePeerLimits } from "../../src/node/transport.ts";
import { PeerSendQueue, SnapshotReassembly } from "../../src/node/transport-ws-queue.ts";
import { entry, message, snapshot } from "../support/peer-fixtures.ts";

function limits(frameBytesMax: number, extra: Partial<Parameters<typeof resolvePeerLimits>[0]> = {}) {
  return resolvePeerLimits({ frameBytesMax, sendQueueBytesMax: 1 << 30, reconnectDelayMsMin: 1, reconnectDelayMsMax: 2, ...extra });
}

function header(group: string, data: Uint8Array): Uint8Array {
  const m = message({ type: "snap", snapshot: snapshot(new Uint8Array(0)) });
  return encodePayload({ kind: "snapshotBegin", group, message: m, snapshotBytes: data.byteLength });
}

/** Drains the queue into frames, decodes them and replays them into a receiver. */
function transmit(queue: PeerSendQueue, frameBytesMax: number) {
  const reassembly = new SnapshotReassembly(1 << 30);
  const received: { kind: string; index?: number; group?: string; message?: Message }[] = [];
  const completed: string[] = [];
  let frames = 0;
  for (let next = queue.nextFrame(); next !== null; next = queue.nextFrame()) {
    frames++;
    expect(next.frame.byteLength).toBeLessThanOrEqual(frameBytesMax);
    completed.push(...next.snapshotGroups);
    for (const payload of decodeFrame(next.frame, frameBytesMax)) {
      if (payload.kind === "raft") received.push({ kind: "raft", index: payload.message.index });
      if (payload.kind === "snapshotBegin") {
        const done = reassembly.begin(payload.group, payload.message, payload.snapshotBytes);
        if (done) received.push({ kind: "snap", group: done.group, message: done.message });
      }
      if (payload.kind === "snapshotChunk") {
        const done = reassembly.chunk(payload.data);
        if (done) received.push({ kind: "snap", group: done.group, message: done.message });
      }
    }
  }
  return { received, completed, frames };
}

describe("PeerSendQueue", () => {
  it("packs payloads and snapshots into bounded frames and the receiver rebuilds everything in order", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 4096, max: 40_000 }),
        fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 120_000 }), { maxLength: 3 }),
        (frameBytesMax, entrySizes, snapshotSizes) => {
          const queue = new PeerSendQueue(limits(frameBytesMax));
          entrySizes.forEach((size, i) => {
            expect(queue.push({ encoded: encodePayload({ kind: "raft", group: "g", message: message({ index: i, entries: [entry(1, new Uint8Array(size))] }) }) })).toBe(true);
          });
          const snapshots = snapshotSizes.map((size, i) => Uint8Array.from({ length: size }, (_, j) => (i * 7 + j) & 0xff));
          snapshots.forEach((data, i) => expect(queue.pushSnapshot(`s${i}`, header(`s${i}`, data), data)).toBe(true));
          const { received, completed } = transmit(queue, frameBytesMax);
          expect(received.filter((r) => r.kind === "raft").map((r) => r.index)).toEqual(entrySizes.map((_, i) => i));
          const snaps = received.filter((r) => r.kind === "snap");
          expect(snaps.map((r) => r.group)).toEqual(snapshots.map((_, i) => `s${i}`));
          snaps.forEach((r, i) => expect(Buffer.from(r.message!.snapshot!.data).equals(Buffer.from(snapshots[i]!))).toBe(true));
          expect(completed).toEqual(snapshots.map((_, i) => `s${i}`));
          expect(queue.hasWork()).toBe(false);
          expect(queue.queuedBytes).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("refuses payloads beyond sendQueueBytesMax or sendQueueFramesMax, and snapshots beyond snapshotsQueuedMax", () => {
    const encoded = encodePayload({ kind: "raft", group: "g", message: message() });
    const byBytes = new PeerSendQueue(limits(4096, { sendQueueBytesMax: encoded.byteLength * 3 }));
    expect([1, 2, 3, 4].map(() => byBytes.push({ encoded }))).toEqual([true, true, true, false]);
    const byCount = new PeerSendQueue(limits(4096, { sendQueueFramesMax: 2 }));
    expect([1, 2, 3].map(() => byCount.push({ encoded }))).toEqual([true, true, false]);
    const bySnapshots = new PeerSendQueue(limits(4096, { snapshotsQueuedMax: 1 }));
    expect(bySnapshots.pushSnapshot("a", encoded, new Uint8Array(10))).toBe(true);
    expect(bySnapshots.pushSnapshot("b", encoded, new Uint8Array(10))).toBe(false);
    const drained = bySnapshots.drain();
    expect(drained.snapshotGroups).toEqual(["a"]);
    expect(bySnapshots.hasWork()).toBe(false);
  });
});

describe("SnapshotReassembly", () => {
  const m = message({ type: "snap", snapshot: snapshot(new Uint8Array(0)) });

  function refused(act: () => unknown): void {
    expect(act).toThrow(CairnError);
  }

  it("refuses chunks without a begin, beyond the size, a second begin, and oversize snapshots", () => {
    const r = new SnapshotReassembly(10);
    refused(() => r.chunk(Uint8Array.of(1)));
    refused(() => r.begin("g", m, 11));
    expect(r.begin("g", m, 3)).toBeNull();
    refused(() => r.begin("g", m, 3));
    refused(() => r.chunk(Uint8Array.of(1, 2, 3, 4)));
  });

  it("completes an empty snapshot at once and starts over after reset", () => {
    const r = new SnapshotReassembly(10);
    expect(r.begin("g", m, 0)).toMatchObject({ group: "g", message: { type: "snap" } });
    expect(r.begin("g", m, 4)).toBeNull();
    r.reset();
    refused(() => r.chunk(Uint8Array.of(1)));
    expect(r.begin("h", m, 2)).toBeNull();
    expect(r.chunk(Uint8Array.of(5, 6))!.message.snapshot!.data).toEqual(Uint8Array.of(5, 6));
  });
});
