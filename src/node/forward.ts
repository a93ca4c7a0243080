// Any node answers any request (issue 17). With a replication factor, the ops of a request whose
// keys this node does not own go to one of their owners over the peer channel (NodeService.Forward:
// mutual TLS, node certificates only, the same decoding and limits as a client's Batch), one hop:
// the owner applies them as a client's request and never forwards them again. The answer is the
// owner's, op by op, in the request's order.
//
// Whose actor a forwarded write uses: the owner's. The owner applies the op through its own write
// path exactly as if the client had connected to it, so the dot, the HLC timestamp and the WAL
// record are the owner's, written under the owner's identity and durable before it answers. That
// is safe because an actor's events are only ever minted by the one process that holds it (no
// two nodes can produce the same dot); the forwarding node adds nothing to the value and keeps no
// state for the op, so a forward that fails, times out or is retried leaves no half-applied write
// behind on it. A client's request id travels with the ops: a retry after an unanswered forward
// is settled by the owner's request table, as for a client talking to it directly.
//
// What a forward cannot do: when every owner of a key is down, its ops fail UNAVAILABLE (the
// client retries); when a forward of writes fails or times out, its ops fail UNAVAILABLE (they
// may have been applied: retry with the same request id, which that owner remembers; another
// owner would not, so the retry goes to the same owner whatever the route says by then, and is
// refused while that owner is down: firstAttempt). Reads change nothing, so a group of reads whose call failed is sent to the
// key's next owner at once (an owner killed a moment ago is listed alive until the failure
// detector suspects it, a second or two: its keys stay readable meanwhile). Ops of one request
// split over owners are separate requests to each, atomic per owner only (a request is never
// atomic across keys in this database).

import type { Route } from "../cluster/cluster.ts";
import { asNodeId } from "../cluster/types.ts";
import { isRead, OpFailure, opErrorCodes, type ClientOp, type OpErrorCode, type OpOutcome } from "../transport/api.ts";
import { RpcError } from "../transport/client.ts";
import * as grpc from "@grpc/grpc-js";
import { clientOpsInFlightMax } from "./write-path.ts";
import { requestWindowMs } from "./requests.ts";
import type { MemberState } from "../transport/api.ts";

/**
 * How long a forwarded request may take at the owner. Below the client's own default deadline
 * (10 s, src/transport/client.ts), so a client usually hears the owner's UNAVAILABLE rather than
 * its own timeout.
 */
export const forwardDeadlineMs = 5_000;
/** Reads whose call failed get another owner only while at least this much of the forward deadline is left (ms). */
export const forwardRetryMsMin = 250;
const noneTried: ReadonlySet<string> = new Set();
/**
 * Request ids of forwarded writes whose call failed (they may have been applied), remembered with
 * the owner each key went to, at most this many ids and keys (oldest ids forgotten first: a Batch
 * holds many keys) and for requestWindowMs (the owner forgets the id then too).
 */
export const forwardUnsettledIdsMax = 10_000;
export const forwardUnsettledKeysMax = 100_000;

const localRoute: Route = { kind: "local" };

export interface ForwardPorts {
  /** Where `key`'s ops go; `avoid`: owners whose call just failed (Cluster.route). */
  route(key: string, avoid?: ReadonlySet<string>): Route;
  /** This node's own write path (validation, limits, durability, request ids). */
  local(ops: readonly ClientOp[], requestId: Uint8Array | null): Promise<OpOutcome[]>;
  /** One Forward call to an owner. */
  forward(to: { id: string; addr: string }, ops: readonly ClientOp[], requestId: Uint8Array | null, deadlineMs: number): Promise<OpOutcome[]>;
  /** A member as this node sees it, or undefined (reaped, never known). */
  member(id: string): { status: MemberState; addr: string } | undefined;
  /** Monotonic ms (performance.now in the node). */
  nowMs(): number;
}

/** Where a group of ops goes: a route, or nowhere because the owner that may hold their first attempt is down. */
type Dest = Route | { kind: "unsettled"; to: string; status: string };

export interface ForwardStats {
  /** Ops sent to an owner, and those of them that came back as a failed call (not an op's own error). */
  opsForwarded: number;
  opsForwardFailed: number;
  /** Ops refused because every owner of their key was down. */
  opsNoOwner: number;
  /** Ops refused because opsInFlightMax were being forwarded already. */
  opsOverloaded: number;
  /** Reads whose call to an owner failed, sent to another owner (each counted in opsForwarded again). */
  opsRetried: number;
  /** Retried writes refused because the owner that may hold their first attempt is down. */
  opsUnsettled: number;
}

export interface ForwarderLimits {
  deadlineMs: number;
  /**
   * Most ops waiting for an owner's answer at once: the bound the local write path puts on a
   * client's ops (clientOpsInFlightMax), so that a node that owns nothing cannot be made to hold
   * any number of forwarded requests open.
   */
  opsInFlightMax: number;
}

/** A group of a request's ops that go to the same place, with their positions in the request. */
interface Group {
  route: Dest;
  at: number[];
}

export class Forwarder {
  readonly stats: ForwardStats = { opsForwarded: 0, opsForwardFailed: 0, opsNoOwner: 0, opsOverloaded: 0, opsRetried: 0, opsUnsettled: 0 };
  /** Request id (hex) -> when, and the owner each key's first attempt went to (see forwardUnsettledIdsMax). */
  private readonly unsettled = new Map<string, { atMs: number; owners: Map<string, { id: string; addr: string }> }>();
  private unsettledKeys = 0;
  private readonly limits: ForwarderLimits;
  private inFlight = 0;

  constructor(private readonly p: ForwardPorts, limits: Partial<ForwarderLimits> = {}) {
    this.limits = { deadlineMs: forwardDeadlineMs, opsInFlightMax: clientOpsInFlightMax, ...limits };
  }

  /** Ops sent to owners and not answered yet. */
  get opsInFlight(): number {
    return this.inFlight;
  }

  /** The request's outcomes, one per op in order, each from the node that owns its key. */
  async apply(ops: readonly ClientOp[], requestId: Uint8Array | null): Promise<OpOutcome[]> {
    // Fast path: every key here (always so without a replication factor).
    let routes: Dest[] | null = null;
    const first = requestId === null || this.unsettled.size === 0 ? undefined : this.firstAttempt(requestId);
    for (let i = 0; i < ops.length; i++) {
      const key = ops[i]!.key;
      const earlier = first?.get(key);
      const r = earlier === undefined ? this.p.route(key) : this.sameOwner(key, earlier);
      if (r.kind !== "local" && routes === null) routes = new Array<Dest>(i).fill(localRoute);
      routes?.push(r);
    }
    if (routes === null) return this.p.local(ops, requestId);
    const groups = groupByRoute(routes);
    const out = new Array<OpOutcome>(ops.length);
    await Promise.all(groups.map(async (g) => {
      const part = g.at.map((i) => ops[i]!);
      const answers = await this.run(g.route, part, requestId, groups.length === 1);
      g.at.forEach((i, j) => (out[i] = answers[j]!));
    }));
    return out;
  }

  /**
   * One group's outcomes. A local failure of the whole request (overloaded, stopping) is thrown
   * when the request went nowhere else (the caller answers it as a status, as without routing),
   * and otherwise becomes each of the group's ops' error.
   */
  private async run(route: Dest, ops: readonly ClientOp[], requestId: Uint8Array | null, whole: boolean, tried: ReadonlySet<string> = noneTried, startedMs = performance.now()): Promise<OpOutcome[]> {
    switch (route.kind) {
      case "unsettled": {
        this.stats.opsUnsettled += ops.length;
        const message = `the first attempt of this request went to owner ${route.to}, which is ${route.status}: it may have applied it, so the retry waits for it (retry later; a new request id applies the write again, possibly twice)`;
        if (whole) throw new OpFailure("UNAVAILABLE", message);
        return ops.map(() => ({ ok: false, error: { code: "UNAVAILABLE", message } }));
      }
      case "local":
        try {
          return await this.p.local(ops, requestId);
        } catch (err) {
          if (whole || !(err instanceof OpFailure)) throw err;
          return ops.map(() => ({ ok: false, error: { code: err.code, message: err.message } }));
        }
      case "forward": {
        if (this.inFlight > 0 && this.inFlight + ops.length > this.limits.opsInFlightMax) {
          this.stats.opsOverloaded += ops.length;
          const message = `the node is forwarding ${this.inFlight} ops (limit ${this.limits.opsInFlightMax}); retry later`;
          if (whole) throw new OpFailure("RESOURCE_EXHAUSTED", message);
          return ops.map(() => ({ ok: false, error: { code: "RESOURCE_EXHAUSTED", message } }));
        }
        this.stats.opsForwarded += ops.length;
        this.inFlight += ops.length;
        let e: { code: OpErrorCode; message: string };
        try {
          // A second owner gets what is left of the deadline, so that the client still hears first.
          const deadlineMs = tried.size === 0 ? this.limits.deadlineMs : Math.max(1, Math.round(this.limits.deadlineMs - (performance.now() - startedMs)));
          return await this.p.forward({ id: route.to, addr: route.addr }, ops, requestId, deadlineMs);
        } catch (err) {
          this.stats.opsForwardFailed += ops.length;
          e = forwardError(route.to, err);
          if (requestId !== null && !ops.every(isRead)) this.rememberUnsettled(requestId, ops, route);
        } finally {
          this.inFlight -= ops.length;
        }
        if (ops.every(isRead) && performance.now() - startedMs < this.limits.deadlineMs - forwardRetryMsMin) {
          const retried = await this.readElsewhere(ops, requestId, whole, new Set([...tried, route.to]), startedMs);
          if (retried !== null) return retried;
        }
        if (whole) throw new OpFailure(e.code, e.message);
        return ops.map(() => ({ ok: false, error: e }));
      }
      case "joining":
      case "unavailable": {
        this.stats.opsNoOwner += ops.length;
        const message = route.kind === "joining"
          ? "this node has not joined the cluster yet, so it does not know the key's owners; retry later or on another node"
          : `every owner of this key (${route.owners.join(", ")}) is down; retry later`;
        if (whole) throw new OpFailure("UNAVAILABLE", message);
        return ops.map(() => ({ ok: false, error: { code: "UNAVAILABLE", message } }));
      }
    }
  }

  /**
   * A retry of a request whose forward failed goes to the owner its first attempt went to, which
   * may have applied it and remembers its id (docs/api.md, "Safe retries": the same node),
   * whatever the route says now (after a failure it usually names another owner, where the
   * retry would apply a second time). While that owner is down the retry is refused; once the
   * owner has forgotten the id too (requestWindowMs) it is routed as a new write.
   */
  private firstAttempt(requestId: Uint8Array): Map<string, { id: string; addr: string }> | undefined {
    const now = this.p.nowMs();
    for (const [id, u] of this.unsettled) {
      if (now - u.atMs < requestWindowMs) break;
      this.forgetUnsettled(id);
    }
    return this.unsettled.get(Buffer.from(requestId).toString("hex"))?.owners;
  }

  private sameOwner(key: string, to: { id: string; addr: string }): Dest {
    const m = this.p.member(to.id);
    // Reaped or removed: gone for good, with what it had (handed off, or lost with it); the
    // retry is routed as a new write.
    if (m === undefined) return this.p.route(key);
    if (m.status === "alive" || m.status === "suspect") return { kind: "forward", to: asNodeId(to.id), addr: m.addr };
    return { kind: "unsettled", to: to.id, status: m.status };
  }

  private rememberUnsettled(requestId: Uint8Array, ops: readonly ClientOp[], to: { to: string; addr: string }): void {
    const id = Buffer.from(requestId).toString("hex");
    let u = this.unsettled.get(id);
    if (u === undefined) {
      u = { atMs: this.p.nowMs(), owners: new Map() };
      this.unsettled.set(id, u);
    }
    for (const op of ops) {
      if (u.owners.has(op.key)) continue;
      u.owners.set(op.key, { id: to.to, addr: to.addr });
      this.unsettledKeys++;
    }
    while (this.unsettled.size > forwardUnsettledIdsMax || this.unsettledKeys > forwardUnsettledKeysMax) {
      const oldest = this.unsettled.keys().next().value as string;
      this.forgetUnsettled(oldest);
      if (oldest === id) break;
    }
  }

  private forgetUnsettled(id: string): void {
    const u = this.unsettled.get(id);
    if (u === undefined) return;
    this.unsettledKeys -= u.owners.size;
    this.unsettled.delete(id);
  }

  /** Request ids and keys remembered by firstAttempt (tests, bounds). */
  get unsettledSize(): { ids: number; keys: number } {
    return { ids: this.unsettled.size, keys: this.unsettledKeys };
  }

  /**
   * Reads whose call to an owner failed, sent to their keys' other owners (not those `tried`),
   * grouped again; null when some key has no other owner to try (the first failure stands).
   */
  private async readElsewhere(ops: readonly ClientOp[], requestId: Uint8Array | null, whole: boolean, tried: ReadonlySet<string>, startedMs: number): Promise<OpOutcome[] | null> {
    const routes: Route[] = [];
    for (const op of ops) {
      const r = this.p.route(op.key, tried);
      if (r.kind === "joining" || r.kind === "unavailable" || (r.kind === "forward" && tried.has(r.to))) return null;
      routes.push(r);
    }
    this.stats.opsRetried += ops.length;
    const groups = groupByRoute(routes);
    // One group of a request that went to one owner only: its failure is still the whole request's status.
    if (whole && groups.length === 1) return this.run(groups[0]!.route, ops, requestId, true, tried, startedMs);
    const out = new Array<OpOutcome>(ops.length);
    await Promise.all(groups.map(async (g) => {
      const answers = await this.run(g.route, g.at.map((i) => ops[i]!), requestId, false, tried, startedMs);
      g.at.forEach((i, j) => (out[i] = answers[j]!));
    }));
    return out;
  }
}

/** Ops grouped by destination, in order of first appearance. */
function groupByRoute(routes: readonly Dest[]): Group[] {
  const byDest = new Map<string, Group>();
  routes.forEach((route, i) => {
    const dest = route.kind === "forward" ? `f:${route.to}` : route.kind === "unsettled" ? `u:${route.to}` : route.kind;
    let g = byDest.get(dest);
    if (g === undefined) {
      g = { route, at: [] };
      byDest.set(dest, g);
    }
    g.at.push(i);
  });
  return [...byDest.values()];
}

/**
 * A failed Forward call as the error of its ops: the owner's own refusal keeps its code (it
 * changed nothing), anything else is UNAVAILABLE (the ops may or may not have been applied:
 * a retry with the same request id settles it).
 */
function forwardError(to: string, err: unknown): { code: OpErrorCode; message: string } {
  if (err instanceof RpcError) {
    const name = grpc.status[err.code] ?? "";
    const kept = (opErrorCodes as readonly string[]).includes(name) && name !== "INTERNAL";
    return { code: kept ? (name as OpErrorCode) : "UNAVAILABLE", message: `forwarded to owner ${to}: ${err.details}` };
  }
  return { code: "UNAVAILABLE", message: `forwarded to owner ${to}: ${err instanceof Error ? err.message : String(err)}` };
}
