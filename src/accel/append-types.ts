// Counters both durable-append implementations expose, so tests and benches can see that
// group commit really groups (fdatasyncs < callers) without timing anything.

import type { Appender, DurableFile } from "./api.ts";

export interface AppendStats {
  /** append() and sync() calls accepted. */
  calls: number;
  /** Group-commit rounds: each is one or more writev calls and at most one fdatasync. */
  rounds: number;
  /** writev system calls (a round issues several when it holds more than iovecsPerWritevMax buffers). */
  writevs: number;
  fdatasyncs: number;
  /** Wall time spent inside writev and inside fdatasync, in ms (how much of a round is the disk). */
  writeMs: number;
  fdatasyncMs: number;
}

export interface CountedDurableFile extends DurableFile {
  /** A snapshot of the counters. */
  stats(): AppendStats;
}

export interface CountedAppender extends Appender {
  open(path: string): Promise<CountedDurableFile>;
}

/** Buffers per writev call (Linux IOV_MAX). */
export const iovecsPerWritevMax = 1024;
/** Bytes one group-commit round takes off the queue before it writes and syncs. */
export const roundBytesMax = 64 * 1024 * 1024;
