#!/usr/bin/env bash
# Strata's main job on embedded defaults: installs what it needs, builds, generates a workload
# (multi-turn chats, shared documents, agents), then replays it live against a local cluster: one
# strata-router and three strata-cachenode processes on loopback, with simulated H100 engines
# making real Route calls and real Put/Get of scaled-down KV blocks, under an A/B experiment
# (locality vs round_robin). Prints the comparison table; the processes are stopped at the end
# (and on Ctrl-C).
# Arguments go to `strata-bench replay` (e.g. --nodes 4 --speedup 8 --output json).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
./scripts/build.sh >/dev/null
BIN=build/bin

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# 400 requests at 8 per second: about 50 s of traffic, replayed 4x faster than real time.
"$BIN/strata-bench" gen --requests 400 --rate 8 --seed 1 --out "$WORK/trace.jsonl"

# A smaller HBM than an H100's (8 GiB of KV per node) so the DRAM and SSD tiers take part.
"$BIN/strata-bench" replay --trace "$WORK/trace.jsonl" --mode live --nodes 3 \
  --experiment 'locality=50,round_robin=50' --hbm-capacity 8GiB --speedup 4 "$@"
