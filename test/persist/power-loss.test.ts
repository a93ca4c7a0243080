// A SIGKILL keeps the page cache, so it cannot show an acknowledgement given before fdatasync.
// This simulates power loss instead: at a seeded moment, every WAL file keeps only what was
// fdatasynced plus a random part of what was written after it, files created later vanish,
// and recovery must still hold every record acknowledged before that moment.

import { afterAll, describe, expect, test } from "bun:test";
import { readdir, stat, truncate, unlink, writeFile, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Appender, DurableFile } from "../../src/accel/api.ts";
import { persistLimits, type Lsn } from "../../src/persist/index.ts";
import { openTestStore, payloadFor, propertySettings, removeDir, seededRandom, tempDir, testAccel, withSeed } from "./helpers.ts";

const rounds = 40;
const writers = 16;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await removeDir(d);
});

interface Tracked {
  path: string;
  /** Bytes known to be on disk: covered by a completed fdatasync. */
  durable: number;
  file: DurableFile;
}

/** The real appender, recording for each file how far an fdatasync has completed. */
function trackingAppender(files: Map<string, Tracked>): Appender {
  const real = testAccel().appender;
  return {
    async open(path: string): Promise<DurableFile> {
      const f = await real.open(path);
      const t: Tracked = { path, durable: f.size, file: f };
      files.set(basename(path), t);
      return {
        async append(records, sync) {
          const before = f.size;
          let bytes = 0;
          for (const r of records) bytes += r.byteLength;
          await f.append(records, sync);
          if (sync) t.durable = Math.max(t.durable, before + bytes);
        },
        async sync() {
          const upTo = f.size;
          await f.sync();
          t.durable = Math.max(t.durable, upTo);
        },
        idle: () => f.idle(),
        get size() { return f.size; },
        close: () => f.close(),
      };
    },
  };
}

interface CrashState {
  acked: Lsn[];
  files: Map<string, { durable: number; size: number }>;
}

describe("power loss (simulated)", () => {
  test(`only fdatasynced bytes survive, ${rounds} seeded crashes: every acknowledged record is recovered`, async () => {
    const { seed } = propertySettings();
    const rng = seededRandom(seed);
    await withSeed(seed, async () => {
      let tornTails = 0;
      for (let round = 0; round < rounds; round++) {
        const d = await tempDir("power");
        dirs.push(d);
        const files = new Map<string, Tracked>();
        const r = await openTestStore(d, {
          accel: { checksums: testAccel().checksums, appender: trackingAppender(files) },
          walSegmentBytes: persistLimits.walSegmentBytesMin,
        });
        const crashAfterAcks = 1 + Math.floor(rng() * 600);
        const acked: Lsn[] = [];
        const box: { crash: CrashState | null } = { crash: null };
        const writer = async (): Promise<void> => {
          while (box.crash === null) {
            const lsn = await r.store.append([payloadFor(r.store.nextLsn)]);
            acked.push(lsn);
            if (acked.length >= crashAfterAcks && box.crash === null) {
              // The crash moment: what is durable and what was handed to the OS, per file.
              const state = new Map<string, { durable: number; size: number }>();
              for (const [name, t] of files) state.set(name, { durable: t.durable, size: t.file.size });
              box.crash = { acked: [...acked], files: state };
            }
          }
        };
        await Promise.all(Array.from({ length: writers }, writer));
        await r.store.close();
        const at = box.crash as CrashState | null;
        if (at === null) throw new Error("no crash point");
        // Apply the crash: unsynced bytes are kept only in part (maybe torn into zeros).
        for (const name of await readdir(join(d, "wal"))) {
          const path = join(d, "wal", name);
          const s = at.files.get(name);
          if (s === undefined) { await unlink(path); continue; }
          const keep = s.durable + Math.floor(rng() * (s.size - s.durable + 1));
          if (keep < (await stat(path)).size) tornTails++;
          await truncate(path, keep);
          if (keep > s.durable && rng() < 0.3) {
            const img = new Uint8Array(await readFile(path));
            img.fill(0, s.durable + Math.floor(rng() * (keep - s.durable)));
            await writeFile(path, img);
          }
        }
        const again = await openTestStore(d);
        const k = again.set.prefixLength();
        if (typeof k === "string") throw new Error(`round ${round}: ${k}`);
        const maxAcked = Math.max(...at.acked);
        if (k < maxAcked) throw new Error(`round ${round}: acknowledged up to LSN ${maxAcked} before the crash, recovered ${k}`);
        await again.store.close();
        await removeDir(d);
      }
      expect(tornTails).toBeGreaterThan(0);
      console.log(`power loss: seed ${seed}, ${rounds} crashes, ${tornTails} files lost an unsynced tail`);
    });
  }, 60_000);
});
