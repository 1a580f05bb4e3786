/**
 * Goal: the internal structures under the KV state machine keep their invariants under any sequence of
 * operations: the sorted key index (with its pending list and id reuse), the record log's key table
 * (tombstones, rebuilds that renumber keys), the value arena (views stay valid across compaction), the
 * expiry heap (total order), the record log (compaction keeps lists and revisions), the request-id
 * window (ring and buckets, ids and results stored out of line), and CRC-32 (zlib's values).
 * Method: each structure against a naive twin (sorted array, Map, plain arrays) under random operations
 * from fast-check, plus known-answer checks.
 */
import fc from "fast-check";
import { crc32 as zlibCrc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { crc32 } from "../../src/kv/crc32.ts";
import { DedupeWindow, type DedupeEntry } from "../../src/kv/dedupe.ts";
import { ExpiryHeap } from "../../src/kv/expiry-heap.ts";
import { hashKey } from "../../src/kv/hash.ts";
import { EMPTY_VALUE, OP_PUT, RecordLog } from "../../src/kv/record-log.ts";
import { SortedKeys } from "../../src/kv/sorted-keys.ts";
import type { KvResult } from "../../src/kv/types.ts";
import { ValueArena } from "../../src/kv/value-arena.ts";

/** Names by id, for the sorted key index (ids reused LIFO). */
class Names {
  names: (string | undefined)[] = [];
  free: number[] = [];
  byName = new Map<string, number>();
  add(key: string): number {
    const id = this.free.length > 0 ? this.free.pop()! : this.names.length;
    this.names[id] = key;
    this.byName.set(key, id);
    return id;
  }
  remove(key: string): number {
    const id = this.byName.get(key)!;
    this.byName.delete(key);
    this.names[id] = undefined;
    this.free.push(id);
    return id;
  }
  liveNameOf(id: number): string | undefined {
    return this.names[id];
  }
}

const keyArb = fc.array(fc.constantFrom("a", "b", "c", "d", "e"), { minLength: 1, maxLength: 6 }).map((t) => t.join("."));
const opArb = fc.oneof(
  { weight: 5, arbitrary: keyArb.map((key) => ({ op: "add" as const, key })) },
  { weight: 3, arbitrary: keyArb.map((key) => ({ op: "remove" as const, key })) },
  { weight: 1, arbitrary: fc.constantFrom("", "a", "a.b", "c.", "e.e").map((key) => ({ op: "scan" as const, key })) },
);

describe("SortedKeys", () => {
  it("lists exactly the live keys in order, with their ids, through pending merges and id reuse", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400 }), (ops) => {
        const names = new Names();
        const sorted = new SortedKeys(names);
        for (const { op, key } of ops) {
          if (op === "add" && !names.byName.has(key)) sorted.insert(key, names.add(key));
          else if (op === "remove" && names.byName.has(key)) {
            const id = names.byName.get(key)!;
            sorted.delete(key, id);
            names.remove(key);
          } else if (op === "scan") {
            const seen: string[] = [];
            sorted.scanPrefix(key, (k, id) => {
              expect(names.names[id]).toBe(k);
              seen.push(k);
              return true;
            });
            expect(seen).toEqual([...names.byName.keys()].filter((k) => k.startsWith(key)).sort());
          }
        }
        const { keys, ids } = sorted.entries();
        expect(keys).toEqual([...names.byName.keys()].sort());
        expect(Array.from(ids)).toEqual(keys.map((k) => names.byName.get(k)));
      }),
      { numRuns: 300 },
    );
  });

  it("handles many keys (block splits, the rebuild merge, block merges after deletions)", () => {
    const names = new Names();
    const sorted = new SortedKeys(names);
    const all = Array.from({ length: 20_000 }, (_, i) => `k.${(i * 7919) % 20_000}`);
    for (const key of all) sorted.insert(key, names.add(key));
    expect(sorted.entries().keys).toEqual([...all].sort());
    for (const key of all.filter((_, i) => i % 3 !== 0)) {
      sorted.delete(key, names.byName.get(key)!);
      names.remove(key);
    }
    for (let i = 0; i < 100; i++) sorted.insert(`n.${i}`, names.add(`n.${i}`)); // small merge: one by one
    expect(sorted.entries().keys).toEqual([...names.byName.keys()].sort());
    let count = 0;
    sorted.scanPrefix("k.1", () => ++count < 5);
    expect(count).toBe(5); // stops when visit returns false
  });

  it("stops a scan early and reports it", () => {
    const names = new Names();
    const sorted = new SortedKeys(names);
    for (const key of ["a.1", "a.2", "a.3"]) sorted.insert(key, names.add(key));
    expect(sorted.scanPrefix("a.", (k) => k !== "a.2")).toBe(false);
    expect(sorted.scanPrefix("b.", () => false)).toBe(true);
  });
});

describe("RecordLog key table", () => {
  it("finds exactly the keys present under random registrations and removals (tombstones, rebuilds)", () => {
    fc.assert(
      // Long sequences: the table starts at 16 rows, and rebuilds only come past 12 keys.
      fc.property(fc.array(opArb, { minLength: 50, maxLength: 400 }), (ops) => {
        const log = new RecordLog();
        const model = new Map<string, number>(); // key -> revision of its one record
        let revision = 0;
        for (const { op, key } of ops) {
          if (op === "add") {
            // Replace the key's record (slots are renumbered when append compacts: ask after it).
            const slot = log.append(log.ensureKey(key), OP_PUT, Uint8Array.of(revision & 0xff), 0, 0, ++revision);
            if (log.older(slot) !== -1) log.remove(log.older(slot));
            model.set(key, revision);
          } else if (op === "remove" && model.has(key)) {
            log.removeKey(log.keyId(key));
            model.delete(key);
          } else if (op === "scan") {
            // Moves pending keys into the blocks, whose ids later rebuilds must renumber.
            const seen: string[] = [];
            log.sorted.scanPrefix(key, (name, id) => {
              expect(log.keyName(id)).toBe(name);
              seen.push(name);
              return true;
            });
            expect(seen).toEqual([...model.keys()].filter((k) => k.startsWith(key)).sort());
          }
          const id = log.keyId(key);
          expect(id === -1 ? undefined : log.revision(log.newest(id))).toBe(model.get(key));
        }
        expect(log.keyCount).toBe(model.size);
        expect(log.keyIdList().map((id) => log.keyName(id)).sort()).toEqual([...model.keys()].sort());
        for (const [key, rev] of model) expect(log.revision(log.newest(log.keyId(key)))).toBe(rev);
        const { keys, ids } = log.sorted.entries();
        expect(keys).toEqual([...model.keys()].sort());
        keys.forEach((key, k) => expect(ids[k]).toBe(log.keyId(key)));
      }),
      { numRuns: 100 },
    );
  });
});

describe("ValueArena", () => {
  it("returns the stored bytes, and views stay valid after frees and chunk drops", () => {
    const arena = new ValueArena();
    const stored: { id: number; offset: number; bytes: Uint8Array; view: Uint8Array }[] = [];
    for (let i = 0; i < 5000; i++) {
      const bytes = Uint8Array.from({ length: 1 + (i % 300) }, (_, j) => (i + j) & 0xff);
      const id = arena.store(bytes);
      stored.push({ id, offset: arena.lastOffset, bytes, view: arena.view(id, arena.lastOffset, bytes.length) });
    }
    for (const s of stored.filter((_, i) => i % 2 === 0)) arena.free(s.id, s.bytes.length);
    for (const s of stored) expect(s.view).toEqual(s.bytes);
    for (const s of stored.filter((_, i) => i % 2 === 1)) expect(arena.view(s.id, s.offset, s.bytes.length)).toEqual(s.bytes);
    expect(arena.liveBytes).toBe(stored.filter((_, i) => i % 2 === 1).reduce((n, s) => n + s.bytes.length, 0));
  });

  it("copies values from another arena (compaction) exactly, whatever their length", () => {
    const from = new ValueArena();
    const to = new ValueArena();
    const copies: { bytes: Uint8Array; view: Uint8Array }[] = [];
    for (let i = 0; i < 1500; i++) {
      const bytes = Uint8Array.from({ length: 1 + ((i * 37) % 1500) }, (_, j) => (i * 7 + j) & 0xff);
      const id = from.store(bytes);
      const copied = to.storeFrom(from, id, from.lastOffset, bytes.length);
      copies.push({ bytes, view: to.view(copied, to.lastOffset, bytes.length) });
    }
    // Compared at the end, so a copy that spilled over an earlier one shows too (a plain loop: toEqual
    // on thousands of arrays is slow).
    const wrong = copies.filter(({ bytes, view }) => view.length !== bytes.length || bytes.some((b, j) => view[j] !== b));
    expect(wrong).toHaveLength(0);
    expect(to.liveBytes).toBe(from.liveBytes);
  });

  it("gives large values a chunk of their own", () => {
    const arena = new ValueArena();
    const big = new Uint8Array(100_000).fill(9);
    const id = arena.store(big);
    expect(arena.lastOffset).toBe(0);
    expect(arena.view(id, 0, big.length)).toEqual(big);
    arena.free(id, big.length);
    expect(arena.allocatedBytes).toBe(0);
  });
});

describe("ExpiryHeap", () => {
  it("pops in (time, revision) order; retain filters", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 1000 })), { maxLength: 200 }), (entries) => {
        const heap = new ExpiryHeap();
        const unique = [...new Map(entries.map(([t, r]) => [r, t])).entries()].map(([r, t]) => [t, r] as const);
        for (const [t, r] of unique) heap.push(t, r);
        heap.retain((r) => r % 3 !== 0);
        const expected = unique.filter(([, r]) => r % 3 !== 0).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        const popped: [number, number][] = [];
        while (heap.size > 0) {
          popped.push([heap.peekTime(), heap.peekRevision()]);
          heap.pop();
        }
        expect(popped).toEqual(expected);
        expect(heap.peekTime()).toBe(Infinity);
      }),
    );
  });
});

describe("RecordLog", () => {
  it("keeps each key's records, revisions and bytes through many compactions", () => {
    const log = new RecordLog();
    const model = new Map<string, number[]>(); // key -> revisions, oldest first
    let revision = 0;
    let x = 1;
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const key = `k${x % 97}`;
      const id = log.ensureKey(key);
      log.append(id, OP_PUT, x % 5 === 0 ? EMPTY_VALUE : Uint8Array.of(x & 0xff, 1), i, 0, ++revision);
      const list = model.get(key) ?? [];
      list.push(revision);
      model.set(key, list);
      while (log.count(id) > 1 + (x % 4)) {
        log.remove(log.oldest(id));
        list.shift();
      }
    }
    let bytes = 0;
    for (const [key, revisions] of model) {
      const id = log.keyId(key);
      const seen: number[] = [];
      for (let slot = log.oldest(id); slot !== -1; slot = log.newer(slot)) seen.push(log.revision(slot));
      expect(seen).toEqual(revisions);
      for (const r of revisions) {
        const slot = log.slotOfRevision(r);
        expect(log.record(slot).key).toBe(key);
        bytes += key.length + log.valueLength(slot);
      }
    }
    expect(log.bytes).toBe(bytes);
    expect(log.live).toBe([...model.values()].reduce((n, l) => n + l.length, 0));
    expect(log.keyCount).toBe(model.size);
  });
});

describe("DedupeWindow", () => {
  // Ids that fit the ring's cells, and ids it must keep as strings (too long, beyond Latin-1).
  const idArb = fc.oneof(
    fc.constantFrom("a", "b", "c", "é", "x".repeat(64), "y".repeat(65), "ж", "k\u{1F600}"),
    fc.nat(40).map((n) => `req-${n}`),
  );
  const resultArb: fc.Arbitrary<KvResult> = fc.oneof(
    fc.nat(1000).map((revision): KvResult => ({ ok: true, revision })),
    fc.nat(5).map((count): KvResult => ({ ok: true, count })),
    fc.constant<KvResult>({ ok: true }),
    fc.constant({ ok: false, code: "WRONG_LAST_REVISION", message: "wrong last sequence: 3", revision: 3 } as KvResult),
  );

  it("answers, evicts and lists as a list of entries does, across growth, wrap-around and reload", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.nat(40),
        // Sequence numbers from 0, or crossing 2^31 and 2^32 (buckets keep their low 32 bits).
        fc.constantFrom(0, 2 ** 31 - 100, 2 ** 32 - 100),
        fc.array(fc.tuple(idArb, fc.nat(3), resultArb, fc.boolean()), { maxLength: 400 }),
        (windowMs, entriesMax, firstSequence, ops) => {
          const window = new DedupeWindow(windowMs, entriesMax, firstSequence);
          let model: DedupeEntry[] = [];
          let now = 0;
          for (const [requestId, step, result, reload] of ops) {
            now += step;
            window.evict(now);
            model = model.filter((e) => now - e.time < windowMs);
            const prior = model.find((e) => e.requestId === requestId);
            expect(window.get(requestId)).toEqual(prior?.result);
            if (prior === undefined) {
              window.add(requestId, now, result);
              model.push({ requestId, time: now, result });
              if (model.length > entriesMax) model.shift();
            }
            expect(window.size).toBe(model.length);
            if (reload) {
              const copy = new DedupeWindow(windowMs, entriesMax);
              copy.load(window.list());
              expect(copy.list()).toEqual(model);
              for (const e of model) expect(copy.get(e.requestId)).toEqual(e.result);
            }
          }
          expect(window.list()).toEqual(model);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("tells apart ids of equal hash", () => {
    // hashKey's colliding pair (found by a birthday search): the window hashes short ids the same way.
    const [a, b] = ["kl9c--------", "k1voz-------"];
    expect(hashKey(a)).toBe(hashKey(b));
    const window = new DedupeWindow(100, 10);
    window.add(a, 0, { ok: true, revision: 1 });
    expect(window.get(b)).toBeUndefined();
    window.add(b, 1, { ok: true, revision: 2 });
    expect(window.get(a)).toEqual({ ok: true, revision: 1 });
    expect(window.get(b)).toEqual({ ok: true, revision: 2 });
    window.evict(100);
    expect(window.get(a)).toBeUndefined();
    expect(window.get(b)).toEqual({ ok: true, revision: 2 });
  });

  it("keeps a large window exact through many evictions (chains past evicted entries, ring growth)", () => {
    const window = new DedupeWindow(1_000_000, 3000);
    for (let i = 0; i < 10_000; i++) {
      const id = `id-${(i * 7919) % 100_003}`;
      expect(window.get(id)).toBeUndefined();
      window.add(id, i, { ok: true, revision: i + 1 });
      if (i % 997 === 0) {
        const oldest = Math.max(0, i - 2999);
        expect(window.get(`id-${(oldest * 7919) % 100_003}`)).toEqual({ ok: true, revision: oldest + 1 });
        if (oldest > 0) expect(window.get(`id-${((oldest - 1) * 7919) % 100_003}`)).toBeUndefined();
      }
    }
    expect(window.size).toBe(3000);
    expect(window.list().map((e) => e.time)).toEqual(Array.from({ length: 3000 }, (_, k) => 7_000 + k));
  });
});

describe("RecordLog replaceOnly", () => {
  it("leaves the log as append then remove of the older record would, through compactions", () => {
    const fast = new RecordLog();
    const slow = new RecordLog();
    let x = 7;
    let revision = 0;
    const check = (): void => {
      // (Not expiryDead: a count of the expiry heap's dead entries, which replaceOnly updates later.)
      expect([fast.live, fast.bytes, fast.keyCount]).toEqual([slow.live, slow.bytes, slow.keyCount]);
      expect(fast.keyOf(fast.first)).not.toBe(-1); // the oldest retained record
      expect(fast.revision(fast.first)).toBe(slow.revision(slow.first));
      expect(fast.toColumns()).toEqual(slow.toColumns());
    };
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const key = `k${x % 300}`;
      const length = x % 11 === 0 ? 0 : x % 97 === 0 ? 3000 : 1 + (x % 70);
      const value = Uint8Array.from({ length }, (_, j) => (x + j) & 0xff);
      const expiresAt = x % 13 === 0 ? 1e12 + i : 0;
      revision++;
      for (const log of [fast, slow]) {
        const id = log.ensureKey(key);
        if (log.count(id) === 1 && log === fast) log.replaceOnly(id, OP_PUT, value, i, expiresAt, revision);
        else {
          const slot = log.append(id, OP_PUT, value, i, expiresAt, revision);
          if (log.older(slot) !== -1) log.remove(log.older(slot));
        }
      }
      if (i % 1999 === 1998) check();
    }
    check();
    // Replaced records are gone by revision too, and the survivors are found.
    for (let r = 1; r <= revision; r++) expect(fast.slotOfRevision(r) === -1).toBe(slow.slotOfRevision(r) === -1);
  });

  it("moves the oldest retained record on when it replaces that one", () => {
    const log = new RecordLog();
    for (let k = 0; k < 10; k++) log.append(log.ensureKey(`k${k}`), OP_PUT, Uint8Array.of(k), 0, 0, k + 1);
    log.replaceOnly(log.keyId("k0"), OP_PUT, Uint8Array.of(9), 0, 0, 11);
    log.replaceOnly(log.keyId("k1"), OP_PUT, Uint8Array.of(9), 0, 0, 12);
    expect(log.revision(log.first)).toBe(3);
    expect(log.slotOfRevision(1)).toBe(-1);
    expect(log.live).toBe(10);
  });
});

describe("RecordLog columns", () => {
  it("restores from its columns to the same columns, the same keys and a working table, at every size", () => {
    for (let keyCount = 0; keyCount <= 70; keyCount++) {
      const log = new RecordLog();
      let revision = 0;
      for (let r = 0; r < keyCount * 2; r++) {
        const key = `k${(r * 7) % Math.max(1, keyCount)}${"x".repeat(r % 20)}`.slice(0, 3 + (r % 20));
        const id = log.ensureKey(key);
        log.append(id, OP_PUT, r % 3 === 0 ? EMPTY_VALUE : Uint8Array.of(r, r + 1, r + 2), r, r % 5 === 0 ? 1e6 + r : 0, ++revision);
        while (log.count(log.keyId(key)) > 2) log.remove(log.oldest(log.keyId(key)));
      }
      const columns = log.toColumns();
      const copy = RecordLog.fromColumns(columns, revision + 3);
      expect(copy.toColumns()).toEqual(columns);
      expect(copy.lastRevision).toBe(revision + 3);
      expect([copy.live, copy.bytes, copy.keyCount]).toEqual([log.live, log.bytes, log.keyCount]);
      for (const key of columns.keys) {
        const id = copy.keyId(key);
        expect(copy.revision(copy.newest(id))).toBe(log.revision(log.newest(log.keyId(key))));
        expect(copy.count(id)).toBe(log.count(log.keyId(key)));
      }
      // The restored table takes new keys and removals like any other.
      const fresh = copy.ensureKey("fresh");
      copy.append(fresh, OP_PUT, Uint8Array.of(9), 0, 0, revision + 4);
      expect(copy.keyName(copy.keyId("fresh"))).toBe("fresh");
      for (const key of columns.keys) copy.removeKey(copy.keyId(key));
      expect(copy.keyCount).toBe(1);
    }
  });
});

describe("RecordLog key lookup", () => {
  it("finds keys by name whether their characters fit the key row or not", () => {
    const log = new RecordLog();
    const keys: string[] = [];
    for (let length = 1; length <= 40; length++) {
      for (const fill of ["a", "é", "\u00ff", "ж"]) {
        keys.push(fill.repeat(length));
        keys.push("x".repeat(length - 1) + fill);
        keys.push(fill + "y".repeat(length - 1));
      }
    }
    const distinct = [...new Set(keys)];
    distinct.forEach((key, i) => log.append(log.ensureKey(key), OP_PUT, Uint8Array.of(i & 0xff), 0, 0, i + 1));
    distinct.forEach((key, i) => {
      const id = log.keyId(key);
      expect(id).not.toBe(-1);
      expect(log.keyName(id)).toBe(key);
      expect(log.revision(log.newest(id))).toBe(i + 1);
      // Same length, one character different (at the start, the end, inside and beyond the row's 16).
      for (const at of [0, key.length - 1, 5, 16]) {
        if (at >= key.length) continue;
        const other = key.slice(0, at) + (key[at] === "q" ? "r" : "q") + key.slice(at + 1);
        if (!distinct.includes(other)) expect(log.keyId(other)).toBe(-1);
      }
      if (!distinct.includes(key + "a")) expect(log.keyId(key + "a")).toBe(-1);
    });
    expect(log.keyCount).toBe(distinct.length);
  });

  it("tells apart keys of equal length and equal hash, in the row and beyond it", () => {
    // Found by a birthday search: hashKey gives each pair one value.
    for (const [a, b] of [
      ["kl9c--------", "k1voz-------"],
      ["kmtz----------------", "k31c1---------------"],
    ] as const) {
      expect(hashKey(a)).toBe(hashKey(b));
      const log = new RecordLog();
      log.append(log.ensureKey(a), OP_PUT, Uint8Array.of(1), 0, 0, 1);
      expect(log.keyId(b)).toBe(-1);
      log.append(log.ensureKey(b), OP_PUT, Uint8Array.of(2), 0, 0, 2);
      expect(log.keyName(log.keyId(a))).toBe(a);
      expect(log.keyName(log.keyId(b))).toBe(b);
      expect(log.keyCount).toBe(2);
    }
  });
});

describe("crc32", () => {
  it("matches zlib, also in pieces and at odd offsets", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(300), (data, cut) => {
        expect(crc32(data)).toBe(zlibCrc32(data));
        const at = Math.min(cut, data.length);
        expect(crc32(data.subarray(at), crc32(data.subarray(0, at)))).toBe(zlibCrc32(data));
      }),
    );
  });
});
