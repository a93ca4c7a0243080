// A stand-in for src/cli/main.ts wiring (same exitOverride and exit-code mapping) so tests can run the transport CLIs as processes.
import { Command, CommanderError } from "commander";
import { register as registerCerts } from "../../src/cli/certs.ts";
import { register as registerClient, registerAdmin } from "../../src/cli/client.ts";
import { registerBench } from "../../src/bench/load.ts";

const program = new Command("imdb").exitOverride();
registerCerts(program);
registerClient(program);
registerAdmin(program);
registerBench(program.command("bench"));
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  throw err;
}
