// Through the built binary: a key filled to the MV sibling bound by blind writes refuses the next
// one with FAILED_PRECONDITION, and the node restarts from a snapshot holding it (finding 4: on
// the original code all writes were taken and no replica could load the snapshot again).
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { mvSiblingsWriteMax } from "../../src/limits.ts";
import { ImdbClient } from "../../src/transport/client.ts";
import { startNode, tempDir, type NodeProc } from "./harness.ts";

setDefaultTimeout(120_000);

const dir = tempDir("limits");
const args = ["--insecure", "--data-dir", join(dir.path, "data"), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0"];
let node: NodeProc | null = null;

afterAll(() => {
  node?.proc.kill("SIGKILL");
  dir.cleanup();
});

test("blind MV writes stop at the sibling bound with FAILED_PRECONDITION; a restart from a snapshot keeps the key", async () => {
  node = await startNode("node-1", args);
  let client = new ImdbClient({ server: node.clientAddr, tls: null, deadlineMs: 60_000 });
  // A Set without a context replaces nothing (the client read nothing): each one adds a sibling.
  const ops = Array.from({ length: mvSiblingsWriteMax + 1 }, (_, i) => ({ kind: "setMv" as const, key: "cart", value: new TextEncoder().encode(`item-${i}`), context: null }));
  const results = [...(await client.batch(ops.slice(0, 1000))), ...(await client.batch(ops.slice(1000)))];
  expect(results.slice(0, mvSiblingsWriteMax).every((r) => r.ok)).toBe(true);
  const last = results[mvSiblingsWriteMax];
  expect(last?.ok).toBe(false);
  if (last !== undefined && !last.ok) {
    expect(last.code).toBe("FAILED_PRECONDITION");
    expect(last.message).toContain("context");
  }
  await client.snapshot();
  client.close();
  node.proc.kill("SIGTERM");
  expect(await node.proc.exited).toBe(0);

  node = await startNode("node-1", args);
  client = new ImdbClient({ server: node.clientAddr, tls: null, deadlineMs: 60_000 });
  const v = await client.get("cart");
  expect(v.type).toBe("mv");
  if (v.type === "mv") {
    expect(v.values.length).toBe(mvSiblingsWriteMax);
    // The way out the error names: a write with the context read replaces every value.
    await client.setMv("cart", new TextEncoder().encode("one"), v.context);
    const after = await client.get("cart");
    expect(after.type === "mv" ? after.values.length : -1).toBe(1);
  }
  client.close();
});
