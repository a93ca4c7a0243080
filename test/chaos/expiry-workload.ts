// Clients churning TTL keys (sets) on random nodes for the chaos expiry scenario: unique members
// added, short relative TTLs set and cleared, reads of members and Ttl in one Batch, every op in a
// History; plus the per-node final reads and the waits for agreement that the scenario needs.
import { newRequestId, type ImdbClient } from "../../src/transport/client.ts";
import type { History, Op, PendingOp, TtlFinal } from "./history.ts";
import { ttlClass } from "./checkers.ts";
import { addAttemptsMax, classifyError, type Target } from "./workload.ts";

export const ttlKey = (i: number) => `ttl-${i}`;
/** Relative TTLs an expire op draws from: short, so deadlines come and go within the fault. */
export const expiryTtlMsMin = 1000;
export const expiryTtlMsMax = 3000;

/** Relative weights of the ops a worker draws. */
export interface ExpiryMix {
  sadd: number;
  expire: number;
  persist: number;
  read: number;
}

/** Phase A (under skew and partition): adds, deadlines set and sometimes cleared, reads. */
export const expiryChurnMix: ExpiryMix = { sadd: 4, expire: 2, persist: 0.5, read: 4 };
/** Phase C (after every deadline was executed): fresh adds and reads only. */
export const expiryFreshMix: ExpiryMix = { sadd: 6, expire: 0, persist: 0, read: 2 };

export interface ExpiryWorkloadOptions {
  history: History;
  targets: () => readonly Target[];
  workers: number;
  /** TTL keys ttl-0 .. ttl-(keys-1). */
  keys: number;
  random: () => number;
  pauseMs: number;
  pauseAfterErrorMs: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function pick(mix: ExpiryMix, r: number): keyof ExpiryMix {
  const entries = Object.entries(mix) as [keyof ExpiryMix, number][];
  let x = r * entries.reduce((s, [, w]) => s + w, 0);
  for (const [k, w] of entries) {
    if (x < w) return k;
    x -= w;
  }
  return "sadd";
}

export class ExpiryWorkload {
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;

  constructor(private readonly o: ExpiryWorkloadOptions) {}

  /** Starts the workers with `mix`; `tag` prefixes every member added (members are unique in a run). */
  start(mix: ExpiryMix, tag: string): void {
    this.running = true;
    for (let w = 0; w < this.o.workers; w++) this.loops.push(this.loop(`${tag}w${w}`, mix, tag));
  }

  /** Stops issuing and waits for the ops in flight to be recorded. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async loop(process: string, mix: ExpiryMix, tag: string): Promise<void> {
    while (this.running && !this.o.history.full) {
      const targets = this.o.targets();
      const t = targets[Math.floor(this.o.random() * targets.length)];
      if (t === undefined) return;
      const ok = await this.one(process, t, pick(mix, this.o.random()), tag);
      await Bun.sleep(ok ? this.o.pauseMs : this.o.pauseAfterErrorMs);
    }
  }

  private async one(process: string, t: Target, kind: keyof ExpiryMix, tag: string): Promise<boolean> {
    const r = this.o.random;
    const key = ttlKey(Math.floor(r() * this.o.keys));
    const node = t.node;
    switch (kind) {
      case "sadd": {
        const member = `${tag}-${process}-${++this.seq}`;
        return this.write({ kind: "sadd", process, node, key, member }, t, async (c, id) => {
          await c.sadd(key, [enc.encode(member)], id);
          return {};
        });
      }
      case "expire": {
        const ttlMs = expiryTtlMsMin + Math.floor(r() * (expiryTtlMsMax - expiryTtlMsMin + 1));
        return this.write({ kind: "expire", process, node, key, ttlMs }, t, async (c, id) => ({ applied: await c.expire(key, { ttlMs }, id) }));
      }
      case "persist":
        return this.write({ kind: "persist", process, node, key }, t, async (c, id) => ({ applied: await c.persist(key, id) }));
      case "read": {
        const op = await this.o.history.record<Extract<Op, { kind: "readTtl" }>>({ kind: "readTtl", process, node, key, members: [], ttlMs: -2 }, async () => readTtl(t.client, key), () => "failed");
        return op.outcome === "ok";
      }
    }
  }

  /**
   * One write with a request id, retried on an indeterminate error to the same node with that id
   * (applied at most once), recorded once with its final outcome.
   */
  private async write<T extends Op>(base: PendingOp<T>, t: Target, run: (c: ImdbClient, requestId: Uint8Array) => Promise<Partial<T>>): Promise<boolean> {
    const h = this.o.history;
    const requestId = newRequestId();
    const startMs = h.now();
    let target = t;
    for (let attempts = 1; ; attempts++) {
      try {
        const seen = await run(target.client, requestId);
        // base carries every field of its kind; the spread adds the observed ones and the outcome.
        h.add({ ...base, ...seen, outcome: "ok", startMs, endMs: h.now() } as unknown as T);
        return true;
      } catch (err) {
        const outcome = classifyError(err);
        if (outcome === "failed" || attempts >= addAttemptsMax || !this.running) {
          h.add({ ...base, outcome, startMs, endMs: h.now() } as unknown as T);
          return false;
        }
        await Bun.sleep(this.o.pauseAfterErrorMs);
        target = this.o.targets().find((x) => x.node === t.node) ?? target;
      }
    }
  }
}

/** SMembers and Ttl of one key in one Batch: one state, one clock reading on the node. */
async function readTtl(c: ImdbClient, key: string): Promise<{ members: string[]; ttlMs: number }> {
  const [m, t] = await c.batch([{ kind: "smembers", key }, { kind: "ttl", key }]);
  if (m === undefined || !m.ok || m.result.kind !== "members") throw new Error(`smembers ${key}: ${m !== undefined && !m.ok ? m.message : "unexpected result"}`);
  if (t === undefined || !t.ok || t.result.kind !== "ttl") throw new Error(`ttl ${key}: ${t !== undefined && !t.ok ? t.message : "unexpected result"}`);
  return { members: m.result.members.map((x) => dec.decode(x)).sort(), ttlMs: t.result.ttlMs };
}

/** Every TTL key on every node, one Batch per node. Throws if a node cannot answer. */
export async function ttlFinalReads(targets: readonly Target[], keys: number): Promise<TtlFinal[]> {
  const out: TtlFinal[] = [];
  for (const t of targets) {
    const names = Array.from({ length: keys }, (_, i) => ttlKey(i));
    const items = await t.client.batch(names.flatMap((key) => [{ kind: "smembers" as const, key }, { kind: "ttl" as const, key }]));
    names.forEach((key, i) => {
      const m = items[2 * i];
      const l = items[2 * i + 1];
      if (m === undefined || !m.ok || m.result.kind !== "members" || l === undefined || !l.ok || l.result.kind !== "ttl") throw new Error(`final read of ${key} on ${t.node} failed`);
      out.push({ node: t.node, key, members: m.result.members.map((x) => dec.decode(x)).sort(), ttlMs: l.result.ttlMs });
    });
  }
  return out;
}

/** Every node shows the same members and Ttl class for every key; noDeadline: and none has a live deadline. */
export function ttlAgree(finals: readonly TtlFinal[], noDeadline: boolean): boolean {
  const shapes = new Map<string, string>();
  for (const f of finals) {
    if (noDeadline && ttlClass(f.ttlMs) === "deadline") return false;
    const shape = JSON.stringify([f.members, ttlClass(f.ttlMs)]);
    const prev = shapes.get(f.key);
    if (prev !== undefined && prev !== shape) return false;
    shapes.set(f.key, shape);
  }
  return true;
}

/** Polls final reads until ttlAgree holds or the deadline passes; the last reads and the time taken. */
export async function awaitTtlAgreement(targets: () => readonly Target[], keys: number, noDeadline: boolean, deadlineMs: number): Promise<{ finals: TtlFinal[]; agreed: boolean; ms: number }> {
  const t0 = performance.now();
  let finals: TtlFinal[] = [];
  for (;;) {
    try {
      finals = await ttlFinalReads(targets(), keys);
      if (ttlAgree(finals, noDeadline)) return { finals, agreed: true, ms: performance.now() - t0 };
    } catch {
      // a node not answering yet: try again until the deadline
    }
    if (performance.now() - t0 > deadlineMs) return { finals, agreed: false, ms: performance.now() - t0 };
    await Bun.sleep(50);
  }
}
