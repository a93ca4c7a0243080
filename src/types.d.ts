// Text imports used to embed .proto files into the compiled binary
// (`import text from "../../proto/x.proto" with { type: "text" }`).
declare module "*.proto" {
  const text: string;
  export default text;
}
