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
}

const swimKinds = new Set<Message["kind"]>(["ping", "ping-req", "ack", "nack"]);

const antiEntropyKinds = new Set<Message["kind"]>(["ae-tree", "ae-leaves", "ae-states", "ae-piece"]);

export class Outbox {
  private pending: Pending[] = [];
  /** Encoded bytes of anti-entropy messages queued so far (operators watch the repair cost). */
  antiEntropyBytesSent = 0;

  send(to: NodeId | null, addr: string, msg: Message): void {
    const bytes = encodeMessageBytes(msg);
    if (antiEntropyKinds.has(msg.kind)) this.antiEntropyBytesSent += bytes.length;
    this.pending.push({ to, addr, bytes, swim: swimKinds.has(msg.kind) });
  }

  isEmpty(): boolean {
    return this.pending.length === 0;
  }

  /**
   * Groups pending messages per destination (in order) into envelopes. Envelopes carrying
   * a failure-detector message also carry updates from `piggyback(destination)`.
   */
  drain(fromAddr: string, piggyback: () => UpdateMsg[]): Outbound[] {
    if (this.pending.length === 0) return [];
    const groups = new Map<string, Pending[]>();
    for (const p of this.pending) {
      const k = `${p.to ?? ""}\u0000${p.addr}`;
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
        out.push({ to: first.to, addr: first.addr, payload: assembleEnvelope(fromAddr, parts) });
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
