// Tombstone collection, the engine side (issue 13 item 6): collect() removes exactly the deleted
// records it is told are unchanged, the key is then unknown (and reported gone), the table
// compacts so the memory comes back, and listings and scans keep their guarantees across that.

import { describe, expect, test } from "bun:test";
import { compactFreeEntriesMin, Engine, type EngineOp, type KeyListing, type KeyValue, type ListingRefusal } from "../../src/engine/index.ts";
import { KeyTable } from "../../src/engine/keytable.ts";
import { Rng } from "../../src/sim/rng.ts";
import { propertySeed } from "../crdt/prop.ts";

const T = 1_700_000_000_000;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function write(e: Engine, op: EngineOp, nowMs = T): Uint8Array {
  const r = e.apply(op, nowMs);
  if (!r.ok) throw new Error(`op refused: ${r.error.message}`);
  if (r.delta === null) throw new Error("op changed nothing");
  return r.delta;
}

function del(e: Engine, key: string, nowMs = T): Uint8Array | null {
  const r = e.delete(key, nowMs);
  if (!r.ok) throw new Error(`delete refused: ${r.error.message}`);
  return r.delta;
}

/** Deletes then collects key (its record as it stands). */
function drop(e: Engine, key: string): void {
  del(e, key);
  const d = e.digest(key);
  if (d === undefined || !e.collect(key, d)) throw new Error(`could not collect ${key}`);
}

function listed(r: KeyListing | ListingRefusal): KeyListing {
  if (!r.ok) throw new Error(`listing refused: ${r.error.message}`);
  return r;
}

function allListed(e: Engine): string[] {
  const out: string[] = [];
  let cursor = 0;
  do {
    const page = listed(e.listKeys(cursor, 1000));
    out.push(...page.keys);
    cursor = page.cursor;
  } while (cursor !== 0);
  return out.sort();
}

function allScanned(e: Engine): string[] {
  const out: string[] = [];
  const scan = e.scan();
  while (!scan.done) for (const it of scan.next(100)) out.push(it.key);
  return out.sort();
}

/** A write of each kind to key. */
const writes: Array<(key: string) => EngineOp | { kind: "hset"; key: string }> = [
  (key) => ({ kind: "incr", key, amount: 3n }),
  (key) => ({ kind: "incr", key, amount: 3n, counter: "gcounter" }),
  (key) => ({ kind: "set", key, value: bytes("v") }),
  (key) => ({ kind: "setMv", key, value: bytes("m"), context: null }),
  (key) => ({ kind: "sadd", key, members: [bytes("x")] }),
  (key) => ({ kind: "hset", key }),
];

function writeAny(e: Engine, k: number, key: string, nowMs = T): void {
  const op = (writes[k % writes.length] as (key: string) => EngineOp | { kind: "hset"; key: string })(key);
  if (op.kind === "hset") {
    const r = e.applyHash({ kind: "hset", key, pairs: [{ field: bytes("f"), value: bytes("1") }] }, nowMs);
    if (!r.ok) throw new Error(r.error.message);
  } else write(e, op, nowMs);
}

function comparable(v: KeyValue | undefined): unknown {
  return v?.type === "lww" ? { ...v, timestampMs: 0, logical: 0 } : v;
}

describe("collect", () => {
  test("removes exactly the absent keys whose record is unchanged; a present key or a changed record is kept", () => {
    const e = new Engine({ actor: "a" });
    for (let k = 0; k < writes.length; k++) writeAny(e, k, `k${k}`);
    for (let k = 0; k < writes.length; k++) del(e, `k${k}`);
    writeAny(e, 0, "live");
    const digests = new Map<string, bigint>();
    for (let k = 0; k < writes.length; k++) digests.set(`k${k}`, e.digest(`k${k}`) as bigint);
    // A present key is never collected, whatever digest is given.
    expect(e.collect("live", e.digest("live") as bigint)).toBe(false);
    expect(e.get("live")).toBeDefined();
    // Unknown key.
    expect(e.collect("nope", 1n)).toBe(false);
    // A record that changed since it was examined (written again, then deleted again) is kept.
    writeAny(e, 2, "k2");
    del(e, "k2");
    expect(e.collect("k2", digests.get("k2") as bigint)).toBe(false);
    expect(e.deletedKeyCount).toBe(writes.length);
    // A key written again (present) is kept even with its current digest.
    writeAny(e, 3, "k3");
    expect(e.collect("k3", e.digest("k3") as bigint)).toBe(false);
    for (let k = 0; k < writes.length; k++) {
      if (k === 2 || k === 3) continue;
      expect(e.collect(`k${k}`, digests.get(`k${k}`) as bigint)).toBe(true);
      expect(e.collect(`k${k}`, digests.get(`k${k}`) as bigint)).toBe(false);
    }
    expect(e.keyCount).toBe(2); // live, k3
    expect(e.deletedKeyCount).toBe(1); // k2
    expect(e.storedKeyCount).toBe(3);
    for (let k = 0; k < writes.length; k++) {
      if (k === 2 || k === 3) continue;
      const key = `k${k}`;
      expect(e.get(key)).toBeUndefined();
      expect(e.has(key)).toBe(false);
      expect(e.digest(key)).toBeUndefined();
      expect(e.encodeState(key)).toBeUndefined();
    }
    expect(allListed(e)).toEqual(["k3", "live"]);
    expect(allScanned(e)).toEqual(["k2", "k3", "live"]);
  });

  test("a collected key written again shows only the new write, with any type", () => {
    for (let from = 0; from < writes.length; from++) {
      for (let to = 0; to < writes.length; to++) {
        const e = new Engine({ actor: "a" });
        writeAny(e, from, "k");
        drop(e, "k");
        writeAny(e, to, "k");
        const fresh = new Engine({ actor: "a" });
        writeAny(fresh, to, "k");
        // Nothing of the first life shows: the key reads as a fresh engine's would (but for an
        // LWW write's HLC, which has moved on, and an MV context, whose dots continue from the
        // collected record: test/engine/collect-rewrite.test.ts).
        const got = comparable(e.get("k")) as { context?: unknown } | undefined;
        const want = comparable(fresh.get("k")) as { context?: unknown } | undefined;
        expect({ ...got, context: undefined }).toEqual({ ...want, context: undefined });
        expect(e.keyCount).toBe(1);
        expect(e.storedKeyCount).toBe(1);
        expect(allListed(e)).toEqual(["k"]);
      }
    }
  });

  test("an old delta of a collected key re-creates it: only the cluster can know none is still in flight", () => {
    // The record is what made the old write lose; once collected, the engine has nothing to
    // tell an old delta from a new write. That is why collection waits for causal stability.
    const a = new Engine({ actor: "a" });
    const b = new Engine({ actor: "b" });
    const old = write(a, { kind: "set", key: "k", value: bytes("old") });
    expect(b.mergeDelta(old, T).ok).toBe(true);
    del(b, "k");
    expect(b.mergeDelta(old, T).ok).toBe(true);
    expect(b.get("k")).toBeUndefined(); // the record holds it back
    expect(b.collect("k", b.digest("k") as bigint)).toBe(true);
    const r = b.mergeDelta(old, T);
    expect(r.ok && r.changed).toBe(true);
    expect(b.get("k")).toMatchObject({ type: "lww", value: bytes("old") });
  });

  test("onChange hears a collected key as gone (digest undefined), eagerly or from reportChanges", () => {
    const heard: Array<[string, bigint | undefined]> = [];
    const eager = new Engine({ actor: "a", onChange: (k, d) => heard.push([k, d]) });
    write(eager, { kind: "set", key: "k", value: bytes("v") });
    del(eager, "k");
    heard.length = 0;
    expect(eager.collect("k", eager.digest("k") as bigint)).toBe(true);
    expect(heard).toEqual([["k", undefined]]);

    const later: Array<[string, bigint | undefined]> = [];
    const lazy = new Engine({ actor: "a", onChange: (k, d) => later.push([k, d]), deferChanges: true });
    write(lazy, { kind: "set", key: "k", value: bytes("v") });
    write(lazy, { kind: "set", key: "j", value: bytes("v") });
    del(lazy, "k");
    // Collected while its change is still unreported: reported gone, never with a digest.
    expect(lazy.collect("k", lazy.digest("k") as bigint)).toBe(true);
    expect(lazy.reportChanges()).toBe(2);
    expect(later).toEqual([["k", undefined], ["j", lazy.digest("j") as bigint]]);
    // Collected, then written again before the report: gone first, then its new digest.
    later.length = 0;
    del(lazy, "j");
    lazy.reportChanges();
    later.length = 0;
    expect(lazy.collect("j", lazy.digest("j") as bigint)).toBe(true);
    write(lazy, { kind: "incr", key: "j", amount: 1n });
    lazy.reportChanges();
    expect(later).toEqual([["j", undefined], ["j", lazy.digest("j") as bigint]]);
  });
});

describe("KeyTable.remove", () => {
  test("every other key stays findable after removals in any order (backward-shift deletion keeps probe runs whole)", () => {
    const seed = propertySeed;
    const rng = new Rng(seed);
    const t = new KeyTable([seed | 0, 7]);
    const buf = new Uint8Array(64);
    const put = (k: string): number => {
      const len = new TextEncoder().encodeInto(k, buf).written;
      return len;
    };
    const n = 6000;
    const index = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const len = put(`key-${i}`);
      expect(t.find(buf, len)).toBe(-1);
      index.set(`key-${i}`, t.insert(buf, len));
    }
    const removed = new Set<string>();
    for (let step = 0; step < n / 2; step++) {
      const k = `key-${rng.int(n)}`;
      if (removed.has(k)) continue;
      t.remove(index.get(k) as number);
      removed.add(k);
      if (step % 500 === 0 || step === n / 2 - 1) {
        for (const [key, i] of index) {
          const len = put(key);
          expect(`${key} (seed ${seed}): ${t.find(buf, len)}`).toBe(`${key} (seed ${seed}): ${removed.has(key) ? -1 : i}`);
        }
      }
    }
    expect(t.free).toBe(removed.size);
  });
});

describe("absentKeys", () => {
  test("pages through exactly the deleted keys, with their states and digests, bounded per call", () => {
    const e = new Engine({ actor: "a" });
    for (let i = 0; i < 500; i++) writeAny(e, i, `k${i}`);
    for (let i = 0; i < 500; i += 3) del(e, `k${i}`);
    const seen: string[] = [];
    let cursor = 0;
    let calls = 0;
    do {
      const page = e.absentKeys(cursor, 7);
      expect(page.items.length).toBeLessThanOrEqual(7);
      for (const it of page.items) {
        seen.push(it.key);
        expect(it.state).toEqual(e.encodeState(it.key) as Uint8Array);
        expect(it.digest).toBe(e.digest(it.key) as bigint);
      }
      cursor = page.cursor;
      calls++;
    } while (cursor !== 0 && calls < 1000);
    expect(cursor).toBe(0);
    const want = Array.from({ length: 167 }, (_, j) => `k${j * 3}`);
    expect(seen.sort()).toEqual(want.sort());
    // Its digests are what collect needs.
    const first = e.absentKeys(0, 1).items[0];
    expect(first === undefined ? false : e.collect(first.key, first.digest)).toBe(true);
  });
});

describe("tombstones", () => {
  test("count, bytes and the oldest delete's time follow deletes, merges into records, rewrites and collects", () => {
    const e = new Engine({ actor: "a" });
    expect(e.tombstones()).toEqual({ count: 0, bytes: 0, oldestMs: null });
    write(e, { kind: "set", key: "a", value: bytes("v") });
    write(e, { kind: "sadd", key: "b", members: [bytes("x"), bytes("y")] });
    write(e, { kind: "incr", key: "c", amount: 5n });
    del(e, "b", T + 10);
    del(e, "a", T + 20);
    del(e, "c", T + 30);
    const sizes = (keys: string[]): number => keys.reduce((n, k) => n + (e.encodeState(k) as Uint8Array).length, 0);
    expect(e.tombstones()).toEqual({ count: 3, bytes: sizes(["a", "b", "c"]), oldestMs: T + 10 });
    // A record that grows while absent (a peer's delete of a write this node never saw).
    const peer = new Engine({ actor: "p" });
    write(peer, { kind: "incr", key: "c", amount: 7n });
    const peerDel = peer.delete("c", T);
    expect(peerDel.ok && peerDel.delta !== null).toBe(true);
    if (peerDel.ok && peerDel.delta !== null) expect(e.mergeDelta(peerDel.delta, T + 40).ok).toBe(true);
    expect(e.has("c")).toBe(false);
    expect(e.tombstones()).toEqual({ count: 3, bytes: sizes(["a", "b", "c"]), oldestMs: T + 10 });
    // The oldest written again: the next oldest.
    write(e, { kind: "sadd", key: "b", members: [bytes("z")] }, T + 50);
    expect(e.tombstones()).toEqual({ count: 2, bytes: sizes(["a", "c"]), oldestMs: T + 20 });
    // Deleted again later: it counts from then.
    del(e, "b", T + 60);
    expect(e.tombstones()).toEqual({ count: 3, bytes: sizes(["a", "b", "c"]), oldestMs: T + 20 });
    expect(e.collect("a", e.digest("a") as bigint)).toBe(true);
    expect(e.tombstones()).toEqual({ count: 2, bytes: sizes(["b", "c"]), oldestMs: T + 30 });
    expect(e.collect("c", e.digest("c") as bigint)).toBe(true);
    expect(e.collect("b", e.digest("b") as bigint)).toBe(true);
    expect(e.tombstones()).toEqual({ count: 0, bytes: 0, oldestMs: null });
    // applyMany's delete is stamped with the call's time.
    write(e, { kind: "set", key: "m", value: bytes("v") });
    e.applyMany([{ kind: "del", key: "m" }], T + 99);
    expect(e.tombstones()).toEqual({ count: 1, bytes: sizes(["m"]), oldestMs: T + 99 });
  });

  test("the oldest stays right under churn and across compactions (against a brute-force model)", () => {
    const seed = propertySeed;
    try {
      const rng = new Rng(seed);
      const e = new Engine({ actor: "a" });
      const since = new Map<string, number>();
      let now = T;
      for (let step = 0; step < 40_000; step++) {
        now += rng.int(3);
        const key = `k${rng.int(1500)}`;
        const r = rng.next();
        if (r < 0.45) {
          write(e, { kind: "set", key, value: bytes("v") }, now);
          since.delete(key);
        } else if (r < 0.75) {
          if (e.has(key)) since.set(key, now);
          del(e, key, now);
        } else {
          const d = e.digest(key);
          if (d !== undefined && e.collect(key, d)) since.delete(key);
        }
        if (step % 97 === 0) {
          const s = e.tombstones();
          expect(s.count).toBe(since.size);
          expect(s.oldestMs).toBe(since.size === 0 ? null : Math.min(...since.values()));
        }
      }
      expect(e.storageSizes().compactions).toBeGreaterThan(0);
    } catch (err) {
      throw new Error(`failed with IMDB_SEED=${seed}: ${String(err)}`);
    }
  });
});

/** Every key's digest. */
function digests(e: Engine): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const scan = e.scan();
  while (!scan.done) for (const it of scan.next()) out.set(it.key, e.digest(it.key) as bigint);
  return out;
}

describe("compaction", () => {
  test("keeps every surviving key's value and digest; gives back the dropped keys' room", () => {
    const e = new Engine({ actor: "a" });
    const n = 4 * compactFreeEntriesMin;
    for (let i = 0; i < n; i++) writeAny(e, i, `k${i}`);
    for (let i = 0; i < n; i += 7) del(e, `k${i}`); // records that stay
    const before = digests(e);
    const values = new Map<string, KeyValue | undefined>();
    for (const k of before.keys()) values.set(k, e.get(k));
    for (let i = 1; i < n; i += 7) drop(e, `k${i}`);
    for (let i = 2; i < n; i += 7) drop(e, `k${i}`);
    expect(e.storageSizes().compactions).toBe(1);
    const after = digests(e);
    for (const [k, d] of before) {
      const i = Number(k.slice(1));
      if (i % 7 === 1 || i % 7 === 2) {
        expect(after.has(k)).toBe(false);
        continue;
      }
      expect(after.get(k)).toBe(d);
      expect(e.get(k)).toEqual(values.get(k) as KeyValue);
      expect(e.has(k)).toBe(i % 7 !== 0);
    }
    expect(after.size).toBe(e.storedKeyCount);
    // Entries written after it append and stay findable; collected keys come back afresh.
    writeAny(e, 0, "k1");
    writeAny(e, 0, "new");
    expect(e.get("k1")).toEqual({ type: "pncounter", value: 3n });
    expect(e.has("new")).toBe(true);
    expect(e.keyCount).toBe(allListed(e).length);
  });

  test("200k keys written, deleted and collected: the columns, arena, hash table and objects shrink back", () => {
    const e = new Engine({ actor: "a" });
    const empty = e.storageSizes();
    const n = 200_000;
    for (let i = 0; i < n; i++) write(e, { kind: "incr", key: `key:${i}`, amount: 1n });
    for (let i = 0; i < n; i++) del(e, `key:${i}`);
    const full = e.storageSizes();
    expect(full.objects).toBe(n); // a deleted counter's record is an object (reset rows)
    expect(full.entriesCapacity).toBeGreaterThanOrEqual(n);
    for (let i = 0; i < n; i++) expect(e.collect(`key:${i}`, e.digest(`key:${i}`) as bigint)).toBe(true);
    const back = e.storageSizes();
    expect(e.storedKeyCount).toBe(0);
    expect(e.tombstones()).toEqual({ count: 0, bytes: 0, oldestMs: null });
    expect(back.objects).toBe(0);
    expect(back.entriesCapacity).toBe(empty.entriesCapacity);
    expect(back.arenaBytes).toBe(empty.arenaBytes);
    expect(back.hashSlots).toBe(empty.hashSlots);
    expect(back.stampsCapacity).toBeLessThanOrEqual(empty.stampsCapacity);
    // And it works as new.
    write(e, { kind: "incr", key: "key:7", amount: 2n });
    expect(e.get("key:7")).toEqual({ type: "pncounter", value: 2n });
  });

  test("listKeys across compactions returns every key present for the whole listing exactly once (random interleavings)", () => {
    for (let run = 0; run < 20; run++) {
      const seed = (propertySeed + run * 7919) >>> 0;
      try {
        listingRun(seed);
      } catch (err) {
        throw new Error(`failed with seed ${seed} (IMDB_SEED=${propertySeed}, run ${run}): ${String(err)}`);
      }
    }
  });

  test("a cursor from before two compactions is refused with a clear error; one from before one is mapped", () => {
    const e = new Engine({ actor: "a" });
    const n = 8 * compactFreeEntriesMin;
    for (let i = 0; i < n; i++) write(e, { kind: "incr", key: `k${i}`, amount: 1n });
    const first = listed(e.listKeys(0, 100));
    expect(first.cursor).not.toBe(0);
    // Collect keys the listing has already passed and some it has not: one compaction.
    let next = 0;
    while (e.storageSizes().compactions < 1) drop(e, `k${next++}`);
    // The listing goes on where it stood: k100 on, less what was collected.
    expect(first.keys).toEqual(Array.from({ length: 100 }, (_, i) => `k${i}`));
    const mapped = listed(e.listKeys(first.cursor, 100));
    expect(mapped.keys[0]).toBe(`k${Math.max(100, next)}`);
    const stale = first.cursor;
    while (e.storageSizes().compactions < 2) drop(e, `k${next++}`);
    const r = e.listKeys(stale, 100);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe("INVALID");
      expect(r.error.message).toContain("restart the scan");
    }
    // A cursor no compaction ever made is refused too, not read as a position.
    const fresh = new Engine({ actor: "a" });
    write(fresh, { kind: "incr", key: "x", amount: 1n });
    expect(fresh.listKeys(5 * 2 ** 32 + 1, 10).ok).toBe(false);
    // absentKeys starts over instead.
    expect(e.absentKeys(stale, 10).cursor).toBe(0);
  });

  test("an open scan across collects and compactions yields every key present throughout exactly once", () => {
    for (let run = 0; run < 10; run++) {
      const seed = (propertySeed + run * 104_729) >>> 0;
      try {
        scanRun(seed);
      } catch (err) {
        throw new Error(`failed with seed ${seed} (IMDB_SEED=${propertySeed}, run ${run}): ${String(err)}`);
      }
    }
  });
});

/**
 * Random writes, deletes and collects between the pages of one listing (with compactions
 * forced by collecting a large share); keys present from its start to its end must be listed
 * exactly once (others may be listed or not: a key collected and written again is a new entry).
 */
function listingRun(seed: number): void {
  const rng = new Rng(seed);
  const e = new Engine({ actor: "a" });
  const universe = 3000 + rng.int(3000);
  for (let i = 0; i < universe; i++) if (rng.chance(0.8)) writeAny(e, i, `k${i}`);
  const presentAtStart = new Set(allListed(e));
  const everAbsent = new Set<string>();
  const seen = new Map<string, number>();
  const compactionsBefore = e.storageSizes().compactions;
  let cursor = 0;
  let pages = 0;
  do {
    const page = listed(e.listKeys(cursor, 1 + rng.int(150)));
    for (const k of page.keys) seen.set(k, (seen.get(k) ?? 0) + 1);
    cursor = page.cursor;
    const changes = rng.int(600);
    for (let c = 0; c < changes; c++) {
      const i = rng.int(universe + 500);
      const key = `k${i}`;
      const r = rng.next();
      if (r < 0.3) writeAny(e, i, key);
      else {
        if (e.has(key)) everAbsent.add(key);
        del(e, key);
        if (r < 0.9) {
          const d = e.digest(key);
          if (d !== undefined) e.collect(key, d);
        }
      }
    }
    pages++;
  } while (cursor !== 0 && pages < 10_000);
  expect(cursor).toBe(0);
  for (const k of presentAtStart) {
    if (everAbsent.has(k)) continue;
    expect(`${k}: ${seen.get(k) ?? 0}`).toBe(`${k}: 1`);
  }
  expect(e.storageSizes().compactions).toBeGreaterThan(compactionsBefore);
}

/** As listingRun, for an Engine.scan() (the fuzzy snapshot), which also returns deleted records. */
function scanRun(seed: number): void {
  const rng = new Rng(seed);
  const e = new Engine({ actor: "a" });
  const universe = 3000 + rng.int(3000);
  for (let i = 0; i < universe; i++) if (rng.chance(0.8)) writeAny(e, i, `k${i}`);
  for (let i = 0; i < universe; i++) if (rng.chance(0.1)) del(e, `k${i}`);
  const storedAtStart = new Set(allScanned(e));
  const everCollected = new Set<string>();
  const seen = new Map<string, number>();
  const compactionsBefore = e.storageSizes().compactions;
  const scan = e.scan();
  let chunks = 0;
  while (!scan.done && chunks < 10_000) {
    for (const it of scan.next(1 + rng.int(150))) seen.set(it.key, (seen.get(it.key) ?? 0) + 1);
    const changes = rng.int(600);
    for (let c = 0; c < changes; c++) {
      const i = rng.int(universe + 500);
      const key = `k${i}`;
      if (rng.chance(0.25)) writeAny(e, i, key);
      else {
        del(e, key);
        const d = e.digest(key);
        if (rng.chance(0.9) && d !== undefined && e.collect(key, d)) everCollected.add(key);
      }
    }
    chunks++;
  }
  expect(scan.done).toBe(true);
  for (const k of storedAtStart) {
    if (everCollected.has(k)) continue;
    expect(`${k}: ${seen.get(k) ?? 0}`).toBe(`${k}: 1`);
  }
  expect(e.storageSizes().compactions).toBeGreaterThan(compactionsBefore);
}
