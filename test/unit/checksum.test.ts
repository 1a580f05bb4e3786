/**
 * CRC32C (src/node/checksum.ts) against published vectors: RFC 3720 (iSCSI) appendix B.4, the ones
 * LevelDB's util/crc32c_test.cc checks, and LevelDB's mask/unmask rules. Also: continuation equals
 * one pass, and the slicing-by-8 path agrees with a bit-at-a-time reference on random lengths.
 */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32c, maskCrc32c, unmaskCrc32c } from "../../src/node/checksum.ts";

function reference(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

describe("crc32c", () => {
  it("matches the RFC 3720 / LevelDB test vectors", () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it("continues a checksum across pieces and agrees with a bitwise reference", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (bytes, cut) => {
        const at = bytes.length === 0 ? 0 : cut % (bytes.length + 1);
        expect(crc32c(bytes)).toBe(reference(bytes));
        expect(crc32c(bytes.subarray(at), crc32c(bytes.subarray(0, at)))).toBe(crc32c(bytes));
      }),
    );
  });

  it("masks as LevelDB does: unmask inverts mask, and a mask changes the value", () => {
    const crc = crc32c(new TextEncoder().encode("foo"));
    expect(maskCrc32c(crc)).not.toBe(crc);
    expect(maskCrc32c(maskCrc32c(crc))).not.toBe(crc);
    expect(unmaskCrc32c(maskCrc32c(crc))).toBe(crc);
    expect(unmaskCrc32c(unmaskCrc32c(maskCrc32c(maskCrc32c(crc))))).toBe(crc);
  });
});
