// The chaos workload's counter writes carry a request id and retry an indeterminate failure with it:
// against a server that drops the first attempt (UNAVAILABLE), the increment is recorded once, as ok.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ImdbClient } from "../../src/transport/client.ts";
import { startClientServer, type RunningServer } from "../../src/transport/server.ts";
import { FakeNode } from "../transport/fake-node.ts";
import { History } from "./history.ts";
import { addAttemptsMax, seededRandom, Workload } from "./workload.ts";

const fake = new FakeNode();
let srv: RunningServer;
let client: ImdbClient;

beforeAll(async () => {
  srv = await startClientServer({ addr: "127.0.0.1:0", security: { insecure: true }, handler: fake });
  client = new ImdbClient({ server: `127.0.0.1:${srv.port}`, tls: null, deadlineMs: 5000 });
});

afterAll(async () => {
  client.close();
  await srv.shutdown(1000);
});

test("an increment whose first attempt fails UNAVAILABLE is retried with the same request id and recorded once, ok", async () => {
  const seed = 12345;
  const history = new History();
  const workload = new Workload({
    history, targets: () => [{ node: "a", client }], workers: 1, random: seededRandom(seed),
    mix: { add: 1, readCounter: 0, set: 0, readLww: 0, mv: 0 }, keys: { counters: 1, registers: 0, mvs: 0 }, pauseAfterErrorMs: 1,
  });
  fake.unavailableNext = 1;
  workload.start();
  const end = Date.now() + 20_000;
  while (history.ops.filter((o) => o.kind === "add").length < 3 && Date.now() < end) await Bun.sleep(10);
  await workload.stop();
  const adds = history.ops.filter((o) => o.kind === "add");
  expect(adds.length).toBeGreaterThanOrEqual(3);
  const first = adds[0];
  expect(first?.outcome).toBe("ok");
  expect(first?.kind === "add" ? first.attempts : 0).toBe(2);
  expect(adds.every((o) => o.outcome === "ok")).toBe(true);
  // Both attempts of the first add carried one id; the next add a new one.
  const [a, b, c] = fake.requestIds;
  expect(a).not.toBeNull();
  expect(b).toBe(a ?? "");
  expect(c).not.toBe(a ?? "");
  expect(addAttemptsMax).toBeGreaterThan(1);
});
