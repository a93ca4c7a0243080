// Scan over a partitioned cluster (replicationFactor > 0): every key present for the whole scan
// is listed once, whichever node the client asks, although no node holds every key.
//
// The keyspace is split into one segment per member of the placement (Placement.members,
// sorted by id): segment s is the partitions the s-th member lists (Cluster.scanListing: each
// partition's first owner that held it through every placement of the hand-off window, so one
// that holds its data, else its first owner). The node running the scan asks each member in turn
// for its segment (NodeService.ScanPart, with the segment's partitions as a bitmap), and the
// member lists them from its own key table (one pass over it, keys of other partitions skipped).
// The client's cursor says which segment and where in that member's table: [segment: 11 bits]
// [listing check: 5 bits][the member's short listing cursor: 37 bits, Engine.shortCursor], a safe
// integer like every other cursor, so RESP clients that parse cursors as numbers keep working. A
// member keeps its table's order under writes (Engine.listKeys), so within a segment "once" holds
// as on one node; across segments it holds because each partition is in exactly one segment.
//
// What it cannot do, decided: the listing must not change during the scan (a member joining,
// leaving or being removed, or a hand-off window closing). A cursor made under another listing
// is refused (INVALID_ARGUMENT, restart the scan), as after two compactions of a node's key
// table; the check is 5 bits, so 1 change in 32 goes unnoticed and that scan may list keys of
// the moved partitions twice or miss them (never changing data). Nodes may list differently
// during a hand-off window (each knows the placements it saw): a scan goes on at the node it
// began on. A member the node sees as dead lists nothing: each of its partitions is listed by
// another owner that is up (Cluster.scanListing), so with one node down every key is still
// listed; its death or return changes the listing, and a scan spanning it is told to restart.
// Only a segment whose member is suspect (not yet declared dead), or a partition whose every
// owner is down, gives UNAVAILABLE.

import type { ScanListing } from "../cluster/cluster.ts";
import { partitionOfUtf8 } from "../cluster/placement.ts";
import { OpFailure, type ScanPage, type ScanQuery } from "../transport/api.ts";
import { RpcError } from "../transport/client.ts";
import { shortCursorBits } from "../engine/index.ts";
import * as grpc from "@grpc/grpc-js";

const innerSpan = 2 ** shortCursorBits;
const checkBits = 5;
const checkSpan = 2 ** checkBits;
const segmentSpan = innerSpan * checkSpan;
/** Members a partitioned scan can list (the cursor's segment bits). */
export const scanSegmentsMax = 2 ** (53 - shortCursorBits - checkBits);

/** A partitioned scan's cursor, taken apart. */
export interface ClusterCursor {
  segment: number;
  check: number;
  /** The segment member's short listing cursor (0: its start). */
  inner: number;
}

export function encodeClusterCursor(c: ClusterCursor): number {
  return c.segment * segmentSpan + c.check * innerSpan + c.inner;
}

export function decodeClusterCursor(cursor: number): ClusterCursor {
  const segment = Math.floor(cursor / segmentSpan);
  const rest = cursor - segment * segmentSpan;
  const check = Math.floor(rest / innerSpan);
  return { segment, check, inner: rest - check * innerSpan };
}

/** The partitions of segment s as a bitmap (bit p of byte p >> 3). */
export function segmentBitmap(l: ScanListing, segment: number): Uint8Array {
  const bits = new Uint8Array(Math.ceil(l.partitions / 8));
  for (let p = 0; p < l.partitions; p++) if (l.listerOf[p] === segment) bits[p >> 3]! |= 1 << (p & 7);
  return bits;
}

/** Keys whose partition is set in `bits`. */
export function bitmapFilter(bits: Uint8Array, partitions: number): (keyBytes: Uint8Array) => boolean {
  return (kb) => {
    const p = partitionOfUtf8(kb, partitions);
    return ((bits[p >> 3]! >> (p & 7)) & 1) === 1;
  };
}

export interface ScanPorts {
  selfId: string;
  /** Who lists which partition (Cluster.scanListing); null when every member holds every key. */
  listing(): ScanListing | null;
  /** Partitioned and without the cluster's member list yet. */
  joining(): boolean;
  /** This node's partition count (a ScanPart's bitmap must cover exactly these). */
  partitions: number;
  /** A member's status and peer address, as this node sees it. */
  member(id: string): { status: "alive" | "suspect" | "dead" | "left"; addr: string } | undefined;
  /** This node's listing: cursor a full engine cursor when keep is absent, a short one otherwise. */
  local(q: ScanQuery, keep?: (keyBytes: Uint8Array) => boolean): ScanPage;
  /** A ScanPart call to the member `to`: its keys of the partitions set in `bits`. */
  remote(to: { id: string; addr: string }, q: ScanQuery, segment: number, check: number, bits: Uint8Array): Promise<ScanPage>;
}

/** Most segments one Scan call moves through while they come back empty (a call stays bounded work). */
const emptySegmentsPerCall = 64;

export class ClusterScan {
  /** The bitmaps of the last listing's segments, made as they are asked for. */
  private bitmaps: { listing: ScanListing; bySegment: Map<number, Uint8Array> } | null = null;

  constructor(private readonly p: ScanPorts) {}

  /** One page of the client's Scan. */
  async scan(q: ScanQuery): Promise<ScanPage> {
    const listing = this.p.listing();
    if (listing === null || q.local === true) return this.p.local(q);
    if (this.p.joining()) throw new OpFailure("UNAVAILABLE", "this node has not joined the cluster yet, so it does not know who holds which keys; retry later or on another node");
    if (listing.members.length > scanSegmentsMax) throw new OpFailure("FAILED_PRECONDITION", `a scan lists at most ${scanSegmentsMax} members' partitions; this cluster has ${listing.members.length}`);
    const check = listing.check;
    let at = q.cursor === 0 ? { segment: 0, check, inner: 0 } : decodeClusterCursor(q.cursor);
    if (at.check !== check || at.segment >= listing.members.length) {
      throw new OpFailure("INVALID_ARGUMENT", "cursor is from another listing of the keyspace (the cluster's members changed during the scan, or it began on another node while partitions were moving), or not one this cluster returned; restart the scan");
    }
    for (let hops = 0; ; hops++) {
      const page = await this.segmentPage(listing, at.segment, { ...q, cursor: at.inner });
      const next = page.cursor !== 0 ? { ...at, inner: page.cursor } : { segment: at.segment + 1, check, inner: 0 };
      const done = next.segment >= listing.members.length;
      const cursor = done ? 0 : encodeClusterCursor(next);
      if (page.keys.length > 0 || done || hops + 1 >= emptySegmentsPerCall) return { keys: page.keys, cursor };
      at = next;
    }
  }

  /** This node's page of the partitions set in `bits` (NodeService.ScanPart), with a short cursor. */
  part(q: ScanQuery, bits: Uint8Array): ScanPage {
    if (bits.length !== Math.ceil(this.p.partitions / 8)) {
      throw new OpFailure("INVALID_ARGUMENT", `the partition bitmap has ${bits.length} bytes; this node has ${this.p.partitions} partitions (${Math.ceil(this.p.partitions / 8)} bytes)`);
    }
    return this.p.local(q, bitmapFilter(bits, this.p.partitions));
  }

  private bitmapOf(listing: ScanListing, segment: number): Uint8Array {
    if (this.bitmaps === null || this.bitmaps.listing !== listing) this.bitmaps = { listing, bySegment: new Map() };
    let bits = this.bitmaps.bySegment.get(segment);
    if (bits === undefined) {
      bits = segmentBitmap(listing, segment);
      this.bitmaps.bySegment.set(segment, bits);
    }
    return bits;
  }

  private async segmentPage(listing: ScanListing, segment: number, q: ScanQuery): Promise<ScanPage> {
    const id = listing.members[segment]!;
    const bits = this.bitmapOf(listing, segment);
    if (id === this.p.selfId) return this.part(q, bits);
    // A member that lists no partition (down, its partitions listed by other owners) is not asked.
    if (bits.every((b) => b === 0)) return { keys: [], cursor: 0 };
    const m = this.p.member(id);
    if (m === undefined || m.status === "dead" || m.status === "left") {
      throw new OpFailure("UNAVAILABLE", `member ${id}, which lists a share of the keyspace, is down; the scan can go on once it is back or removed (imdb admin member remove); retry later`);
    }
    try {
      return await this.p.remote({ id, addr: m.addr }, q, segment, listing.check, bits);
    } catch (err) {
      if (!(err instanceof RpcError)) throw err;
      // The member's own refusal of the page (a bad cursor) is the client's; anything else is unavailability.
      const code = err.code === grpc.status.INVALID_ARGUMENT ? "INVALID_ARGUMENT" : "UNAVAILABLE";
      throw new OpFailure(code, `scan of ${id}'s share of the keyspace: ${err.details}`);
    }
  }
}
