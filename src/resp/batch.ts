// Gathers the node calls that Redis-protocol commands make during one event-loop turn (every
// connection's pipeline, and every connection that was readable at once) into as few calls of
// the node's batch path as keep their meaning: one admission, one engine pass, one WAL append
// and one durability wait for all of them, instead of one each.
//
// Ops are applied in the order they were asked for, all of them in one synchronous step when
// the turn ends (or at once, by flush(), when a command reads the node another way). So a
// command sees every op asked for before it, as when each went to the node on its own.
import { batchOpsMax, clientMessageBytesMax, isRead, type ClientHandler, type ClientOp, type OpOutcome } from "../transport/api.ts";

/**
 * Most payload bytes (keys, values, members, fields) of the ops one batch carries: what one gRPC
 * Batch message may hold. Without it, many connections' big writes in one turn would make one
 * WAL append past walAppendBytesMax, which the WAL refuses after the engine applied them.
 */
export const batchPayloadBytesMax = clientMessageBytesMax;

/** An op's payload bytes, about as its request would carry them (the key counted in UTF-16 units, within 3x of its UTF-8). */
export function opPayloadBytes(op: ClientOp): number {
  let n = op.key.length;
  switch (op.kind) {
    case "set":
      return n + op.value.length;
    case "setMv":
      return n + op.value.length + (op.context?.length ?? 0);
    case "sadd":
    case "srem":
      for (const m of op.members) n += m.length;
      return n;
    case "sismember":
      return n + op.member.length;
    case "hset":
      for (const f of op.fields) n += f.field.length + f.value.length;
      return n;
    case "hdel":
    case "hmget":
      for (const f of op.fields) n += f.length;
      return n;
    case "hincrby":
    case "hget":
      return n + op.field.length;
    default:
      return n;
  }
}

/** Runs `fn` once the connections' input of this event-loop turn has been read (the node: setImmediate). */
export type TurnScheduler = (fn: () => void) => void;

interface Waiting {
  op: ClientOp;
  done(o: OpOutcome): void;
  fail(err: unknown): void;
}

/**
 * An op the node may refuse as a whole request (a TTL reaching past the latest deadline, checked
 * as the write path turns it into a deadline): sent on its own, so its refusal is its own.
 */
function goesAlone(op: ClientOp): boolean {
  switch (op.kind) {
    case "set":
    case "setMv":
      return op.ttlMs !== undefined;
    case "expire":
      return op.ttlMs !== null;
    default:
      return false;
  }
}

export class OpBatcher {
  /**
   * Ops asked for since the last flush. Bounded by what the connections may have outstanding:
   * respPendingCommandsMax commands each (a multi-key command at most its arguments' worth).
   */
  private queue: Waiting[] = [];
  private scheduled = false;

  /**
   * onCallbackError: an applyThen callback threw (a bug in a command): reported, and the other
   * ops of its batch are still answered.
   */
  constructor(
    private readonly client: Pick<ClientHandler, "apply" | "batch">,
    private readonly schedule: TurnScheduler,
    private readonly onCallbackError: (err: unknown) => void = () => undefined,
  ) {}

  /** One op, answered with its own outcome (or the failure of the node call that carried it). */
  apply(op: ClientOp): Promise<OpOutcome> {
    return new Promise<OpOutcome>((done, fail) => this.push({ op, done, fail }));
  }

  /** As apply, through callbacks (the hot commands' path: no promise per op). */
  applyThen(op: ClientOp, done: (o: OpOutcome) => void, fail: (err: unknown) => void): void {
    this.push({ op, done, fail });
  }

  /** Ops in order, applied one after another with nothing between them; one outcome each. */
  applyAll(ops: readonly ClientOp[]): Promise<OpOutcome[]> {
    if (ops.length === 0) return Promise.resolve([]);
    return new Promise<OpOutcome[]>((done, fail) => {
      const out = new Array<OpOutcome>(ops.length);
      let left = ops.length;
      let failed = false;
      for (let k = 0; k < ops.length; k++) {
        this.push({
          op: ops[k] as ClientOp,
          done: (o) => {
            out[k] = o;
            if (--left === 0 && !failed) done(out);
          },
          fail: (err) => {
            if (failed) return;
            failed = true;
            fail(err);
          },
        });
      }
    });
  }

  private push(w: Waiting): void {
    this.queue.push(w);
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => this.flush());
  }

  /**
   * Sends every op waiting now, in order: runs of reads or of writes of at most batchOpsMax ops
   * and batchPayloadBytesMax bytes as one batch each (a read and a write never share one: a
   * write refused as a whole, e.g. on a replica that takes no writes yet, must not take a read
   * with it), an op that goesAlone on its own. All are issued in this one synchronous step, so
   * they apply back to back.
   */
  flush(): void {
    this.scheduled = false;
    const q = this.queue;
    if (q.length === 0) return;
    this.queue = [];
    let from = 0;
    while (from < q.length) {
      const first = (q[from] as Waiting).op;
      let to = from + 1;
      if (!goesAlone(first)) {
        const read = isRead(first);
        let bytes = opPayloadBytes(first);
        while (to < q.length && to - from < batchOpsMax) {
          const op = (q[to] as Waiting).op;
          if (goesAlone(op) || isRead(op) !== read) break;
          bytes += opPayloadBytes(op);
          if (bytes > batchPayloadBytesMax) break;
          to++;
        }
      }
      this.send(q, from, to);
      from = to;
    }
  }

  /** Hands one waiter its outcome; a callback that throws is reported, not let through to the others. */
  private answer(w: Waiting, o: OpOutcome): void {
    try {
      w.done(o);
    } catch (err) {
      this.onCallbackError(err);
    }
  }

  private refuse(w: Waiting, err: unknown): void {
    try {
      w.fail(err);
    } catch (e) {
      this.onCallbackError(e);
    }
  }

  private send(q: readonly Waiting[], from: number, to: number): void {
    if (to - from === 1) {
      const w = q[from] as Waiting;
      let r: OpOutcome | Promise<OpOutcome>;
      try {
        r = this.client.apply(w.op, null);
      } catch (err) {
        this.refuse(w, err);
        return;
      }
      if (r instanceof Promise) r.then((o) => this.answer(w, o), (err: unknown) => this.refuse(w, err));
      else this.answer(w, r);
      return;
    }
    const ops = new Array<ClientOp>(to - from);
    for (let k = from; k < to; k++) ops[k - from] = (q[k] as Waiting).op;
    const settle = (outs: OpOutcome[]): void => {
      for (let k = from; k < to; k++) {
        const o = outs[k - from];
        if (o === undefined) this.refuse(q[k] as Waiting, new Error("assertion failed: a batch answered fewer outcomes than ops"));
        else this.answer(q[k] as Waiting, o);
      }
    };
    const failAll = (err: unknown): void => {
      for (let k = from; k < to; k++) this.refuse(q[k] as Waiting, err);
    };
    let r: OpOutcome[] | Promise<OpOutcome[]>;
    try {
      r = this.client.batch(ops, null);
    } catch (err) {
      failAll(err);
      return;
    }
    if (r instanceof Promise) r.then(settle, failAll);
    else settle(r);
  }
}
