// A small in-memory ClientHandler/AdminHandler/PeerHandler for transport tests: enough semantics to see statuses cross the edge.
import {
  OpFailure, type AdminHandler, type ClientHandler, type ClientOp, type HandOffEntry, type LeaveInfo, type MemberView, type NodeStatus, type OpOutcome, type PeerHandler, type ScanPage, type ScanQuery,
} from "../../src/transport/api.ts";

type Entry =
  | { type: "gcounter" | "pncounter"; value: bigint }
  | { type: "lww"; value: Uint8Array }
  | { type: "mv"; values: Uint8Array[]; version: number }
  | { type: "set"; members: Map<string, Uint8Array> };

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const int64Max = 2n ** 63n - 1n;
const int64Min = -(2n ** 63n);

export class FakeNode implements ClientHandler, AdminHandler {
  readonly store = new Map<string, Entry>();
  applied = 0;
  /** Calls that reached apply(), counted before the gate. */
  entered = 0;
  batches = 0;
  /** When set, apply() waits for it (graceful-shutdown test). */
  gate: Promise<void> | null = null;
  /** Request ids apply() received, hex (null: none), in order. */
  readonly requestIds: (string | null)[] = [];
  /** This many coming apply() calls answer UNAVAILABLE without applying (a node going away). */
  unavailableNext = 0;
  /** Keys' deadlines, Unix ms on `now` (a fake of the engine's expiry: enough to see the edge carry it). */
  readonly deadlines = new Map<string, number>();
  /** The fake's wall clock. */
  now: () => number = () => Date.now();

  private fail(code: "FAILED_PRECONDITION" | "OUT_OF_RANGE" | "NOT_FOUND", message: string): OpOutcome {
    return { ok: false, error: { code, message } };
  }

  /** Drops the key if its deadline passed (as the engine hides an expired key). */
  private expireIfDue(key: string, nowMs: number): void {
    const at = this.deadlines.get(key);
    if (at !== undefined && at <= nowMs) {
      this.store.delete(key);
      this.deadlines.delete(key);
    }
  }

  /** Expiry ops and a register write's deadline; null for any other op. */
  private expiry(op: ClientOp, nowMs: number): OpOutcome | null {
    const at = this.deadlines.get(op.key);
    const exists = this.store.has(op.key);
    switch (op.kind) {
      case "ttl":
        return { ok: true, result: { kind: "ttl", ttlMs: !exists ? -2 : at === undefined ? -1 : at - nowMs } };
      case "persist":
        this.applied++;
        return { ok: true, result: { kind: "changed", value: exists && this.deadlines.delete(op.key) } };
      case "expire": {
        if (!exists) return { ok: true, result: { kind: "changed", value: false } };
        const next = op.ttlMs !== null ? nowMs + Math.max(0, op.ttlMs) : Math.max(nowMs, op.atMs ?? nowMs);
        // No deadline counts as infinitely late: GT never applies to it, LT always does.
        const ok = op.cond === null || (op.cond === "nx" && at === undefined) || (op.cond === "xx" && at !== undefined) ||
          (op.cond === "gt" && at !== undefined && next > at) || (op.cond === "lt" && (at === undefined || next < at));
        if (!ok) return { ok: true, result: { kind: "changed", value: false } };
        this.applied++;
        this.deadlines.set(op.key, next);
        this.expireIfDue(op.key, nowMs);
        return { ok: true, result: { kind: "changed", value: true } };
      }
      default:
        return null;
    }
  }

  private one(op: ClientOp): OpOutcome {
    const nowMs = this.now();
    this.expireIfDue(op.key, nowMs);
    const expiry = this.expiry(op, nowMs);
    if (expiry !== null) return expiry;
    const out = this.oneValue(op);
    if (!out.ok) return out;
    if (op.kind === "delete") this.deadlines.delete(op.key);
    if (op.kind === "set" || op.kind === "setMv") {
      if (op.ttlMs !== undefined) this.deadlines.set(op.key, nowMs + op.ttlMs);
      else if (op.keepTtl !== true) this.deadlines.delete(op.key);
    }
    const at = this.deadlines.get(op.key);
    if (out.result.kind === "value" && at !== undefined) return { ok: true, result: { kind: "value", value: { ...out.result.value, ttlMs: at - nowMs, expiresAtMs: at } } };
    return out;
  }

  private oneValue(op: ClientOp): OpOutcome {
    const cur = this.store.get(op.key);
    switch (op.kind) {
      case "increment":
      case "decrement": {
        const asked = op.kind === "increment" ? op.counter : "pncounter";
        const type = asked ?? (cur?.type === "gcounter" ? "gcounter" : "pncounter");
        if (cur !== undefined && cur.type !== type) {
          return this.fail("FAILED_PRECONDITION", `key holds a ${cur.type}`);
        }
        const before = cur !== undefined && (cur.type === "gcounter" || cur.type === "pncounter") ? cur.value : 0n;
        const after = op.kind === "increment" ? before + op.amount : before - op.amount;
        if (after > int64Max || after < int64Min) return this.fail("OUT_OF_RANGE", "counter would overflow int64");
        this.store.set(op.key, { type: cur?.type === "gcounter" ? "gcounter" : type, value: after } as Entry);
        this.applied++;
        return { ok: true, result: { kind: "counter", value: after } };
      }
      case "get": {
        if (cur === undefined) return this.fail("NOT_FOUND", "key not found");
        if (cur.type === "mv") return { ok: true, result: { kind: "value", value: { type: "mv", values: cur.values, context: new Uint8Array([cur.version]) } } };
        if (cur.type === "set") return { ok: true, result: { kind: "value", value: { type: "set", members: [...cur.members.values()] } } };
        return { ok: true, result: { kind: "value", value: cur } };
      }
      case "set":
        if (cur !== undefined && cur.type !== "lww") return this.fail("FAILED_PRECONDITION", `key holds a ${cur.type}`);
        this.store.set(op.key, { type: "lww", value: op.value });
        this.applied++;
        return { ok: true, result: { kind: "written", context: null } };
      case "setMv": {
        if (cur !== undefined && cur.type !== "mv") return this.fail("FAILED_PRECONDITION", `key holds a ${cur.type}`);
        const version = (cur?.version ?? 0) + 1;
        // Fake causality: a write with the current context replaces, any other adds a sibling.
        const replaces = cur !== undefined && op.context !== null && op.context[0] === cur.version;
        const values = cur === undefined || replaces ? [op.value] : [...cur.values, op.value];
        this.store.set(op.key, { type: "mv", values, version });
        this.applied++;
        return { ok: true, result: { kind: "written", context: new Uint8Array([version]) } };
      }
      case "delete":
        this.applied++;
        return { ok: true, result: { kind: "deleted", deleted: this.store.delete(op.key) } };
      case "sadd":
      case "srem": {
        if (cur !== undefined && cur.type !== "set") return this.fail("FAILED_PRECONDITION", `key holds a ${cur.type}`);
        const members = cur?.members ?? new Map<string, Uint8Array>();
        let n = 0;
        for (const m of op.members) {
          const had = members.has(hexOf(m));
          if (op.kind === "sadd" && !had) { members.set(hexOf(m), m); n++; }
          if (op.kind === "srem" && had) { members.delete(hexOf(m)); n++; }
        }
        this.store.set(op.key, { type: "set", members });
        this.applied++;
        return { ok: true, result: { kind: "count", value: n } };
      }
      case "smembers":
      case "sismember":
      case "scard": {
        if (cur !== undefined && cur.type !== "set") return this.fail("FAILED_PRECONDITION", `key holds a ${cur.type}`);
        const members = [...(cur?.members.values() ?? [])];
        if (op.kind === "smembers") return { ok: true, result: { kind: "members", members } };
        if (op.kind === "scard") return { ok: true, result: { kind: "count", value: members.length } };
        return { ok: true, result: { kind: "isMember", value: cur?.members.has(hexOf(op.member)) === true } };
      }
      default:
        // Hash ops are served by the real node (test/integration); the edge's validation is what this fake checks.
        return this.fail("FAILED_PRECONDITION", `the fake node does not serve ${op.kind}`);
    }
  }

  /** Keys in insertion order; the cursor is a position in that order. */
  scan(q: ScanQuery): ScanPage {
    const all = [...this.store.entries()].filter(([k, v]) => k.startsWith(q.prefix) && (q.type === null || v.type === q.type)).map(([k]) => k);
    const keys = all.slice(q.cursor, q.cursor + q.limit);
    const next = q.cursor + keys.length;
    return { keys, cursor: next >= all.length ? 0 : next };
  }

  async apply(op: ClientOp, requestId: Uint8Array | null = null): Promise<OpOutcome> {
    this.entered++;
    this.requestIds.push(requestId === null ? null : Buffer.from(requestId).toString("hex"));
    if (this.unavailableNext > 0) {
      this.unavailableNext--;
      throw new OpFailure("UNAVAILABLE", "the node is stopping");
    }
    if (this.gate !== null) await this.gate;
    return this.one(op);
  }

  batch(ops: readonly ClientOp[]): OpOutcome[] {
    this.batches++;
    return ops.map((op) => this.one(op));
  }

  status(): NodeStatus {
    return { nodeId: "a", version: "0.1.0", uptimeMs: 1234, keys: this.store.size, durability: "sync", membersAlive: 2, membersTotal: 3, walLsn: 2n ** 40n, accel: "ts" };
  }

  members(): MemberView[] {
    return [
      { id: "a", address: "127.0.0.1:7000", status: "alive", incarnation: 3 },
      { id: "b", address: "127.0.0.1:7001", status: "suspect", incarnation: 1 },
    ];
  }

  snapshot() {
    return { path: "/data/snap-1", lsn: 42n, bytes: 4096, keys: this.store.size, durationMs: 7 };
  }

  leave(): LeaveInfo {
    return { heardBy: "fake-peer", peers: 2 };
  }

  stats() {
    return [{ name: "keys", value: String(this.store.size) }];
  }
}

export class EchoPeer implements PeerHandler {
  readonly seen: string[] = [];
  /** Forwarded requests, as received. */
  readonly forwarded: Array<{ fromId: string; ops: readonly ClientOp[]; requestId: Uint8Array | null }> = [];
  exchange(fromId: string, payload: Uint8Array): Uint8Array {
    this.seen.push(fromId);
    return new Uint8Array([...payload].reverse());
  }
  /** Answers each op NOT_FOUND, naming the op and this peer, so a test sees where its ops went. */
  forward(fromId: string, ops: readonly ClientOp[], requestId: Uint8Array | null): OpOutcome[] {
    this.forwarded.push({ fromId, ops, requestId });
    return ops.map((op) => ({ ok: false, error: { code: "NOT_FOUND", message: `${op.kind} ${op.key} reached the peer` } }));
  }
  /** Hand-off calls, as received. */
  readonly handedOff: Array<{ fromId: string; entries: readonly HandOffEntry[]; stamp: { epoch: number; confirms: number } }> = [];
  /** Answers how many entries are whole states. */
  handOff(fromId: string, entries: readonly HandOffEntry[], stamp: { epoch: number; confirms: number }): number {
    this.handedOff.push({ fromId, entries, stamp });
    return entries.filter((e) => e.total === 0).length;
  }
  /** Scan pages asked for, as received. */
  readonly scanned: Array<{ fromId: string; q: ScanQuery; partitions: Uint8Array }> = [];
  /** Answers one key naming what it received, and the cursor plus one. */
  scanPart(fromId: string, q: ScanQuery, partitions: Uint8Array): ScanPage {
    this.scanned.push({ fromId, q, partitions });
    return { keys: [`${q.prefix}|${q.type ?? "any"}|${q.limit}|${[...partitions].join(",")}`], cursor: q.cursor + 1 };
  }
}
