// A partitioned cluster's Scan (src/node/scan.ts) over real engines and the real placement:
// every key present for the whole scan is listed once, whichever member runs it, while keys are
// written, deleted and collected (key tables compacting) on every member between pages; a
// cursor from another placement is refused; a dead member's partitions are listed by other owners,
// and only a partition with no owner up is UNAVAILABLE.
// Members talk directly here (no gRPC): the ScanPart call itself is tested in
// test/transport/server.test.ts and end to end in test/integration/forward.test.ts.

import { describe, expect, test } from "bun:test";
import { Placement, partitionOf } from "../../src/cluster/placement.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { Engine, shortCursorBits, type EngineOp } from "../../src/engine/index.ts";
import { ClusterScan, decodeClusterCursor, encodeClusterCursor, scanSegmentsMax, segmentBitmap } from "../../src/node/scan.ts";
import { buildScanListing, type ScanListing } from "../../src/cluster/cluster.ts";
import { Rng } from "../../src/sim/rng.ts";
import { OpFailure, type ScanPage, type ScanQuery } from "../../src/transport/api.ts";
import { propertySeed } from "../crdt/prop.ts";

const T = 1_700_000_000_000;

interface Member {
  id: string;
  engine: Engine;
  scan: ClusterScan;
  status: "alive" | "dead";
}

/** n members, each with its engine and a ClusterScan whose remote calls go straight to the other's part(). */
function cluster(n: number, rf: number, partitions = 64): { members: Member[]; placement: Placement; listing: ScanListing; byId: Map<string, Member>; setPlacement(p: Placement, former?: Placement[]): void } {
  const ids = Array.from({ length: n }, (_, i) => `m${i}`);
  let placement = new Placement(ids.map(asNodeId), { partitions, replicationFactor: rf });
  let former: Placement[] = [];
  // As Cluster.scanListing: members seen dead list nothing while another owner is up.
  let made: { key: string; listing: ScanListing } | null = null;
  const listingNow = (): ScanListing => {
    const key = [placement.members.join(), ...former.map((f) => f.members.join()), ...[...byId.values()].map((m) => m.status)].join("|");
    if (made === null || made.key !== key) made = { key, listing: buildScanListing(placement, former, (id) => byId.get(id)?.status === "dead") };
    return made.listing;
  };
  const byId = new Map<string, Member>();
  const members = ids.map((id): Member => {
    const engine = new Engine({ actor: id });
    const m: Member = {
      id, engine, status: "alive",
      scan: new ClusterScan({
        selfId: id,
        listing: listingNow,
        joining: () => false,
        partitions,
        member: (other) => {
          const o = byId.get(other);
          return o === undefined ? undefined : { status: o.status, addr: `${other}:1` };
        },
        local: (q: ScanQuery, keep) => {
          const page = engine.listKeys(keep === undefined ? q.cursor : engine.fullCursor(q.cursor), q.limit, q.prefix, q.type ?? undefined, T, keep);
          if (!page.ok) throw new OpFailure("INVALID_ARGUMENT", page.error.message);
          return keep === undefined ? page : { keys: page.keys, cursor: engine.shortCursor(page.cursor) };
        },
        remote: async (to, q, _segment, _check, bits): Promise<ScanPage> => byId.get(to.id)!.scan.part(q, bits),
      }),
    };
    byId.set(id, m);
    return m;
  });
  return {
    members, byId,
    get placement() { return placement; },
    get listing() { return listingNow(); },
    setPlacement: (p, f = []) => {
      placement = p;
      former = f;
    },
  };
}

function apply(e: Engine, op: EngineOp): void {
  const r = e.apply(op, T);
  if (!r.ok) throw new Error(r.error.message);
}

/** Writes key on each of its owners (as replication would leave it). */
function writeOwned(c: ReturnType<typeof cluster>, key: string, op: EngineOp): void {
  for (const id of c.placement.ownersOfKey(key)) apply(c.byId.get(id)!.engine, op);
}

function deleteOwned(c: ReturnType<typeof cluster>, key: string, collect: boolean): void {
  for (const id of c.placement.ownersOfKey(key)) {
    const e = c.byId.get(id)!.engine;
    e.delete(key, T);
    const d = e.digest(key);
    if (collect && d !== undefined) e.collect(key, d);
  }
}

async function scanAll(s: ClusterScan, q: Partial<ScanQuery> = {}, between?: () => void): Promise<string[]> {
  const out: string[] = [];
  let cursor = 0;
  let pages = 0;
  do {
    const page = await s.scan({ prefix: "", type: null, limit: 100, ...q, cursor });
    out.push(...page.keys);
    cursor = page.cursor;
    between?.();
    if (++pages > 100_000) throw new Error("scan did not end");
  } while (cursor !== 0);
  return out;
}

describe("partitioned Scan", () => {
  test("cursors take apart into what they were made of, and stay safe integers", () => {
    const c = { segment: scanSegmentsMax - 1, check: 31, inner: 2 ** shortCursorBits - 1 };
    const n = encodeClusterCursor(c);
    expect(Number.isSafeInteger(n)).toBe(true);
    expect(decodeClusterCursor(n)).toEqual(c);
    expect(decodeClusterCursor(encodeClusterCursor({ segment: 3, check: 7, inner: 5 * 2 ** 32 + 9 }))).toEqual({ segment: 3, check: 7, inner: 5 * 2 ** 32 + 9 });
  });

  test("from any member, every key is listed exactly once although each member holds only its partitions'", async () => {
    const c = cluster(5, 3);
    const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`);
    for (const k of keys) writeOwned(c, k, { kind: "incr", key: k, amount: 1n });
    for (const m of c.members) expect(m.engine.keyCountAt(T)).toBeLessThan(keys.length);
    for (const m of c.members) {
      const listed = await scanAll(m.scan, { limit: 1 + (m.id.charCodeAt(1) * 37) % 300 });
      expect(listed.length).toBe(keys.length);
      expect(new Set(listed).size).toBe(keys.length);
    }
    // The node's own replica, as before (local).
    const own = await scanAll(c.members[0]!.scan, { local: true });
    expect(own.sort()).toEqual(keys.filter((k) => c.placement.ownersOfKey(k).includes(asNodeId("m0"))).sort());
    // Prefix and type filters apply within each member's share.
    apply(c.byId.get(c.placement.ownersOfKey("reg:1")[0]!)!.engine, { kind: "set", key: "reg:1", value: new TextEncoder().encode("v") });
    expect(await scanAll(c.members[1]!.scan, { type: "lww" })).toEqual(["reg:1"]);
    expect((await scanAll(c.members[2]!.scan, { prefix: "k19" })).sort()).toEqual(keys.filter((k) => k.startsWith("k19")).sort());
  });

  test("keys present for the whole scan are listed once while members write, delete and compact between pages (random interleavings)", async () => {
    for (let run = 0; run < 6; run++) {
      const seed = (propertySeed + run * 104_729) >>> 0;
      try {
        await churnRun(seed);
      } catch (err) {
        throw new Error(`failed with seed ${seed} (IMDB_SEED=${propertySeed}, run ${run}): ${String(err)}`);
      }
    }
  });

  test("a cursor made under another placement is refused (restart the scan); a member's own refusal of its cursor reaches the client", async () => {
    const c = cluster(4, 2);
    for (let i = 0; i < 500; i++) writeOwned(c, `k${i}`, { kind: "incr", key: `k${i}`, amount: 1n });
    const first = await c.members[0]!.scan.scan({ prefix: "", type: null, limit: 10, cursor: 0 });
    expect(first.cursor).not.toBe(0);
    let next = new Placement(["m0", "m1", "m2", "m3", "m4"].map(asNodeId), { partitions: 64, replicationFactor: 2 });
    // A listing with the same 5-bit check would go unnoticed (documented); pick one that differs.
    for (let extra = 5; buildScanListing(next, []).check === c.listing.check; extra++) {
      next = new Placement([...["m0", "m1", "m2", "m3"], `m${extra}`].map(asNodeId), { partitions: 64, replicationFactor: 2 });
    }
    c.setPlacement(next);
    const err = await c.members[0]!.scan.scan({ prefix: "", type: null, limit: 10, cursor: first.cursor }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpFailure);
    expect((err as OpFailure).code).toBe("INVALID_ARGUMENT");
    expect((err as OpFailure).message).toContain("restart the scan");
    // Garbage is refused, not read as a position.
    const junk = await c.members[1]!.scan.scan({ prefix: "", type: null, limit: 10, cursor: 2 ** 52 + 17 }).catch((e: unknown) => e);
    expect((junk as OpFailure).code).toBe("INVALID_ARGUMENT");
  });

  test("with a member dead, its partitions are listed by the other owners: every key once, the dead member never asked", async () => {
    const c = cluster(3, 2);
    for (let i = 0; i < 300; i++) writeOwned(c, `k${i}`, { kind: "incr", key: `k${i}`, amount: 1n });
    const m1 = c.byId.get("m1")!;
    m1.status = "dead";
    // Asking it would fail the test: a dead member is not called.
    m1.scan.part = () => {
      throw new Error("the dead member was asked for keys");
    };
    expect(c.listing.listerOf.includes(c.placement.members.indexOf(asNodeId("m1")))).toBe(false);
    for (const runner of [c.members[0]!, c.members[2]!]) {
      const out: string[] = [];
      let cursor = 0;
      do {
        const page = await runner.scan.scan({ prefix: "", type: null, limit: 40, cursor });
        out.push(...page.keys);
        cursor = page.cursor;
      } while (cursor !== 0);
      expect(out.length).toBe(300);
      expect(new Set(out).size).toBe(300);
    }
  });

  test("a scan spanning a member's death is told to restart (its partitions moved to other listers); the restarted scan lists every key once", async () => {
    const c = cluster(3, 2);
    for (let i = 0; i < 300; i++) writeOwned(c, `k${i}`, { kind: "incr", key: `k${i}`, amount: 1n });
    const first = await c.members[0]!.scan.scan({ prefix: "", type: null, limit: 20, cursor: 0 });
    expect(first.cursor).not.toBe(0);
    c.byId.get("m2")!.status = "dead";
    const err = await c.members[0]!.scan.scan({ prefix: "", type: null, limit: 20, cursor: first.cursor }).catch((e: unknown) => e);
    expect((err as OpFailure).code).toBe("INVALID_ARGUMENT");
    expect((err as OpFailure).message).toContain("restart the scan");
    const out: string[] = [];
    let cursor = 0;
    do {
      const page = await c.members[0]!.scan.scan({ prefix: "", type: null, limit: 20, cursor });
      out.push(...page.keys);
      cursor = page.cursor;
    } while (cursor !== 0);
    expect(new Set(out).size).toBe(300);
    expect(out.length).toBe(300);
  });

  test("a partition whose every owner is down is UNAVAILABLE, naming the member; the scan goes on once it is back", async () => {
    // RF 1: m1's partitions have no other owner.
    const c = cluster(3, 1);
    for (let i = 0; i < 300; i++) writeOwned(c, `k${i}`, { kind: "incr", key: `k${i}`, amount: 1n });
    c.byId.get("m1")!.status = "dead";
    const out: string[] = [];
    let cursor = 0;
    let err: unknown = null;
    while (err === null) {
      try {
        const page = await c.members[0]!.scan.scan({ prefix: "", type: null, limit: 50, cursor });
        out.push(...page.keys);
        cursor = page.cursor;
        if (cursor === 0) break;
      } catch (e) {
        err = e;
      }
    }
    expect((err as OpFailure).code).toBe("UNAVAILABLE");
    expect((err as OpFailure).message).toContain("m1");
    c.byId.get("m1")!.status = "alive";
    do {
      const page = await c.members[0]!.scan.scan({ prefix: "", type: null, limit: 50, cursor });
      out.push(...page.keys);
      cursor = page.cursor;
    } while (cursor !== 0);
    expect(out.length).toBe(300);
    expect(new Set(out).size).toBe(300);
  });

  test("outside a hand-off window each key is listed by its partition's first owner only; a bitmap of the wrong size is refused", () => {
    const c = cluster(5, 3);
    for (let i = 0; i < 400; i++) writeOwned(c, `k${i}`, { kind: "incr", key: `k${i}`, amount: 1n });
    c.placement.members.forEach((id, segment) => {
      const page = c.byId.get(id)!.scan.part({ prefix: "", type: null, limit: 10_000, cursor: 0 }, segmentBitmap(c.listing, segment));
      for (const k of page.keys) expect(c.placement.owners(partitionOf(k, 64))[0]).toBe(id);
    });
    expect(() => c.byId.get("m0")!.scan.part({ prefix: "", type: null, limit: 10, cursor: 0 }, new Uint8Array(3))).toThrow(OpFailure);
  });

  test("a segment's cursor from 2 to 31 compactions of its member's key table ago is refused (restart), not read as a position", async () => {
    const c = cluster(2, 2);
    const m0 = c.byId.get("m0")!.engine;
    const mine = Array.from({ length: 3000 }, (_, i) => `k${i}`).filter((k) => c.placement.owners(partitionOf(k, 64))[0] === "m0").slice(0, 100);
    for (const k of mine) writeOwned(c, k, { kind: "incr", key: k, amount: 1n });
    const first = await c.members[0]!.scan.scan({ prefix: "k", type: null, limit: 10, cursor: 0 });
    expect(decodeClusterCursor(first.cursor).segment).toBe(0);
    // Eight compactions of m0's table: 1100 keys written and collected each time.
    for (let round = 0; m0.storageSizes().compactions < 8; round++) {
      for (let i = 0; i < 1100; i++) apply(m0, { kind: "incr", key: `c${round}_${i}`, amount: 1n });
      for (let i = 0; i < 1100; i++) {
        m0.delete(`c${round}_${i}`, T);
        m0.collect(`c${round}_${i}`, m0.digest(`c${round}_${i}`)!);
      }
    }
    const err = await c.members[0]!.scan.scan({ prefix: "k", type: null, limit: 10, cursor: first.cursor }).catch((e: unknown) => e);
    expect((err as OpFailure).code).toBe("INVALID_ARGUMENT");
    expect((err as OpFailure).message).toContain("restart the scan");
  });

  test("just after a join, a partition whose new first owner is not filled yet is listed by an owner that held it: nothing is missed", async () => {
    // Three members hold every key; a fourth joins and owns partitions it holds nothing of yet.
    const c = cluster(4, 2);
    const three = new Placement(["m0", "m1", "m2"].map(asNodeId), { partitions: 64, replicationFactor: 2 });
    const keys = Array.from({ length: 1500 }, (_, i) => `k${i}`);
    for (const k of keys) for (const id of three.ownersOfKey(k)) apply(c.byId.get(id)!.engine, { kind: "incr", key: k, amount: 1n });
    expect(c.byId.get("m3")!.engine.keyCountAt(T)).toBe(0);
    const newcomerFirst = keys.filter((k) => c.placement.owners(partitionOf(k, 64))[0] === "m3");
    expect(newcomerFirst.length).toBeGreaterThan(50);
    // Without the window (the first owner lists), the newcomer's share is missing ...
    expect((await scanAll(c.members[0]!.scan)).length).toBe(keys.length - newcomerFirst.length);
    // ... with it (the former placement known), an owner that held each partition lists it.
    c.setPlacement(c.placement, [three]);
    const listed = await scanAll(c.members[0]!.scan);
    expect(listed.length).toBe(keys.length);
    expect(new Set(listed).size).toBe(keys.length);
  });
});

async function churnRun(seed: number): Promise<void> {
  const rng = new Rng(seed);
  const c = cluster(3 + rng.int(4), 1 + rng.int(3));
  // Enough keys per member for its key table to compact during the scan (compactFreeEntriesMin).
  const universe = Math.ceil(((3000 + rng.int(3000)) * c.members.length) / c.placement.replicas);
  const present = new Set<string>();
  for (let i = 0; i < universe; i++) {
    if (!rng.chance(0.8)) continue;
    writeOwned(c, `k${i}`, { kind: "incr", key: `k${i}`, amount: 1n });
    present.add(`k${i}`);
  }
  const presentAtStart = new Set(present);
  const everAbsent = new Set<string>();
  const seen = new Map<string, number>();
  const runner = c.members[rng.int(c.members.length)]!;
  const compactionsBefore = c.members.reduce((n, m) => n + m.engine.storageSizes().compactions, 0);
  let cursor = 0;
  let pages = 0;
  do {
    const page = await runner.scan.scan({ prefix: "", type: null, limit: 1 + rng.int(150), cursor });
    for (const k of page.keys) seen.set(k, (seen.get(k) ?? 0) + 1);
    cursor = page.cursor;
    const changes = rng.int((600 * c.members.length) / c.placement.replicas);
    for (let n = 0; n < changes; n++) {
      const key = `k${rng.int(universe + 500)}`;
      if (rng.chance(0.3)) writeOwned(c, key, { kind: "incr", key, amount: 1n });
      else {
        if (present.has(key)) everAbsent.add(key);
        present.delete(key);
        deleteOwned(c, key, rng.chance(0.9));
      }
    }
    pages++;
  } while (cursor !== 0 && pages < 10_000);
  expect(cursor).toBe(0);
  for (const k of presentAtStart) {
    if (everAbsent.has(k)) continue;
    expect(`${k}: ${seen.get(k) ?? 0}`).toBe(`${k}: 1`);
  }
  expect(c.members.reduce((n, m) => n + m.engine.storageSizes().compactions, 0)).toBeGreaterThan(compactionsBefore);
}
