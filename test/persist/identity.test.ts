// The data folder's replica identity: which starts keep the folder's CRDT actor and which begin
// a new epoch (finding 1 of issue 12), on a real folder, plus the pure derivation both the node
// and the simulator use.

import { describe, expect, test } from "bun:test";
import { cp, mkdir, rm, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cleanStopFileName, identityFileName, markCleanStop, openIdentity, renewEpochSync, type ReplicaIdentity } from "../../src/persist/identity.ts";
import { silentLog, type Durability } from "../../src/persist/index.ts";
import { decideIdentity, epochFromRandom, parseReplicaActor, replicaActor } from "../../src/persist/replica.ts";
import { actorIdBytesMax } from "../../src/crdt/actors.ts";
import { removeDir, tempDir } from "./helpers.ts";

const sync: Durability = { kind: "sync" };
const interval: Durability = { kind: "interval", ms: 100 };
const none: Durability = { kind: "none" };

/** Deterministic "random" bytes: each call a different epoch. */
function counterRandom(): () => Uint8Array {
  let n = 0;
  return () => {
    n++;
    return new Uint8Array([0, 0, 0, 0, 0, 0, n >> 8, n & 0xff]);
  };
}

async function withFolder(fn: (dir: string) => Promise<void>): Promise<void> {
  const root = await tempDir("identity");
  try {
    const dir = join(root, "data");
    await mkdir(dir);
    await fn(dir);
  } finally {
    await removeDir(root);
  }
}

function start(dir: string, durability: Durability, random: () => Uint8Array, repair = false, nodeId = "node-1"): Promise<ReplicaIdentity> {
  return openIdentity({ dataDir: dir, nodeId, durability, repair, random, nowMs: 1_000, log: silentLog });
}

describe("replica identity on disk", () => {
  test("an eviction's new epoch is durable: the next start continues as the new actor, never as the old", async () => {
    await withFolder(async (dir) => {
      const random = counterRandom();
      const first = await start(dir, sync, random);
      const said: string[] = [];
      const renewed = renewEpochSync({ dataDir: dir, nodeId: "node-1", random, nowMs: 5_000, log: (_l, m) => void said.push(m) });
      expect(renewed).not.toBe(first.actor);
      expect(parseReplicaActor(renewed)?.nodeId).toBe("node-1");
      expect(said.join()).toContain(`(was epoch ${first.epoch})`);
      // A clean stop keeps the renewed epoch; a kill starts yet another (never the old one).
      await markCleanStop(dir);
      const clean = await start(dir, sync, random);
      expect(clean.actor).toBe(renewed);
      expect(clean.epochStartedAtMs).toBe(5_000);
      const killed = await start(dir, sync, random);
      expect([first.actor, renewed]).not.toContain(killed.actor);
      // Another node's folder, or a damaged file, is refused: nothing is written.
      expect(() => renewEpochSync({ dataDir: dir, nodeId: "node-2", random, nowMs: 6_000, log: silentLog })).toThrow("names node node-1, not node-2");
      await writeFile(join(dir, identityFileName), "garbage");
      expect(() => renewEpochSync({ dataDir: dir, nodeId: "node-1", random, nowMs: 6_000, log: silentLog })).toThrow("not JSON");
      expect(await Bun.file(join(dir, identityFileName)).text()).toBe("garbage");
    });
  });

  test("an empty folder starts a new epoch; a clean restart keeps it", async () => {
    await withFolder(async (dir) => {
      const random = counterRandom();
      const first = await start(dir, interval, random);
      expect(first.decision).toEqual({ kind: "new", reason: "empty" });
      expect(first.actor).toBe(`node-1/${first.epoch}`);
      await markCleanStop(dir);
      const second = await start(dir, interval, random);
      expect(second.decision.kind).toBe("keep");
      expect(second.actor).toBe(first.actor);
      expect(second.epochStartedAtMs).toBe(first.epochStartedAtMs);
    });
  });

  test("the clean-stop marker is consumed at start: a crash after a clean restart is unclean", async () => {
    await withFolder(async (dir) => {
      const random = counterRandom();
      await start(dir, none, random);
      await markCleanStop(dir);
      const kept = await start(dir, none, random);
      expect(await Bun.file(join(dir, cleanStopFileName)).exists()).toBe(false);
      const after = await start(dir, none, random); // no markCleanStop: killed
      expect(after.decision).toEqual({ kind: "new", reason: "unclean-stop" });
      expect(after.actor).not.toBe(kept.actor);
    });
  });

  for (const durability of [interval, none]) {
    test(`an unclean stop under ${durability.kind} starts a new epoch (acknowledged writes may be lost)`, async () => {
      await withFolder(async (dir) => {
        const random = counterRandom();
        const first = await start(dir, durability, random);
        const second = await start(dir, durability, random);
        expect(second.decision).toEqual({ kind: "new", reason: "unclean-stop" });
        expect(second.epoch).not.toBe(first.epoch);
      });
    });
  }

  test("an unclean stop under sync starts a new epoch too: it cannot be told from a hot copy put back (same folder, same inode)", async () => {
    await withFolder(async (dir) => {
      const random = counterRandom();
      const first = await start(dir, sync, random);
      const second = await start(dir, sync, random);
      expect(second.decision).toEqual({ kind: "new", reason: "unclean-stop" });
      expect(second.actor).not.toBe(first.actor);
    });
  });

  test("--repair starts a new epoch even after a clean stop", async () => {
    await withFolder(async (dir) => {
      const random = counterRandom();
      const first = await start(dir, sync, random);
      await markCleanStop(dir);
      const repaired = await start(dir, sync, random, true);
      expect(repaired.decision).toEqual({ kind: "new", reason: "repair" });
      expect(repaired.actor).not.toBe(first.actor);
    });
  });

  test("a deleted identity file (the restore procedure) or an emptied folder starts a new epoch", async () => {
    await withFolder(async (dir) => {
      const random = counterRandom();
      const first = await start(dir, sync, random);
      await markCleanStop(dir);
      await unlink(join(dir, identityFileName));
      const second = await start(dir, sync, random);
      expect(second.decision).toEqual({ kind: "new", reason: "empty" });
      expect(second.actor).not.toBe(first.actor);
    });
  });

  test("a copy of a cleanly stopped folder (another inode) starts a new epoch", async () => {
    await withFolder(async (dir) => {
      const random = counterRandom();
      const first = await start(dir, sync, random);
      await markCleanStop(dir);
      const copy = `${dir}-restored`;
      await cp(dir, copy, { recursive: true });
      try {
        const restored = await start(copy, sync, random);
        expect(restored.decision).toEqual({ kind: "new", reason: "copied" });
        expect(restored.actor).not.toBe(first.actor);
      } finally {
        await rm(copy, { recursive: true, force: true });
      }
    });
  });

  test("a damaged identity file starts a new epoch instead of refusing", async () => {
    await withFolder(async (dir) => {
      await writeFile(join(dir, identityFileName), "{not json");
      const id = await start(dir, sync, counterRandom());
      expect(id.decision).toEqual({ kind: "new", reason: "empty" });
      // and it is replaced by a good one, kept by the next clean restart
      await markCleanStop(dir);
      expect((await start(dir, sync, counterRandom())).actor).toBe(id.actor);
    });
  });

  test("another node id's folder starts a new epoch under this id", async () => {
    await withFolder(async (dir) => {
      const random = counterRandom();
      await start(dir, sync, random, false, "node-1");
      await markCleanStop(dir);
      const other = await start(dir, sync, random, false, "node-2");
      expect(other.decision).toEqual({ kind: "new", reason: "other-node" });
      expect(parseReplicaActor(other.actor)?.nodeId).toBe("node-2");
    });
  });
});

describe("actor derivation (shared by the node and the simulator)", () => {
  test("node id + epoch round-trips and fits the actor id limit", () => {
    const epoch = epochFromRandom(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 255]));
    expect(epoch as string).toBe("01020304050607ff");
    const longest = "a".repeat(64);
    const actor = replicaActor(longest, epoch);
    expect(new TextEncoder().encode(actor).length).toBeLessThanOrEqual(actorIdBytesMax);
    expect(parseReplicaActor(actor)).toEqual({ nodeId: longest, epoch });
    expect(parseReplicaActor("node-1")).toBeNull();
  });

  test("bad input is refused", () => {
    expect(() => epochFromRandom(new Uint8Array(7))).toThrow(RangeError);
    expect(() => replicaActor("a/b", epochFromRandom(new Uint8Array(8)))).toThrow(RangeError);
  });

  test("the keep-or-new table", () => {
    const epoch = epochFromRandom(new Uint8Array(8));
    const stored = { nodeId: "n", epoch, folderIno: "7" };
    const facts = { stored, folderIno: "7", cleanStop: true, repair: false, durability: none };
    expect(decideIdentity(facts, "n")).toEqual({ kind: "keep", epoch });
    expect(decideIdentity({ ...facts, stored: null }, "n")).toEqual({ kind: "new", reason: "empty" });
    expect(decideIdentity({ ...facts, restored: true }, "n")).toEqual({ kind: "new", reason: "restored" });
    expect(decideIdentity({ ...facts, folderIno: "8" }, "n")).toEqual({ kind: "new", reason: "copied" });
    expect(decideIdentity({ ...facts, repair: true }, "n")).toEqual({ kind: "new", reason: "repair" });
    expect(decideIdentity({ ...facts, cleanStop: false }, "n")).toEqual({ kind: "new", reason: "unclean-stop" });
    expect(decideIdentity({ ...facts, cleanStop: false, durability: sync }, "n")).toEqual({ kind: "new", reason: "unclean-stop" });
    expect(decideIdentity(facts, "m")).toEqual({ kind: "new", reason: "other-node" });
  });
});
