// Protobuf encodings of CRDT states and the versioned per-key envelopes (proto/crdt.proto).

export * from "./context.ts";
export * from "./envelope.ts";
export * from "./errors.ts";
export * from "./states.ts";
export * from "./wire.ts";
