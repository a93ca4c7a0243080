// The node's side of the cluster: owns the peer client and the cluster driver, feeds local
// deltas out and remote deltas/states into the engine (logging them to the WAL first).
import type { NodeConfig } from "../config/config.ts";
import type { Engine } from "../engine/index.ts";
import type { Store } from "../persist/index.ts";
import type { MemberView } from "../transport/api.ts";
import { OpFailure } from "../transport/api.ts";
import type { TlsMaterial } from "../transport/tls.ts";
import type { Logger } from "./log.ts";

export interface ClusterHostOptions {
  cfg: NodeConfig;
  engine: Engine;
  store: Store;
  log: Logger;
  now: () => number;
  tls: TlsMaterial | null;
}

export class ClusterHost {
  private peerPort = 0;
  private skew = 0;

  constructor(private readonly o: ClusterHostOptions) {}

  start(peerPort: number): void {
    this.peerPort = peerPort;
  }

  /** Local deltas, already applied and appended to the WAL, to push to every live peer. */
  broadcast(_deltas: readonly Uint8Array[]): void {}

  receive(_fromId: string, _payload: Uint8Array): Uint8Array {
    throw new OpFailure("UNAVAILABLE", "cluster not running");
  }

  members(): MemberView[] {
    const [host] = this.o.cfg.peerAddr.split(/:(?=\d+$)/);
    return [{ id: this.o.cfg.id, address: `${host}:${this.peerPort}`, status: "alive", incarnation: 0 }];
  }

  skewEvents(): number {
    return this.skew;
  }

  async leave(): Promise<void> {}

  reloadTls(_tls: TlsMaterial): void {}

  async stop(): Promise<void> {}
}
