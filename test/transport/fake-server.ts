// Runs the client port with the in-test FakeNode (for trying the CLI and `bench load` by hand): bun test/transport/fake-server.ts TLS_DIR|--insecure [PORT]
import { startClientServer } from "../../src/transport/server.ts";
import { loadTlsDir } from "../../src/transport/tls.ts";
import { FakeNode } from "./fake-node.ts";

const [where = "--insecure", port = "0"] = process.argv.slice(2);
const node = new FakeNode();
const security = where === "--insecure" ? { insecure: true as const } : { tls: await loadTlsDir(where, "a") };
const srv = await startClientServer({ addr: `127.0.0.1:${port}`, security, handler: node, admin: node });
console.log(`listening 127.0.0.1:${srv.port}`);
const stop = (): void => {
  void srv.shutdown(2000).then(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
