// gRPC server reflection (grpc.reflection.v1 and v1alpha), so grpcurl, Postman and other
// generic clients can list and describe our services with no .proto files. The descriptors are
// built at start-up from the .proto texts embedded in the binary (never read from disk).
//
// Why not @grpc/reflection: it loads its own reflection.proto from __dirname at runtime (absent
// in the single compiled binary), wants a proto-loader PackageDefinition (we use protobufjs
// directly) and brings a second protobufjs major. The protocol is small; protobufjs already
// turns our parsed protos into FileDescriptorProtos (ext/descriptor).

import * as grpc from "@grpc/grpc-js";
import * as protobuf from "protobufjs";
import * as descriptor from "protobufjs/ext/descriptor";
import healthProtoText from "../../proto/health.proto" with { type: "text" };
import imdbProtoText from "../../proto/imdb.proto" with { type: "text" };
import reflectionProtoText from "../../proto/reflection.proto" with { type: "text" };

/** Requests one reflection stream may carry (grpcurl sends a handful); past it the stream ends RESOURCE_EXHAUSTED. */
export const reflectionRequestsPerStreamMax = 1024;
/** Length of a symbol or file name accepted in a request; longer ones are answered NOT_FOUND. */
export const reflectionNameCharsMax = 512;

export const reflectionServices = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] as const;

/** The embedded sources served, by the file name clients see. v1alpha is v1 under another package. */
const sources: readonly { name: string; text: string }[] = [
  { name: "imdb/v1/imdb.proto", text: imdbProtoText },
  { name: "grpc/health/v1/health.proto", text: healthProtoText },
  { name: "grpc/reflection/v1/reflection.proto", text: reflectionProtoText },
  { name: "grpc/reflection/v1alpha/reflection.proto", text: reflectionProtoText.replace(/^package grpc\.reflection\.v1;/m, "package grpc.reflection.v1alpha;") },
];

interface DescribedFile {
  name: string;
  package: string;
  /** Serialized google.protobuf.FileDescriptorProto. */
  bytes: Uint8Array;
  /** The parsed file, to look symbols up in. */
  root: protobuf.Root;
}

interface FieldDescriptorShape { name?: string | null; typeName?: string | null }
interface MessageDescriptorShape { name?: string | null; field?: FieldDescriptorShape[] | null; nestedType?: MessageDescriptorShape[] | null }

/** protobufjs writes type references relative to the message; protoc (and strict clients) use ".pkg.Name". */
function qualifyTypeNames(msg: MessageDescriptorShape, type: protobuf.Type): void {
  for (const f of msg.field ?? []) {
    if (f.typeName === undefined || f.typeName === null || f.typeName === "" || f.typeName.startsWith(".")) continue;
    const resolved = f.name === undefined || f.name === null ? undefined : type.fields[f.name]?.resolve().resolvedType;
    if (resolved === undefined || resolved === null) throw new Error(`assertion failed: reflection cannot resolve ${type.fullName}.${f.name}`);
    f.typeName = resolved.fullName;
  }
  for (const nested of msg.nestedType ?? []) {
    const inner = nested.name === undefined || nested.name === null ? null : type.get(nested.name);
    if (inner instanceof protobuf.Type) qualifyTypeNames(nested, inner);
  }
}

function describe(source: { name: string; text: string }): DescribedFile {
  const root = new protobuf.Root();
  // keepCase: descriptors carry the .proto field names (snake_case), as protoc would.
  const parsed = protobuf.parse(source.text, root, { keepCase: true });
  root.resolveAll();
  const pkg = parsed.package ?? "";
  const set = root.toDescriptor("proto3");
  const file = set.file.find((f) => f.package === pkg);
  if (file === undefined || set.file.length !== 1) throw new Error(`assertion failed: ${source.name} should describe one file of package ${pkg}`);
  file.name = source.name;
  for (const m of file.messageType ?? []) qualifyTypeNames(m, root.lookupType(`${pkg}.${m.name}`));
  return { name: source.name, package: pkg, bytes: descriptor.FileDescriptorProto.encode(file).finish(), root };
}

let described: readonly DescribedFile[] | null = null;
/** Built once, on first use (a few ms), then shared by every server of the process. */
function files(): readonly DescribedFile[] {
  described ??= sources.map(describe);
  return described;
}

const wireRoot = new protobuf.Root();
protobuf.parse(reflectionProtoText, wireRoot);
wireRoot.resolveAll();
const requestType = wireRoot.lookupType("grpc.reflection.v1.ServerReflectionRequest");
const responseType = wireRoot.lookupType("grpc.reflection.v1.ServerReflectionResponse");

export interface ReflectionRequestWire {
  host?: string;
  messageRequest?: (typeof requestKinds)[number];
  fileByFilename?: string;
  fileContainingSymbol?: string;
  fileContainingExtension?: { containingType?: string; extensionNumber?: number };
  allExtensionNumbersOfType?: string;
  listServices?: string;
}
export interface ReflectionResponseWire {
  validHost?: string;
  originalRequest?: ReflectionRequestWire;
  fileDescriptorResponse?: { fileDescriptorProto: Uint8Array[] };
  listServicesResponse?: { service: { name: string }[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

export const reflectionCodec = {
  encodeRequest: (m: ReflectionRequestWire): Buffer => Buffer.from(requestType.encode(requestType.fromObject(m)).finish()),
  decodeRequest: (b: Uint8Array): ReflectionRequestWire =>
    requestType.toObject(requestType.decode(b), { oneofs: true, defaults: false }) as ReflectionRequestWire,
  encodeResponse: (m: ReflectionResponseWire): Buffer => Buffer.from(responseType.encode(responseType.fromObject(m)).finish()),
  decodeResponse: (b: Uint8Array): ReflectionResponseWire =>
    responseType.toObject(responseType.decode(b), { oneofs: true, defaults: false, bytes: Array }) as ReflectionResponseWire,
};

/** The file declaring a fully-qualified symbol (a service, method, message, enum or field), or undefined. */
function fileOfSymbol(symbol: string): DescribedFile | undefined {
  if (symbol.length > reflectionNameCharsMax) return undefined;
  const name = symbol.startsWith(".") ? symbol.slice(1) : symbol;
  for (const f of files()) {
    if (name.startsWith(f.package + ".") && f.root.lookup(name) !== null) return f;
  }
  return undefined;
}

const requestKinds = ["fileByFilename", "fileContainingSymbol", "fileContainingExtension", "allExtensionNumbersOfType", "listServices"] as const;

/** Answers one request; `services` are the names this server registered (reflection included). */
export function answerReflection(req: ReflectionRequestWire, services: readonly string[]): ReflectionResponseWire {
  const base: ReflectionResponseWire = { validHost: req.host ?? "", originalRequest: req };
  const notFound = (what: string): ReflectionResponseWire => ({ ...base, errorResponse: { errorCode: grpc.status.NOT_FOUND, errorMessage: what } });
  const one = (f: DescribedFile): ReflectionResponseWire => ({ ...base, fileDescriptorResponse: { fileDescriptorProto: [f.bytes] } });
  // The decoder names the oneof case; a request built by hand may only set the field.
  const kind = req.messageRequest ?? requestKinds.find((k) => req[k] !== undefined);
  switch (kind) {
    case "listServices":
      return { ...base, listServicesResponse: { service: services.map((name) => ({ name })) } };
    case "fileByFilename": {
      const f = files().find((x) => x.name === req.fileByFilename);
      return f === undefined ? notFound(`file not found: ${req.fileByFilename ?? ""}`) : one(f);
    }
    case "fileContainingSymbol": {
      const f = fileOfSymbol(req.fileContainingSymbol ?? "");
      return f === undefined ? notFound(`symbol not found: ${req.fileContainingSymbol ?? ""}`) : one(f);
    }
    case "fileContainingExtension":
    case "allExtensionNumbersOfType":
      // Our protos declare no extensions.
      return notFound("this server declares no extensions");
    case undefined:
      return { ...base, errorResponse: { errorCode: grpc.status.INVALID_ARGUMENT, errorMessage: "empty reflection request" } };
  }
}

/** Both reflection services for a grpc-js server whose other services are `services`. */
export function addReflection(server: grpc.Server, services: readonly string[]): void {
  const listed = [...services, ...reflectionServices];
  for (const service of reflectionServices) {
    const definition: grpc.ServiceDefinition = {
      ServerReflectionInfo: {
        path: `/${service}/ServerReflectionInfo`,
        requestStream: true,
        responseStream: true,
        requestSerialize: reflectionCodec.encodeRequest,
        requestDeserialize: reflectionCodec.decodeRequest,
        responseSerialize: reflectionCodec.encodeResponse,
        responseDeserialize: reflectionCodec.decodeResponse,
        originalName: "serverReflectionInfo",
      },
    };
    server.addService(definition, {
      ServerReflectionInfo: (call: grpc.ServerDuplexStream<ReflectionRequestWire, ReflectionResponseWire>) => {
        let answered = 0;
        call.on("data", (req: ReflectionRequestWire) => {
          if (answered > reflectionRequestsPerStreamMax) return;
          if (++answered > reflectionRequestsPerStreamMax) {
            call.emit("error", { code: grpc.status.RESOURCE_EXHAUSTED, details: `more than ${reflectionRequestsPerStreamMax} requests on one reflection stream` });
            return;
          }
          call.write(answerReflection(req, listed));
        });
        call.on("end", () => call.end());
      },
    });
  }
}
