// Test helper shared by the transport and chaos suites: the gRPC status name a call ended with.
import { RpcError } from "../../src/transport/client.ts";

/** "OK", or the status name (e.g. "PERMISSION_DENIED") of the RpcError the call failed with; other errors are rethrown. */
export async function rpcStatus(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (err) {
    if (err instanceof RpcError) return err.codeName;
    throw err;
  }
}
