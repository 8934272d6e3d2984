#!/usr/bin/env bash
# Installs what Strata needs, builds it, and runs every test: unit and process-level tests (ctest,
# the Python client's included), the Helm chart's render-and-validate check, the GPU-only build that
# bench/gpu/run_on_device.sh makes on GPU machines (up to its "no GPU" stop when there is none), and
# the core libraries' unit tests under ASan+UBSan, built without CUDA so that variant is covered
# too. (No TSan run: Debian's Abseil is built without TSan annotations, so every
# absl::Mutex-guarded access reports a false race.)
#   STRATA_SKIP_SANITIZERS=1  runs only the regular build's tests
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
fi
echo "== all tests passed"
