// `imdb config template`: prints the commented node configuration (every field with its default
// and meaning) from the binary itself, to start a YAML file from.
import { Command } from "commander";
import { nodeConfigTemplate } from "../config/template.ts";

export function register(program: Command): void {
  const config = program.command("config").description("the node's YAML configuration");
  config
    .command("template")
    .description("print a commented config with every field at its default (imdb config template > node.yaml)")
    .action(() => {
      process.stdout.write(nodeConfigTemplate);
    });
}
