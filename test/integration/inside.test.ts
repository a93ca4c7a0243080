// "See inside" (issue 16) on a real 3-node mutual-TLS cluster run from the lone binary with the
// source tree hidden: gRPC server reflection answers a generic client with no .proto files; the
// node's /metrics passes promtool; the Grafana dashboard queries only exported metrics; the web
// console in headless Chromium shows the live members and follows a node's death (SIGKILL).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protobuf from "protobufjs";
import * as descriptor from "protobufjs/ext/descriptor";
import { reflectionCodec, type ReflectionRequestWire, type ReflectionResponseWire } from "../../src/transport/reflection.ts";
import { clientChannelTls, loadTlsDir, peerChannelTls, type ChannelTls } from "../../src/transport/tls.ts";
import { ImdbClient } from "../../src/transport/client.ts";
import { checkMetrics, promtool } from "../node/promtool.ts";
import { sample } from "../node/prom.ts";
import { Browser, chromiumBinary } from "./chromium.ts";
import { repoRoot, run, tempDir, waitFor, type NodeProc } from "./harness.ts";
import { loneBinary, startLoneNode, type Lone } from "./lone.ts";

setDefaultTimeout(120_000);

const dir = tempDir("inside");
const certs = join(dir.path, "certs");
const ids = ["node-1", "node-2", "node-3"];
const nodes = new Map<string, NodeProc>();
let lone: Lone;

function nodeArgs(id: string, seed: string | null): string[] {
  return [
    "--data-dir", join(dir.path, id), "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
    "--metrics-addr", "127.0.0.1:0", ...(seed ? ["--seeds", seed] : []),
  ];
}

beforeAll(async () => {
  lone = loneBinary(dir.path);
  const made = await run(["certs", "init", "--dir", certs, "--nodes", ids.join(","), "--clients", "client", "--admins", "admin"]);
  expect(made.code).toBe(0);
  const first = await startLoneNode(lone, dir.path, "node-1", nodeArgs("node-1", null));
  nodes.set("node-1", first);
  for (const n of await Promise.all(ids.slice(1).map((id) => startLoneNode(lone, dir.path, id, nodeArgs(id, first.peerAddr))))) nodes.set(n.id, n);
});

afterAll(() => {
  for (const n of nodes.values()) n.proc.kill("SIGKILL");
  dir.cleanup();
});

/** One ServerReflectionInfo stream (v1 or v1alpha): sends each request, collects one answer per request. */
async function reflect(addr: string, tls: ChannelTls, requests: ReflectionRequestWire[], version = "v1"): Promise<ReflectionResponseWire[]> {
  const client = new grpc.Client(addr, tls.credentials, tls.options);
  try {
    const call = client.makeBidiStreamRequest<ReflectionRequestWire, ReflectionResponseWire>(
      `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      reflectionCodec.encodeRequest,
      reflectionCodec.decodeResponse,
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
    );
    const answers: ReflectionResponseWire[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (r: ReflectionResponseWire) => answers.push(r));
      call.on("end", () => resolve());
      call.on("error", reject);
    });
    for (const r of requests) call.write(r);
    call.end();
    await done;
    return answers;
  } finally {
    client.close();
  }
}

/** What a generic client does with the answer: load the descriptors into a fresh schema. */
function schemaOf(answer: ReflectionResponseWire): protobuf.Root {
  const files = (answer.fileDescriptorResponse?.fileDescriptorProto ?? []).map(
    (b) => descriptor.FileDescriptorProto.decode(Uint8Array.from(b)) as unknown as descriptor.IFileDescriptorProto,
  );
  return protobuf.Root.fromDescriptor({ file: files }, { keepCase: true });
}

describe("gRPC server reflection from the lone binary", () => {
  test(`the client port lists and describes its services over mTLS${"" /* hidden tree noted in the log */}`, async () => {
    console.error(`reflection test: source tree hidden from the nodes: ${lone.hidden}`);
    const n = nodes.get("node-1")!;
    const tls = clientChannelTls(await loadTlsDir(certs, "client"), "127.0.0.1");
    const [list, svc, msg, missing] = await reflect(n.clientAddr, tls, [
      { listServices: "*" },
      { fileContainingSymbol: "imdb.v1.ClientService" },
      { fileContainingSymbol: "imdb.v1.GetResponse" },
      { fileContainingSymbol: "imdb.v1.NoSuchThing" },
    ]);
    expect((list?.listServicesResponse?.service ?? []).map((s) => s.name).sort()).toEqual([
      "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
      "imdb.v1.AdminService", "imdb.v1.ClientService",
    ]);
    // `grpcurl describe imdb.v1.ClientService`: the methods with their message types, resolvable.
    const schema = schemaOf(svc!);
    const service = schema.lookupService("imdb.v1.ClientService");
    expect(Object.keys(service.methods)).toContain("Get");
    expect(Object.keys(service.methods)).toContain("HIncrBy");
    const get = service.methods["Get"]!;
    get.resolve();
    expect(get.resolvedRequestType?.fullName).toBe(".imdb.v1.GetRequest");
    expect(get.resolvedResponseType?.fields["key"]?.type).toBe("bytes");
    // Field names are the .proto's (snake_case), as protoc would describe them.
    expect(Object.keys(schema.lookupType("imdb.v1.IncrementRequest").fields)).toContain("request_id");
    expect(schemaOf(msg!).lookupType("imdb.v1.GetResponse").fields["conflicts"]?.resolve().resolvedType?.fullName).toBe(".imdb.v1.GetResponse");
    expect(missing?.errorResponse?.errorCode).toBe(grpc.status.NOT_FOUND);
  });

  test("older clients (v1alpha) and the peer port answer too", async () => {
    const n = nodes.get("node-2")!;
    const client = clientChannelTls(await loadTlsDir(certs, "client"), "127.0.0.1");
    const [alpha] = await reflect(n.clientAddr, client, [{ fileByFilename: "imdb/v1/imdb.proto" }], "v1alpha");
    expect(schemaOf(alpha!).lookupService("imdb.v1.AdminService").methods["Snapshot"]).toBeDefined();
    const peer = peerChannelTls(await loadTlsDir(certs, "node-1"), "node-2", () => undefined);
    const [list] = await reflect(n.peerAddr, peer, [{ listServices: "" }]);
    expect((list?.listServicesResponse?.service ?? []).map((s) => s.name)).toContain("imdb.v1.NodeService");
    expect((list?.listServicesResponse?.service ?? []).map((s) => s.name)).not.toContain("imdb.v1.ClientService");
  });
});

async function scrape(n: NodeProc): Promise<string> {
  const res = await fetch(`http://${n.metricsAddr}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

describe("/metrics of a running node", () => {
  test("serves client traffic first (so every family has samples)", async () => {
    const c = new ImdbClient({ server: nodes.get("node-1")!.clientAddr, tls: await loadTlsDir(certs, "client") });
    try {
      for (let i = 0; i < 5; i++) await c.increment(`inside-${i}`, 1n);
    } finally {
      c.close();
    }
    await waitFor("node-1 to count its ops", async () => (sample(await scrape(nodes.get("node-1")!), "imdb_ops_total", { op: "increment", status: "OK" }) ?? 0) >= 5);
  });

  const tool = promtool();
  test.skipIf(tool === null)("passes promtool check metrics with no warnings", async () => {
    const r = checkMetrics(tool!, await scrape(nodes.get("node-1")!));
    expect(r.problems).toBe("");
    expect(r.code).toBe(0);
  });

  test("reports its build, its certificates' expiry and true memory figures", async () => {
    const text = await scrape(nodes.get("node-1")!);
    expect(text).toMatch(/^imdb_build_info\{version="\d+\.\d+\.\d+",commit="[0-9a-f]{7,}",bun="\d+\.\d+\.\d+"\} 1$/m);
    const nodeExpiry = sample(text, "imdb_tls_cert_expiry_timestamp_seconds", { cert: "node", subject: "node-1" })!;
    expect(nodeExpiry).toBeGreaterThan(Date.now() / 1000 + 300 * 86400);
    expect(sample(text, "imdb_tls_cert_expiry_timestamp_seconds", { cert: "ca" })).toBeGreaterThan(Date.now() / 1000);
    const rss = sample(text, "imdb_process_resident_memory_bytes")!;
    // The node collects garbage after recovery, so the live-heap figure is real, and below RSS.
    expect(sample(text, "imdb_js_heap_live_bytes_at_last_gc")!).toBeGreaterThan(1e5);
    expect(sample(text, "imdb_js_heap_live_bytes_at_last_gc")!).toBeLessThan(rss);
    expect(text).not.toContain("imdb_nodejs_");
  });
});

/** Metric names a PromQL expression reads (functions, label matchers, ranges and grouping left out). */
function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  return [...stripped.matchAll(/\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()/g)].map((m) => m[0]);
}

describe("docs/grafana-dashboard.json", () => {
  test("every metric its queries use is exported by a running node", async () => {
    const dash = JSON.parse(readFileSync(join(repoRoot, "docs", "grafana-dashboard.json"), "utf8")) as {
      panels: { title: string; targets: { expr: string }[] }[];
      templating: { list: { query: string }[] };
    };
    const exprs = [...dash.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dash.templating.list.map((v) => v.query.replace(/^label_values\((.*),\s*\w+\)$/, "$1"))];
    const used = new Set(exprs.flatMap(metricNamesOf));
    expect(used.size).toBeGreaterThan(20);
    const text = await scrape(nodes.get("node-1")!);
    const samples = new Set(text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]));
    const histograms = new Set([...text.matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1]!));
    const exported = (name: string): boolean =>
      samples.has(name) || [..."_bucket _sum _count".split(" ")].some((suffix) => name.endsWith(suffix) && histograms.has(name.slice(0, -suffix.length)));
    expect([...used].filter((n) => !exported(n))).toEqual([]);
    // Each panel queries something.
    for (const p of dash.panels) expect(p.targets.length).toBeGreaterThan(0);
  });

  test("the name check itself sees through PromQL", () => {
    expect(metricNamesOf('histogram_quantile(0.99, sum by (le, op) (rate(imdb_op_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))')).toEqual(["imdb_op_duration_seconds_bucket"]);
    expect(metricNamesOf('(imdb_tls_cert_expiry_timestamp_seconds{instance=~"a"} - time()) / 86400')).toEqual(["imdb_tls_cert_expiry_timestamp_seconds"]);
  });
});

describe("the web console in headless Chromium", () => {
  const binary = chromiumBinary();
  test.skipIf(binary === null)("shows the live member list and follows a node's death", async () => {
    const browser = await Browser.launch(binary!);
    try {
      const n1 = nodes.get("node-1")!;
      await browser.navigate(`http://${n1.metricsAddr}/`);
      const rows = () => browser.evaluate<[string, string][]>(`[...document.querySelectorAll("#members tr")].map((r) => [r.dataset.member, r.dataset.state])`);
      await waitFor("the console to list 3 alive members", async () => {
        const r = await rows();
        return r.length === 3 && r.every(([, state]) => state === "alive") && r.map(([id]) => id).sort().join() === ids.join();
      }, 30_000, 200);
      expect(await browser.evaluate<string>(`document.getElementById("node-id").textContent`)).toBe("node-1");
      // The keys tile reflects the writes made above.
      await waitFor("the keys tile", async () => Number(await browser.evaluate<string>(`document.getElementById("keys").textContent`)) >= 5, 15_000, 200);

      const victim = nodes.get("node-3")!;
      victim.proc.kill("SIGKILL");
      await victim.proc.exited;
      await waitFor("the console to show node-3 dead", async () => (await rows()).some(([id, state]) => id === "node-3" && state === "dead"), 45_000, 200);
      expect((await rows()).filter(([id]) => id !== "node-3").every(([, state]) => state === "alive")).toBe(true);

      // The dead peer keeps its per-peer series until it is reaped.
      const text = await scrape(n1);
      expect(sample(text, "imdb_peer_replication_lag_seconds", { peer: "node-3" })).toBeDefined();
      expect(sample(text, "imdb_peer_delta_backlog", { peer: "node-3" })).toBeDefined();
      expect(sample(text, "imdb_members", { state: "dead" })).toBe(1);
      expect(sample(text, "imdb_peer_alive", { peer: "node-3" })).toBe(0);
      expect(sample(text, "imdb_peer_alive", { peer: "node-2" })).toBe(1);
    } finally {
      browser.close();
    }
  });
});
