// The cluster layer's shared vocabulary: ids, the injected Env, member states, events and outbound messages.

/** A node's identity: the id in its TLS certificate. Never an address. */
export type NodeId = string & { readonly __brand: "NodeId" };
/** A member's incarnation: only its owner raises it (to refute), so it never decreases. */
export type Incarnation = number & { readonly __brand: "Incarnation" };

export const asNodeId = (s: string): NodeId => s as NodeId;
export const asIncarnation = (n: number): Incarnation => n as Incarnation;

/**
 * Everything the state machines need from the outside world. The driver passes the real
 * clock and Math.random; the simulator passes virtual time and a seeded generator.
 */
export interface Env {
  /** Milliseconds since an arbitrary epoch; never decreases. */
  nowMs(): number;
  /** Uniform in [0, 1). */
  random(): number;
}

export type MemberStatus = "alive" | "suspect" | "dead" | "left";

/** What `imdb client members` shows for one member. */
export interface MemberView {
  id: NodeId;
  address: string;
  status: MemberStatus;
  incarnation: Incarnation;
}

/** Something the cluster layer wants sent: `payload` is one encoded wire envelope. */
export interface Outbound {
  /** The destination's id, or null when only the address is known (a seed before joining). */
  to: NodeId | null;
  addr: string;
  payload: Uint8Array;
  /**
   * The envelope carries replica data (deltas, anti-entropy states) or promises that data
   * received is stored (delta acks). The driver holds it until the local WAL appends it could
   * reflect are durable. Failure detection and membership (pings, acks, probes, gossip,
   * push-pull) never carry state and never wait: an fsync stall must not look like a dead node.
   */
  carriesState: boolean;
  /**
   * Only failure detection and membership (no replica data): small, never held, and sent on
   * a connection of its own where the transport offers one, so that no megabyte of data
   * queued to the same peer delays a ping or its ack.
   */
  failureDetection: boolean;
}

/** Observable facts, drained by the driver (logs, metrics, tests). Append-only union. */
export type ClusterEvent =
  | { kind: "member-joined"; id: NodeId; address: string; incarnation: Incarnation }
  | { kind: "member-suspect"; id: NodeId; incarnation: Incarnation; from: NodeId }
  | { kind: "member-alive"; id: NodeId; incarnation: Incarnation }
  | { kind: "member-dead"; id: NodeId; incarnation: Incarnation; from: NodeId }
  | { kind: "member-left"; id: NodeId; incarnation: Incarnation }
  | { kind: "member-updated"; id: NodeId; address: string; incarnation: Incarnation }
  | { kind: "member-reaped"; id: NodeId }
  | { kind: "self-refuted"; incarnation: Incarnation }
  | { kind: "deltas-acked"; peer: NodeId; seq: number }
  | { kind: "delta-backlog-overflow"; peer: NodeId }
  | { kind: "anti-entropy-repaired"; peer: NodeId; keysSent: number; keysReceived: number }
  | { kind: "message-refused"; from: NodeId; reason: string }
  /**
   * Another live process answers for this node's id at `address`. `yielded`: this process is
   * the newcomer and stopped taking part (the node exits); otherwise this process keeps the id
   * and the other one was told so.
   */
  | { kind: "duplicate-node-id"; address: string; yielded: boolean }
  /** Keys of a partition this node no longer owns, dropped once its owners held them (Cluster.evictStrays). */
  | { kind: "keys-evicted"; partition: number; keys: number }
  /** Deleted keys' records dropped once every member held them (src/cluster/gc.ts). */
  | { kind: "tombstones-collected"; keys: number }
  /**
   * This replica's data may predate deletes the cluster has collected (it was seen departing,
   * or its doubtful data is older than the members' collections): the node must discard its
   * data and rejoin as a new, empty replica. Until then the cluster takes no data in.
   */
  | { kind: "replica-reset"; reason: string }
  /** A quarantined life heard from every member: it may take writes and exchange data. */
  | { kind: "gc-quarantine-lifted"; generation: number }
  /**
   * A node at `address` places keys with other settings (replicationFactor, partitions) than
   * this one: its member list was not merged, so neither lists the other (Membership).
   */
  | { kind: "settings-mismatch"; address: string; theirs: string; ours: string };
