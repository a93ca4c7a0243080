// `imdb admin backup --out FILE`: receives a node's backup stream into FILE.tmp, checks its size and
// SHA-256 against the stream's summary, and only then renames it to FILE, so FILE is always whole.
import { createHash } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { fsyncDir } from "../persist/fsutil.ts";
import { pathExists } from "../persist/backup.ts";
import { RpcError, type ImdbClient } from "../transport/client.ts";
import { status as grpcStatus } from "@grpc/grpc-js";

export interface BackupWritten {
  path: string;
  bytes: number;
  lsn: bigint;
  sha256: string;
}

/** A reason the CLI refuses before asking the node (exit 2). */
export class BackupUsageError extends Error {}

export async function checkBackupTarget(out: string, force: boolean): Promise<void> {
  if (!force && (await pathExists(out))) throw new BackupUsageError(`${out} exists; give another --out or --force to replace it`);
}

export async function writeBackup(c: ImdbClient, out: string): Promise<BackupWritten> {
  const tmp = `${out}.tmp`;
  const fh = await open(tmp, "w", 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new BackupUsageError(`cannot write ${tmp}: ${err.code ?? err.message}`);
  });
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    const summary = await c.backup(async (b) => {
      hash.update(b);
      bytes += b.byteLength;
      let off = 0;
      while (off < b.byteLength) off += (await fh.write(b, off, b.byteLength - off)).bytesWritten;
    });
    const got = new Uint8Array(hash.digest());
    if (summary.totalBytes !== bytes || Buffer.compare(Buffer.from(got), Buffer.from(summary.sha256)) !== 0) {
      throw new RpcError(grpcStatus.DATA_LOSS, `received ${bytes} bytes that do not match the node's summary (${summary.totalBytes} bytes, sha256 ${Buffer.from(summary.sha256).toString("hex")})`);
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, out);
    await fsyncDir(dirname(out));
    return { path: out, bytes, lsn: summary.endLsn, sha256: Buffer.from(got).toString("hex") };
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
