// Measures what the hash tree costs a restarting node: build time and heap/RSS per key for N keys (not a test; run by hand).
//
// Usage: npx bun test/cluster/hashtree-memory.ts [keys=1000000] [depth=4]
// Keys and digests are made fresh per call, as the engine's change callback does, so the
// figures include whatever the tree keeps of each key. Prints one JSON object.

import { HashTree } from "../../src/cluster/hashtree.ts";

const n = Number(process.argv[2] ?? 1_000_000);
const depth = Number(process.argv[3] ?? 4);
let s = 0x12345678;
const r32 = (): number => {
  s ^= s << 13;
  s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5;
  s >>>= 0;
  return s;
};
const view = new DataView(new ArrayBuffer(8));

Bun.gc(true);
const m0 = process.memoryUsage();
const c0 = process.cpuUsage();
const t0 = performance.now();
const tree = new HashTree(depth);
for (let i = 0; i < n; i++) {
  view.setUint32(0, r32(), true);
  view.setUint32(4, r32(), true);
  tree.set(`counter:${i}`, view.getBigUint64(0, true));
}
const t1 = performance.now();
const c1 = process.cpuUsage(c0);
Bun.gc(true);
const m1 = process.memoryUsage();
const u0 = performance.now();
for (let i = 0; i < n; i++) {
  view.setUint32(0, r32(), true);
  tree.set(`counter:${i}`, view.getBigUint64(0, true));
}
const u1 = performance.now();
console.log(
  JSON.stringify({
    keys: tree.keyCount,
    depth,
    buildMs: Math.round(t1 - t0),
    buildCpuMs: Math.round((c1.user + c1.system) / 1000),
    updateAllMs: Math.round(u1 - u0),
    heapBytesPerKey: Number(((m1.heapUsed - m0.heapUsed) / n).toFixed(1)),
    rssBytesPerKey: Number(((m1.rss - m0.rss) / n).toFixed(1)),
    treeBytesPerKey: Number((tree.bytesHeld / n).toFixed(1)),
  }),
);
