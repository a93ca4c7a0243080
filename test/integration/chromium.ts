// Headless Chromium (Debian's `chromium`, installed by .ci/run) driven over the DevTools protocol
// with Bun's own WebSocket: enough to load a page and evaluate expressions in it, no dependency.
// In CI a missing chromium fails the test; elsewhere it skips.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

/** How long Chromium may take to print its DevTools address. */
const launchDeadlineMs = 30_000;
/** How long one DevTools command may take. */
const commandDeadlineMs = 15_000;

/** The chromium binary, or null when it is absent outside CI. Throws in CI when it is absent. */
export function chromiumBinary(): string | null {
  const path = Bun.which("chromium") ?? Bun.which("chromium-browser");
  if (path !== null) return path;
  if (process.env.CI === "true") throw new Error("chromium is not installed: CI must install Debian's `chromium` package (.ci/run does)");
  console.error("chromium not installed (apt-get install chromium): skipping the console test locally");
  return null;
}

interface CdpReply { id?: number; result?: { result?: { value?: unknown }; exceptionDetails?: unknown }; error?: { message: string } }

export class Browser {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: CdpReply) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly proc: Subprocess<"ignore", "ignore", "pipe">,
    private readonly ws: WebSocket,
    private readonly profile: string,
    readonly log: () => string,
  ) {
    ws.addEventListener("message", (ev) => {
      const msg = JSON.parse(String(ev.data)) as CdpReply;
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      p?.resolve(msg);
    });
    ws.addEventListener("close", () => {
      for (const p of this.pending.values()) p.reject(new Error("DevTools connection closed"));
      this.pending.clear();
    });
  }

  /** Starts headless Chromium with a fresh profile and attaches to its first page. */
  static async launch(binary: string): Promise<Browser> {
    const profile = mkdtempSync(join(tmpdir(), "imdb-chromium-"));
    const proc = Bun.spawn(
      [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--remote-debugging-port=0", `--user-data-dir=${profile}`, "about:blank"],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    );
    let err = "";
    const browserWs = await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), launchDeadlineMs);
      void (async () => {
        for await (const c of proc.stderr) {
          err += new TextDecoder().decode(c);
          const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        }
        resolve(null);
      })();
    });
    if (browserWs === null) {
      proc.kill("SIGKILL");
      rmSync(profile, { recursive: true, force: true });
      throw new Error(`chromium did not start:\n${err}`);
    }
    const http = browserWs.replace(/^ws:\/\/([^/]+)\/.*$/, "http://$1");
    const targets = (await (await fetch(`${http}/json/list`)).json()) as { type: string; webSocketDebuggerUrl: string }[];
    const page = targets.find((t) => t.type === "page");
    if (page === undefined) throw new Error("chromium has no page target");
    const ws = new WebSocket(page.webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve());
      ws.addEventListener("error", () => reject(new Error("cannot connect to the page's DevTools socket")));
    });
    return new Browser(proc, ws, profile, () => err);
  }

  private send(method: string, params: Record<string, unknown>): Promise<CdpReply> {
    const id = this.nextId++;
    return new Promise<CdpReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`DevTools ${method} got no answer in ${commandDeadlineMs} ms`));
      }, commandDeadlineMs);
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          if (r.error) reject(new Error(`DevTools ${method}: ${r.error.message}`));
          else resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async navigate(url: string): Promise<void> {
    await this.send("Page.navigate", { url });
  }

  /** The value of `expression` evaluated in the page (JSON-serialisable values only). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true });
    if (r.result?.exceptionDetails !== undefined) throw new Error(`page threw evaluating ${expression}: ${JSON.stringify(r.result.exceptionDetails)}`);
    return r.result?.result?.value as T;
  }

  close(): void {
    this.ws.close();
    this.proc.kill("SIGKILL");
    rmSync(this.profile, { recursive: true, force: true });
  }
}
