#!/usr/bin/env bash
# The whole-system GPU check for a Debian 12 machine with an NVIDIA GPU and the CUDA toolkit (it
# installs the Debian packages, so it needs them reachable; on a bare GPU machine with only the
# toolkit, bench/gpu/run_on_device.sh checks and measures the kernels instead). Builds with CUDA,
# runs the unit tests and the kernels' correctness pass, hands a GPU engine's KV cache to a real node
# over CUDA IPC (kv_handover_process_test), then starts a node with an HBM tier and checks that the
# tier is the real cudaMalloc'ed pool ("hbm", not "hbm(emulated)") and that blocks written from the
# GPU side read back byte-exact through it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
./scripts/install-deps.sh
./scripts/build.sh >/dev/null
ctest --test-dir build -L unit --output-on-failure -j 4 --timeout 300
build/bin/strata-gpu-bench --check-only
KV_LOG=$(build/tests/kv_handover_process_test 2>&1) || { echo "$KV_LOG"; exit 1; }
echo "$KV_LOG" | grep -E '^\[ +(OK|SKIPPED) +\]'
if echo "$KV_LOG" | grep -q 'SKIPPED'; then
  echo "device-check: FAIL: the CUDA IPC hand-over test was skipped on a GPU machine" >&2
  exit 1
fi

DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-device.XXXXXX")
trap 'kill -KILL "$NODE_PID" 2>/dev/null || true; rm -rf "$DATA_DIR"' EXIT
build/bin/strata-cachenode --plaintext --listen 127.0.0.1:0 --data-dir "$DATA_DIR/node" \
  --hbm-bytes 256MiB --dram-bytes 256MiB --ssd-bytes 2GiB >"$DATA_DIR/out" 2>"$DATA_DIR/err" &
NODE_PID=$!
for _ in $(seq 1 300); do
  ADDR=$(sed -n 's/^strata-cachenode serving on //p' "$DATA_DIR/out")
  [ -n "$ADDR" ] && break
  sleep 0.1
done
cat "$DATA_DIR/err"
[ -n "${ADDR:-}" ] || { echo "device-check: node did not start" >&2; exit 1; }
build/bin/strata-bench workload --node "$ADDR" --gpu-chains 4 --chains 8
STATS=$(build/bin/strata --node "$ADDR" stats --output json)
echo "$STATS"
echo "$STATS" | grep -q '"name":"hbm","emulated":false' || {
  echo "device-check: FAIL: the HBM tier is missing or emulated on a GPU machine" >&2
  exit 1
}
kill -TERM "$NODE_PID"
wait "$NODE_PID"
echo "device-check: OK: real HBM tier served the workload"
