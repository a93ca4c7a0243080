// The record of a chaos run: every operation a client attempted, on which node, with its outcome
// (ok, failed, indeterminate) and its start and end times, so checkers can judge it afterwards.

/** ok: the server acknowledged it; failed: it certainly did not happen; indeterminate: it may have. */
export type Outcome = "ok" | "failed" | "indeterminate";

interface Common {
  /** The client (worker) that issued it; one op at a time per process. */
  process: string;
  /** The node the client talked to. */
  node: string;
  /**
   * The node process that served the op, when certain (the same process was up from start to end);
   * absent when unknown. A process's state only grows; one that restarts may lose what it showed
   * but never acknowledged.
   */
  incarnation?: number;
  key: string;
  outcome: Outcome;
  /** Monotonic ms (performance.now in real runs; any numbers in hand-made histories). */
  startMs: number;
  endMs: number;
}

export type Op =
  /** amount < 0 is a decrement. attempts: sends with one request id (a retry is applied at most once). */
  | (Common & { kind: "add"; amount: bigint; attempts?: number })
  /** value null: the key did not exist (NOT_FOUND), i.e. 0. */
  | (Common & { kind: "readCounter"; value: bigint | null })
  /** Every written value is unique in a run, so a read names the write it saw. */
  | (Common & { kind: "set"; value: string })
  | (Common & { kind: "readLww"; value: string | null })
  /** observed: the values of the read whose context this write carried (what it replaces). */
  | (Common & { kind: "setMv"; value: string; observed: readonly string[] })
  | (Common & { kind: "readMv"; values: readonly string[] })
  /** A delete (of a deletable counter or register), issued right after a read of the key on the same node. */
  | (Common & { kind: "del" })
  /** Set ops: one member per add or remove; a remove takes a member its process had just read. */
  | (Common & { kind: "sadd"; member: string })
  | (Common & { kind: "srem"; member: string })
  | (Common & { kind: "readSet"; members: readonly string[] })
  /**
   * Expiry ops on the TTL keys (expiry-workload.ts). ttlMs is relative: the node that takes it
   * turns it into a deadline on its own (possibly skewed) clock. applied: the answer's `set` /
   * `cleared` (absent unless ok).
   */
  | (Common & { kind: "expire"; ttlMs: number; applied?: boolean })
  | (Common & { kind: "persist"; applied?: boolean })
  /** One Batch [SMembers, Ttl] of a TTL key: both answers from one state at one clock reading. */
  | (Common & { kind: "readTtl"; members: readonly string[]; ttlMs: number });

export type OpKind = Op["kind"];

/** An op before it ran: Omit applied to each member of the union. */
export type PendingOp<T extends Op = Op> = T extends Op ? Omit<T, "outcome" | "startMs" | "endMs"> : never;

/** Ops recorded per run; beyond it a workload stops issuing (a checker's cost grows with it). */
export const historyOpsMax = 2_000_000;

/** Final reads per node after heal, by key: what convergence checks compare. */
export interface FinalRead {
  node: string;
  key: string;
  counter?: bigint | null;
  lww?: string | null;
  mv?: readonly string[];
  set?: readonly string[];
}

/** Final read of a TTL key on one node: its members and its Ttl answer (-2 missing, -1 none, else ms left), from one Batch. */
export interface TtlFinal {
  node: string;
  key: string;
  members: readonly string[];
  ttlMs: number;
}

export class History {
  readonly ops: Op[] = [];
  constructor(private readonly clockMs: () => number = () => performance.now()) {}

  now(): number {
    return this.clockMs();
  }

  get full(): boolean {
    return this.ops.length >= historyOpsMax;
  }

  add(op: Op): void {
    if (this.full) throw new Error(`history holds ${historyOpsMax} ops already`);
    this.ops.push(op);
  }

  /** Runs one op and records it: `run` returns the observed fields; `classify` turns an error into an outcome. */
  async record<T extends Op>(base: PendingOp<T>, run: () => Promise<Partial<T>>, classify: (err: unknown) => Outcome): Promise<T> {
    const startMs = this.now();
    let op: T;
    // base carries every field of its kind; the spread adds the observed ones and the outcome, so the result is a T.
    try {
      const seen = await run();
      op = { ...base, ...seen, outcome: "ok", startMs, endMs: this.now() } as unknown as T;
    } catch (err) {
      op = { ...base, outcome: classify(err), startMs, endMs: this.now() } as unknown as T;
    }
    this.add(op);
    return op;
  }

  counts(): Record<Outcome, number> {
    const c: Record<Outcome, number> = { ok: 0, failed: 0, indeterminate: 0 };
    for (const op of this.ops) c[op.outcome] += 1;
    return c;
  }
}
