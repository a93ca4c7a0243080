// Shared pieces of the persistence tests: temp folders, a deterministic payload per LSN, and
// a sink that rebuilds "the set of records" from a snapshot plus WAL replay, so any recovery
// result can be checked against exactly what was written.

import { mkdtemp, rm, readdir, cp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accel } from "../../src/accel/index.ts";
import { openStore, silentLog, type Durability, type PersistAccel, type RecoverySink, type Store, type StoreOptions } from "../../src/persist/index.ts";
import type { Lsn } from "../../src/persist/lsn.ts";

export async function tempDir(tag: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `imdb-persist-${tag}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function copyDir(from: string, to: string): Promise<void> {
  await cp(from, to, { recursive: true });
}

/** The payload written as record `lsn`: 4..67 bytes, starting with the LSN, rest derived from it. */
export function payloadFor(lsn: number): Uint8Array {
  const len = 4 + ((lsn * 7919) % 64);
  const out = new Uint8Array(len);
  new DataView(out.buffer).setUint32(0, lsn, true);
  for (let i = 4; i < len; i++) out[i] = (lsn * 31 + i * 17) & 0xff;
  return out;
}

export function snapshotKey(lsn: number): string {
  return `r:${lsn}`;
}

/**
 * Rebuilds the record set: snapshot entries `r:<lsn>` -> payload, then WAL records.
 * Fails loudly on anything that is not exactly what was written.
 */
export class RecordSet implements RecoverySink {
  readonly records = new Map<number, Uint8Array>();
  walLsns: number[] = [];

  snapshotEntry(key: string, state: Uint8Array): void {
    const m = /^r:(\d+)$/.exec(key);
    if (m === null) throw new Error(`unexpected snapshot key ${key}`);
    this.records.set(Number(m[1]), state.slice());
  }

  walRecord(lsn: Lsn, body: Uint8Array): void {
    const prev = this.walLsns[this.walLsns.length - 1];
    if (prev !== undefined && lsn !== prev + 1) throw new Error(`WAL replay out of order: ${lsn} after ${prev}`);
    this.walLsns.push(lsn);
    this.records.set(lsn, body.slice());
  }

  /** K when the set is exactly records 1..K with the right bytes; otherwise a description. */
  prefixLength(): number | string {
    const k = this.records.size;
    for (let lsn = 1; lsn <= k; lsn++) {
      const got = this.records.get(lsn);
      if (got === undefined) return `record ${lsn} missing but ${k} records recovered`;
      if (!bytesEqual(got, payloadFor(lsn))) return `record ${lsn} has the wrong bytes`;
    }
    return k;
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function testAccel(): PersistAccel {
  const a = accel();
  return { checksums: a.checksums, appender: a.appender };
}

export interface OpenResult {
  store: Store;
  set: RecordSet;
  logs: string[];
  fatal: Error[];
}

export async function openTestStore(dataDir: string, over: Partial<StoreOptions> & { durability?: Durability } = {}): Promise<OpenResult> {
  const set = new RecordSet();
  const logs: string[] = [];
  const fatal: Error[] = [];
  const store = await openStore({
    dataDir,
    durability: { kind: "sync" },
    repair: false,
    accel: testAccel(),
    log: (level, msg) => logs.push(`${level}: ${msg}`),
    onFatal: (e) => fatal.push(e),
    sink: set,
    ...over,
  });
  return { store, set, logs, fatal };
}

/** Appends records nextLsn.. with their deterministic payloads, `batch` per call, all concurrently. */
export async function appendRecords(store: Store, count: number, batch = 1): Promise<Lsn> {
  const pending: Promise<Lsn>[] = [];
  for (let done = 0; done < count; done += batch) {
    const n = Math.min(batch, count - done);
    const first = store.nextLsn;
    const bodies: Uint8Array[] = [];
    for (let i = 0; i < n; i++) bodies.push(payloadFor(first + i));
    pending.push(store.append(bodies));
  }
  const lsns = await Promise.all(pending);
  return lsns[lsns.length - 1] as Lsn;
}

export async function listNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

export { silentLog };

/** fast-check settings from the environment: IMDB_SEED (else fresh) and IMDB_PROPERTY_RUNS. */
export function propertySettings(defaultRuns = 1000): { seed: number; numRuns: number } {
  const seed = process.env.IMDB_SEED !== undefined ? Number(process.env.IMDB_SEED) : (Math.random() * 2 ** 31) | 0;
  return { seed, numRuns: Number(process.env.IMDB_PROPERTY_RUNS ?? defaultRuns) };
}

/** Runs `body`; on failure rethrows with the seed to replay it. */
export async function withSeed<T>(seed: number, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`replay with IMDB_SEED=${seed}\n${msg}`, { cause: e });
  }
}

/** A small deterministic generator (mulberry32) for tests that need seeded choices outside fast-check. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
