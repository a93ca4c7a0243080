// MV-Register: concurrent writes become siblings, a write with the read context replaces them,
// and read-modify-write rounds never grow siblings beyond the number of concurrent writers.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { CausalContext, dotCounterMax, internActor, MvRegister, VersionVector, type ActorId } from "../../src/crdt/index.ts";
import { checkProperty } from "./prop.ts";

const a = internActor("a");
const b = internActor("b");
const c = internActor("c");
const vals = (r: MvRegister): number[] => r.read().values.map((v) => v[0] as number).sort();

describe("MvRegister", () => {
  test("two concurrent writes are both read; a write carrying the read context replaces both", () => {
    const ra = new MvRegister();
    const rb = new MvRegister();
    const da = ra.write(a, Uint8Array.of(1), null);
    const db = rb.write(b, Uint8Array.of(2), null);
    ra.merge(db);
    rb.merge(da);
    expect(vals(ra)).toEqual([1, 2]);
    expect(ra.equals(rb)).toBe(true);
    const { context } = rb.read();
    const dc = rb.write(b, Uint8Array.of(3), context);
    expect(vals(rb)).toEqual([3]);
    ra.merge(dc);
    expect(vals(ra)).toEqual([3]);
  });

  test("a write with a stale context keeps what the context did not cover", () => {
    const r = new MvRegister();
    r.write(a, Uint8Array.of(1), null);
    const stale = r.read().context;
    const other = new MvRegister();
    r.merge(other.write(b, Uint8Array.of(2), null)); // unseen by the stale reader
    r.write(a, Uint8Array.of(3), stale);
    expect(vals(r)).toEqual([2, 3]);
  });

  test("1000 read-modify-write rounds from 3 actors never hold more siblings than writers", () => {
    const actors: ActorId[] = [a, b, c];
    const round = fc.record({ actor: fc.nat(2), deliverTo: fc.nat(2), deliverFrom: fc.nat(2), value: fc.nat(255) });
    checkProperty("MV sibling bound", fc.property(fc.array(round, { minLength: 1000, maxLength: 1000 }), (rounds) => {
      const replicas = actors.map(() => new MvRegister());
      let maxSiblings = 0;
      for (const rd of rounds) {
        const r = replicas[rd.actor] as MvRegister;
        const { context } = r.read(); // read ...
        r.write(actors[rd.actor] as ActorId, Uint8Array.of(rd.value), context); // ... modify, write
        // a random one-way sync
        (replicas[rd.deliverTo] as MvRegister).merge(replicas[rd.deliverFrom] as MvRegister);
        for (const x of replicas) maxSiblings = Math.max(maxSiblings, x.entries.length);
      }
      expect(maxSiblings).toBeLessThanOrEqual(3);
      // After full sync all agree, and at most 3 siblings remain.
      for (const x of replicas) for (const y of replicas) x.merge(y);
      for (const x of replicas) expect(x.equals(replicas[0] as MvRegister)).toBe(true);
    }), 0.02);
  });

  test("a client context is clamped to what the replica saw: a forged counter near 2^53 does not exhaust the writer's dots", () => {
    const r = new MvRegister();
    r.write(a, Uint8Array.of(1), null);
    const forged = new CausalContext(new VersionVector([a], [dotCounterMax]));
    const d1 = r.write(a, Uint8Array.of(2), forged);
    expect(d1.entries.map((e) => e.dot.counter)).toEqual([2]);
    expect(d1.ctx.max(a)).toBe(2);
    const d2 = r.write(a, Uint8Array.of(3), r.read().context);
    expect(d2.entries.map((e) => e.dot.counter)).toEqual([3]);
    expect(vals(r)).toEqual([3]);
  });

  test("a client context naming a dot the replica never saw deletes nothing, here or on a peer", () => {
    const ra = new MvRegister();
    const rb = new MvRegister();
    const peer = new MvRegister();
    const db = rb.write(b, Uint8Array.of(9), null); // acknowledged at b, not yet at a
    const forged = new CausalContext(new VersionVector([b], [1]));
    const da = ra.write(a, Uint8Array.of(1), forged);
    expect(da.ctx.contains({ actor: b, counter: 1 })).toBe(false);
    ra.merge(db);
    expect(vals(ra)).toEqual([1, 9]);
    peer.merge(db);
    peer.merge(da);
    expect(vals(peer)).toEqual([1, 9]);
  });

  test("the delta's context (a write's answer) covers what the write replaced and its own dot, not unread siblings", () => {
    const r = new MvRegister();
    const other = new MvRegister();
    r.merge(other.write(b, Uint8Array.of(2), null)); // a sibling this writer never read
    const d1 = r.write(a, Uint8Array.of(1), new CausalContext());
    expect(d1.ctx.contains({ actor: b, counter: 1 })).toBe(false);
    r.write(a, Uint8Array.of(3), d1.ctx); // chained Set with the first Set's answer
    expect(vals(r)).toEqual([2, 3]);
  });
});
