// Translation between the gRPC edge's typed ops/results and the engine's: one place decides
// which engine error becomes which gRPC status.
import type { EngineError, EngineOp, KeyValue, ManyOp, ManyResult, TypedValue } from "../engine/index.ts";
import type { ClientOp, OpError, OpOutcome, TypedView, ValueView } from "../transport/api.ts";

/** The encoding of an empty causal context. */
const emptyContext = new Uint8Array(0);

export function toEngineOp(op: Exclude<ClientOp, { kind: "get" }>): EngineOp {
  switch (op.kind) {
    case "increment":
      return op.counter === null ? { kind: "incr", key: op.key, amount: op.amount } : { kind: "incr", key: op.key, amount: op.amount, counter: op.counter };
    case "decrement":
      return { kind: "decr", key: op.key, amount: op.amount };
    case "set":
      return { kind: "set", key: op.key, value: op.value };
    case "setMv":
      // A write without a context has read nothing, so it replaces nothing: its value joins the
      // current ones as a sibling (as a blind write in Riak). Replacing "whatever this node has
      // seen" instead would drop concurrent acknowledged writes the client never read.
      return { kind: "setMv", key: op.key, value: op.value, context: op.context ?? emptyContext };
  }
}

/** WRONG_TYPE is the client asking for something the key's state forbids: FAILED_PRECONDITION. */
export function engineErrorToOp(e: EngineError): OpError {
  switch (e.code) {
    case "WRONG_TYPE":
    case "LIMIT_EXCEEDED":
      return { code: "FAILED_PRECONDITION", message: e.message };
    case "OUT_OF_RANGE":
      return { code: "OUT_OF_RANGE", message: e.message };
    case "INVALID":
      return { code: "INVALID_ARGUMENT", message: e.message };
  }
}

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;

/**
 * Concurrent increments on two nodes can merge to a sum outside int64. The wire type is int64,
 * so such a value is reported as OUT_OF_RANGE rather than wrapped or clamped (either would be a
 * wrong answer). Only a read can meet it: the engine refuses, before changing anything, every
 * incr/decr whose result would lie outside int64, so an applied op is never answered
 * OUT_OF_RANGE (which would invite a retry that counts it twice).
 */
export function counterOutOfRange(value: bigint): OpError | null {
  return value < int64Min || value > int64Max
    ? { code: "OUT_OF_RANGE", message: `the counter's value ${value} is outside int64 (concurrent increments on several nodes)` }
    : null;
}

export function valueView(v: KeyValue): ValueView {
  const main = typedView(v);
  if (v.conflicts === undefined) return main;
  // A conflict side's counter outside int64 cannot be sent as one: it is left out, not wrapped.
  const sides = v.conflicts.filter((c) => !((c.type === "gcounter" || c.type === "pncounter") && counterOutOfRange(c.value) !== null));
  return sides.length > 0 ? { ...main, conflicts: sides.map(typedView) } : main;
}

function typedView(v: TypedValue): TypedView {
  switch (v.type) {
    case "gcounter":
    case "pncounter":
      return { type: v.type, value: v.value };
    case "lww":
      return { type: "lww", value: v.value };
    case "mv":
      return { type: "mv", values: v.values, context: v.context };
    case "hash":
      // Placeholder until the client API serves hashes (issue 13 item 4, in progress).
      throw new Error("assertion failed: hash values are not served to clients yet");
  }
}

export function toManyOp(op: ClientOp): ManyOp {
  return op.kind === "get" ? op : toEngineOp(op);
}

const notFound: OpOutcome = { ok: false, error: { code: "NOT_FOUND", message: "key not found" } };

/** The client-facing outcome of one applyMany result for `op`. */
export function outcomeOf(op: ClientOp, r: ManyResult): OpOutcome {
  if (!r.ok) return { ok: false, error: engineErrorToOp(r.error) };
  const v = r.value;
  if (v === undefined) return notFound;
  if (v.type === "gcounter" || v.type === "pncounter") {
    const range = counterOutOfRange(v.value);
    if (range !== null) return { ok: false, error: range };
    if (op.kind !== "get") return { ok: true, result: { kind: "counter", value: v.value } };
  }
  if (op.kind === "get") return { ok: true, result: { kind: "value", value: valueView(v) } };
  return { ok: true, result: { kind: "written", context: v.type === "mv" ? v.context : null } };
}
