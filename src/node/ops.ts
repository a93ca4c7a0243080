// Translation between the gRPC edge's typed ops/results and the engine's: one place decides
// which engine error becomes which gRPC status.
import type { EngineError, EngineOp, KeyValue } from "../engine/index.ts";
import type { ClientOp, OpError, ValueView } from "../transport/api.ts";

export function toEngineOp(op: Exclude<ClientOp, { kind: "get" }>): EngineOp {
  switch (op.kind) {
    case "increment":
      return op.counter === null ? { kind: "incr", key: op.key, amount: op.amount } : { kind: "incr", key: op.key, amount: op.amount, counter: op.counter };
    case "decrement":
      return { kind: "decr", key: op.key, amount: op.amount };
    case "set":
      return { kind: "set", key: op.key, value: op.value };
    case "setMv":
      return { kind: "setMv", key: op.key, value: op.value, context: op.context };
  }
}

/** WRONG_TYPE is the client asking for something the key's state forbids: FAILED_PRECONDITION. */
export function engineErrorToOp(e: EngineError): OpError {
  switch (e.code) {
    case "WRONG_TYPE":
      return { code: "FAILED_PRECONDITION", message: e.message };
    case "OUT_OF_RANGE":
      return { code: "OUT_OF_RANGE", message: e.message };
    case "INVALID":
      return { code: "INVALID_ARGUMENT", message: e.message };
  }
}

export function valueView(v: KeyValue): ValueView {
  switch (v.type) {
    case "gcounter":
    case "pncounter":
      return { type: v.type, value: v.value };
    case "lww":
      return { type: "lww", value: v.value };
    case "mv":
      return { type: "mv", values: v.values, context: v.context };
  }
}
