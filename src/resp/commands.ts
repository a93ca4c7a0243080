// PLACEHOLDER, replaced by the resp-commands branch: the Redis command table lives there. This
// stand-in only lets the connection layer and its wiring type-check and run (PING, ECHO, QUIT).
import type { Reply, RespBackend, RespCommands, RespSession } from "./types.ts";

const latin1 = new TextDecoder("latin1");

export function createRespCommands(backend: RespBackend): RespCommands {
  void backend;
  return {
    execute(session: RespSession, args: readonly Uint8Array[]): Reply {
      const name = latin1.decode(args[0]).toUpperCase();
      switch (name) {
        case "PING":
          if (args.length > 2) return { kind: "error", text: "ERR wrong number of arguments for 'ping' command" };
          return args.length === 2 ? { kind: "bulk", value: args[1]! } : { kind: "simple", text: "PONG" };
        case "ECHO":
          if (args.length !== 2) return { kind: "error", text: "ERR wrong number of arguments for 'echo' command" };
          return { kind: "bulk", value: args[1]! };
        case "QUIT":
          session.closeAfterReply = true;
          return { kind: "simple", text: "OK" };
        default:
          return { kind: "error", text: `ERR unknown command '${name.slice(0, 128)}', with args beginning with: ` };
      }
    },
  };
}
