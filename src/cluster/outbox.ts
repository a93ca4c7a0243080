// Messages the state machines want sent, grouped per destination into bounded envelopes when drained.

import { assembleEnvelope, encodeMessageBytes, messagesPerEnvelopeMax, type Message, type UpdateMsg } from "./wire.ts";
import type { NodeId, Outbound } from "./types.ts";
import { peerEnvelopeTargetBytesMax } from "../limits.ts";

/** An envelope is closed once it holds this many bytes; a single bigger message goes alone. */
export const envelopeTargetBytesMax = peerEnvelopeTargetBytesMax;

interface Pending {
  to: NodeId | null;
  addr: string;
  bytes: Uint8Array;
  /** A failure-detector message: gets membership updates piggybacked. */
  swim: boolean;
  failureDetection: boolean;
  carriesState: boolean;
}

const swimKinds = new Set<Message["kind"]>(["ping", "ping-req", "ack", "nack"]);

/**
 * Kinds that carry no replica data: probes, membership gossip and push-pull. They travel in
 * envelopes of their own (see Outbound.failureDetection), so a ping never waits for a
 * megabyte of deltas sharing its envelope to be encoded, sent and decoded.
 */
export const failureDetectionKinds: ReadonlySet<Message["kind"]> = new Set<Message["kind"]>([
  "ping", "ping-req", "ack", "nack", "alive", "suspect", "dead", "left", "push-pull",
]);

const antiEntropyKinds = new Set<Message["kind"]>(["ae-tree", "ae-leaves", "ae-states", "ae-piece"]);

/**
 * Kinds that must wait for the local appends they could carry (see Outbound.carriesState).
 * A delta-ack promises the acknowledged deltas are stored here; ae-states carry whole key
 * states, which may include writes and merges not yet durable. A delta-batch carries only
 * deltas handed to Cluster.broadcastDelta, which must already be durable (the node broadcasts
 * after its WAL append resolved), so it need not wait. ae-tree and ae-leaves carry hashes and
 * digests, from which no peer can rebuild a value. A gc-probe carries records (states); a
 * gc-confirm promises the probed records are stored here, like a delta-ack.
 */
export const stateCarryingKinds: ReadonlySet<Message["kind"]> = new Set<Message["kind"]>(["delta-ack", "ae-states", "ae-piece", "gc-probe", "gc-confirm"]);

export class Outbox {
  private pending: Pending[] = [];
  /** Encoded bytes of anti-entropy messages queued so far (operators watch the repair cost). */
  antiEntropyBytesSent = 0;

  /** `bare`: no membership updates piggybacked (a message that must carry only itself). */
  send(to: NodeId | null, addr: string, msg: Message, bare = false): void {
    const bytes = encodeMessageBytes(msg);
    if (antiEntropyKinds.has(msg.kind)) this.antiEntropyBytesSent += bytes.length;
    this.pending.push({ to, addr, bytes, swim: !bare && swimKinds.has(msg.kind), failureDetection: failureDetectionKinds.has(msg.kind), carriesState: stateCarryingKinds.has(msg.kind) });
  }

  isEmpty(): boolean {
    return this.pending.length === 0;
  }

  /**
   * Groups pending messages per destination (in order) into envelopes, failure detection,
   * other data and state-carrying messages each apart, so that failure detection never waits
   * for (or rides with) anything bigger or held. Envelopes carrying a
   * failure-detector message also carry updates from `piggyback(destination)`.
   */
  drain(fromAddr: string, piggyback: () => UpdateMsg[]): Outbound[] {
    if (this.pending.length === 0) return [];
    const groups = new Map<string, Pending[]>();
    for (const p of this.pending) {
      const k = `${p.failureDetection ? "f" : p.carriesState ? "s" : "d"}${p.to ?? ""}\u0000${p.addr}`;
      const g = groups.get(k);
      if (g === undefined) groups.set(k, [p]);
      else g.push(p);
    }
    this.pending = [];
    const out: Outbound[] = [];
    for (const g of groups.values()) {
      const first = g[0] as Pending;
      let parts: Uint8Array[] = [];
      let bytes = 0;
      let swim = false;
      const flush = (): void => {
        if (parts.length === 0) return;
        if (swim) for (const u of piggyback()) parts.push(encodeMessageBytes(u));
        out.push({ to: first.to, addr: first.addr, payload: assembleEnvelope(fromAddr, parts), failureDetection: first.failureDetection, carriesState: first.carriesState });
        parts = [];
        bytes = 0;
        swim = false;
      };
      for (const p of g) {
        if (parts.length > 0 && (bytes + p.bytes.length > envelopeTargetBytesMax || parts.length >= messagesPerEnvelopeMax - 512)) flush();
        parts.push(p.bytes);
        bytes += p.bytes.length;
        swim ||= p.swim;
      }
      flush();
    }
    return out;
  }
}
