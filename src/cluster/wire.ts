// Bytes on the peer port: every cluster message encoded and decoded here, versioned and bounded, with typed errors.
//
// An envelope is `u8 version | string fromAddr | varint count | count x message`; a message
// is `u8 kind | fields`. The transport carries one envelope as the opaque payload of
// NodeService.Exchange; its reply payload is empty or another envelope. Integers are
// unsigned LEB128 varints up to 2^53 - 1, hashes and digests are fixed 16 bytes (four u32
// little-endian words, lowest first).

import type { TreeHash } from "./hashtree.ts";
import type { Incarnation, MemberStatus, NodeId } from "./types.ts";
import { aePieceBytesMax, keyBytesMax, keyEnvelopeBytesMax, peerDeltaBytesMax, peerEnvelopeBytesMax } from "../limits.ts";
import { partitionsMax, replicationFactorMax } from "./placement.ts";

export const wireVersion = 1;

// Limits checked while decoding, before anything is allocated. The sizes are defined in
// src/limits.ts so that every delta a node writes and every state it stores fits here.
export const envelopeBytesMax = peerEnvelopeBytesMax;
export const messagesPerEnvelopeMax = 4096;
export const idBytesMax = 256;
export const addrBytesMax = 256;
export { keyBytesMax };
export const deltaBytesMax = peerDeltaBytesMax;
/** One ae-states entry, or one ae-piece: a state above this travels in pieces. */
export const stateBytesMax = aePieceBytesMax;
/** A whole state reassembled from pieces. */
export const transferBytesMax = keyEnvelopeBytesMax;
export const deltasPerBatchMax = 4096;
export const membersPerMessageMax = 10_000;
export const treeItemsPerMessageMax = 65_536;
export const leavesPerMessageMax = 4096;
export const keysPerMessageMax = 1 << 20;

/** Message kinds on the wire. ONLY APPEND TO THIS LIST: values are wire-stable. */
export const MessageKind = {
  ping: 1,
  pingReq: 2,
  ack: 3,
  nack: 4,
  alive: 5,
  suspect: 6,
  dead: 7,
  left: 8,
  pushPull: 9,
  deltaBatch: 10,
  deltaAck: 11,
  /** Retired: ae-tree and ae-leaves with 64-bit hashes, which a client could collide; refused. */
  aeTree64: 12,
  aeLeaves64: 13,
  aeStates: 14,
  aePiece: 15,
  aeTree: 16,
  aeLeaves: 17,
  /** ae-states and ae-piece with the sender's stamp (see AeStamp); the unstamped kinds still decode. */
  aeStatesStamped: 18,
  aePieceStamped: 19,
  gcHello: 20,
  gcProbe: 21,
  gcConfirm: 22,
  strayKeep: 23,
  strayKept: 24,
} as const;

/** Member status codes in push-pull. ONLY APPEND TO THIS LIST. */
const statusCodes: readonly MemberStatus[] = ["alive", "suspect", "dead", "left"];

/**
 * How a member places keys (ClusterConfig): every member of a cluster must use the same, or
 * members would disagree on who owns what. partitions matters only with a replication factor.
 */
export interface PlacementSettings {
  replicationFactor: number;
  partitions: number;
}

/**
 * The id of the member entry that carries a push-pull's PlacementSettings ("RF/PARTITIONS" as
 * its address, status left). A build that predates settings reads it as a member it does not
 * know that left, and ignores it (memberlist's rule), so push-pull stays readable both ways
 * across a rolling upgrade; no node id can take it (ids are [A-Za-z0-9._-], config.ts).
 */
export const settingsMemberId = "\u0000settings";

/** Do two members place keys alike? */
export function sameSettings(a: PlacementSettings, b: PlacementSettings): boolean {
  return a.replicationFactor === b.replicationFactor && (a.replicationFactor === 0 || a.partitions === b.partitions);
}

export interface MemberState {
  id: NodeId;
  addr: string;
  incarnation: Incarnation;
  status: MemberStatus;
}

/** One hash-tree node: its index within its level and its 128-bit hash. */
export interface TreeItem {
  index: number;
  hash: TreeHash;
}

export interface LeafListing {
  index: number;
  entries: Array<{ key: string; digest: bigint }>;
}

/**
 * When an anti-entropy state was read from its sender's store: the sender's delta-stream epoch
 * (one per process) and how many tombstone-collection confirmations it had sent by then. A
 * receiver that collected tombstones on the strength of a later confirmation drops states
 * read before it (src/cluster/gc.ts).
 */
export interface AeStamp {
  epoch: number;
  confirms: number;
}

/**
 * Tombstone collection's handshake (src/cluster/gc.ts): which life of a data folder speaks,
 * its collection generation, whether it holds back (a life whose data may predate
 * collections), and in a reply whether the asker is a life this node saw depart.
 */
export type GcHelloMsg = { kind: "gc-hello"; reply: boolean; life: string; formerLives: string[]; generation: number; quarantined: boolean; departed: boolean; rejoined: number };
/** Earlier lives a replica's data comes from, at most (src/cluster/gc.ts). */
export const formerLivesMax = 16;

export type AliveMsg = { kind: "alive"; id: NodeId; incarnation: Incarnation; addr: string };
export type SuspectMsg = { kind: "suspect"; id: NodeId; incarnation: Incarnation; from: NodeId };
export type DeadMsg = { kind: "dead"; id: NodeId; incarnation: Incarnation; from: NodeId };
export type LeftMsg = { kind: "left"; id: NodeId; incarnation: Incarnation };
/** A membership update: what gossip spreads and piggybacks. */
export type UpdateMsg = AliveMsg | SuspectMsg | DeadMsg | LeftMsg;
/** An owner's answer to a keep ask (stray-kept). ONLY APPEND TO THIS LIST: the index is the wire code. */
export const strayAnswers = ["no", "yes", "again"] as const;
export type StrayAnswer = (typeof strayAnswers)[number];

export type Message =
  | { kind: "ping"; seq: number; target: NodeId }
  | { kind: "ping-req"; seq: number; target: NodeId; targetAddr: string }
  | { kind: "ack"; seq: number }
  | { kind: "nack"; seq: number }
  | UpdateMsg
  /**
   * settings: the sender's placement settings; a member whose settings differ is not merged
   * (Membership). Absent from a build that predates them: not checked then.
   */
  | { kind: "push-pull"; join: boolean; reply: boolean; members: MemberState[]; settings?: PlacementSettings }
  | { kind: "delta-batch"; epoch: number; floorSeq: number; firstSeq: number; deltas: Uint8Array[] }
  | { kind: "delta-ack"; epoch: number; seq: number }
  | { kind: "ae-tree"; depth: number; level: number; items: TreeItem[] }
  | { kind: "ae-leaves"; depth: number; leaves: LeafListing[] }
  | { kind: "ae-states"; entries: Array<[string, Uint8Array]>; want: string[]; stamp?: AeStamp }
  /**
   * bytes [offset, offset + bytes.length) of one key's KeyState of totalBytes bytes (more than
   * stateBytesMax), sent in pieces so that no envelope grows with it; `transfer` tells the
   * pieces of one encoding from those of another.
   */
  | { kind: "ae-piece"; key: string; transfer: number; totalBytes: number; offset: number; bytes: Uint8Array; stamp?: AeStamp }
  | GcHelloMsg
  /** Deleted keys' records this node would collect: the receiver joins them and confirms. */
  | { kind: "gc-probe"; round: number; generation: number; entries: Array<[string, Uint8Array]> }
  /**
   * The records of `round` are joined (and durable) here. `streamEpoch`/`sigma`: the last delta
   * this node had queued for the prober by then; `confirms`: confirmations sent so far, this one
   * included (see AeStamp).
   */
  | { kind: "gc-confirm"; round: number; streamEpoch: number; sigma: number; confirms: number; generation: number }
  /**
   * A former owner of `partition` has pushed the keys it holds of it to the receiver, as the
   * deltas `firstSeq`..`lastSeq` of its delta stream `epoch` (every one acknowledged), and asks
   * whether the receiver keeps them (Cluster.evictStrays); `token` matches the answer to the ask.
   */
  | { kind: "stray-keep"; partition: number; token: number; epoch: number; firstSeq: number; lastSeq: number }
  /**
   * The answer (Cluster.keepsStraysOf): `yes` when the receiver owns the partition in its own
   * placement, is not leaving, takes the asker's data, refused none of it, and merged that whole
   * push in its current process; `again` when this process did not receive all of it (it
   * restarted since: the acknowledgement may have come from a process that lost it), so the
   * push must be made again; `no` otherwise.
   */
  | { kind: "stray-kept"; partition: number; token: number; answer: StrayAnswer };

export interface Envelope {
  /** The sender's advertised peer address, so that a reply can reach a node not yet known. */
  fromAddr: string;
  messages: Message[];
  /**
   * Messages of retired kinds (an older version's anti-entropy with 64-bit hashes) that were
   * read past and dropped: the rest of the envelope (pings, deltas) still counts. Absent when 0.
   */
  retired?: number;
}

export type WireErrorCode =
  | "too-large"
  | "truncated"
  | "bad-version"
  | "unknown-kind"
  | "bad-value"
  | "bad-utf8"
  | "limit-exceeded"
  | "trailing-bytes";

/** A payload that is not a valid envelope. Decoding never throws anything else. */
export class WireError extends Error {
  constructor(readonly code: WireErrorCode, message: string) {
    super(`wire ${code}: ${message}`);
    this.name = "WireError";
  }
}

// ---------------------------------------------------------------- encoding

const utf8Encoder = new TextEncoder();
/** ignoreBOM: a leading U+FEFF is part of the string, not a byte-order mark to drop. */
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf[this.len++] = v;
  }

  varint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
    this.reserve(8);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.len, v >>> 0, true);
    this.len += 4;
  }

  u64(v: bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.len, BigInt.asUintN(64, v), true);
    this.len += 8;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  str(s: string): void {
    this.bytes(utf8Encoder.encode(s));
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** Empties it for the next message, keeping its buffer (a buffer grown past 64 KiB is let go). */
  reset(): this {
    this.len = 0;
    if (this.buf.length > 65_536) {
      this.buf = new Uint8Array(256);
      this.view = new DataView(this.buf.buffer);
    }
    return this;
  }
}

/**
 * One writer for every encode: encoding is synchronous and never re-enters itself, and a fresh
 * writer per message (a buffer, a DataView, then a copy) was a tenth of the simulator's time.
 */
const scratch = new Writer();

function encodeMessage(w: Writer, m: Message): void {
  switch (m.kind) {
    case "ping":
      w.u8(MessageKind.ping); w.varint(m.seq); w.str(m.target);
      return;
    case "ping-req":
      w.u8(MessageKind.pingReq); w.varint(m.seq); w.str(m.target); w.str(m.targetAddr);
      return;
    case "ack":
      w.u8(MessageKind.ack); w.varint(m.seq);
      return;
    case "nack":
      w.u8(MessageKind.nack); w.varint(m.seq);
      return;
    case "alive":
      w.u8(MessageKind.alive); w.str(m.id); w.varint(m.incarnation); w.str(m.addr);
      return;
    case "suspect":
      w.u8(MessageKind.suspect); w.str(m.id); w.varint(m.incarnation); w.str(m.from);
      return;
    case "dead":
      w.u8(MessageKind.dead); w.str(m.id); w.varint(m.incarnation); w.str(m.from);
      return;
    case "left":
      w.u8(MessageKind.left); w.str(m.id); w.varint(m.incarnation);
      return;
    case "push-pull":
      w.u8(MessageKind.pushPull);
      w.u8((m.join ? 1 : 0) | (m.reply ? 2 : 0));
      w.varint(m.members.length + (m.settings === undefined ? 0 : 1));
      for (const s of m.members) {
        w.str(s.id); w.str(s.addr); w.varint(s.incarnation); w.u8(statusCodes.indexOf(s.status));
      }
      // The settings ride as one more member entry (settingsMemberId), so that a build that
      // predates them reads the message as before (see settingsMemberId).
      if (m.settings !== undefined) {
        w.str(settingsMemberId); w.str(`${m.settings.replicationFactor}/${m.settings.partitions}`); w.varint(0); w.u8(statusCodes.indexOf("left"));
      }
      return;
    case "delta-batch":
      w.u8(MessageKind.deltaBatch); w.u32(m.epoch); w.varint(m.floorSeq); w.varint(m.firstSeq);
      w.varint(m.deltas.length);
      for (const d of m.deltas) w.bytes(d);
      return;
    case "delta-ack":
      w.u8(MessageKind.deltaAck); w.u32(m.epoch); w.varint(m.seq);
      return;
    case "ae-tree":
      w.u8(MessageKind.aeTree); w.u8(m.depth); w.u8(m.level); w.varint(m.items.length);
      for (const it of m.items) { w.varint(it.index); for (const x of it.hash) w.u32(x); }
      return;
    case "ae-leaves":
      w.u8(MessageKind.aeLeaves); w.u8(m.depth); w.varint(m.leaves.length);
      for (const l of m.leaves) {
        w.varint(l.index); w.varint(l.entries.length);
        for (const e of l.entries) { w.str(e.key); w.u64(e.digest); w.u64(e.digest >> 64n); }
      }
      return;
    case "ae-states":
      w.u8(MessageKind.aeStatesStamped); w.u32(m.stamp?.epoch ?? 0); w.varint(m.stamp?.confirms ?? 0);
      w.varint(m.entries.length);
      for (const [k, s] of m.entries) { w.str(k); w.bytes(s); }
      w.varint(m.want.length);
      for (const k of m.want) w.str(k);
      return;
    case "ae-piece":
      w.u8(MessageKind.aePieceStamped); w.u32(m.stamp?.epoch ?? 0); w.varint(m.stamp?.confirms ?? 0);
      w.str(m.key); w.u32(m.transfer); w.varint(m.totalBytes); w.varint(m.offset); w.bytes(m.bytes);
      return;
    case "gc-hello":
      w.u8(MessageKind.gcHello); w.u8((m.reply ? 1 : 0) | (m.quarantined ? 2 : 0) | (m.departed ? 4 : 0)); w.str(m.life); w.varint(m.generation);
      w.varint(m.formerLives.length);
      for (const l of m.formerLives) w.str(l);
      w.varint(m.rejoined);
      return;
    case "gc-probe":
      w.u8(MessageKind.gcProbe); w.varint(m.round); w.varint(m.generation); w.varint(m.entries.length);
      for (const [k, s] of m.entries) { w.str(k); w.bytes(s); }
      return;
    case "gc-confirm":
      w.u8(MessageKind.gcConfirm); w.varint(m.round); w.u32(m.streamEpoch); w.varint(m.sigma); w.varint(m.confirms); w.varint(m.generation);
      return;
    case "stray-keep":
      w.u8(MessageKind.strayKeep); w.varint(m.partition); w.u32(m.token); w.u32(m.epoch); w.varint(m.firstSeq); w.varint(m.lastSeq);
      return;
    case "stray-kept":
      w.u8(MessageKind.strayKept); w.varint(m.partition); w.u32(m.token); w.u8(strayAnswers.indexOf(m.answer));
      return;
    default: {
      const never: never = m;
      throw new Error(`unencodable message ${JSON.stringify(never)}`);
    }
  }
}

/** Encodes one envelope. Throws RangeError on a programming error (a value out of range). */
export function encodeEnvelope(env: Envelope): Uint8Array {
  return assembleEnvelope(env.fromAddr, env.messages.map(encodeMessageBytes));
}

/** One message's bytes, to be put into an envelope by assembleEnvelope. */
export function encodeMessageBytes(m: Message): Uint8Array {
  const w = scratch.reset();
  encodeMessage(w, m);
  return w.finish();
}

/** Bytes one message adds to an envelope (used to fill piggyback budgets). */
export function encodedMessageBytes(m: Message): number {
  const w = scratch.reset();
  encodeMessage(w, m);
  return w.len;
}

/** An envelope from messages already encoded with encodeMessageBytes. */
export function assembleEnvelope(fromAddr: string, parts: readonly Uint8Array[]): Uint8Array {
  const w = scratch.reset();
  w.u8(wireVersion);
  w.str(fromAddr);
  w.varint(parts.length);
  const head = w.finish();
  let total = head.length;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  out.set(head, 0);
  let at = head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------- decoding

class Reader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  done(): void {
    if (this.pos !== this.buf.length) throw new WireError("trailing-bytes", `${this.remaining} bytes after the last message`);
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw new WireError("truncated", "expected a byte");
    return this.buf[this.pos++] as number;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (!Number.isSafeInteger(v)) throw new WireError("bad-value", "varint above 2^53");
        return v;
      }
      scale *= 0x80;
    }
    throw new WireError("bad-value", "varint longer than 8 bytes");
  }

  /** A count of items that each take at least `minItemBytes`: bounded by `max` and by what is left. */
  count(max: number, what: string, minItemBytes = 1): number {
    const n = this.varint();
    if (n > max) throw new WireError("limit-exceeded", `${what}: ${n} > ${max}`);
    if (n * minItemBytes > this.remaining) throw new WireError("truncated", `${what}: ${n} items do not fit in ${this.remaining} bytes`);
    return n;
  }

  u32(): number {
    if (this.remaining < 4) throw new WireError("truncated", "expected 4 bytes");
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    if (this.remaining < 8) throw new WireError("truncated", "expected 8 bytes");
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  bytes(max: number, what: string): Uint8Array {
    const n = this.varint();
    if (n > max) throw new WireError("limit-exceeded", `${what}: ${n} bytes > ${max}`);
    if (n > this.remaining) throw new WireError("truncated", `${what}: ${n} bytes past the end`);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  str(max: number, what: string, allowEmpty = false): string {
    const b = this.bytes(max, what);
    if (b.length === 0 && !allowEmpty) throw new WireError("bad-value", `${what}: empty`);
    try {
      return utf8Decoder.decode(b);
    } catch {
      throw new WireError("bad-utf8", `${what}: not UTF-8`);
    }
  }

  id(what: string): NodeId {
    return this.str(idBytesMax, what) as NodeId;
  }

  incarnation(): Incarnation {
    return this.varint() as Incarnation;
  }
}

/** One message, or null for a retired kind read past (see Envelope.retired). */
function decodeMessage(r: Reader): Message | null {
  const kind = r.u8();
  switch (kind) {
    case MessageKind.ping:
      return { kind: "ping", seq: r.varint(), target: r.id("ping target") };
    case MessageKind.pingReq:
      return { kind: "ping-req", seq: r.varint(), target: r.id("ping-req target"), targetAddr: r.str(addrBytesMax, "ping-req address") };
    case MessageKind.ack:
      return { kind: "ack", seq: r.varint() };
    case MessageKind.nack:
      return { kind: "nack", seq: r.varint() };
    case MessageKind.alive:
      return { kind: "alive", id: r.id("alive id"), incarnation: r.incarnation(), addr: r.str(addrBytesMax, "alive address") };
    case MessageKind.suspect:
      return { kind: "suspect", id: r.id("suspect id"), incarnation: r.incarnation(), from: r.id("suspect from") };
    case MessageKind.dead:
      return { kind: "dead", id: r.id("dead id"), incarnation: r.incarnation(), from: r.id("dead from") };
    case MessageKind.left:
      return { kind: "left", id: r.id("left id"), incarnation: r.incarnation() };
    case MessageKind.pushPull: {
      const flags = r.u8();
      if (flags > 3) throw new WireError("bad-value", `push-pull flags ${flags}`);
      const n = r.count(membersPerMessageMax, "push-pull members", 4);
      const members: MemberState[] = [];
      for (let i = 0; i < n; i++) {
        const id = r.id("member id");
        const addr = r.str(addrBytesMax, "member address");
        const incarnation = r.incarnation();
        const status = statusCodes[r.u8()];
        if (status === undefined) throw new WireError("bad-value", "member status");
        members.push({ id, addr, incarnation, status });
      }
      const at = members.findIndex((m) => m.id === settingsMemberId);
      if (at < 0) return { kind: "push-pull", join: (flags & 1) !== 0, reply: (flags & 2) !== 0, members };
      const [entry] = members.splice(at, 1);
      const parts = /^(\d{1,2})\/(\d{1,5})$/.exec(entry!.addr);
      const replicationFactor = Number(parts?.[1] ?? -1);
      const partitions = Number(parts?.[2] ?? -1);
      if (parts === null || replicationFactor > replicationFactorMax || partitions < 1 || partitions > partitionsMax || members.some((m) => m.id === settingsMemberId)) {
        throw new WireError("bad-value", `push-pull settings ${JSON.stringify(entry!.addr.slice(0, 40))}`);
      }
      return { kind: "push-pull", join: (flags & 1) !== 0, reply: (flags & 2) !== 0, members, settings: { replicationFactor, partitions } };
    }
    case MessageKind.deltaBatch: {
      const epoch = r.u32();
      const floorSeq = r.varint();
      const firstSeq = r.varint();
      if (firstSeq < 1) throw new WireError("bad-value", "delta firstSeq below 1");
      // The sender's floor is the lowest seq it still holds, so a batch never starts below it.
      if (floorSeq < 1 || floorSeq > firstSeq) throw new WireError("bad-value", `delta floorSeq ${floorSeq} outside 1..firstSeq ${firstSeq}`);
      const n = r.count(deltasPerBatchMax, "deltas");
      const deltas: Uint8Array[] = [];
      for (let i = 0; i < n; i++) deltas.push(r.bytes(deltaBytesMax, "delta"));
      return { kind: "delta-batch", epoch, floorSeq, firstSeq, deltas };
    }
    case MessageKind.deltaAck:
      return { kind: "delta-ack", epoch: r.u32(), seq: r.varint() };
    case MessageKind.aeTree: {
      const depth = r.u8();
      const level = r.u8();
      if (level > depth) throw new WireError("bad-value", `tree level ${level} > depth ${depth}`);
      const n = r.count(treeItemsPerMessageMax, "tree items", 17);
      const items: TreeItem[] = [];
      for (let i = 0; i < n; i++) items.push({ index: r.varint(), hash: [r.u32(), r.u32(), r.u32(), r.u32()] });
      return { kind: "ae-tree", depth, level, items };
    }
    case MessageKind.aeLeaves: {
      const depth = r.u8();
      const n = r.count(leavesPerMessageMax, "leaves", 2);
      const leaves: LeafListing[] = [];
      for (let i = 0; i < n; i++) {
        const index = r.varint();
        const m = r.count(keysPerMessageMax, "leaf entries", 18);
        const entries: Array<{ key: string; digest: bigint }> = [];
        for (let j = 0; j < m; j++) {
          const key = r.str(keyBytesMax, "key");
          const lo = r.u64();
          entries.push({ key, digest: (r.u64() << 64n) | lo });
        }
        leaves.push({ index, entries });
      }
      return { kind: "ae-leaves", depth, leaves };
    }
    case MessageKind.aeStatesStamped:
    case MessageKind.aeStates: {
      const stamp = kind === MessageKind.aeStatesStamped ? { epoch: r.u32(), confirms: r.varint() } : undefined;
      const n = r.count(keysPerMessageMax, "states", 2);
      const entries: Array<[string, Uint8Array]> = [];
      for (let i = 0; i < n; i++) entries.push([r.str(keyBytesMax, "key"), r.bytes(stateBytesMax, "state")]);
      const m = r.count(keysPerMessageMax, "wanted keys", 2);
      const want: string[] = [];
      for (let i = 0; i < m; i++) want.push(r.str(keyBytesMax, "wanted key"));
      return stamp === undefined ? { kind: "ae-states", entries, want } : { kind: "ae-states", entries, want, stamp };
    }
    case MessageKind.aePieceStamped:
    case MessageKind.aePiece: {
      const stamp = kind === MessageKind.aePieceStamped ? { epoch: r.u32(), confirms: r.varint() } : undefined;
      const key = r.str(keyBytesMax, "key");
      const transfer = r.u32();
      const totalBytes = r.varint();
      const offset = r.varint();
      const bytes = r.bytes(stateBytesMax, "state piece");
      if (totalBytes <= stateBytesMax || totalBytes > transferBytesMax) throw new WireError("bad-value", `piece of a ${totalBytes}-byte state, not in ${stateBytesMax + 1}..${transferBytesMax}`);
      if (bytes.length === 0 || offset + bytes.length > totalBytes) throw new WireError("bad-value", `piece [${offset}, ${offset + bytes.length}) of a ${totalBytes}-byte state`);
      return stamp === undefined ? { kind: "ae-piece", key, transfer, totalBytes, offset, bytes } : { kind: "ae-piece", key, transfer, totalBytes, offset, bytes, stamp };
    }
    case MessageKind.gcHello: {
      const flags = r.u8();
      if (flags > 7) throw new WireError("bad-value", `gc-hello flags ${flags}`);
      const life = r.str(idBytesMax, "gc-hello life");
      const generation = r.varint();
      const n = r.count(formerLivesMax, "gc-hello former lives", 2);
      const formerLives: string[] = [];
      for (let i = 0; i < n; i++) formerLives.push(r.str(idBytesMax, "gc-hello former life"));
      const rejoined = r.varint();
      return { kind: "gc-hello", reply: (flags & 1) !== 0, quarantined: (flags & 2) !== 0, departed: (flags & 4) !== 0, life, formerLives, generation, rejoined };
    }
    case MessageKind.gcProbe: {
      const round = r.varint();
      const generation = r.varint();
      const n = r.count(keysPerMessageMax, "gc-probe records", 2);
      const entries: Array<[string, Uint8Array]> = [];
      for (let i = 0; i < n; i++) entries.push([r.str(keyBytesMax, "key"), r.bytes(stateBytesMax, "record")]);
      return { kind: "gc-probe", round, generation, entries };
    }
    case MessageKind.gcConfirm:
      return { kind: "gc-confirm", round: r.varint(), streamEpoch: r.u32(), sigma: r.varint(), confirms: r.varint(), generation: r.varint() };
    case MessageKind.strayKeep:
      return { kind: "stray-keep", partition: r.varint(), token: r.u32(), epoch: r.u32(), firstSeq: r.varint(), lastSeq: r.varint() };
    case MessageKind.strayKept: {
      const partition = r.varint();
      const token = r.u32();
      const code = r.u8();
      const answer = strayAnswers[code];
      if (answer === undefined) throw new WireError("bad-value", `stray-kept answer ${code}`);
      return { kind: "stray-kept", partition, token, answer };
    }
    case MessageKind.aeTree64: {
      r.u8();
      r.u8();
      const n = r.count(treeItemsPerMessageMax, "tree items", 9);
      for (let i = 0; i < n; i++) { r.varint(); r.u32(); r.u32(); }
      return null;
    }
    case MessageKind.aeLeaves64: {
      r.u8();
      const n = r.count(leavesPerMessageMax, "leaves", 2);
      for (let i = 0; i < n; i++) {
        r.varint();
        const m = r.count(keysPerMessageMax, "leaf entries", 10);
        for (let j = 0; j < m; j++) { r.bytes(keyBytesMax, "key"); r.u64(); }
      }
      return null;
    }
    default:
      throw new WireError("unknown-kind", `message kind ${kind}`);
  }
}

/** Decodes one envelope; throws only WireError, and only for a bad payload. */
export function decodeEnvelope(payload: Uint8Array): Envelope {
  if (payload.length > envelopeBytesMax) throw new WireError("too-large", `${payload.length} bytes > ${envelopeBytesMax}`);
  const r = new Reader(payload);
  const version = r.u8();
  if (version !== wireVersion) throw new WireError("bad-version", `version ${version}, expected ${wireVersion}`);
  const fromAddr = r.str(addrBytesMax, "sender address");
  const n = r.count(messagesPerEnvelopeMax, "messages");
  const messages: Message[] = [];
  let retired = 0;
  for (let i = 0; i < n; i++) {
    const m = decodeMessage(r);
    if (m === null) retired++;
    else messages.push(m);
  }
  r.done();
  return retired === 0 ? { fromAddr, messages } : { fromAddr, messages, retired };
}
