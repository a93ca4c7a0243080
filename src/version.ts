// The program's version, in one place below every layer: the node reports it and the CLI prints it.
import pkg from "../package.json" with { type: "json" };

export const version: string = pkg.version;
