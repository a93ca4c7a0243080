// Found by a review of eviction (each failed before refusals were kept per stream epoch). An
// owner that refused a former owner's stray (an LWW stamp beyond hlcRemoteAheadMsMax) answers
// "no" - but it forgot the refusal when it saw that former owner revived (declared dead, then
// alive again: peerRevived -> strayForget), or when it restarted itself. The former owner, which
// saw neither, asked again, got "yes", and dropped the only copy of a write the owner never took.
import { expect, test } from "bun:test";
import { Placement } from "../../src/cluster/placement.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { EngineStore } from "../../src/sim/engine-store.ts";
import { Simulation } from "../../src/sim/sim.ts";

/** As ClusterHost's port: a refused merge is counted (refusals()), not thrown (the stream goes on). */
class HostLikeStore extends EngineStore {
  refused = 0;
  constructor(actor: string, private readonly clock: () => number, hs: readonly [number, number]) { super(actor, clock, hs); }
  override mergeDeltas(batch: readonly Uint8Array[]): void {
    for (const d of batch) if (!this.engine.mergeDelta(d, this.clock()).ok) this.refused++;
  }
  override mergeStates(entries: ReadonlyArray<readonly [string, Uint8Array]>): void {
    for (const [k, s] of entries) if (!this.engine.mergeState(k, s, this.clock()).ok) this.refused++;
  }
  refusals(): number { return this.refused; }
}

const skewMs = 11 * 60_000; // n0's clock runs ahead of the others' by more than the 10 min bound

/**
 * n0 writes a key (acknowledged) that moves to n3 when n3 joins; n3 refuses it (n0's clock is
 * ahead) and must keep answering no. Returns the simulation and whether node i holds the key.
 */
function refusedStray(): { sim: Simulation; has: (i: number) => boolean } {
  const sim = new Simulation({
    seed: 3, nodes: 4, config: { replicationFactor: 1, partitions: 64 }, counterInvariant: false, traceMessages: false,
    startStopped: [3],
    storeFactory: (actor, nowMs, hs) => new HostLikeStore(actor, actor.startsWith("n0") ? () => nowMs() + skewMs : nowMs, hs),
  });
  expect(sim.runUntilTrue(() => [0, 1, 2].every((i) => sim.view(i).filter((m) => m.status === "alive").length === 3), 120_000)).toBe(true);
  const ids = ["n0", "n1", "n2", "n3"].map(asNodeId);
  const cfg = { replicationFactor: 1, partitions: 64 };
  const before = new Placement(ids.slice(0, 3), cfg);
  const after = new Placement(ids, cfg);
  const key = Array.from({ length: 5000 }, (_, i) => `s${i}`).find((k) => before.ownersOfKey(k)[0] === "n0" && after.ownersOfKey(k)[0] === "n3")!;
  const st = sim.store(0) as HostLikeStore;
  const r = st.engine.apply({ kind: "set", key, value: new TextEncoder().encode("acknowledged") }, sim.nowMs + skewMs);
  expect(r.ok).toBe(true);
  const has = (i: number): boolean => (sim.store(i) as HostLikeStore).engine.get(key) !== undefined;
  sim.runFor(3_000);
  sim.restart(3);
  sim.runFor(20_000);
  expect(has(0)).toBe(true); // kept: n3 answers no (refusedFrom)
  return { sim, has };
}

test("RF 1: a refusal forgotten on one side's revival only", () => {
  const { sim, has } = refusedStray();
  // n0 pauses (GC, SIGSTOP, VM) long enough to be declared dead; it sees nobody die.
  sim.stall(0, 15_000);
  sim.runUntilTrue(() => sim.view(3).find((m) => m.id === "n0")?.status === "dead", sim.nowMs + 15_000);
  sim.runFor(30_000);
  expect([0, 1, 2, 3].some(has)).toBe(true);
}, 300_000);

test("RF 1: a refusal forgotten by an owner restart (rolling upgrade)", () => {
  const { sim, has } = refusedStray();
  // n3 restarts at once (a rolling upgrade): n0 does not see it die.
  sim.stop(3);
  sim.runFor(200);
  sim.restart(3);
  sim.runFor(30_000);
  expect([0, 1, 2, 3].some(has)).toBe(true);
}, 300_000);
