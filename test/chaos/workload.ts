// Concurrent clients issuing a mixed load (counters, LWW, MV) against real nodes through ImdbClient,
// recording every op with its outcome in a History, and the final reads used to judge convergence.
import { ImdbClient, newRequestId, RpcError } from "../../src/transport/client.ts";
import type { ValueView } from "../../src/transport/api.ts";
import type { FinalRead, History, Outcome } from "./history.ts";

/** gRPC statuses that prove the op did not happen; anything else (UNAVAILABLE, DEADLINE_EXCEEDED, ...) may have. */
const definiteFailures = new Set(["INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "UNAUTHENTICATED", "NOT_FOUND", "UNIMPLEMENTED"]);

export function classifyError(err: unknown): Outcome {
  return err instanceof RpcError && definiteFailures.has(err.codeName) ? "failed" : "indeterminate";
}

/**
 * Attempts of one counter write, all with the same request id: a node applies it once and answers a
 * retry with the first result, so an increment whose reply was lost becomes determinate.
 */
export const addAttemptsMax = 3;

export interface Mix {
  add: number;
  readCounter: number;
  set: number;
  readLww: number;
  /** A read of an MV key followed by a write carrying its context. */
  mv: number;
  /** A read of a deletable counter or register followed by its delete on the same node. */
  del?: number;
  /** Set ops on KeySpace.sets: add a member, read the set, read it and remove a member it showed. */
  sadd?: number;
  readSet?: number;
  srem?: number;
}

export const counterOnlyMix: Mix = { add: 6, readCounter: 2, set: 0, readLww: 0, mv: 0 };
/** Every kind, and deletes of the deletable keys (KeySpace.deletables) when there are any. */
export const mixedMix: Mix = { add: 4, readCounter: 2, set: 2, readLww: 1, mv: 1, del: 1, sadd: 2, readSet: 1, srem: 1 };

export interface KeySpace {
  counters: number;
  registers: number;
  mvs: number;
  /** Counter and register keys (each this many) that are written and deleted; judged by checkDeletes. */
  deletables?: number;
  /** Set keys; judged by checkSets. */
  sets?: number;
  /** Further counter keys read by finalReads (not written by the workload). */
  extra?: readonly string[];
}

export const counterKey = (i: number) => `ctr-${i}`;
export const registerKey = (i: number) => `lww-${i}`;
export const mvKey = (i: number) => `mv-${i}`;
export const deletableCounterKey = (i: number) => `dctr-${i}`;
export const deletableRegisterKey = (i: number) => `dlww-${i}`;
export const setKey = (i: number) => `set-${i}`;
/** Members per set key: few, so adds and removes of one member meet on several nodes. */
export const setMembersPool = 12;
/** Keys that are deleted too: the plain checkers leave them to checkDeletes. */
export const isDeletableKey = (key: string): boolean => key.startsWith("dctr-") || key.startsWith("dlww-");

export function allKeys(k: KeySpace): { counters: string[]; registers: string[]; mvs: string[]; sets: string[] } {
  const d = k.deletables ?? 0;
  return {
    sets: Array.from({ length: k.sets ?? 0 }, (_, i) => setKey(i)),
    counters: [...Array.from({ length: k.counters }, (_, i) => counterKey(i)), ...Array.from({ length: d }, (_, i) => deletableCounterKey(i)), ...(k.extra ?? [])],
    registers: [...Array.from({ length: k.registers }, (_, i) => registerKey(i)), ...Array.from({ length: d }, (_, i) => deletableRegisterKey(i))],
    mvs: Array.from({ length: k.mvs }, (_, i) => mvKey(i)),
  };
}

/** A key of a family, deletable ones drawn half the time when there are any. */
function counterOrDeletable(k: KeySpace, r: () => number): string {
  const d = k.deletables ?? 0;
  if (d > 0 && (k.counters === 0 || r() < 0.5)) return deletableCounterKey(Math.floor(r() * d));
  return counterKey(Math.floor(r() * k.counters));
}

function registerOrDeletable(k: KeySpace, r: () => number): string {
  const d = k.deletables ?? 0;
  if (d > 0 && (k.registers === 0 || r() < 0.5)) return deletableRegisterKey(Math.floor(r() * d));
  return registerKey(Math.floor(r() * k.registers));
}

/** A node as the workload sees it: a stable name and a client (through the node's client proxy). */
export interface Target {
  node: string;
  client: ImdbClient;
  /** Which process of the node is up now (bumped at each restart); absent: one process throughout. */
  incarnation?: () => number;
}

/** The process that served an op begun when `atStart` was current, if the same one was still up at the end. */
function servedBy(t: Target, atStart: number | undefined): { incarnation?: number } {
  if (t.incarnation === undefined) return { incarnation: 0 };
  return atStart !== undefined && t.incarnation() === atStart ? { incarnation: atStart } : {};
}

export interface WorkloadOptions {
  history: History;
  /** Worker w talks to targets()[w % n]. */
  targets: () => readonly Target[];
  workers: number;
  mix: Mix;
  keys: KeySpace;
  random: () => number;
  /** Pause after an op that did not succeed, so a dead node is not hammered. */
  pauseAfterErrorMs: number;
  /** Pause between ops of one worker (0: as fast as the node answers). */
  pauseMs?: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function pick(mix: Mix, r: number): keyof Mix {
  const entries = Object.entries(mix) as [keyof Mix, number][];
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let x = r * total;
  for (const [k, w] of entries) {
    if (x < w) return k;
    x -= w;
  }
  return "add";
}

async function getOrNull(c: ImdbClient, key: string): Promise<ValueView | null> {
  try {
    return await c.get(key);
  } catch (err) {
    if (err instanceof RpcError && err.codeName === "NOT_FOUND") return null;
    throw err;
  }
}

export class Workload {
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;

  constructor(private readonly o: WorkloadOptions) {}

  /**
   * Gives every MV key a first value (recorded) and waits until every target reads it, so the
   * run's MV writes always carry a context. Returns false if a node did not see them in time.
   */
  async prepare(deadlineMs: number): Promise<boolean> {
    const targets = this.o.targets();
    const first = targets[0];
    if (first === undefined || this.o.keys.mvs === 0) return true;
    for (let i = 0; i < this.o.keys.mvs; i++) {
      const key = mvKey(i);
      const value = `init-${key}`;
      const op = await this.o.history.record({ kind: "setMv", process: "prepare", node: first.node, key, value, observed: [] }, async () => {
        await first.client.setMv(key, enc.encode(value), null);
        return {};
      }, classifyError);
      if (op.outcome !== "ok") return false;
    }
    const end = performance.now() + deadlineMs;
    for (const t of targets) {
      for (let i = 0; i < this.o.keys.mvs; i++) {
        while ((await getOrNull(t.client, mvKey(i)).catch(() => null)) === null) {
          if (performance.now() > end) return false;
          await Bun.sleep(20);
        }
      }
    }
    return true;
  }

  start(): void {
    this.running = true;
    for (let w = 0; w < this.o.workers; w++) this.loops.push(this.loop(w));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async loop(w: number): Promise<void> {
    const process = `w${w}`;
    while (this.running && !this.o.history.full) {
      const targets = this.o.targets();
      const t = targets[w % targets.length];
      if (t === undefined) return;
      const ok = await this.one(process, t);
      const pause = ok ? (this.o.pauseMs ?? 0) : this.o.pauseAfterErrorMs;
      if (pause > 0) await Bun.sleep(pause);
    }
  }

  /** One op (an MV op is a read and a write); returns whether it succeeded. */
  private async one(process: string, t: Target): Promise<boolean> {
    const h = this.o.history;
    const r = this.o.random;
    const k = this.o.keys;
    const kind = pick(this.o.mix, r());
    const node = t.node;
    switch (kind) {
      case "add": {
        const key = counterOrDeletable(k, r);
        const amount = BigInt(1 + Math.floor(r() * 5));
        const requestId = newRequestId();
        const startMs = h.now();
        const inc0 = t.incarnation?.();
        let target = t;
        for (let attempts = 1; ; attempts++) {
          try {
            const after = await target.client.increment(key, amount, undefined, requestId);
            const endMs = h.now();
            h.add({ kind: "add", process, node, key, amount, outcome: "ok", startMs, endMs, attempts });
            // The value after the increment is a read too, taken inside the op's interval (a
            // retry's answer is the first attempt's value, also inside it).
            h.add({ kind: "readCounter", process, node, key, value: after, outcome: "ok", startMs, endMs, ...servedBy(target, inc0) });
            return true;
          } catch (err) {
            const outcome = classifyError(err);
            if (outcome === "failed" || attempts >= addAttemptsMax || !this.running) {
              h.add({ kind: "add", process, node, key, amount, outcome, startMs, endMs: h.now(), attempts });
              return false;
            }
            await Bun.sleep(this.o.pauseAfterErrorMs);
            // The same node, through the client made for its current process (it may have restarted).
            target = this.o.targets().find((x) => x.node === node) ?? target;
          }
        }
      }
      case "readCounter": {
        const key = counterOrDeletable(k, r);
        const inc0 = t.incarnation?.();
        const op = await h.record<Extract<Parameters<History["add"]>[0], { kind: "readCounter" }>>(
          { kind: "readCounter", process, node, key, value: null },
          async () => {
            const v = await getOrNull(t.client, key);
            return { value: v === null ? null : v.type === "pncounter" || v.type === "gcounter" ? v.value : null, ...servedBy(t, inc0) };
          },
          () => "failed",
        );
        return op.outcome === "ok";
      }
      case "set": {
        const key = registerOrDeletable(k, r);
        const value = `${process}-${++this.seq}`;
        const op = await h.record({ kind: "set", process, node, key, value }, async () => {
          await t.client.set(key, enc.encode(value));
          return {};
        }, classifyError);
        return op.outcome === "ok";
      }
      case "readLww": {
        const key = registerOrDeletable(k, r);
        const op = await h.record<Extract<Parameters<History["add"]>[0], { kind: "readLww" }>>(
          { kind: "readLww", process, node, key, value: null },
          async () => {
            const v = await getOrNull(t.client, key);
            return { value: v !== null && v.type === "lww" ? dec.decode(v.value) : null };
          },
          () => "failed",
        );
        return op.outcome === "ok";
      }
      case "mv": {
        const key = mvKey(Math.floor(r() * k.mvs));
        const startMs = h.now();
        let seen: ValueView | null;
        try {
          seen = await getOrNull(t.client, key);
        } catch {
          h.add({ kind: "readMv", process, node, key, values: [], outcome: "failed", startMs, endMs: h.now() });
          return false;
        }
        const values = seen !== null && seen.type === "mv" ? seen.values.map((v) => dec.decode(v)) : [];
        h.add({ kind: "readMv", process, node, key, values, outcome: "ok", startMs, endMs: h.now() });
        // No context to carry: the server takes a write without one as "replace all this node has seen",
        // which would replace values this client never read. prepare() makes the keys exist instead.
        if (seen === null || seen.type !== "mv") return true;
        const context = seen.context;
        const value = `${process}-${++this.seq}`;
        const op = await h.record({ kind: "setMv", process, node, key, value, observed: values }, async () => {
          await t.client.setMv(key, enc.encode(value), context);
          return {};
        }, classifyError);
        return op.outcome === "ok";
      }
      case "sadd": {
        if ((k.sets ?? 0) === 0) return true;
        const key = setKey(Math.floor(r() * (k.sets ?? 0)));
        const member = `m${Math.floor(r() * setMembersPool)}`;
        const requestId = newRequestId();
        const startMs = h.now();
        let target = t;
        for (let attempts = 1; ; attempts++) {
          try {
            await target.client.sadd(key, [enc.encode(member)], requestId);
            h.add({ kind: "sadd", process, node, key, member, outcome: "ok", startMs, endMs: h.now() });
            return true;
          } catch (err) {
            const outcome = classifyError(err);
            if (outcome === "failed" || attempts >= addAttemptsMax || !this.running) {
              h.add({ kind: "sadd", process, node, key, member, outcome, startMs, endMs: h.now() });
              return false;
            }
            await Bun.sleep(this.o.pauseAfterErrorMs);
            target = this.o.targets().find((x) => x.node === node) ?? target;
          }
        }
      }
      case "readSet":
      case "srem": {
        if ((k.sets ?? 0) === 0) return true;
        const key = setKey(Math.floor(r() * (k.sets ?? 0)));
        const inc0 = t.incarnation?.();
        const read = await h.record<Extract<Parameters<History["add"]>[0], { kind: "readSet" }>>(
          { kind: "readSet", process, node, key, members: [] },
          async () => ({ members: (await t.client.smembers(key)).map((m) => dec.decode(m)).sort(), ...servedBy(t, inc0) }),
          () => "failed",
        );
        if (read.outcome !== "ok" || kind === "readSet" || read.members.length === 0) return read.outcome === "ok";
        // An observed remove: of a member this process has just read.
        const member = read.members[Math.floor(r() * read.members.length)] as string;
        const requestId = newRequestId();
        const startMs = h.now();
        let target = t;
        for (let attempts = 1; ; attempts++) {
          try {
            await target.client.srem(key, [enc.encode(member)], requestId);
            h.add({ kind: "srem", process, node, key, member, outcome: "ok", startMs, endMs: h.now(), ...servedBy(target, inc0) });
            return true;
          } catch (err) {
            const outcome = classifyError(err);
            if (outcome === "failed" || attempts >= addAttemptsMax || !this.running) {
              h.add({ kind: "srem", process, node, key, member, outcome, startMs, endMs: h.now() });
              return false;
            }
            await Bun.sleep(this.o.pauseAfterErrorMs);
            target = this.o.targets().find((x) => x.node === node) ?? target;
          }
        }
      }
      case "del": {
        // A read, then the delete on the same node: when one process served both, the delete
        // removed at least what the read showed, which may then never show again (checkDeletes).
        const d = k.deletables ?? 0;
        if (d === 0) return true;
        const counter = r() < 0.5;
        const key = counter ? deletableCounterKey(Math.floor(r() * d)) : deletableRegisterKey(Math.floor(r() * d));
        const inc0 = t.incarnation?.();
        const startMs = h.now();
        let seen: ValueView | null;
        try {
          seen = await getOrNull(t.client, key);
        } catch {
          h.add(counter ? { kind: "readCounter", process, node, key, value: null, outcome: "failed", startMs, endMs: h.now() }
            : { kind: "readLww", process, node, key, value: null, outcome: "failed", startMs, endMs: h.now() });
          return false;
        }
        const readEnd = h.now();
        if (counter) {
          h.add({ kind: "readCounter", process, node, key, value: seen !== null && (seen.type === "pncounter" || seen.type === "gcounter") ? seen.value : null, outcome: "ok", startMs, endMs: readEnd, ...servedBy(t, inc0) });
        } else {
          h.add({ kind: "readLww", process, node, key, value: seen !== null && seen.type === "lww" ? dec.decode(seen.value) : null, outcome: "ok", startMs, endMs: readEnd, ...servedBy(t, inc0) });
        }
        const requestId = newRequestId();
        const delStart = h.now();
        let target = t;
        for (let attempts = 1; ; attempts++) {
          try {
            await target.client.delete(key, requestId);
            h.add({ kind: "del", process, node, key, outcome: "ok", startMs: delStart, endMs: h.now(), ...servedBy(target, inc0) });
            return true;
          } catch (err) {
            const outcome = classifyError(err);
            if (outcome === "failed" || attempts >= addAttemptsMax || !this.running) {
              h.add({ kind: "del", process, node, key, outcome, startMs: delStart, endMs: h.now() });
              return false;
            }
            await Bun.sleep(this.o.pauseAfterErrorMs);
            target = this.o.targets().find((x) => x.node === node) ?? target;
          }
        }
      }
    }
  }
}

/** Reads every key on every node (null/absent as the checkers expect). Throws if a node cannot answer. */
export async function finalReads(targets: readonly Target[], keys: KeySpace): Promise<FinalRead[]> {
  const ks = allKeys(keys);
  const out: FinalRead[] = [];
  for (const t of targets) {
    for (const key of ks.counters) {
      const v = await getOrNull(t.client, key);
      out.push({ node: t.node, key, counter: v !== null && (v.type === "pncounter" || v.type === "gcounter") ? v.value : null });
    }
    for (const key of ks.registers) {
      const v = await getOrNull(t.client, key);
      out.push({ node: t.node, key, lww: v !== null && v.type === "lww" ? dec.decode(v.value) : null });
    }
    for (const key of ks.mvs) {
      const v = await getOrNull(t.client, key);
      out.push({ node: t.node, key, mv: v !== null && v.type === "mv" ? v.values.map((x) => dec.decode(x)).sort() : [] });
    }
    for (const key of ks.sets) out.push({ node: t.node, key, set: (await t.client.smembers(key)).map((m) => dec.decode(m)).sort() });
  }
  return out;
}

function agree(finals: readonly FinalRead[]): boolean {
  const seen = new Map<string, string>();
  for (const f of finals) {
    const shape = JSON.stringify([f.counter === undefined ? undefined : String(f.counter), f.lww, f.mv, f.set]);
    const prev = seen.get(f.key);
    if (prev !== undefined && prev !== shape) return false;
    seen.set(f.key, shape);
  }
  return true;
}

/** Polls final reads until every node agrees on every key or the deadline passes; returns the last reads and the time taken. */
export async function awaitConvergence(targets: () => readonly Target[], keys: KeySpace, deadlineMs: number): Promise<{ finals: FinalRead[]; converged: boolean; ms: number }> {
  const t0 = performance.now();
  let finals: FinalRead[] = [];
  for (;;) {
    try {
      finals = await finalReads(targets(), keys);
      if (agree(finals)) return { finals, converged: true, ms: performance.now() - t0 };
    } catch {
      // a node not answering yet: try again until the deadline
    }
    if (performance.now() - t0 > deadlineMs) return { finals, converged: false, ms: performance.now() - t0 };
    await Bun.sleep(50);
  }
}

/** A small seeded generator (mulberry32) so a chaos run can be replayed in its choices. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
