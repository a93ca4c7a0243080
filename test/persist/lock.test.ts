// The data folder lock (finding 9a of issue 12): a second holder is refused with the first one's pid and node id.

import { expect, test } from "bun:test";
import { FolderInUseError, lockDataDir } from "../../src/persist/lock.ts";
import { removeDir, tempDir } from "./helpers.ts";

test("a second lock on one folder is refused, naming the holder; released, it can be taken again", async () => {
  const dir = await tempDir("lock");
  try {
    const first = lockDataDir(dir, "node-1");
    expect(first.kind).toBe("flock");
    let refused: unknown = null;
    try {
      lockDataDir(dir, "node-2");
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(FolderInUseError);
    expect((refused as Error).message).toBe(`data folder ${dir} is in use by process ${process.pid} (imdb node node-1); one node per folder`);
    first.release();
    const again = lockDataDir(dir, "node-2");
    expect(again.kind).toBe("flock");
    again.release();
  } finally {
    await removeDir(dir);
  }
});
