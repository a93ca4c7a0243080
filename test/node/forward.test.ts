// The Forwarder (src/node/forward.ts) with its ports faked: which ops go where, in which order
// the answers come back, and what a failed forward, a dead owner set or a refused local request
// turns into. The real hop (NodeService.Forward over mutual TLS) is test/integration/forward.test.ts.
import { describe, expect, test } from "bun:test";
import type { Route } from "../../src/cluster/cluster.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { Forwarder, forwardUnsettledIdsMax, forwardUnsettledKeysMax, type ForwardPorts } from "../../src/node/forward.ts";
import { OpFailure, type ClientOp, type MemberState, type OpOutcome } from "../../src/transport/api.ts";
import { requestWindowMs } from "../../src/node/requests.ts";
import { RpcError } from "../../src/transport/client.ts";
import * as grpc from "@grpc/grpc-js";

const incr = (key: string): ClientOp => ({ kind: "increment", key, amount: 1n, counter: null });
const get = (key: string): ClientOp => ({ kind: "get", key });
const answer = (where: string) => (ops: readonly ClientOp[]): OpOutcome[] =>
  ops.map((op) => ({ ok: true, result: { kind: "counter", value: BigInt(`${where.length}${op.key.length}`) } }));

/**
 * Keys "l*" are local, "b*" belong to node b, "c*" to node c, "x*" have every owner dead; "r*"
 * are owned by b then c (passed over when in `avoid`, as Cluster.route does). Members are alive
 * unless `status` says otherwise; the clock is `clock.ms`.
 */
function ports(over: Partial<ForwardPorts> = {}, status: Record<string, MemberState> = {}, clock = { ms: 0 }): ForwardPorts & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    member: (id) => ((status[id] as string) === "gone" ? undefined : { status: status[id] ?? "alive", addr: `${id}:2` }),
    nowMs: () => clock.ms,
    route: (key, avoid): Route => {
      switch (key[0]) {
        case "r":
          for (const id of ["b", "c"]) if (avoid?.has(id) !== true) return { kind: "forward", to: asNodeId(id), addr: `${id}:1` };
          return { kind: "unavailable", owners: [asNodeId("b"), asNodeId("c")] };
        case "b":
          return { kind: "forward", to: asNodeId("b"), addr: "b:1" };
        case "c":
          return { kind: "forward", to: asNodeId("c"), addr: "c:1" };
        case "x":
          return { kind: "unavailable", owners: [asNodeId("y"), asNodeId("z")] };
        default:
          return { kind: "local" };
      }
    },
    local: async (ops, id) => {
      calls.push(`local ${ops.map((o) => o.key).join(",")} id=${id === null ? "-" : id[0]}`);
      return ops.map((op) => ({ ok: true, result: { kind: "counter", value: BigInt(op.key.length) } }));
    },
    forward: async (to, ops, id, ms) => {
      calls.push(`${to.id}@${to.addr} ${ops.map((o) => o.key).join(",")} id=${id === null ? "-" : id[0]} ${ms}ms`);
      return ops.map(() => ({ ok: true, result: { kind: "counter", value: to.id === "b" ? 100n : 200n } }));
    },
    ...over,
  };
}

const values = (out: OpOutcome[]): Array<bigint | string> => out.map((o) => (o.ok ? (o.result.kind === "counter" ? o.result.value : o.result.kind) : o.error.code));

describe("Forwarder", () => {
  test("a request whose keys are all local goes to the local path untouched, as one call", async () => {
    const p = ports();
    const f = new Forwarder(p);
    const out = await f.apply([incr("l1"), incr("l22")], new Uint8Array([7]));
    expect(values(out)).toEqual([2n, 3n]);
    expect(p.calls).toEqual(["local l1,l22 id=7"]);
    expect(f.stats).toEqual({ opsForwarded: 0, opsForwardFailed: 0, opsNoOwner: 0, opsOverloaded: 0, opsRetried: 0, opsUnsettled: 0 });
  });

  test("ops split by owner, one call each with the request id, answers back in request order", async () => {
    const p = ports();
    const f = new Forwarder(p, { deadlineMs: 1234 });
    const out = await f.apply([incr("b1"), incr("l22"), incr("c1"), incr("b2"), incr("l3")], new Uint8Array([9]));
    expect(values(out)).toEqual([100n, 3n, 200n, 100n, 2n]);
    expect([...p.calls].sort()).toEqual(["b@b:1 b1,b2 id=9 1234ms", "c@c:1 c1 id=9 1234ms", "local l22,l3 id=9"]);
    expect(f.stats.opsForwarded).toBe(3);
  });

  test("a failed forward answers its own ops UNAVAILABLE (or the owner's refusal) and the others normally", async () => {
    const p = ports({
      forward: async (to, ops) => {
        if (to.id === "b") throw new RpcError(grpc.status.DEADLINE_EXCEEDED, "deadline exceeded");
        if (to.id === "c") throw new RpcError(grpc.status.RESOURCE_EXHAUSTED, "overloaded");
        return answer("?")(ops);
      },
    });
    const f = new Forwarder(p);
    const out = await f.apply([incr("b1"), incr("l1"), incr("c1")], null);
    expect(values(out)).toEqual(["UNAVAILABLE", 2n, "RESOURCE_EXHAUSTED"]);
    expect(!out[0]!.ok && out[0]!.error.message).toContain("forwarded to owner b");
    expect(f.stats).toEqual({ opsForwarded: 2, opsForwardFailed: 2, opsNoOwner: 0, opsOverloaded: 0, opsRetried: 0, opsUnsettled: 0 });
  });

  test("reads whose owner's call fails go to the key's next owner, with what is left of the deadline; writes do not", async () => {
    const p = ports({
      forward: async (to, ops, _id, ms) => {
        p.calls.push(`${to.id} ${ops.map((o) => `${o.kind} ${o.key}`).join(",")} ${ms <= 1234 ? "in time" : `${ms}ms`}`);
        if (to.id === "b") throw new RpcError(grpc.status.UNAVAILABLE, "connection refused");
        return answer("?")(ops);
      },
    });
    const f = new Forwarder(p, { deadlineMs: 1234 });
    expect(values(await f.apply([get("r1"), get("r22")], null))).toEqual([12n, 13n]);
    expect(p.calls).toEqual(["b get r1,get r22 in time", "c get r1,get r22 in time"]);
    expect(f.stats).toEqual({ opsForwarded: 4, opsForwardFailed: 2, opsNoOwner: 0, opsOverloaded: 0, opsRetried: 2, opsUnsettled: 0 });
    // A write may have been applied by the owner whose call failed: never sent to another.
    p.calls.length = 0;
    expect(await f.apply([incr("r1")], null).catch((e: unknown) => (e as OpFailure).code)).toBe("UNAVAILABLE");
    expect(values(await f.apply([incr("r1"), get("l1")], null))).toEqual(["UNAVAILABLE", 2n]);
    expect(await f.apply([get("r1"), incr("r2")], null).catch((e: unknown) => (e as OpFailure).code)).toBe("UNAVAILABLE");
    expect(p.calls.sort()).toEqual(["b get r1,increment r2 in time", "b increment r1 in time", "b increment r1 in time", "local l1 id=-"]);
  });

  test("a read every owner fails is answered with the last failure, each owner called once; a read with no other owner keeps the first", async () => {
    const p = ports({
      forward: async (to) => {
        p.calls.push(to.id);
        throw new RpcError(to.id === "b" ? grpc.status.UNAVAILABLE : grpc.status.DEADLINE_EXCEEDED, `${to.id} is down`);
      },
    });
    const f = new Forwarder(p);
    const err = await f.apply([get("r1")], null).catch((e: unknown) => e as OpFailure);
    expect(err).toBeInstanceOf(OpFailure);
    expect((err as OpFailure).message).toContain("forwarded to owner c: c is down");
    expect(p.calls).toEqual(["b", "c"]);
    p.calls.length = 0;
    const out = await f.apply([get("b1"), get("l1")], null);
    expect(values(out)).toEqual(["UNAVAILABLE", 2n]);
    expect(!out[0]!.ok && out[0]!.error.message).toContain("forwarded to owner b: b is down");
    expect(p.calls.sort()).toEqual(["b", "local l1 id=-"]);
  });

  test("a write retried with its request id goes where its failed first attempt went while that owner is up, is refused while it is down, and is routed anew once the id is forgotten", async () => {
    const status: Record<string, MemberState> = {};
    const clock = { ms: 0 };
    let bFails = true;
    let sOwner = "b";
    const base = ports({}, status, clock);
    const p = ports({
      route: (key, avoid) => (key[0] === "s" ? { kind: "forward", to: asNodeId(sOwner), addr: `${sOwner}:1` } : base.route(key, avoid)),
      forward: async (to, ops, id) => {
        p.calls.push(`${to.id}@${to.addr} ${ops.map((o) => o.key).join(",")} id=${id === null ? "-" : id[0]}`);
        if (to.id === "b" && bFails) throw new RpcError(grpc.status.DEADLINE_EXCEEDED, "deadline exceeded");
        return answer(to.id)(ops);
      },
    }, status, clock);
    const f = new Forwarder(p);
    const id = new Uint8Array([5]);
    expect(await f.apply([incr("s1"), incr("l1")], id).then(values)).toEqual(["UNAVAILABLE", 2n]);
    // The failure detector moves on: b is suspect, the route names c. The retry still goes to b
    // (at the address the member list has now), which remembers the id if it applied it.
    status.b = "suspect";
    sOwner = "c";
    bFails = false;
    expect(await f.apply([incr("s1"), incr("l1")], id).then(values)).toEqual([12n, 2n]);
    expect(p.calls.filter((c) => !c.startsWith("local"))).toEqual(["b@b:1 s1 id=5", "b@b:2 s1 id=5"]);
    // While b is dead the retry is refused, nothing sent; another request goes where routed.
    status.b = "dead";
    p.calls.length = 0;
    const refused = await f.apply([incr("s1")], id).catch((e: unknown) => e as OpFailure);
    expect(refused).toBeInstanceOf(OpFailure);
    expect((refused as OpFailure).message).toContain("first attempt of this request went to owner b, which is dead");
    expect(await f.apply([incr("s1")], new Uint8Array([6])).then(values)).toEqual([12n]);
    expect(p.calls).toEqual(["c@c:1 s1 id=6"]);
    expect(f.stats.opsUnsettled).toBe(1);
    // Once b is reaped (or removed) it is gone for good: the retry is routed as a new write.
    status.b = "gone" as MemberState;
    expect(await f.apply([incr("s1")], id).then(values)).toEqual([12n]);
    expect(p.calls.at(-1)).toBe("c@c:1 s1 id=5");
    status.b = "dead";
    // Once b would have forgotten the id too, the retry is a new write, routed as any.
    clock.ms += requestWindowMs;
    expect(await f.apply([incr("s1")], id).then(values)).toEqual([12n]);
    expect(p.calls.at(-1)).toBe("c@c:1 s1 id=5");
    // Without a request id nothing is remembered; a read is never held back.
    status.b = "dead";
    sOwner = "b";
    bFails = true;
    await f.apply([incr("s2")], null).catch(() => undefined);
    sOwner = "c";
    expect(await f.apply([incr("s2")], null).then(values)).toEqual([12n]);
  });

  test("failed forwards' request ids are remembered within bounds (ids and keys), oldest forgotten first", async () => {
    const p = ports({ forward: async () => Promise.reject(new RpcError(grpc.status.DEADLINE_EXCEEDED, "deadline exceeded")) });
    const f = new Forwarder(p);
    const idOf = (n: number): Uint8Array => new Uint8Array([n & 255, (n >> 8) & 255, (n >> 16) & 255]);
    for (let n = 0; n < forwardUnsettledIdsMax + 5; n++) await f.apply([incr("b1")], idOf(n)).catch(() => undefined);
    expect(f.unsettledSize).toEqual({ ids: forwardUnsettledIdsMax, keys: forwardUnsettledIdsMax });
    const wide = Array.from({ length: 2000 }, (_, i) => incr(`b${i}`));
    for (let n = 0; n < Math.ceil(forwardUnsettledKeysMax / 2000) + 3; n++) await f.apply(wide, idOf(100_000 + n)).catch(() => undefined);
    expect(f.unsettledSize.keys).toBeLessThanOrEqual(forwardUnsettledKeysMax);
    expect(f.unsettledSize.keys).toBeGreaterThan(forwardUnsettledKeysMax - 2000);
    expect(f.unsettledSize.ids).toBe(forwardUnsettledKeysMax / 2000);
  });

  test("a request that went only to one failed owner fails as a whole, as a status", async () => {
    const p = ports({ forward: async () => Promise.reject(new RpcError(grpc.status.UNAVAILABLE, "connection refused")) });
    const f = new Forwarder(p);
    const err = await f.apply([incr("b1"), incr("b2")], null).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpFailure);
    expect((err as OpFailure).code).toBe("UNAVAILABLE");
  });

  test("keys whose owners are all dead are refused at once, nothing sent", async () => {
    const p = ports();
    const f = new Forwarder(p);
    const out = await f.apply([incr("x1"), incr("l1")], null);
    expect(values(out)).toEqual(["UNAVAILABLE", 2n]);
    expect(!out[0]!.ok && out[0]!.error.message).toContain("y, z");
    expect(p.calls).toEqual(["local l1 id=-"]);
    expect(f.stats.opsNoOwner).toBe(1);
    expect(await f.apply([incr("x1")], null).catch((e: unknown) => (e as OpFailure).code)).toBe("UNAVAILABLE");
  });

  test("a local refusal of the whole request stays a status alone, and becomes its ops' errors beside forwarded ones", async () => {
    const p = ports({ local: async () => Promise.reject(new OpFailure("RESOURCE_EXHAUSTED", "the node is serving too many ops")) });
    const f = new Forwarder(p);
    expect(await f.apply([incr("l1")], null).catch((e: unknown) => (e as OpFailure).code)).toBe("RESOURCE_EXHAUSTED");
    const out = await f.apply([incr("l1"), incr("b1")], null);
    expect(values(out)).toEqual(["RESOURCE_EXHAUSTED", 100n]);
  });

  test("past opsInFlightMax ops waiting for owners, more forwards are refused RESOURCE_EXHAUSTED, nothing sent; local ops still run", async () => {
    let release = (): void => {};
    const gate = new Promise<void>((r) => (release = r));
    const p = ports({
      forward: async (_to, ops) => {
        await gate;
        return ops.map(() => ({ ok: true, result: { kind: "counter", value: 1n } }));
      },
    });
    const f = new Forwarder(p, { opsInFlightMax: 3 });
    const first = f.apply([incr("b1"), incr("c1"), incr("c2")], null);
    expect(f.opsInFlight).toBe(3);
    expect(await f.apply([incr("b2")], null).catch((e: unknown) => (e as OpFailure).code)).toBe("RESOURCE_EXHAUSTED");
    expect(values(await f.apply([incr("b3"), incr("l1")], null))).toEqual(["RESOURCE_EXHAUSTED", 2n]);
    expect(f.stats.opsOverloaded).toBe(2);
    release();
    expect(values(await first)).toEqual([1n, 1n, 1n]);
    expect(f.opsInFlight).toBe(0);
    expect(values(await f.apply([incr("b4")], null))).toEqual([1n]);
  });
});
