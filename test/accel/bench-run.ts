// Runs `bench accel` without the main CLI (before or besides the lead's wiring):
// `npx bun test/accel/bench-run.ts [--json] [--seconds N]`.
import { Command } from "commander";
import { registerBench } from "../../src/bench/accel.ts";

const bench = new Command("bench");
registerBench(bench);
await bench.parseAsync(["accel", ...process.argv.slice(2)], { from: "user" });
