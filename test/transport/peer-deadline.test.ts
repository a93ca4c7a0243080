// A data exchange's answer may wait for the peer's WAL and a busy event loop: the node's data
// connection waits for it well past the 2 s a ping gets, instead of throwing it away.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { peerDataDeadlineMs } from "../../src/node/cluster-host.ts";
import { PeerClient, peerDeadlineMsDefault } from "../../src/transport/peer-client.ts";
import { startPeerServer, type RunningServer } from "../../src/transport/server.ts";

/** How long the peer below takes to answer: past the failure detector's deadline. */
const answerDelayMs = peerDeadlineMsDefault + 1_000;

let server: RunningServer;

beforeAll(async () => {
  server = await startPeerServer({
    addr: "127.0.0.1:0",
    security: { insecure: true },
    nodeId: "slow",
    // An answer held for the WAL (a delta ack, a gc-confirm) on a loaded node.
    handler: {
      exchange: (_from, payload) => new Promise((r) => setTimeout(() => r(payload), answerDelayMs)),
      forward: () => Promise.reject(new Error("not used here")),
      scanPart: () => Promise.reject(new Error("not used here")),
      handOff: () => Promise.reject(new Error("not used here")),
    },
  });
});

afterAll(async () => {
  await server.shutdown(0);
});

test("an answer that takes longer than a ping's deadline reaches the sender over the data connection", async () => {
  expect(peerDataDeadlineMs).toBeGreaterThan(answerDelayMs);
  const data = new PeerClient({ selfId: "fast", security: { insecure: true }, deadlineMs: peerDataDeadlineMs });
  const pings = new PeerClient({ selfId: "fast", security: { insecure: true } });
  try {
    const payload = new Uint8Array([1, 2, 3]);
    const [answered, timedOut] = await Promise.all([
      data.send(`127.0.0.1:${server.port}`, payload),
      pings.send(`127.0.0.1:${server.port}`, payload).then(() => "answered", (e: unknown) => String(e)),
    ]);
    expect([...answered.payload]).toEqual([1, 2, 3]);
    expect(timedOut).toContain("DEADLINE");
  } finally {
    data.close();
    pings.close();
  }
});
