// configs/node-template.yaml, embedded in the binary at build time, so `imdb config template`
// gives an operator the commented defaults where only the binary was copied.
import templateText from "../../configs/node-template.yaml" with { type: "text" };

/** The commented reference config, byte for byte as in configs/node-template.yaml. */
export const nodeConfigTemplate: string = templateText;
if (typeof nodeConfigTemplate !== "string") throw new Error("configs/node-template.yaml was not embedded as text");
