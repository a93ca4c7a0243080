// Node-to-node calls: one channel per peer address, mutual TLS, and the peer's node id checked against its certificate.
import * as grpc from "@grpc/grpc-js";
import { peerMessageBytesMax } from "./api.ts";
import { nodeMethods } from "./proto.ts";
import { opErrorCodes, type ClientOp, type HandOffEntry, type OpErrorCode, type OpOutcome, type ScanPage, type ScanQuery } from "./api.ts";
import { checkResultKind, decodeBatchResponse } from "./batch-codec.ts";
import { encodeBatchRequest, requestOpOf, RpcError, scanRequestWire } from "./client.ts";
import { uint64ToNumber } from "./proto.ts";

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();
import { peerChannelTls, type TlsMaterial } from "./tls.ts";

export const peerDeadlineMsDefault = 2000;
/** Open channels kept; beyond it the least recently used is closed (it reconnects on demand). */
export const peerChannelsMax = 1024;
/** Reconnect backoff to a peer that went away: short, so a restarted node is reachable again quickly. */
export const peerReconnectBackoffMsInitial = 100;
export const peerReconnectBackoffMsMax = 2000;

export interface PeerReply { fromId: string; payload: Uint8Array }

export interface PeerClientOptions {
  /** This node's id, sent as from_id (the server checks it against our certificate). */
  selfId: string;
  security: { tls: TlsMaterial } | { insecure: true };
  deadlineMs?: number;
}

export interface SendOptions {
  /** The node id the peer's certificate must carry; null/absent: any node certificate (e.g. a seed address). */
  expectedId?: string | null;
  deadlineMs?: number;
}

/** seen.id: the node id the last handshake authenticated. */
interface Channel { client: grpc.Client; seen: { id: string | null } }

export class PeerClient {
  private readonly channels = new Map<string, Channel>();
  private tls: TlsMaterial | null;
  private readonly deadlineMs: number;
  private closed = false;

  constructor(private readonly opts: PeerClientOptions) {
    this.tls = "tls" in opts.security ? opts.security.tls : null;
    this.deadlineMs = opts.deadlineMs ?? peerDeadlineMsDefault;
  }

  private channel(addr: string, expectedId: string | null): Channel {
    const key = `${addr}|${expectedId ?? ""}`;
    const found = this.channels.get(key);
    if (found !== undefined) {
      // Map order is insertion order: re-insert to mark as most recently used.
      this.channels.delete(key);
      this.channels.set(key, found);
      return found;
    }
    if (this.channels.size >= peerChannelsMax) {
      const oldest = this.channels.keys().next();
      if (oldest.done !== true) this.dropKey(oldest.value);
    }
    const options: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": peerMessageBytesMax,
      "grpc.max_send_message_length": peerMessageBytesMax,
      "grpc.initial_reconnect_backoff_ms": peerReconnectBackoffMsInitial,
      "grpc.max_reconnect_backoff_ms": peerReconnectBackoffMsMax,
      // Distinct channels per key even when grpc-js would otherwise share a subchannel.
      "grpc.use_local_subchannel_pool": 1,
    };
    const seen: { id: string | null } = { id: null };
    let client: grpc.Client;
    if (this.tls === null) {
      client = new grpc.Client(addr, grpc.credentials.createInsecure(), options);
    } else {
      const t = peerChannelTls(this.tls, expectedId, (id) => {
        seen.id = id;
      });
      client = new grpc.Client(addr, t.credentials, { ...options, ...t.options });
    }
    const ch: Channel = { client, seen };
    this.channels.set(key, ch);
    return ch;
  }

  /** One request/reply with a peer. Rejects with RpcError (UNAVAILABLE when unreachable or the wrong node). */
  send(addr: string, payload: Uint8Array, opts: SendOptions = {}): Promise<PeerReply> {
    if (this.closed) return Promise.reject(new RpcError(grpc.status.UNAVAILABLE, "peer client is closed"));
    const ch = this.channel(addr, opts.expectedId ?? null);
    const m = nodeMethods.Exchange;
    const deadline = Date.now() + (opts.deadlineMs ?? this.deadlineMs);
    return new Promise((resolve, reject) => {
      ch.client.makeUnaryRequest(m.path, (v) => m.req.encode(v), (b) => m.res.decode(b), { fromId: this.opts.selfId, payload }, { deadline }, (err, res) => {
        if (err) {
          reject(new RpcError(err.code, err.details));
          return;
        }
        const fromId = res?.fromId ?? "";
        // The reply must come from the node the handshake authenticated.
        if (this.tls !== null && fromId !== ch.seen.id) {
          reject(new RpcError(grpc.status.PERMISSION_DENIED, `reply claims node "${fromId}" but the certificate is "${ch.seen.id ?? "?"}"`));
          return;
        }
        resolve({ fromId, payload: res?.payload ?? new Uint8Array(0) });
      });
    });
  }

  /**
   * Forwards a client's ops to the node `expectedId` at `addr` (NodeService.Forward) and returns
   * its outcomes, one per op in order. Rejects with RpcError when the call fails (the ops may or
   * may not have been applied there: the client's request id, carried along, settles a retry).
   */
  forward(addr: string, expectedId: string, ops: readonly ClientOp[], requestId: Uint8Array | null, deadlineMs: number): Promise<OpOutcome[]> {
    if (this.closed) return Promise.reject(new RpcError(grpc.status.UNAVAILABLE, "peer client is closed"));
    const ch = this.channel(addr, expectedId);
    const m = nodeMethods.Forward;
    const batch = encodeBatchRequest(ops.map(requestOpOf), requestId ?? undefined);
    return new Promise((resolve, reject) => {
      ch.client.makeUnaryRequest(m.path, (v) => m.req.encode(v), (b) => m.res.decode(b), { fromId: this.opts.selfId, batch }, { deadline: Date.now() + deadlineMs }, (err, res) => {
        if (err) {
          reject(new RpcError(err.code, err.details));
          return;
        }
        try {
          const items = decodeBatchResponse(res ?? new Uint8Array(0));
          if (items.length !== ops.length) throw new Error(`${items.length} results for ${ops.length} ops`);
          resolve(items.map((it, i): OpOutcome => {
            if (!it.ok) {
              const code = (opErrorCodes as readonly string[]).includes(it.code) ? (it.code as OpErrorCode) : "INTERNAL";
              return { ok: false, error: { code, message: it.message } };
            }
            checkResultKind(ops[i]!, it.result);
            return { ok: true, result: it.result };
          }));
        } catch (e) {
          reject(new RpcError(grpc.status.INTERNAL, `node "${expectedId}" answered a forwarded request with something unreadable: ${e instanceof Error ? e.message : String(e)}`));
        }
      });
    });
  }

  /**
   * One page of a partitioned Scan from the node `expectedId` at `addr` (NodeService.ScanPart):
   * the keys it holds of the partitions set in `partitions` (segment and placementCheck travel
   * along for its logs). Rejects with RpcError.
   */
  scanPart(addr: string, expectedId: string, q: ScanQuery, segment: number, placementCheck: number, partitions: Uint8Array, deadlineMs: number): Promise<ScanPage> {
    if (this.closed) return Promise.reject(new RpcError(grpc.status.UNAVAILABLE, "peer client is closed"));
    const ch = this.channel(addr, expectedId);
    const m = nodeMethods.ScanPart;
    const scan = scanRequestWire(q);
    return new Promise((resolve, reject) => {
      ch.client.makeUnaryRequest(m.path, (v) => m.req.encode(v), (b) => m.res.decode(b), { fromId: this.opts.selfId, scan, segment, placementCheck, partitions }, { deadline: Date.now() + deadlineMs }, (err, res) => {
        if (err) {
          reject(new RpcError(err.code, err.details));
          return;
        }
        try {
          const keys = (res?.keys ?? []).map((k) => utf8Decoder.decode(k));
          const cursor = uint64ToNumber(res?.cursor);
          if (keys.length > q.limit || !Number.isSafeInteger(cursor)) throw new Error(`${keys.length} keys for a limit of ${q.limit}, cursor ${cursor}`);
          resolve({ keys, cursor });
        } catch (e) {
          reject(new RpcError(grpc.status.INTERNAL, `node "${expectedId}" answered a scan with something unreadable: ${e instanceof Error ? e.message : String(e)}`));
        }
      });
    });
  }

  /**
   * Hands states to the node `expectedId` at `addr` (NodeService.HandOff): resolves with the
   * whole states it merged once they are durable there; rejects with RpcError (FAILED_PRECONDITION:
   * read under a stamp the receiver's collection has passed, read them again).
   */
  handOff(addr: string, expectedId: string, entries: readonly HandOffEntry[], stamp: { epoch: number; confirms: number }, deadlineMs: number): Promise<number> {
    if (this.closed) return Promise.reject(new RpcError(grpc.status.UNAVAILABLE, "peer client is closed"));
    const ch = this.channel(addr, expectedId);
    const m = nodeMethods.HandOff;
    const req = {
      fromId: this.opts.selfId, stampEpoch: stamp.epoch, stampConfirms: stamp.confirms,
      entries: entries.map((e) => ({ key: utf8Encoder.encode(e.key), state: e.state, offset: e.offset, total: e.total })),
    };
    return new Promise((resolve, reject) => {
      ch.client.makeUnaryRequest(m.path, (v) => m.req.encode(v), (b) => m.res.decode(b), req, { deadline: Date.now() + deadlineMs }, (err, res) => {
        if (err) reject(new RpcError(err.code, err.details));
        else resolve(res?.merged ?? 0);
      });
    });
  }

  /** Close the channel(s) to an address (a peer declared dead or left). */
  drop(addr: string): void {
    for (const key of [...this.channels.keys()]) if (key.startsWith(`${addr}|`)) this.dropKey(key);
  }

  private dropKey(key: string): void {
    this.channels.get(key)?.client.close();
    this.channels.delete(key);
  }

  /** New material for new handshakes: every channel is closed and reopens with it on next use. */
  reloadTls(material: TlsMaterial): void {
    if (this.tls === null) throw new Error("peer client is insecure: nothing to reload");
    this.tls = material;
    for (const key of [...this.channels.keys()]) this.dropKey(key);
  }

  close(): void {
    this.closed = true;
    for (const key of [...this.channels.keys()]) this.dropKey(key);
  }
}
