// `imdb bench all` (`npm run bench`): runs each single-process benchmark family in turn, each in
// a fresh child process so one family's heap and JIT state do not colour the next one's figures.
import type { Command } from "commander";
import { selfCommand } from "../cli/self.ts";

/** The families `bench all` runs, in order; the cluster and load benches need their own setups. */
export const benchAllFamilies = ["accel", "crdt", "storage", "engine"] as const;

export function registerBenchAll(bench: Command): void {
  bench
    .command("all")
    .description(`run ${benchAllFamilies.join(", ")} one after another`)
    .option("--json", "print one JSON object: {family: result, ...}")
    .option("--seconds <n>", "passed as --seconds to each family (see its --help for what it bounds)")
    .action(async (opts: { json?: boolean; seconds?: string }) => {
      const combined: Record<string, unknown> = {};
      let failed = 0;
      for (const family of benchAllFamilies) {
        const args = [...selfCommand(), "bench", family, ...(opts.json ? ["--json"] : []), ...(opts.seconds ? ["--seconds", opts.seconds] : [])];
        process.stderr.write(`\n== bench ${family}\n`);
        const proc = Bun.spawn(args, { stdin: "ignore", stdout: opts.json ? "pipe" : "inherit", stderr: "inherit" });
        const out = opts.json ? await new Response(proc.stdout as ReadableStream<Uint8Array>).text() : "";
        const code = await proc.exited;
        if (code !== 0) {
          failed += 1;
          process.stderr.write(`bench ${family}: exit code ${code}\n`);
          continue;
        }
        if (opts.json) combined[family] = JSON.parse(out) as unknown;
      }
      if (opts.json) console.log(JSON.stringify(combined));
      if (failed > 0) process.exit(1);
    });
}
