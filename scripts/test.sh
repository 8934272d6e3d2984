#!/usr/bin/env bash
# Installs what Strata needs, builds it, and runs every test: unit and process-level tests (ctest),
# then the core libraries' unit tests under ASan+UBSan. (No TSan run: Debian's Abseil is built
# without TSan annotations, so every absl::Mutex-guarded access reports a false race.)
#   STRATA_SKIP_SANITIZERS=1  runs only the regular build's tests
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
echo "== build (RelWithDebInfo)"
./scripts/build.sh
echo "== ctest: unit and process-level tests"
ctest --test-dir build --output-on-failure -j 2 --timeout 300

if [ "${STRATA_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== ASan+UBSan: core and bench unit tests"
  BUILD_DIR=build-asan STRATA_SANITIZE=address STRATA_TARGETS="common_test cachenode_test clients_test router_test bench_test" \
    ./scripts/build.sh
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan -L unit --output-on-failure -j 2 --timeout 300
fi
echo "== all tests passed"
