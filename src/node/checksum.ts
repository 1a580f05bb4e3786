/**
 * CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), in TypeScript.
 *
 * Why our own code and not node:zlib `crc32`: zlib's is the IEEE polynomial, and LevelDB checksums its
 * write-ahead log and table blocks with CRC32C. The log store verifies those files itself before LevelDB
 * opens them (see log-store-leveldb-verify.ts), so it needs CRC32C anyway, and one algorithm for every
 * checksum we write keeps the on-disk format simple. Slicing-by-8 tables make it fast enough for the
 * 100+ MB snapshot files (measured in bench/log-store.ts).
 */

const POLYNOMIAL_REFLECTED = 0x82f63b78;
/** Slicing-by-8: eight 256-entry tables, table k advances a byte through k further zero bytes. */
const SLICE_COUNT = 8;
const TABLE = buildTables();

function buildTables(): Uint32Array {
  const table = new Uint32Array(256 * SLICE_COUNT);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL_REFLECTED : c >>> 1;
    table[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = table[n]!;
    for (let k = 1; k < SLICE_COUNT; k++) {
      c = (table[c & 0xff]! ^ (c >>> 8)) >>> 0;
      table[k * 256 + n] = c;
    }
  }
  return table;
}

/**
 * CRC32C of `bytes`, continuing from `previous` (the CRC of the bytes before them; 0 to start), so
 * `crc32c(b, crc32c(a)) === crc32c(concat(a, b))`. Returns an unsigned 32-bit integer.
 */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  const t = TABLE;
  let crc = ~previous >>> 0;
  let i = 0;
  const length = bytes.length;
  const end8 = length - (length % 8);
  while (i < end8) {
    const lo = (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    crc =
      t[7 * 256 + (lo & 0xff)]! ^
      t[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      t[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      t[4 * 256 + (lo >>> 24)]! ^
      t[3 * 256 + bytes[i + 4]!]! ^
      t[2 * 256 + bytes[i + 5]!]! ^
      t[1 * 256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < length) {
    crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
    i++;
  }
  return ~crc >>> 0;
}

/** LevelDB stores CRCs "masked" so that a CRC of data that itself contains CRCs stays well distributed. */
const MASK_DELTA = 0xa282ead8;

/** LevelDB's crc32c::Mask (util/crc32c.h): rotate right by 15 bits and add a constant. */
export function maskCrc32c(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

/** The inverse of maskCrc32c. */
export function unmaskCrc32c(masked: number): number {
  const rot = (masked - MASK_DELTA) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}
