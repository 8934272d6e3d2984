#!/usr/bin/env bash
# Configures and builds Strata into BUILD_DIR (default: build/). Binaries land in build/bin/.
#   STRATA_SANITIZE=address|thread  builds with sanitizers (use another BUILD_DIR)
#   STRATA_TARGETS="a b"             builds only these targets
#   STRATA_FAIL_POINTS=OFF           leaves the test-only fail points out (a release build)
#   STRATA_ENABLE_CUDA=OFF           skips the CUDA sources even where the toolkit is installed
#                                    (the GPU code then reports itself unavailable and emulates)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
  -DSTRATA_SANITIZE="${STRATA_SANITIZE:-}" -DSTRATA_ENABLE_CUDA="${STRATA_ENABLE_CUDA:-ON}" \
  -DSTRATA_FAIL_POINTS="${STRATA_FAIL_POINTS:-ON}" >/dev/null
# shellcheck disable=SC2086
ninja -C "$BUILD_DIR" -j "$JOBS" ${STRATA_TARGETS:-}
