// The console page as a string compiled into the binary (a text import: no file is read at runtime).
import page from "./page.html" with { type: "text" };

// bun-types declares *.html imports as HTML bundles; with type "text" Bun hands over the source.
const text: unknown = page;
if (typeof text !== "string") throw new Error("assertion failed: the console page was not embedded as text");

export const consolePageHtml: string = text;
