// Helpers the engine tests that replay one key across replicas share: apply an op and get its
// deltas, merge deltas, and read key "k" as text.
import type { Engine, ManyOp } from "../../src/engine/index.ts";

export const T = 1_700_000_000_000;
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Applies one op (it must be taken) and returns its deltas. */
export function run(e: Engine, op: ManyOp, nowMs: number): Uint8Array[] {
  const r = e.applyMany([op], nowMs);
  for (const x of r.results) if (!x.ok) throw new Error(`op refused: ${x.error.message}`);
  return r.deltas;
}

/** Merges deltas (each must be taken). */
export function merge(e: Engine, deltas: readonly Uint8Array[], nowMs: number): void {
  for (const d of deltas) {
    const r = e.mergeDelta(d, nowMs);
    if (!r.ok) throw new Error(`merge refused: ${r.error.message}`);
  }
}

/** What a read of "k" shows, as text: a set's members, a register's value, a counter's value, a hash's fields. */
export function show(e: Engine, nowMs: number): string {
  const v = e.get("k", nowMs);
  if (v === undefined) return "(absent)";
  switch (v.type) {
    case "set":
      return v.members.map(text).sort().join(",");
    case "lww":
      return text(v.value);
    case "mv":
      return v.values.map(text).sort().join(",");
    case "gcounter":
    case "pncounter":
      return String(v.value);
    case "hash":
      return v.fields.map((f) => `${text(f.field)}=${text(f.value)}`).sort().join(",");
  }
  return "(unknown type)";
}
