// The cluster layer's public surface: what the node, the driver and the simulator import.

export { Cluster, type ClusterOptions, type ClusterStatus } from "./cluster.ts";
export { defaultLanConfig, validateClusterConfig, ClusterConfigError, type ClusterConfig } from "./config.ts";
export type { ReplicaStore } from "./store.ts";
export {
  asIncarnation, asNodeId, type ClusterEvent, type Env, type Incarnation, type MemberStatus, type MemberView, type NodeId, type Outbound,
} from "./types.ts";
export { decodeEnvelope, encodeEnvelope, envelopeBytesMax, wireVersion, WireError, type WireErrorCode } from "./wire.ts";
export { suspicionMinTimeoutMs } from "./suspicion.ts";
