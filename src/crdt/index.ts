// The CRDT core: pure delta-state values (counters, registers, sets) and their causality helpers.

export * from "./actors.ts";
export * from "./clocks.ts";
export * from "./deadline.ts";
export * from "./errors.ts";
export * from "./gcounter.ts";
export * from "./hlc.ts";
export * from "./int64.ts";
export * from "./lww.ts";
export * from "./mvregister.ts";
export * from "./orset.ts";
export * from "./ormap.ts";
export * from "./pncounter.ts";
