// Every size bound of the product, defined once, so that what a client may write, what a merge
// may produce, and what the WAL, snapshots and the peer wire accept cannot drift apart.
//
// Pure (no node:, no bun): crdt, codec, engine and cluster import it. Each bound says why it has
// its value and where it is checked. The rule that ties them together:
//
//   a local write is refused unless the key's state after it is within the WRITE bounds;
//   a merge (remote delta, anti-entropy state) is refused unless the result is within the
//   STORED bounds, which are mergeHeadroom times the write bounds;
//   every decoder (WAL replay, snapshot load, peer wire) accepts everything within the STORED
//   bounds, and anti-entropy ships a stored state of any size (in pieces above one message).
//
// So every state a replica holds can be snapshotted, recovered and shipped. The stored bounds
// are reached only by merging concurrent writes made on many replicas that could not see each
// other (each within the write bounds): mergeHeadroom such replicas all at the bound at once.

// ---- client edge (src/transport/validate.ts; the engine checks again) ----

/** Longest key, UTF-8 bytes. Checked at the gRPC edge (INVALID_ARGUMENT) and by the engine and every decoder. */
export const keyBytesMax = 1024;
/** Largest register value (LWW or one MV sibling). Edge: RESOURCE_EXHAUSTED; crdt write: INVALID. */
export const registerValueBytesMax = 1024 * 1024;
/**
 * Largest MV context a client may send with a Set (edge: RESOURCE_EXHAUSTED). A context read
 * from this database is bounded by the key's state; 64 KiB is about 2000 dots of 30-byte actors.
 */
export const mvContextBytesMax = 64 * 1024;
/** Ops in one Batch request (edge: RESOURCE_EXHAUSTED). */
export const batchOpsMax = 1000;
/** Largest client request message (grpc-js answers RESOURCE_EXHAUSTED): one maximal value plus a context, with room. */
export const clientMessageBytesMax = 4 * 1024 * 1024;

// ---- actors (src/crdt/actors.ts) ----

/** Longest actor id, UTF-8 bytes (node ids; checked when interned and by the decoders). */
export const actorIdBytesMax = 255;
/** Most distinct actor ids one process interns (checked by the interner). */
export const actorsMax = 1 << 20;
/** Largest encoded counter row or dot: actor id plus varints and tags. */
export const rowBytesMax = actorIdBytesMax + 64;

// ---- one key's state: write bounds (checked by the engine before a local write changes anything) ----

/**
 * Most MV siblings a local write may leave (src/crdt/mvregister.ts write(): FAILED_PRECONDITION
 * through the engine). Siblings pile up only when clients write with stale contexts; a writer
 * that passes the context it read replaces them. Riak warns at 25 siblings; 1024 leaves room
 * for genuinely concurrent writers and is what the decoder accepted before this bound existed.
 */
export const mvSiblingsWriteMax = 1024;
/**
 * Largest encoded state (the CRDT state message, without key) a local write may leave
 * (src/engine/bounds.ts: FAILED_PRECONDITION). A local write's delta is part of the state
 * after it (or a value plus the client's context), so it is bounded by this too. 4 MiB: a few
 * maximal values as siblings; a WAL record and a delta on the peer wire carry it whole.
 */
export const keyStateWriteBytesMax = 4 * 1024 * 1024;
/**
 * Longest OR-Set member, bytes (edge: RESOURCE_EXHAUSTED; crdt add: INVALID; decoder). A member
 * is an identifier (a tag, a user id, a token), not a document: 64 KiB is generous, and keeps
 * a set of many members from being a few giant ones.
 */
export const setMemberBytesMax = 64 * 1024;
/**
 * Most members a local write may leave in one OR-Set (src/engine/bounds.ts: FAILED_PRECONDITION),
 * and most members one SAdd/SRem may name (edge: RESOURCE_EXHAUSTED). The byte bound above is
 * usually reached first (a member with its dot is ~30 bytes and more).
 */
export const setMembersWriteMax = 100_000;
/** MV context entries (version-vector actors, cloud dots) a local write may leave (src/engine/bounds.ts). */
export const contextActorsWriteMax = 4096;
export const contextCloudDotsWriteMax = 4096;

// ---- hashes (src/crdt/ormap.ts; a field name is bytes, like a key but binary) ----

/**
 * Longest hash field name, bytes (crdt write: INVALID; decoder). Field names are identifiers,
 * usually short; 4 KiB leaves room for URLs and composite names while a field row stays small.
 */
export const hashFieldBytesMax = 4096;
/**
 * Most field records a hash may hold after a local write (src/crdt/ormap.ts: LIMIT_EXCEEDED,
 * nothing changed). Counted are all records, including a deleted counter field's leftover
 * reset rows (they cost memory and bytes until collected). Every write and merge walks the
 * fields, so this also bounds one write's cost; a hash of small fields meets the state byte
 * bound at about this many fields anyway.
 */
export const hashFieldsWriteMax = 64 * 1024;

// ---- one key's state: stored bounds (merges refuse beyond; every decoder accepts up to) ----

/**
 * How many replicas, each writing up to the write bounds without seeing the others, a merged
 * state can take in before a merge is refused. A refused merge changes nothing, is logged, and
 * is retried by anti-entropy; it does not happen unless 16 partitioned writers each push one
 * key to the write bound.
 */
export const mergeHeadroom = 16;
/** Most MV siblings a stored state may hold (decoder: src/codec/states.ts; merges: src/engine/bounds.ts). */
export const mvSiblingsMax = mergeHeadroom * mvSiblingsWriteMax;
/** Most members a stored OR-Set may hold (decoder: src/codec/states.ts; merges: src/engine/bounds.ts). */
export const setMembersMax = mergeHeadroom * setMembersWriteMax;
/** Largest encoded state (without key) a replica stores (decoders, merges, snapshot entries, WAL records). */
export const keyStateBytesMax = mergeHeadroom * keyStateWriteBytesMax;
/** Most version-vector entries / cloud dots in a stored causal context (decoder and merges). */
export const contextActorsMax = mergeHeadroom * contextActorsWriteMax;
export const contextCloudDotsMax = mergeHeadroom * contextCloudDotsWriteMax;
/** Most field records a stored hash may hold (decoder: src/codec/states.ts; merges: src/engine/bounds.ts). */
export const hashFieldsMax = mergeHeadroom * hashFieldsWriteMax;
/**
 * Most concurrent values (siblings) one hash field may hold. A local HSET replaces every value
 * of the field it has seen, so it leaves exactly one; siblings come only from replicas writing
 * the same field without seeing each other, at most one each, so the MV write bound is ample.
 */
export const hashFieldSiblingsMax = mvSiblingsWriteMax;
/**
 * Most rows of a stored counter. Rows are replicas that incremented (node ids, never chosen by
 * a client), so the interner's own bound is the only one that holds for any merge; the byte
 * bound above applies as well.
 */
export const counterActorsMax = actorsMax;
/**
 * Most reset rows of a stored counter (what deletes observed, src/crdt/gcounter.ts): at most
 * one per actor that ever incremented, so the interner's bound again. Checked apart from the
 * count rows (a counter deleted after every actor counted holds both, one row each per actor).
 */
export const counterResetRowsMax = actorsMax;

/**
 * Largest client response, which the client library accepts too: a Get of the largest stored
 * state (its values and context) with room. A Batch of big Gets beyond it is RESOURCE_EXHAUSTED.
 */
export const clientResponseBytesMax = 64 * 1024 * 1024 + 2 * 1024 * 1024;

/**
 * Most typed states one key holds: one per CRDT type (a type conflict keeps every side, see
 * src/engine/typed.ts), so at least the number of registered kinds (test/crdt/laws.test.ts
 * checks): G-Counter, PN-Counter, LWW, MV, set (wire 5), hash (wire 6), and the key's deadline
 * (wire 7, src/crdt/deadline.ts; never a type of its own). The states of all sides together stay
 * within keyStateBytesMax.
 */
export const keyTypesMax = 7;
/**
 * Most collected keys a node remembers (src/cluster/gc.ts) together with the record it collected
 * (src/engine: a write of such a key continues from that record, so it never reissues a dot or a
 * count a member that has not collected the record yet still holds as removed).
 */
export const collectedRememberedMax = 500_000;
/**
 * Latest deadline a key may carry, Unix ms: the hybrid clock's range (2^48 - 1 ms, the year
 * 10889). An expire past it is refused, as Redis refuses one that overflows ("invalid expire time").
 */
export const expiryDeadlineMsMax = 2 ** 48 - 1;
/**
 * Bytes a KeyState / KeyDelta envelope adds to its states: version, key and tags, and per typed
 * side its type, creation stamp and framing.
 */
export const envelopeOverheadBytesMax = keyBytesMax + 32 + keyTypesMax * 32;
/** Largest local delta envelope (a WAL record of a local write; a delta on the peer wire). */
export const keyDeltaBytesMax = keyStateWriteBytesMax + envelopeOverheadBytesMax;
/** Largest stored KeyState envelope (snapshot entry value; anti-entropy transfer; WAL record of a merged state). */
export const keyEnvelopeBytesMax = keyStateBytesMax + envelopeOverheadBytesMax;

// ---- WAL and snapshots (src/persist) ----

/**
 * Largest WAL record payload (u64 LSN + a KeyDelta or KeyState envelope): a merged remote
 * state is logged whole, so it must hold the largest stored state. Checked on append
 * (src/persist/wal.ts) and before any allocation on replay (src/persist/scan.ts).
 */
export const walRecordBytesMax = 8 + keyEnvelopeBytesMax;
/** Most payload bytes one WAL append() call may carry (src/persist/wal.ts): at least two maximal records. */
export const walAppendBytesMax = 2 * walRecordBytesMax + 1024 * 1024;
/** Longest snapshot key, UTF-8 bytes (the API allows keyBytesMax; internal keys get headroom). */
export const snapshotKeyBytesMax = 4096;
/** Largest snapshot entry value: one key's KeyState envelope (src/persist/snapshot.ts, writer and reader). */
export const snapshotValueBytesMax = keyEnvelopeBytesMax;

// ---- peer wire (src/cluster/wire.ts, src/cluster/outbox.ts, src/transport) ----

/**
 * A state larger than this is shipped by anti-entropy in pieces of at most this many bytes
 * (ae-piece), and is the most one ae-states entry may carry: a big key never holds up an
 * envelope, and the receiver reassembles it (src/cluster/antientropy.ts).
 */
export const aePieceBytesMax = 1024 * 1024;
/** Largest delta on the peer wire (delta-batch entries; src/cluster/wire.ts decoder): any local delta. */
export const peerDeltaBytesMax = keyDeltaBytesMax;
/** An outgoing envelope is closed once it holds this many bytes; a single bigger message goes alone (src/cluster/outbox.ts). */
export const peerEnvelopeTargetBytesMax = 4 * 1024 * 1024;
/**
 * Largest cluster envelope the decoder accepts (src/cluster/wire.ts): a full envelope plus the
 * largest single message (a delta-batch with one maximal delta) plus piggybacked membership
 * updates (src/cluster/config.ts bounds those, and the chunk and batch sizes, to fit).
 */
export const peerEnvelopeBytesMax = peerEnvelopeTargetBytesMax + peerDeltaBytesMax + 64 * 1024;
/** Largest NodeService message either way (grpc-js limit; src/transport/server.ts, peer-client.ts): one envelope, with room. */
export const peerMessageBytesMax = 16 * 1024 * 1024;
/**
 * Bytes of key states in one anti-entropy reply before the rest waits for the next round
 * (src/cluster/antientropy.ts); a reply always carries at least one state above
 * aePieceBytesMax when there is one, so a big key is never starved by small ones.
 */
export const aeReplyBytesMax = 8 * 1024 * 1024;
/**
 * Bytes of partly received anti-entropy transfers one node holds, from all peers together
 * (src/cluster/antientropy.ts); the oldest is dropped beyond it and sent again by a later round.
 */
export const aeReassemblyBytesMax = 2 * keyEnvelopeBytesMax;

// ---- Redis protocol front door (src/resp/codec.ts parses, src/resp/server.ts enforces) ----
// Exceeding a protocol bound answers "-ERR Protocol error: ..." and closes that connection only,
// as Redis does; the command's own checks (the bounds above) apply to what does parse.

/**
 * Longest bulk string in a request (Redis: proto-max-bulk-len, 512 MB). Ours is the client
 * message bound: a maximal value (registerValueBytesMax) four times over, so a value just above
 * the value bound still parses and gets the command's clear "too large" error, while a client
 * cannot make the node buffer half a gigabyte for one argument.
 */
export const respBulkBytesMax = clientMessageBytesMax;
/**
 * Most arguments in one request (Redis: the multibulk length, up to INT_MAX). Enough for the
 * largest writes we accept: HSET of hashFieldsWriteMax fields (2 args each), SADD of
 * setMembersWriteMax members, MSET of a batch's worth of keys.
 */
export const respArgsMax = 256 * 1024;
/** Longest inline request line and longest count line (Redis: PROTO_INLINE_MAX_SIZE, 64 KiB). */
export const respInlineBytesMax = 64 * 1024;
/**
 * Unparsed input one connection may hold, including the part of the command being received
 * (Redis: client-query-buffer-limit, 1 GiB). Input is parsed as it arrives and is held only
 * while the client pipelines faster than its replies are read (see respReplyBufferBytesMax), so
 * this need only hold a few maximal commands: eight client messages' worth.
 */
export const respQueryBytesMax = 8 * clientMessageBytesMax;
/**
 * Encoded replies not yet taken by the client's socket above which the connection stops
 * dispatching commands and stops reading (backpressure; resumed on drain). One reply may
 * overshoot it once, so a connection's output is bounded by this plus its largest reply.
 */
export const respReplyBufferBytesMax = 1024 * 1024;
/**
 * Commands dispatched on one connection and not yet answered (waiting for the WAL, say) above
 * which the connection stops dispatching and reading until some are answered. Replies go out in
 * request order, so this bounds the per-connection FIFO of pending replies; 1024 is far deeper
 * than client pipelines (redis-benchmark -P 16, ioredis auto-pipelining) need for full speed.
 */
export const respPendingCommandsMax = 1024;

// These relations are what the module promises; a change that breaks one fails at load time.
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`limits: ${what}`);
}
check(registerValueBytesMax + mvContextBytesMax + rowBytesMax < keyStateWriteBytesMax, "a maximal MV write fits the write bound");
check(clientMessageBytesMax >= registerValueBytesMax + mvContextBytesMax + keyBytesMax + 1024, "a maximal Set fits a request");
check(peerEnvelopeBytesMax <= peerMessageBytesMax, "a cluster envelope fits a peer message");
check(aePieceBytesMax + envelopeOverheadBytesMax + 64 <= peerEnvelopeTargetBytesMax, "an anti-entropy piece fits an envelope");
check(walAppendBytesMax >= walRecordBytesMax, "a maximal WAL record fits one append");
check(clientResponseBytesMax >= keyEnvelopeBytesMax + 64 * 1024, "a Get of the largest stored state fits a response");
check(respArgsMax >= 2 * hashFieldsWriteMax + 2 && respArgsMax >= setMembersWriteMax + 2 && respArgsMax >= 2 * batchOpsMax + 1, "the largest HSET, SADD and MSET fit one RESP request");
check(respBulkBytesMax > registerValueBytesMax && respBulkBytesMax > setMemberBytesMax && respBulkBytesMax > keyBytesMax, "a RESP argument just over any value bound still parses (and gets the command's error)");
check(respQueryBytesMax >= 2 * (respBulkBytesMax + respInlineBytesMax), "a connection's input holds two maximal arguments");
