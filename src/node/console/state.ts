// What the web console (GET / on the metrics address) shows, as the JSON it polls from
// /console.json: one node's view of the cluster, read at request time like a scrape.

export interface ConsoleMember {
  id: string;
  address: string;
  status: "alive" | "suspect" | "dead" | "left";
  incarnation: number;
}

export interface ConsolePeer {
  peer: string;
  backlog: number;
  lagSeconds: number;
}

export interface ConsoleState {
  node: { id: string; version: string; commit: string; uptimeSeconds: number; durability: string; accel: string };
  /** Server time (Unix ms) the state was read at: the page derives ops/s from two polls. */
  atMs: number;
  members: ConsoleMember[];
  peers: ConsolePeer[];
  /** Client ops answered since start (every outcome), for ops/s. */
  opsTotal: number;
  keys: number;
  /** Deleted keys whose record (tombstone) the node still holds. */
  keysDeleted: number;
  wal: { nextLsn: number; bytesSinceSnapshot: number };
  snapshot: { running: boolean; last: { atMs: number; bytes: number; durationMs: number; keys: number } | null };
  clock: { skewEvents: number; remoteAheadRefused: number; maxClockSkewMs: number };
  certs: { cert: string; subject: string; notAfterSeconds: number }[];
}

/** Members listed in one answer (the page is for people; the metrics have the totals). */
export const consoleMembersMax = 512;
