// The reflection answers themselves (the wire is tested against the lone binary in
// test/integration/inside.test.ts): every file named, every symbol kind found, clear errors.
import { describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import * as protobuf from "protobufjs";
import * as descriptor from "protobufjs/ext/descriptor";
import { answerReflection, reflectionCodec, reflectionNameCharsMax } from "../../src/transport/reflection.ts";

const services = ["imdb.v1.ClientService", "grpc.health.v1.Health"];

function fileOf(symbol: string): descriptor.IFileDescriptorProto {
  const r = answerReflection({ fileContainingSymbol: symbol }, services);
  const bytes = r.fileDescriptorResponse?.fileDescriptorProto ?? [];
  expect(bytes.length).toBe(1);
  return descriptor.FileDescriptorProto.decode(bytes[0]!) as unknown as descriptor.IFileDescriptorProto;
}

describe("server reflection answers", () => {
  test("services, methods, messages, nested enums and fields resolve to their file", () => {
    expect(fileOf("imdb.v1.ClientService").name).toBe("imdb/v1/imdb.proto");
    expect(fileOf("imdb.v1.ClientService.Get").name).toBe("imdb/v1/imdb.proto");
    expect(fileOf(".imdb.v1.GetResponse").name).toBe("imdb/v1/imdb.proto");
    expect(fileOf("grpc.health.v1.HealthCheckResponse.ServingStatus").name).toBe("grpc/health/v1/health.proto");
    expect(fileOf("grpc.reflection.v1alpha.ServerReflection").package).toBe("grpc.reflection.v1alpha");
  });

  test("type references are fully qualified, as protoc writes them", () => {
    const f = fileOf("imdb.v1.GetResponse");
    const get = f.messageType?.find((m) => m.name === "GetResponse");
    expect(get?.field?.find((x) => x.name === "conflicts")?.typeName).toBe(".imdb.v1.GetResponse");
    expect(get?.field?.find((x) => x.name === "type")?.typeName).toBe(".imdb.v1.ValueType");
    // And the file loads on its own into a schema a generic client can use.
    const root = protobuf.Root.fromDescriptor({ file: [f] }, { keepCase: true });
    expect(root.lookupType("imdb.v1.HSetRequest").fields["request_id"]?.type).toBe("bytes");
  });

  test("unknown names, extensions and empty requests get clear errors", () => {
    expect(answerReflection({ fileContainingSymbol: "imdb.v1.Nope" }, services).errorResponse?.errorCode).toBe(grpc.status.NOT_FOUND);
    expect(answerReflection({ fileContainingSymbol: "imdb.v1." + "x".repeat(reflectionNameCharsMax) }, services).errorResponse?.errorCode).toBe(grpc.status.NOT_FOUND);
    expect(answerReflection({ fileByFilename: "nope.proto" }, services).errorResponse?.errorMessage).toBe("file not found: nope.proto");
    expect(answerReflection({ messageRequest: "fileContainingExtension", fileContainingExtension: { containingType: "imdb.v1.GetRequest", extensionNumber: 100 } }, services).errorResponse?.errorCode).toBe(grpc.status.NOT_FOUND);
    expect(answerReflection({}, services).errorResponse?.errorCode).toBe(grpc.status.INVALID_ARGUMENT);
  });

  test("the request round-trips through the wire codec with its oneof named", () => {
    const back = reflectionCodec.decodeRequest(reflectionCodec.encodeRequest({ host: "h", fileContainingSymbol: "imdb.v1.ClientService" }));
    expect(back.messageRequest).toBe("fileContainingSymbol");
    expect(answerReflection(back, services).validHost).toBe("h");
    const list = answerReflection(reflectionCodec.decodeRequest(reflectionCodec.encodeRequest({ listServices: "" })), services);
    expect(list.listServicesResponse?.service.map((s) => s.name)).toEqual(services);
  });
});
