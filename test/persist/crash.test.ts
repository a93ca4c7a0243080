// A real child process appends in `sync` mode and prints every acknowledged LSN; the parent
// SIGKILLs it at a seeded random moment and restarts it, 20 times: every acknowledged record
// must be there each time, and the folder must always recover to an exact prefix.

import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { recover } from "../../src/persist/recovery.ts";
import { copyDir, propertySettings, RecordSet, removeDir, seededRandom, tempDir, testAccel, withSeed } from "./helpers.ts";

const fixture = join(import.meta.dir, "fixtures", "crash-writer.ts");
const rounds = 20;
const roundDeadlineMs = 20_000;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await removeDir(d);
});

interface Round {
  acked: number[];
  recoveredAtStart: number;
  stderr: string;
}

/** Runs the child until it has acknowledged `killAfterAcks` records (polling with a deadline), then SIGKILLs it. */
async function runRound(dataDir: string, killAfterAcks: number): Promise<Round> {
  const child = Bun.spawn([process.execPath, fixture, dataDir, "16", "700"], { stdout: "pipe", stderr: "pipe" });
  const acked: number[] = [];
  let recoveredAtStart = -1;
  let partial = "";
  const decoder = new TextDecoder();
  const reader = child.stdout.getReader();
  const deadline = performance.now() + roundDeadlineMs;
  let exited = false;
  void child.exited.then(() => { exited = true; });
  while (acked.length < killAfterAcks && !exited && performance.now() < deadline) {
    const chunk = await Promise.race([reader.read(), child.exited.then(() => null)]);
    if (chunk === null || chunk.done) break;
    partial += decoder.decode(chunk.value, { stream: true });
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (line.startsWith("ready ")) recoveredAtStart = Number(line.slice(6));
      else acked.push(Number(line));
    }
  }
  child.kill("SIGKILL");
  await child.exited;
  // Lines the child wrote before dying are acknowledged too.
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    partial += decoder.decode(chunk.value, { stream: true });
  }
  const lines = partial.split("\n");
  lines.pop(); // an incomplete last line is not an acknowledgement
  for (const line of lines) {
    if (line.startsWith("ready ")) recoveredAtStart = Number(line.slice(6));
    else acked.push(Number(line));
  }
  const stderr = await new Response(child.stderr).text();
  return { acked, recoveredAtStart, stderr };
}

describe("crash safety with a real process", () => {
  test(`SIGKILL at a random moment, ${rounds} times: every acknowledged write survives`, async () => {
    const { seed } = propertySettings();
    const rng = seededRandom(seed);
    const d = await tempDir("crash");
    dirs.push(d);
    await withSeed(seed, async () => {
      let maxAcked = 0;
      let restartsWithTornTail = 0;
      for (let round = 0; round < rounds; round++) {
        const killAfter = 1 + Math.floor(rng() * 1500);
        const r = await runRound(d, killAfter);
        if (r.recoveredAtStart < 0) throw new Error(`round ${round}: child did not start:\n${r.stderr}`);
        // What the child recovered at start holds everything acknowledged in earlier rounds.
        expect(r.recoveredAtStart).toBeGreaterThanOrEqual(maxAcked);
        if (r.stderr.includes("torn tail")) restartsWithTornTail++;
        for (const l of r.acked) maxAcked = Math.max(maxAcked, l);
        // Check a copy, so that the child itself meets whatever the kill left behind.
        const check = `${d}-check`;
        await copyDir(d, check);
        const set = new RecordSet();
        await recover({ dataDir: check, repair: false, sums: testAccel().checksums, log: () => undefined, sink: set });
        await removeDir(check);
        const k = set.prefixLength();
        if (typeof k === "string") throw new Error(`round ${round}: ${k}`);
        if (k < maxAcked) throw new Error(`round ${round}: acknowledged up to LSN ${maxAcked} but only ${k} records recovered`);
      }
      expect(maxAcked).toBeGreaterThan(rounds);
      console.log(`crash test: seed ${seed}, ${rounds} kills, ${maxAcked} records acknowledged, ${restartsWithTornTail} restarts cut a torn tail`);
    });
  }, 120_000);
});
