// Wire format: every message round-trips; random or damaged bytes give typed WireErrors only.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { Incarnation, NodeId } from "../../src/cluster/types.ts";
import { decodeEnvelope, encodeEnvelope, envelopeBytesMax, settingsMemberId, WireError, wireVersion, type Envelope, type Message } from "../../src/cluster/wire.ts";
import { propertyRuns, seed } from "./helpers.ts";

const id = (s: string) => s as NodeId;
const inc = (n: number) => n as Incarnation;

const every: Message[] = [
  { kind: "ping", seq: 1, target: id("n1") },
  { kind: "ping-req", seq: 2 ** 40, target: id("n2"), targetAddr: "10.0.0.2:7001" },
  { kind: "ack", seq: 0 },
  { kind: "nack", seq: 77 },
  { kind: "alive", id: id("nöde-3"), incarnation: inc(5), addr: "[::1]:7000" },
  { kind: "suspect", id: id("n4"), incarnation: inc(0), from: id("n1") },
  { kind: "dead", id: id("n4"), incarnation: inc(9), from: id("n2") },
  { kind: "left", id: id("n5"), incarnation: inc(Number.MAX_SAFE_INTEGER) },
  { kind: "push-pull", join: true, reply: false, settings: { replicationFactor: 3, partitions: 1024 }, members: [{ id: id("a"), addr: "x:1", incarnation: inc(1), status: "suspect" }, { id: id("b"), addr: "y:2", incarnation: inc(0), status: "left" }] },
  { kind: "delta-batch", epoch: 0xffffffff, floorSeq: 3, firstSeq: 4, deltas: [new Uint8Array([1, 2, 3]), new Uint8Array(0)] },
  { kind: "delta-ack", epoch: 12, seq: 99 },
  { kind: "ae-tree", depth: 4, level: 2, items: [{ index: 255, hash: [0xdeadbeef, 1, 0, 0xffffffff] }] },
  // Keys that start with U+FEFF keep it (a decoder that drops a "byte-order mark" would not).
  { kind: "ae-leaves", depth: 4, leaves: [{ index: 65535, entries: [{ key: "k", digest: 2n ** 128n - 1n }, { key: "\uFEFFk", digest: 1n }, { key: "m", digest: 2n ** 64n }] }, { index: 0, entries: [] }] },
  { kind: "ae-states", entries: [["key", new Uint8Array([9])], ["\uFEFF", new Uint8Array([8])]], want: ["a", "b", "\uFEFFb"], stamp: { epoch: 7, confirms: 0 } },
  { kind: "ae-piece", key: "big", transfer: 0xffffffff, totalBytes: 3 * 1024 * 1024, offset: 1024 * 1024, bytes: new Uint8Array([1, 2, 3]), stamp: { epoch: 0xffffffff, confirms: 2 ** 40 } },
  { kind: "gc-hello", reply: true, life: "n1/00ff00ff00ff00ff", formerLives: ["n1/0000000000000001", "n1/0000000000000002"], generation: 12, quarantined: false, departed: true, rejoined: 3 },
  { kind: "gc-hello", reply: false, life: "n2", formerLives: [], generation: 0, quarantined: true, departed: false, rejoined: 0 },
  { kind: "gc-probe", round: 3, generation: 2 ** 40, entries: [["k", new Uint8Array([1, 2])], ["\uFEFFk", new Uint8Array(0)]] },
  { kind: "gc-confirm", round: 3, streamEpoch: 0xfffffffe, sigma: 12345, confirms: 9, generation: 4 },
  { kind: "stray-keep", partition: 16383, token: 0xffffffff, epoch: 0xfffffffe, firstSeq: 1, lastSeq: 2 ** 40 },
  { kind: "stray-kept", partition: 7, token: 1, answer: "yes" },
  { kind: "stray-kept", partition: 0, token: 0, answer: "no" },
  { kind: "stray-kept", partition: 3, token: 9, answer: "again" },
];

describe("wire", () => {
  test("every message kind round-trips, alone and together", () => {
    for (const m of every) {
      const env: Envelope = { fromAddr: "host:1", messages: [m] };
      expect(decodeEnvelope(encodeEnvelope(env))).toEqual(env);
    }
    const all: Envelope = { fromAddr: "h:2", messages: every };
    expect(decodeEnvelope(encodeEnvelope(all))).toEqual(all);
  });

  test("unstamped ae-states and ae-piece (kinds 14, 15) still decode, without a stamp", () => {
    const states = [14, 1, 1, 0x6b, 1, 9, 0]; // one state "k" -> [9], no wanted keys
    const env = decodeEnvelope(new Uint8Array([wireVersion, 1, 0x41, 1, ...states]));
    expect(env.messages).toEqual([{ kind: "ae-states", entries: [["k", new Uint8Array([9])]], want: [] }]);
  });

  test("an older version's anti-entropy messages (kinds 12, 13: 64-bit hashes) are read past and counted; the rest of the envelope stands", () => {
    const ping = [1, 5, 2, 0x6e, 0x31]; // ping seq=5 target="n1"
    const tree64 = [12, 4, 0, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0]; // depth 4, level 0, one item
    const leaves64 = [13, 4, 1, 7, 1, 1, 0x6b, 1, 2, 3, 4, 5, 6, 7, 8]; // leaf 7: key "k"
    const env = decodeEnvelope(new Uint8Array([wireVersion, 1, 0x41, 3, ...tree64, ...ping, ...leaves64]));
    expect(env.messages).toEqual([{ kind: "ping", seq: 5, target: id("n1") }]);
    expect(env.retired).toBe(2);
  });

  test("random bytes decode to an envelope or a WireError, never anything else (seed printed on failure)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          decodeEnvelope(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
        }
      }),
      { seed, numRuns: propertyRuns },
    );
  });

  test("random bytes behind a valid header reach the message decoders and still only give WireErrors", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 22 }), (bytes, kind) => {
        const payload = new Uint8Array([wireVersion, 1, 0x41, 1, kind, ...bytes]);
        try {
          decodeEnvelope(payload);
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
        }
      }),
      { seed, numRuns: propertyRuns },
    );
  });

  test("every truncation and every single-byte corruption of a valid envelope is decoded or refused with a WireError", () => {
    const good = encodeEnvelope({ fromAddr: "h:2", messages: every });
    for (let n = 0; n < good.length; n++) {
      expect(() => decodeEnvelope(good.subarray(0, n))).toThrow(WireError);
    }
    for (let i = 0; i < good.length; i++) {
      const bad = good.slice();
      bad[i] = (bad[i] as number) ^ 0xff;
      try {
        decodeEnvelope(bad);
      } catch (e) {
        expect(e).toBeInstanceOf(WireError);
      }
    }
  });

  test("typed codes: version, kind, trailing bytes, size, counts beyond the payload, bad UTF-8", () => {
    const code = (b: Uint8Array): string => {
      try {
        decodeEnvelope(b);
        return "ok";
      } catch (e) {
        return e instanceof WireError ? e.code : "other";
      }
    };
    expect(code(new Uint8Array([2, 0, 0]))).toBe("bad-version");
    expect(code(new Uint8Array([wireVersion, 0, 0]))).toBe("bad-value"); // empty sender address
    expect(code(new Uint8Array([wireVersion, 1, 0x41, 1, 200]))).toBe("unknown-kind");
    expect(code(new Uint8Array([wireVersion, 1, 0x41, 0, 7]))).toBe("trailing-bytes");
    expect(code(new Uint8Array(envelopeBytesMax + 1))).toBe("too-large");
    // A push-pull claiming 9,999 members in a few bytes is refused before allocating.
    expect(code(new Uint8Array([wireVersion, 1, 0x41, 1, 9, 0, 0x8f, 0x4e]))).toBe("truncated");
    expect(code(new Uint8Array([wireVersion, 1, 0x41, 1, 9, 0, 0x91, 0x4e]))).toBe("limit-exceeded");
    expect(code(new Uint8Array([wireVersion, 2, 0xc3, 0x28, 0]))).toBe("bad-utf8");
    expect(code(new Uint8Array([wireVersion, 1, 0x41, 1, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toBe("bad-value");
  });
});

describe("push-pull placement settings across versions", () => {
  const id = (s: string) => s as NodeId;
  const members = [{ id: id("a"), addr: "a:1", incarnation: 3 as Incarnation, status: "alive" as const }];
  test("a build that predates settings reads them as one more member, unknown and left (which it ignores); this build reads its push-pull without settings", () => {
    const withSettings = encodeEnvelope({ fromAddr: "a:1", messages: [{ kind: "push-pull", join: true, reply: false, members, settings: { replicationFactor: 3, partitions: 1024 } }] });
    // What the older encoder writes for a push-pull listing the settings entry as a member.
    const asOlderSees = encodeEnvelope({ fromAddr: "a:1", messages: [{ kind: "push-pull", join: true, reply: false, members: [...members, { id: id(settingsMemberId), addr: "3/1024", incarnation: 0 as Incarnation, status: "left" }] }] });
    expect([...withSettings]).toEqual([...asOlderSees]);
    expect(decodeEnvelope(withSettings).messages[0]).toEqual({ kind: "push-pull", join: true, reply: false, members, settings: { replicationFactor: 3, partitions: 1024 } });
    const older = encodeEnvelope({ fromAddr: "a:1", messages: [{ kind: "push-pull", join: false, reply: true, members }] });
    expect(decodeEnvelope(older).messages[0]).toEqual({ kind: "push-pull", join: false, reply: true, members });
  });

  test("settings out of range or malformed are refused", () => {
    for (const addr of ["17/1024", "3/0", "3/70000", "x", "3/1024/1"]) {
      const bad = encodeEnvelope({ fromAddr: "a:1", messages: [{ kind: "push-pull", join: true, reply: false, members: [{ id: id(settingsMemberId), addr, incarnation: 0 as Incarnation, status: "left" }] }] });
      expect(() => decodeEnvelope(bad)).toThrow(WireError);
    }
  });
});
