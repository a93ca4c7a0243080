// Backup files (persist/backup.ts, node/backup.ts): a backup taken while records are appended
// during its snapshot, over several WAL segments, restores to exactly the records up to its end
// LSN; a backup with a file that is not a snapshot or a WAL segment (an identity file) is refused
// even when its checksum is right; an existing data folder is never written into.
import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { accel } from "../../src/accel/index.ts";
import { backupPieces, type BackupSummary } from "../../src/node/backup.ts";
import { encodeBackupHeader, encodeBackupTrailer, encodeFileFrame, restoreBackup } from "../../src/persist/backup.ts";
import { recover } from "../../src/persist/index.ts";
import { openTestStore, payloadFor, RecordSet, removeDir, silentLog, snapshotKey, tempDir } from "./helpers.ts";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await removeDir(d);
});
const sums = accel().checksums;

describe("a backup of a store that is being written", () => {
  test("restores to exactly records 1..end LSN, from a snapshot and WAL segments written meanwhile", async () => {
    const d = await tempDir("backup-src");
    const r = await tempDir("backup-dst");
    dirs.push(d, r);
    const a = await openTestStore(d, { walSegmentBytes: 4096 });
    for (let i = 0; i < 400; i++) await a.store.append([payloadFor(a.store.nextLsn)]);
    let snapStart = 0;
    const pieces: Uint8Array[] = [];
    let summary: BackupSummary | null = null;
    for await (const p of backupPieces({
      dataDir: d, sums, nextLsn: () => a.store.nextLsn, sync: () => a.store.sync(),
      snapshot: async () => {
        const upTo = a.store.nextLsn;
        snapStart = upTo;
        const store = a.store;
        // Records appended while the snapshot is written: only the WAL part of the backup has them.
        function* entries(): Generator<readonly [string, Uint8Array]> {
          for (let lsn = 1; lsn < upTo; lsn++) {
            if (lsn % 50 === 0) for (let k = 0; k < 30; k++) void store.append([payloadFor(store.nextLsn)]);
            yield [snapshotKey(lsn), payloadFor(lsn)] as const;
          }
        }
        const w = await store.snapshot(entries());
        return { file: w.file, startLsn: w.startLsn };
      },
    }, (s) => (summary = s))) pieces.push(p.slice());
    // Written after the backup's end: not in it.
    for (let i = 0; i < 10; i++) await a.store.append([payloadFor(a.store.nextLsn)]);
    await a.store.close();
    const end = (summary as BackupSummary | null)?.endLsn ?? 0;
    expect(end).toBeGreaterThan(snapStart + 30);
    const file = join(r, "b.bak");
    await writeFile(file, Buffer.concat(pieces));
    const report = await restoreBackup(file, join(r, "data"), sums);
    expect(report.endLsn).toBe(end);
    // The records came from several 4 KiB source segments, joined into one segment of the backup.
    expect(report.files.filter((f) => f.startsWith("wal/")).length).toBe(1);
    expect((await readdir(join(d, "wal"))).length).toBeGreaterThan(2);
    const set = new RecordSet();
    await recover({ dataDir: join(r, "data"), repair: false, sums, log: silentLog, sink: set });
    expect(set.prefixLength()).toBe(end);
  });
});

describe("restore refuses", () => {
  test("a backup holding an identity file, even with a matching SHA-256", async () => {
    const r = await tempDir("backup-foreign");
    dirs.push(r);
    const body = new TextEncoder().encode('{"version":1}\n');
    const head = Buffer.concat([encodeBackupHeader(1, 1), encodeFileFrame("identity", body.byteLength), body]);
    const file = join(r, "b.bak");
    await writeFile(file, Buffer.concat([head, encodeBackupTrailer(head.byteLength, new Uint8Array(createHash("sha256").update(head).digest()))]));
    await expect(restoreBackup(file, join(r, "data"), sums)).rejects.toThrow('unexpected file "identity"');
    expect(await readdir(r)).toEqual(["b.bak"]);
  });

  test("a data folder that holds anything", async () => {
    const r = await tempDir("backup-nonempty");
    dirs.push(r);
    await mkdir(join(r, "data"));
    await writeFile(join(r, "data", "x"), "x");
    await expect(restoreBackup(join(r, "missing.bak"), join(r, "data"), sums)).rejects.toThrow("it is not empty");
  });
});
