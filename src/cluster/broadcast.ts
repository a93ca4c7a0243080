// The queue of membership updates waiting to be piggybacked: fewest-sent first, each sent a bounded number of times.

import { encodedMessageBytes, type UpdateMsg } from "./wire.ts";

interface Item {
  msg: UpdateMsg;
  bytes: number;
  transmits: number;
  /** Insertion order, to break ties: newer first among equally-sent items. */
  order: number;
}

/**
 * memberlist's TransmitLimitedQueue. A newer update about a member replaces any older one
 * (only the latest state of a member is worth spreading). `take` hands out the least-sent
 * updates that fit a byte budget and retires each after `limit` transmissions.
 */
export class BroadcastQueue {
  private readonly items = new Map<string, Item>();
  private order = 0;

  constructor(private readonly queueMax: number) {}

  /** Queues an update, replacing the pending update about the same member. */
  push(msg: UpdateMsg): void {
    this.items.set(msg.id, { msg, bytes: encodedMessageBytes(msg), transmits: 0, order: this.order++ });
    if (this.items.size > this.queueMax) this.dropMostSent();
  }

  size(): number {
    return this.items.size;
  }

  /**
   * Updates to piggyback, least-sent first, at most `bytesMax` bytes in total (one update
   * larger than the budget is never taken). `limit` is the retransmit limit for the
   * current cluster size.
   */
  take(bytesMax: number, limit: number): UpdateMsg[] {
    if (this.items.size === 0) return [];
    const sorted = [...this.items.values()].sort((a, b) => a.transmits - b.transmits || b.order - a.order);
    const out: UpdateMsg[] = [];
    let used = 0;
    for (const it of sorted) {
      if (used + it.bytes > bytesMax) continue;
      used += it.bytes;
      out.push(it.msg);
      it.transmits++;
      if (it.transmits >= limit) this.items.delete(it.msg.id);
    }
    return out;
  }

  private dropMostSent(): void {
    let worst: Item | undefined;
    for (const it of this.items.values()) {
      if (worst === undefined || it.transmits > worst.transmits || (it.transmits === worst.transmits && it.order < worst.order)) worst = it;
    }
    if (worst !== undefined) this.items.delete(worst.msg.id);
  }
}

/** memberlist's retransmitLimit: retransmitMult * ceil(log10(N + 1)). */
export function retransmitLimit(retransmitMult: number, liveNodes: number): number {
  return retransmitMult * Math.ceil(Math.log10(liveNodes + 1));
}
