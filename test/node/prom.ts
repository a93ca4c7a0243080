// Reading Prometheus text in tests: the metric families issue 8 requires, and one sample's value.

/** The families issue 8 asks for (each must appear as a # TYPE line). */
export const requiredFamilies = [
  ["imdb_ops_total", "counter"],
  ["imdb_op_duration_seconds", "histogram"],
  ["imdb_wal_fsync_duration_seconds", "histogram"],
  ["imdb_wal_group_records", "histogram"],
  ["imdb_snapshot_duration_seconds", "histogram"],
  ["imdb_snapshot_bytes", "gauge"],
  ["imdb_members", "gauge"],
  ["imdb_peer_delta_backlog", "gauge"],
  ["imdb_peer_replication_lag_seconds", "gauge"],
  ["imdb_antientropy_rounds_total", "counter"],
  ["imdb_antientropy_bytes_total", "counter"],
  ["imdb_antientropy_keys_repaired_total", "counter"],
  ["imdb_clock_skew_events_total", "counter"],
  ["imdb_accel_path", "gauge"],
  ["imdb_process_resident_memory_bytes", "gauge"],
  ["imdb_process_cpu_seconds_total", "counter"],
] as const;

/** Value of the sample `name{labels}` in Prometheus text, or undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const pair of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[pair[1] as string] = pair[2] as string;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}
