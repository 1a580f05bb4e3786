/**
 * The end-of-test check of the in-process membership and replica-change tests: every replica of a
 * bucket holds exactly the same history (read stale, from that replica), and each acknowledged write
 * is there — at its revision with its value, or overwritten by a later revision.
 */
import { expect } from "vitest";
import type { KV } from "../../src/client/index.ts";

export type Acked = Map<string, { value: string; revision: number }>;

export async function expectSameHistories(ids: readonly string[], open: (id: string) => Promise<KV>, acked: Acked): Promise<void> {
  let reference: string | null = null;
  for (const id of ids) {
    const kv = await open(id);
    const history: string[] = [];
    const latest = new Map<string, { revision: number; value: string }>();
    for await (const e of kv.history({ key: ">", consistency: "stale" })) {
      history.push(`${e.revision} ${e.key} ${e.operation} ${e.string()}`);
      latest.set(e.key, { revision: e.revision, value: e.string() });
    }
    if (reference === null) reference = history.join("\n");
    else expect(history.join("\n"), `history on ${id}`).toBe(reference);
    for (const [key, { value, revision }] of acked) {
      const e = latest.get(key);
      expect(e?.revision, `${key} on ${id}`).toBeGreaterThanOrEqual(revision);
      if (e?.revision === revision) expect(e.value).toBe(value);
    }
  }
}
