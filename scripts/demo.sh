#!/usr/bin/env bash
# Strata's main job on embedded defaults: installs what it needs, builds, starts a cache node on
# loopback with small tiers, writes and reads back a workload of prefix chains through HBM, DRAM and
# SSD (verifying every byte), prints the node's tier statistics, and stops the node with SIGTERM.
# Arguments go to `strata-bench workload` (e.g. --chains 16 --block-bytes 4MiB).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
./scripts/build.sh >/dev/null
BIN=build/bin

DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-demo.XXXXXX")
NODE_OUT="$DATA_DIR/node.out"
cleanup() {
  if [ -n "${NODE_PID:-}" ] && kill -0 "$NODE_PID" 2>/dev/null; then kill -KILL "$NODE_PID"; fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT

# Small tiers so the workload overflows HBM and DRAM and blocks end up in all three.
"$BIN/strata-cachenode" --listen 127.0.0.1:0 --data-dir "$DATA_DIR/node" \
  --hbm-bytes 32MiB --dram-bytes 64MiB --ssd-bytes 1GiB >"$NODE_OUT" &
NODE_PID=$!
# The node prints its address once it serves; wait for that line (or for the node to die).
ADDR=""
for _ in $(seq 1 300); do
  ADDR=$(sed -n 's/^strata-cachenode serving on //p' "$NODE_OUT")
  [ -n "$ADDR" ] && break
  kill -0 "$NODE_PID" 2>/dev/null || { echo "demo: node exited during start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "demo: node did not start" >&2; exit 1; }
echo "demo: node serving on $ADDR (data in $DATA_DIR/node)"

# Writes, reads back and verifies the workload, then prints the node's tier statistics.
"$BIN/strata-bench" workload --node "$ADDR" "$@"

kill -TERM "$NODE_PID"
wait "$NODE_PID"
echo "demo: node drained and exited 0"
