// Scan over a partitioned cluster (replicationFactor > 0): every key present for the whole scan
// is listed once, whichever node the client asks, although no node holds every key.
//
// The keyspace is split by the placement: segment s is the partitions whose first owner is the
// s-th member (Placement.members, sorted by id), listed by that member from its own key table
// (one pass over it, keys of other partitions skipped). The client's cursor says which segment
// and where in that member's table: [segment: 13 bits][placement check: 5 bits][the member's
// short listing cursor: 35 bits, Engine.shortCursor], a safe integer like every other cursor, so
// RESP clients that parse cursors as numbers keep working. A member keeps its table's order under
// writes (Engine.listKeys), so within a segment "once" holds as on one node; across segments it
// holds because each partition belongs to exactly one segment of a placement.
//
// What it cannot do, decided: the placement must not change during the scan. A cursor made under
// another placement is refused (INVALID_ARGUMENT, restart the scan, as after a compaction of a
// node's key table); the check is 5 bits of the member list's hash, so 1 change in 32 goes
// unnoticed and that scan may list keys of moved partitions twice or miss them (never changing
// data). A segment whose member is down cannot be listed (UNAVAILABLE until it is back or
// removed): another owner of its partitions holds them, but no single other member holds all of
// them, and splitting the segment over several would make the order depend on who is alive.

import type { Placement } from "../cluster/placement.ts";
import { partitionOfUtf8 } from "../cluster/placement.ts";
import { OpFailure, type ScanPage, type ScanQuery } from "../transport/api.ts";
import { RpcError } from "../transport/client.ts";
import { shortCursorBits } from "../engine/index.ts";
import * as grpc from "@grpc/grpc-js";

const innerSpan = 2 ** shortCursorBits;
const checkBits = 5;
const checkSpan = 2 ** checkBits;
const segmentSpan = innerSpan * checkSpan;
/** Members a partitioned scan can list (13 bits of the cursor). */
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

const checks = new WeakMap<Placement, number>();

/** 5 bits of an FNV-1a hash of the placement's members and shape: which placement a cursor was made under. */
export function placementCheck(p: Placement): number {
  let c = checks.get(p);
  if (c === undefined) {
    let h = 0x811c9dc5;
    for (const ch of `${p.partitions}/${p.replicas}/${p.members.join("\n")}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    c = (h ^ (h >>> 5) ^ (h >>> 10) ^ (h >>> 15) ^ (h >>> 20) ^ (h >>> 25) ^ (h >>> 30)) & (checkSpan - 1);
    checks.set(p, c);
  }
  return c;
}

/** The keys of the partitions `self` is the first owner of (what its segment lists). */
export function segmentFilter(p: Placement, self: string): (keyBytes: Uint8Array) => boolean {
  return (kb) => p.primary(partitionOfUtf8(kb, p.partitions)) === self;
}

export interface ScanPorts {
  selfId: string;
  /** The current placement; null when every member holds every key. */
  placement(): Placement | null;
  /** Partitioned and without the cluster's member list yet. */
  joining(): boolean;
  /** A member's status and peer address, as this node sees it. */
  member(id: string): { status: "alive" | "suspect" | "dead" | "left"; addr: string } | undefined;
  /** This node's listing: cursor a full engine cursor when keep is absent, a short one otherwise. */
  local(q: ScanQuery, keep?: (keyBytes: Uint8Array) => boolean): ScanPage;
  /** A ScanPart call to the member `to`. */
  remote(to: { id: string; addr: string }, q: ScanQuery, segment: number, check: number): Promise<ScanPage>;
}

/** Most segments one Scan call moves through while they come back empty (a call stays bounded work). */
const emptySegmentsPerCall = 64;

export class ClusterScan {
  constructor(private readonly p: ScanPorts) {}

  /** One page of the client's Scan. */
  async scan(q: ScanQuery): Promise<ScanPage> {
    const placement = this.p.placement();
    if (placement === null || q.local === true) return this.p.local(q);
    if (this.p.joining()) throw new OpFailure("UNAVAILABLE", "this node has not joined the cluster yet, so it does not know who holds which keys; retry later or on another node");
    const check = placementCheck(placement);
    if (placement.members.length > scanSegmentsMax) throw new OpFailure("FAILED_PRECONDITION", `a scan lists at most ${scanSegmentsMax} members' partitions; this cluster has ${placement.members.length}`);
    let at = q.cursor === 0 ? { segment: 0, check, inner: 0 } : decodeClusterCursor(q.cursor);
    if (at.check !== check || at.segment >= placement.members.length) {
      throw new OpFailure("INVALID_ARGUMENT", "cursor is from another placement of the keyspace (the cluster's members changed during the scan), or not one this cluster returned; restart the scan");
    }
    for (let hops = 0; ; hops++) {
      const page = await this.segmentPage(placement, at.segment, { ...q, cursor: at.inner }, check);
      const next = page.cursor !== 0 ? { ...at, inner: page.cursor } : { segment: at.segment + 1, check, inner: 0 };
      const done = next.segment >= placement.members.length;
      const cursor = done ? 0 : encodeClusterCursor(next);
      if (page.keys.length > 0 || done || hops + 1 >= emptySegmentsPerCall) return { keys: page.keys, cursor };
      at = next;
    }
  }

  /** This node's page of the partitions it lists first (NodeService.ScanPart). */
  part(q: ScanQuery, segment: number, check: number): ScanPage {
    const placement = this.p.placement();
    if (placement === null || this.p.joining() || placementCheck(placement) !== check || placement.members[segment] !== this.p.selfId) {
      throw new OpFailure("UNAVAILABLE", `${this.p.selfId} places keys differently from the node running the scan (members are changing); retry`);
    }
    return this.p.local(q, segmentFilter(placement, this.p.selfId));
  }

  private async segmentPage(placement: Placement, segment: number, q: ScanQuery, check: number): Promise<ScanPage> {
    const id = placement.members[segment]!;
    if (id === this.p.selfId) return this.part(q, segment, check);
    const m = this.p.member(id);
    if (m === undefined || m.status === "dead" || m.status === "left") {
      throw new OpFailure("UNAVAILABLE", `member ${id}, which lists a share of the keyspace, is down; the scan can go on once it is back or removed (imdb admin member remove); retry later`);
    }
    try {
      return await this.p.remote({ id, addr: m.addr }, q, segment, check);
    } catch (err) {
      if (!(err instanceof RpcError)) throw err;
      // The member's own refusal of the page (a bad cursor) is the client's; anything else is unavailability.
      const code = err.code === grpc.status.INVALID_ARGUMENT ? "INVALID_ARGUMENT" : "UNAVAILABLE";
      throw new OpFailure(code, `scan of ${id}'s share of the keyspace: ${err.details}`);
    }
  }
}
