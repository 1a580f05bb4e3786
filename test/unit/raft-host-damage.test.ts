/**
 * Goal: RaftHost never runs a group whose stored log or snapshot is damaged: the open fails with
 * CORRUPT_DATA naming the group, the host turns fatal (the node stops serving) and no Raft core exists
 * for the group, so it can neither campaign nor vote. Damage the recovery policy explains as loss (a
 * snapshot file a truncated log tail had replaced) instead opens the group empty and recovering.
 * Method: a RaftHost over a MemoryLogStore with a byte flipped in a middle entry, and a stub policy.
 */
import { afterEach, describe, expect, it } from "vitest";
import { resolveLimits, resolveTiming } from "../../src/node/config.ts";
import { MemoryLogStore } from "../../src/node/log-store-memory.ts";
import { silentLogger } from "../../src/node/logger.ts";
import { RaftHost, type GroupStateMachine } from "../../src/node/raft-host.ts";
import type { RecoveryPolicy } from "../../src/node/recovery.ts";
import { MemoryPeerHub } from "../../src/node/transport-memory.ts";

const GROUP = "b:orders:5";
const sm: GroupStateMachine = { apply: () => undefined, restore: () => undefined, snapshot: () => new Uint8Array(0) };
const hubs: MemoryPeerHub[] = [];
afterEach(() => {
  for (const hub of hubs.splice(0)) hub.close();
});

async function damagedStore(): Promise<MemoryLogStore> {
  const seeded = new MemoryLogStore();
  const entries = [1, 2, 3, 4].map((index) => ({ index, term: 1, type: "normal" as const, data: new Uint8Array([index]) }));
  await seeded.write([{ group: GROUP, hardState: { term: 1, vote: "n1", commit: 4 }, entries, snapshot: null }], { sync: true });
  const store = seeded.crash();
  expect(store.corruptEntry(GROUP, 2)).toBe(true);
  return store;
}

function host(store: MemoryLogStore): RaftHost {
  const hub = new MemoryPeerHub();
  hubs.push(hub);
  return new RaftHost({
    nodeId: "n1",
    store,
    transport: hub.transport("n1"),
    timing: resolveTiming({ tickMs: 20, heartbeatTicks: 2, electionTicks: 10 }),
    limits: resolveLimits(undefined),
    logger: silentLogger,
  });
}

describe("RaftHost and damaged groups", () => {
  it("a damaged log refuses the group: CORRUPT_DATA naming it, the host turns fatal, no core for it", async () => {
    const h = host(await damagedStore());
    const fatal: unknown[] = [];
    h.onFatal = (error) => fatal.push(error);
    await expect(h.openGroup(GROUP, sm, { voters: ["n1", "n2", "n3"], campaign: true })).rejects.toMatchObject({
      code: "CORRUPT_DATA",
      message: expect.stringMatching(/^group b:orders:5: entry 2 is damaged/),
    });
    expect(h.group(GROUP)).toBeUndefined();
    expect(fatal).toHaveLength(1);
    expect(h.fatal).toBe(fatal[0]);
    await h.close();
  });

  it("damage the recovery policy explains as loss opens the group empty, recovering", async () => {
    const store = await damagedStore();
    const h = host(store);
    const asked: string[] = [];
    const policy: RecoveryPolicy = {
      recovering: async () => true,
      onRecovered: () => undefined,
      lostOnLoad: async (group) => {
        asked.push(group);
        return true;
      },
    };
    h.recovery = policy;
    const group = await h.openGroup(GROUP, sm, { voters: ["n1", "n2", "n3"], campaign: true });
    expect(asked).toEqual([GROUP]);
    expect(h.fatal).toBeNull();
    expect(group.recovering).toBe(true);
    expect(group.core.status()).toMatchObject({ recovering: true, lastIndex: 0, term: 0 });
    expect((await store.load(GROUP)).entries).toEqual([]);
    await h.close();
  });
});
