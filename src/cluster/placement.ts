// Where keys live in a partitioned cluster: a pure function of the membership, so that every node
// that sees the same members computes the same owners without talking to anyone.
//
// A key belongs to one of a fixed number of partitions (a hash of its bytes). Each partition is
// held by `replicationFactor` distinct members, chosen by rendezvous hashing (Thaler and Ravishankar's
// highest random weight: each member scores each partition, the highest scores own it) with
// bounded loads (Mirrokni, Thorup and Zadimoghaddam's consistent hashing with bounded loads): no
// member holds more than `placementLoadSlack` times its fair share of partition replicas.
//
// Why both. Plain rendezvous hashing moves the least data when a member joins or leaves (only the
// partitions whose top scores change), but its loads spread like any random assignment: with
// 1024 partitions, RF 3 and 100 members the fullest member holds 1.56x the mean. The bound
// caps that, and because replicas are handed out in the order of their scores across all
// partitions (not partition by partition, which would leave the last partitions whatever is
// left), a member that joins still takes mostly partitions that scored it highest.
//
// Why 16384 partitions by default (Redis Cluster's slot count), not 1024. The bound only costs
// movement where members' natural loads run into it: at 1024 partitions and 100 members each
// holds ~31 replicas, the natural spread is +-18%, most members sit at the bound, and a join
// reshuffles 2.5x its fair share; at 16384 the spread is +-4.5% and a join at 100 members moves
// 1.06x its fair share, a leave 1.05x, with the fullest member at 1.05x the mean at 5-100
// members (test/cluster/placement.test.ts; `imdb bench partition`). A placement costs ~25 ms
// at 10 members and 16384 partitions (warm), once per membership change.

// The partition hash is part of the data's placement on disk and across versions: changing it,
// or the scoring, moves every key. Its constants are fixed and public on purpose (every node
// must agree without a shared secret); a client that picks keys falling into one partition only
// loads that partition's owners, as with Redis Cluster's CRC16 slots. test/cluster/placement.test.ts
// pins known values.

import { fmix32, halfSipHash13 } from "../engine/keyhash.ts";
import type { NodeId } from "./types.ts";
import { keyBytesMax } from "../limits.ts";

/** Partitions of the keyspace unless configured otherwise (why 16384: the file comment). */
export const partitionsDefault = 16_384;
/** Most partitions a cluster may have: partitions x candidates stays within the sort key's 21 bits. */
export const partitionsMax = 65_536;
/** Replicas per partition at most (a larger factor than members holds every partition on every member). */
export const replicationFactorMax = 16;
/** A member holds at most this times its fair share of partition replicas (see the file comment). */
export const placementLoadSlack = 1.05;
/**
 * Members scored per partition before the global assignment: the replication factor plus this
 * many. A partition whose candidates are all full falls back to every member in score order.
 */
const placementExtraCandidates = 9;

// Fixed, public hash keys (see the file comment): ASCII "imdb" "part" and "imdb" "rank".
const partitionHashKey = [0x696d6462, 0x70617274] as const;
const scoreHashKey = [0x696d6462, 0x72616e6b] as const;

const encoder = new TextEncoder();
const keyScratch = new Uint8Array(keyBytesMax * 3);

/** The partition of a key (its UTF-8 bytes), in [0, partitions). */
export function partitionOf(key: string, partitions: number): number {
  // Keys are bounded where they enter (keyBytesMax); a longer string still gets its own buffer
  // rather than a truncated encoding, which would place it by a prefix.
  const bytes = key.length * 3 <= keyScratch.length ? keyScratch.subarray(0, encoder.encodeInto(key, keyScratch).written) : encoder.encode(key);
  return partitionOfUtf8(bytes, partitions);
}

/** The partition of a key given as its UTF-8 bytes (a delta's key, read without decoding it). */
export function partitionOfUtf8(bytes: Uint8Array, partitions: number): number {
  const h = halfSipHash13(partitionHashKey[0], partitionHashKey[1], bytes, bytes.length);
  // Multiply-shift instead of modulo: unbiased for any partition count, uses the hash's high bits.
  return Math.floor((h * partitions) / 0x1_0000_0000);
}

export interface PlacementOptions {
  partitions: number;
  /** Owners per partition; clamped to the member count. */
  replicationFactor: number;
}

/** Placements Placement.of keeps (a node's current one and a few recent ones). */
const placementCacheMax = 8;
const placementCache = new Map<string, Placement>();

/** Which members own which partition, for one membership. */
export class Placement {
  /** The members, sorted by id: the order every node uses. */
  readonly members: readonly NodeId[];
  readonly partitions: number;
  /** Owners per partition: min(replicationFactor, members). */
  readonly replicas: number;
  /** owners[p * replicas + i]: index into members of partition p's i-th owner, best score first. */
  private readonly ownerIndex: Int32Array;

  constructor(members: readonly NodeId[], opts: PlacementOptions) {
    checkPlacementOptions(opts);
    const sorted = [...members].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) throw new Error(`placement: member ${sorted[i]} listed twice`);
    if (sorted.length === 0) throw new Error("placement: no members");
    this.members = sorted;
    this.partitions = opts.partitions;
    this.replicas = Math.min(opts.replicationFactor, sorted.length);
    this.ownerIndex = assign(sorted, this.partitions, this.replicas);
  }

  /**
   * The placement of `members` under `opts`, shared: a placement is immutable and a pure function
   * of its inputs, so the last few made are kept and handed out again. A node makes one per
   * membership change, and a membership that flaps between two lists (a member suspected and
   * back, a restart) costs no second assignment; the simulator's hundred nodes share one.
   */
  static of(members: readonly NodeId[], opts: PlacementOptions): Placement {
    const key = `${opts.partitions}/${opts.replicationFactor}\n${[...members].sort().join("\n")}`;
    const hit = placementCache.get(key);
    if (hit !== undefined) {
      placementCache.delete(key);
      placementCache.set(key, hit); // most recently used last
      return hit;
    }
    const made = new Placement(members, opts);
    placementCache.set(key, made);
    if (placementCache.size > placementCacheMax) placementCache.delete(placementCache.keys().next().value as string);
    return made;
  }

  /** Per member asked: one byte per partition, 1 where it is an owner (see ownedMask). */
  private readonly ownedMasks = new Map<NodeId, Uint8Array>();

  /**
   * One byte per partition, 1 where `member` owns it (all 0 for a non-member): what owns() answers
   * for every partition at once, made once per member asked. Shared: do not write to it.
   */
  ownedMask(member: NodeId): Uint8Array {
    let mask = this.ownedMasks.get(member);
    if (mask !== undefined) return mask;
    mask = new Uint8Array(this.partitions);
    const m = this.members.indexOf(member);
    if (m >= 0) for (let i = 0; i < this.ownerIndex.length; i++) if (this.ownerIndex[i] === m) mask[Math.floor(i / this.replicas)] = 1;
    // Bounded: a caller asking about ids that are not members gets the same (empty) answer anew.
    if (m >= 0) this.ownedMasks.set(member, mask);
    return mask;
  }

  /** The members that own a partition, best score first. */
  owners(partition: number): NodeId[] {
    const out: NodeId[] = [];
    for (let i = 0; i < this.replicas; i++) out.push(this.members[this.ownerIndex[partition * this.replicas + i]!]!);
    return out;
  }

  /** The members that own a key. */
  ownersOfKey(key: string): NodeId[] {
    return this.owners(partitionOf(key, this.partitions));
  }

  /** True when the member owns the partition. */
  owns(member: NodeId, partition: number): boolean {
    for (let i = 0; i < this.replicas; i++) if (this.members[this.ownerIndex[partition * this.replicas + i]!] === member) return true;
    return false;
  }

  /** Partition replicas each member holds, in `members` order. */
  loads(): number[] {
    const loads = new Array<number>(this.members.length).fill(0);
    for (const m of this.ownerIndex) loads[m]!++;
    return loads;
  }
}

export function checkPlacementOptions(opts: PlacementOptions): void {
  if (!Number.isInteger(opts.partitions) || opts.partitions < 1 || opts.partitions > partitionsMax) {
    throw new Error(`placement: partitions must be an integer in [1, ${partitionsMax}], got ${opts.partitions}`);
  }
  if (!Number.isInteger(opts.replicationFactor) || opts.replicationFactor < 1 || opts.replicationFactor > replicationFactorMax) {
    throw new Error(`placement: replicationFactor must be an integer in [1, ${replicationFactorMax}], got ${opts.replicationFactor}`);
  }
}

/** Each member's id hashed once; a member's score for a partition mixes it with the partition's. */
function memberHashes(members: readonly NodeId[]): Uint32Array {
  const out = new Uint32Array(members.length);
  members.forEach((m, i) => {
    const id = encoder.encode(m);
    out[i] = halfSipHash13(scoreHashKey[0], scoreHashKey[1], id, id.length);
  });
  return out;
}

/**
 * The rendezvous weights of every member for one partition, into `row`. A finaliser over the
 * member's hash xor the partition's, not a SipHash of (id, partition) per pair: 16384 partitions
 * x 100 members is 1.6M scores per placement, and the balance and movement figures came out the
 * same either way (docs/benchmarks.md).
 */
function scorePartition(hashes: Uint32Array, partition: number, row: Float64Array): void {
  const ph = fmix32(Math.imul(partition + 1, 0x9e3779b1));
  for (let m = 0; m < hashes.length; m++) row[m] = fmix32(hashes[m]! ^ ph);
}

/**
 * The bounded-load assignment. Each partition's best `replicas + extra` members by score become
 * candidates; all candidates of all partitions are taken in descending score order, each
 * accepted while its partition lacks owners and its member is under the cap. Partitions left
 * short (every candidate full) take the best-scoring members under the cap, then, should all
 * of those already own it, the best-scoring non-owners regardless of the cap.
 */
function assign(members: readonly NodeId[], partitions: number, replicas: number): Int32Array {
  const n = members.length;
  const hashes = memberHashes(members);
  const candidates = Math.min(n, replicas + placementExtraCandidates);
  const cap = Math.max(Math.ceil((partitions * replicas) / n), Math.ceil((partitions * replicas * placementLoadSlack) / n));
  // Sort keys: score * 2^21 + candidate slot (partition * candidates + rank), exact in a double
  // (32 + 21 bits); the slot breaks equal scores the same way on every node.
  const slotBits = 2 ** 21;
  const keys = new Float64Array(partitions * candidates);
  const candidateMember = new Int32Array(partitions * candidates);
  const row = new Float64Array(n);
  const top = new Int32Array(candidates);
  for (let p = 0; p < partitions; p++) {
    scorePartition(hashes, p, row);
    bestMembers(row, top);
    for (let r = 0; r < candidates; r++) {
      const slot = p * candidates + r;
      keys[slot] = row[top[r]!]! * slotBits + slot;
      candidateMember[slot] = top[r]!;
    }
  }
  keys.sort();
  const owners = new Int32Array(partitions * replicas).fill(-1);
  const ownerCount = new Int32Array(partitions);
  const load = new Int32Array(n);
  for (let i = keys.length - 1; i >= 0; i--) {
    const slot = keys[i]! % slotBits;
    const p = Math.floor(slot / candidates);
    const m = candidateMember[slot]!;
    if (ownerCount[p]! < replicas && load[m]! < cap) {
      owners[p * replicas + ownerCount[p]!] = m;
      ownerCount[p]!++;
      load[m]!++;
    }
  }
  const order = new Int32Array(n);
  for (let p = 0; p < partitions; p++) {
    if (ownerCount[p] === replicas) continue;
    scorePartition(hashes, p, row);
    bestMembers(row, order);
    for (const underCap of [true, false]) {
      for (const m of order) {
        if (ownerCount[p] === replicas) break;
        if ((underCap && load[m]! >= cap) || owned(owners, p, replicas, ownerCount[p]!, m)) continue;
        owners[p * replicas + ownerCount[p]!] = m;
        ownerCount[p]!++;
        load[m]!++;
      }
    }
  }
  return owners;
}

/**
 * Fills `out` with the indexes of the out.length highest scores of `row`, best first, equal
 * scores in index order. Insertion into the short list: O(n) for the few candidates kept, where
 * sorting every member per partition cost O(n log n) 1024 times over.
 */
function bestMembers(row: Float64Array, out: Int32Array): void {
  const k = out.length;
  let count = 0;
  for (let m = 0; m < row.length; m++) {
    const s = row[m]!;
    if (count === k && s <= row[out[k - 1]!]!) continue;
    let i = count < k ? count++ : k - 1;
    while (i > 0 && row[out[i - 1]!]! < s) { out[i] = out[i - 1]!; i--; }
    out[i] = m;
  }
}

function owned(owners: Int32Array, p: number, replicas: number, count: number, m: number): boolean {
  for (let i = 0; i < count; i++) if (owners[p * replicas + i] === m) return true;
  return false;
}
