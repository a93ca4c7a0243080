// "See inside" (issue 16) on a real 3-node mutual-TLS cluster run from the lone binary with the
// source tree hidden: gRPC server reflection answers a generic client with no .proto files.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protobuf from "protobufjs";
import * as descriptor from "protobufjs/ext/descriptor";
import { reflectionCodec, type ReflectionRequestWire, type ReflectionResponseWire } from "../../src/transport/reflection.ts";
import { clientChannelTls, loadTlsDir, peerChannelTls, type ChannelTls } from "../../src/transport/tls.ts";
import { run, tempDir, type NodeProc } from "./harness.ts";
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
