#!/usr/bin/env bash
# Installs what Strata needs, builds it, and runs every test: unit and process-level tests (ctest,
# the Python client's included), the Helm chart's render-and-validate check, the GPU-only build that
# bench/gpu/run_on_device.sh makes on GPU machines (up to its "no GPU" stop when there is none), and
# the core libraries' unit tests under ASan+UBSan and their concurrency under TSan, both built
# without CUDA so that variant is covered too, and a bounded run of every fuzz target
# (scripts/fuzz.sh). tests/RELIABILITY.md says what each reliability test promises.
#   STRATA_SKIP_SANITIZERS=1  runs only the regular build's tests (no ASan, TSan or fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
echo "== build (RelWithDebInfo)"
./scripts/build.sh
echo "== ctest: unit and process-level tests"
if [ -e build/cachenode/gpu/CMakeFiles/strata_gpu.dir/kv_cuda.cu.o ]; then
  echo "== CUDA kernels: built (sm_90 + compute_75 PTX); without a GPU they run in no test here"
else
  echo "== CUDA kernels: NOT built (no CUDA toolkit at /usr/local/cuda); the GPU code is emulated"
fi
ctest --test-dir build --output-on-failure -j 2 --timeout 300

echo "== Helm chart: render every template and validate (scripts/check-helm.sh)"
./scripts/check-helm.sh

if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null 2>&1; then
  echo "== GPU-only build: bench/gpu/run_on_device.sh (stops at 'no usable GPU' without one)"
  rc=0
  STRATA_GPU_BUILD_DIR=build-gpu-only STRATA_GPU_BENCH_OUT=build-gpu-only/results \
    bench/gpu/run_on_device.sh || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    echo "run_on_device.sh failed with status $rc" >&2
    exit 1
  fi
fi

if [ "${STRATA_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== ASan+UBSan: core and bench unit tests"
  BUILD_DIR=build-asan STRATA_SANITIZE=address STRATA_ENABLE_CUDA=OFF \
    STRATA_TARGETS="common_test gpu_test cachenode_test clients_test router_test bench_test" \
    ./scripts/build.sh
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan -L unit -E '^python_client' --output-on-failure -j 2 --timeout 300
  # (The Python client's tests need the stubs of the regular build, where they ran; no C++ of this
  # build is in them.)

  echo "== TSan: the core's own concurrency (tiers, store, arena, shm and RESP planes, router core)"
  BUILD_DIR=build-tsan STRATA_SANITIZE=thread STRATA_ENABLE_CUDA=OFF \
    STRATA_TARGETS="tsan_canary common_test cachenode_test router_test" ./scripts/build.sh
  ctest --test-dir build-tsan -L tsan_canary --output-on-failure
  # Left out: suites that cross gRPC's or ZeroMQ's threads (those libraries are not built with TSan,
  # so their hand-offs show as races), and the chain-hash vectors test (protobuf's Map changes
  # layout under TSan in the headers but not in Debian's library).
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tsan/suppressions.txt"
  build-tsan/tests/common_test --gtest_filter='-BlockHashVectorsTest.*'
  build-tsan/tests/cachenode_test --gtest_filter='-CacheNodeService*:RouterLinkTest.*'
  build-tsan/tests/router_test --gtest_filter='-RouterServiceTest.*:VllmSubscriber*'
  unset TSAN_OPTIONS

  echo "== fuzz: every libFuzzer target for a bounded time (scripts/fuzz.sh)"
  ./scripts/fuzz.sh
fi
echo "== all tests passed"
