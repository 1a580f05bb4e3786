/**
 * The LevelDB file checks of log-store-leveldb-verify.ts, fed raw bytes (no LevelDB): write-ahead log
 * records built by hand after doc/log_format.md, classified as clean, torn tail or corruption; and
 * table files that are too short or have a damaged footer. Real LevelDB files are damaged in
 * log-store-level-corruption.test.ts.
 */

import { describe, expect, it } from "vitest";
import { crc32c, maskCrc32c } from "../../src/node/checksum.ts";
import { scanLog, verifyTable } from "../../src/node/log-store-leveldb-verify.ts";

const BLOCK = 32 * 1024;
const FULL = 1;
const FIRST = 2;
const MIDDLE = 3;
const LAST = 4;

function record(type: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(7);
  header.writeUInt32LE(maskCrc32c(crc32c(payload, crc32c(Uint8Array.of(type)))), 0);
  header.writeUInt16LE(payload.length, 4);
  header[6] = type;
  return Buffer.concat([header, payload]);
}

const payload = (length: number, seed = 1): Uint8Array => Uint8Array.from({ length }, (_, i) => (i * seed + 3) & 0xff);

/** Pads the file with zeros to the start of the next block. */
function padToBlock(file: Buffer): Buffer {
  return Buffer.concat([file, Buffer.alloc((BLOCK - (file.length % BLOCK)) % BLOCK)]);
}

function flip(file: Buffer, offset: number): Buffer {
  const copy = Buffer.from(file);
  copy[offset] = copy[offset]! ^ 0x10;
  return copy;
}

describe("scanLog", () => {
  const three = Buffer.concat([record(FULL, payload(100)), record(FULL, payload(200, 3)), record(FULL, payload(50, 7))]);

  it("accepts intact records, fragments across blocks and the block trailer padding", () => {
    expect(scanLog(three)).toEqual({ kind: "clean" });
    const first = record(FIRST, payload(BLOCK - 7 - 3));
    const filler = Buffer.alloc(3); // fewer than 7 bytes left in the block: the writer pads with zeros
    const spanning = Buffer.concat([first, filler, record(MIDDLE, payload(BLOCK - 7)), record(LAST, payload(10))]);
    expect(scanLog(spanning)).toEqual({ kind: "clean" });
    expect(scanLog(Buffer.alloc(0))).toEqual({ kind: "clean" });
  });

  it("calls a cut inside the last record, or damage in it, a torn tail", () => {
    expect(scanLog(three.subarray(0, three.length - 20))).toMatchObject({ kind: "torn", offset: 314, reason: "partial record" });
    expect(scanLog(three.subarray(0, 314 + 3))).toMatchObject({ kind: "torn", offset: 314, reason: "partial record header" });
    expect(scanLog(flip(three, three.length - 1))).toMatchObject({ kind: "torn", offset: 314, bytes: 57, reason: "record checksum mismatch" });
    expect(scanLog(Buffer.concat([three, Buffer.alloc(40)]))).toMatchObject({ kind: "torn", offset: three.length, reason: "zeroed region" });
  });

  it("calls damage followed by an intact record in the same block corruption", () => {
    expect(scanLog(flip(three, 50))).toEqual({
      kind: "corrupt",
      reason: "record checksum mismatch at offset 0, followed by an intact record at offset 107",
    });
    // A damaged length: the next record cannot be found in this block, but the next block starts intact.
    const twoBlocks = Buffer.concat([padToBlock(three), record(FULL, payload(10))]);
    const damagedLength = flip(twoBlocks, 4);
    expect(scanLog(damagedLength)).toMatchObject({ kind: "corrupt", reason: expect.stringMatching(/at offset 0, followed by an intact record at offset 32768/) });
  });

  it("lets a torn record's own continuation fragments follow the damage", () => {
    const first = record(FIRST, payload(BLOCK - 7));
    const torn = Buffer.concat([flip(first, 100), record(LAST, payload(10))]);
    expect(scanLog(torn)).toMatchObject({ kind: "torn", offset: 0, reason: "record checksum mismatch" });
  });
});

describe("verifyTable", () => {
  it("rejects a file shorter than a footer and a footer without the magic", () => {
    expect(() => verifyTable(new Uint8Array(20))).toThrow(/shorter than a footer/);
    expect(() => verifyTable(new Uint8Array(100))).toThrow(/bad footer magic/);
  });

  it("rejects a footer whose handles point past the data", () => {
    const file = Buffer.alloc(100);
    // metaindex handle (offset 90, size 50), index handle (0, 1), then the magic.
    const footer = Buffer.from([90, 50, 0, 1]);
    footer.copy(file, 100 - 48);
    Buffer.from([0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]).copy(file, 92);
    expect(() => verifyTable(file)).toThrow(/metaindex block: handle points past the end of the data/);
  });
});
