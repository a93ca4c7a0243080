#!/usr/bin/env bash
# One terminal per node: run `scripts/run-cluster.sh 1`, `scripts/run-cluster.sh 2`, ... in
# separate terminals (N nodes, default 3). Node 1 starts the cluster; the others join it.
# Certificates, configs and data live under ./data/cluster, as with `imdb cluster`.
set -euo pipefail
cd "$(dirname "$0")/.."
i="${1:?usage: scripts/run-cluster.sh NODE_INDEX [NODES]   (e.g. 1, 2, 3 in three terminals)}"
n="${2:-3}"
dir="${IMDB_CLUSTER_DIR:-./data/cluster}"
if [ -x dist/imdb ]; then imdb=(dist/imdb); else imdb=(npx bun src/cli/main.ts); fi
if [ ! -f "$dir/certs/node-$i.crt" ]; then
  nodes=$(seq -s, -f 'node-%g' 1 "$n")
  "${imdb[@]}" certs init --dir "$dir/certs" --nodes "$nodes" --clients client --admins admin --force
fi
seeds=""
[ "$i" != 1 ] && seeds="127.0.0.1:7000"
exec "${imdb[@]}" node --id "node-$i" --data-dir "$dir/node-$i" --tls-dir "$dir/certs" \
  --peer-addr "127.0.0.1:$((7000 + i - 1))" --client-addr "127.0.0.1:$((7100 + i - 1))" \
  --resp-addr "127.0.0.1:$((7200 + i - 1))" --seeds "$seeds"
