// Small file-system steps recovery and the writers share: folder fsync, copying a damaged
// file aside before it is cut, and listing a folder with a bound.

import { copyFile, open, readdir, unlink, constants } from "node:fs/promises";
import { brokenCopiesMax, dirEntriesMax } from "./limits.ts";

/** Makes renames, creations and deletions in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Copies `path` to the first free `<path>.broken[.k]`, never overwriting; returns that name. */
export async function copyAside(path: string): Promise<string> {
  for (let k = 0; k < brokenCopiesMax; k++) {
    const target = k === 0 ? `${path}.broken` : `${path}.broken.${k}`;
    try {
      await copyFile(path, target, constants.COPYFILE_EXCL);
      return target;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
  throw new Error(`${path}: ${brokenCopiesMax} copies aside already exist`);
}

/** Names in `dir`, or null when there are more than dirEntriesMax. */
export async function listDir(dir: string): Promise<string[] | null> {
  const names = await readdir(dir);
  return names.length > dirEntriesMax ? null : names;
}

/** Moves `path` aside to a free `<path>.broken[.k]` (copy, then unlink the original). */
export async function moveAside(path: string): Promise<string> {
  const target = await copyAside(path);
  await unlink(path);
  return target;
}
