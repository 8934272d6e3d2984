#!/usr/bin/env bash
# One go of strata-gpu-bench on a bare GPU machine (CUDA toolkit, CMake, a C++ compiler; Ninja if
# present, make otherwise; no network, no Debian libraries). About 2-4 minutes on an H100 with 16
# cores; every step has a time limit so the whole stays within ~6 minutes.
#
#   bench/gpu/run_on_device.sh            # from anywhere; builds in <repo>/build-gpu
#
# Steps: nvidia-smi line; configure (STRATA_GPU_ONLY, Release, -Xptxas -v) and build; a quick
# correctness run (stops here with status 3 when there is no usable GPU); the same under
# compute-sanitizer memcheck and racecheck when compute-sanitizer exists; the full bench; the
# ptxas resource report and the kernels' SASS (16-byte LDG.E.128/STG.E.128 counted) into the out
# folder; the short table last. Later steps run even when an earlier check failed, so one run
# brings back everything; the status says what failed.
#
# Environment: STRATA_GPU_BENCH_OUT (results; default $OUT if set, else ./gpu-bench-results),
# STRATA_GPU_BUILD_DIR (default <repo>/build-gpu).
# Exit status: 0 all passed; 1 a check, a sanitizer or the bench failed; 3 no usable GPU (the CPU
# cross-check ran); 4 configure or build failed.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${STRATA_GPU_BUILD_DIR:-$ROOT/build-gpu}"
OUT_DIR="${STRATA_GPU_BENCH_OUT:-${OUT:-$PWD/gpu-bench-results}}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
export STRATA_GPU_BENCH_OUT="$OUT_DIR"
SUMMARY="$OUT_DIR/run-summary.txt"
: >"$SUMMARY"
failed=0

say() { echo "run_on_device: $*" | tee -a "$SUMMARY"; }
elapsed() { echo "$((SECONDS))s"; }

# ---- the machine
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi >"$OUT_DIR/nvidia-smi.txt" 2>&1
  say "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.max,pcie.link.width.max,clocks.max.sm \
    --format=csv,noheader 2>&1 | head -n 4 | tr '\n' ';')"
else
  say "nvidia-smi: not found"
fi
NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
CUDA_BIN="$(dirname "${NVCC:-/usr/local/cuda/bin/nvcc}")"
{
  echo "nproc: $(nproc)"
  cmake --version | head -n 1
  "${NVCC:-nvcc}" --version 2>&1 | tail -n 2
  "${CXX:-c++}" --version 2>&1 | head -n 1
} >"$OUT_DIR/toolchain.txt" 2>&1

# ---- configure and build
if command -v ninja >/dev/null 2>&1; then GEN="Ninja"; else GEN="Unix Makefiles"; fi
if [ -f "$BUILD/CMakeCache.txt" ] &&
  ! grep -q "^CMAKE_GENERATOR:INTERNAL=$GEN\$" "$BUILD/CMakeCache.txt"; then
  say "removing $BUILD: configured with another generator"
  rm -rf "$BUILD"
fi
say "configure ($GEN) in $BUILD"
if ! cmake -S "$ROOT" -B "$BUILD" -G "$GEN" -DSTRATA_GPU_ONLY=ON -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_FLAGS="-Xptxas -v" ${NVCC:+-DCMAKE_CUDA_COMPILER="$NVCC"} \
  >"$OUT_DIR/configure.log" 2>&1; then
  tail -n 30 "$OUT_DIR/configure.log"
  say "FAILED: configure (log: $OUT_DIR/configure.log)"
  exit 4
fi
say "build with $(nproc) jobs"
if ! cmake --build "$BUILD" -j "$(nproc)" --target strata-gpu-bench >"$OUT_DIR/build.log" 2>&1; then
  grep -E "error|Error" "$OUT_DIR/build.log" | head -n 30
  say "FAILED: build (log: $OUT_DIR/build.log)"
  exit 4
fi
say "built in $(elapsed)"
BENCH="$BUILD/bin/strata-gpu-bench"
# ptxas -v: registers, spills and stack of every kernel, read without device time.
# Kept in the build folder too: an up-to-date build compiles nothing and prints no report.
if grep -E "ptxas info|bytes stack frame|ptxas warning" "$OUT_DIR/build.log" >"$OUT_DIR/ptxas-resource-usage.txt"; then
  cp "$OUT_DIR/ptxas-resource-usage.txt" "$BUILD/ptxas-resource-usage.txt"
elif [ -s "$BUILD/ptxas-resource-usage.txt" ]; then
  cp "$BUILD/ptxas-resource-usage.txt" "$OUT_DIR/ptxas-resource-usage.txt"
  say "ptxas: nothing recompiled; the report of the last build that compiled the kernels"
fi
if [ -s "$OUT_DIR/ptxas-resource-usage.txt" ]; then
  regs="$(grep -Eo 'Used [0-9]+ registers' "$OUT_DIR/ptxas-resource-usage.txt" | awk '{print $2}' | paste -sd, -)"
  spill="$(grep -Eo '[0-9]+ bytes spill (stores|loads)' "$OUT_DIR/ptxas-resource-usage.txt" |
    awk '{s += $1} END {print s + 0}')"
  say "ptxas: registers per kernel ${regs:-?}; spill bytes in all ${spill} (file ptxas-resource-usage.txt)"
else
  say "ptxas: no resource report (kernels not recompiled since this folder was configured without -Xptxas -v)"
fi

# SASS: the kernels' 16-byte global accesses (needs no GPU).
CUOBJDUMP="$(command -v cuobjdump || echo "$CUDA_BIN/cuobjdump")"
if [ -x "$CUOBJDUMP" ]; then
  "$CUOBJDUMP" -sass "$BENCH" >"$OUT_DIR/kernels.sass" 2>&1
  say "sass: $(grep -c 'Function :' "$OUT_DIR/kernels.sass") functions;" \
    "LDG.E.128 $(grep -c 'LDG\.E\.128' "$OUT_DIR/kernels.sass")," \
    "STG.E.128 $(grep -c 'STG\.E\.128' "$OUT_DIR/kernels.sass")," \
    "LDG.E.64 $(grep -c 'LDG\.E\.64' "$OUT_DIR/kernels.sass"), STG.E.64 $(grep -c 'STG\.E\.64' "$OUT_DIR/kernels.sass")" \
    "(file kernels.sass)"
else
  say "sass: cuobjdump not found, skipped"
fi

# ---- quick correctness first: seconds, and tells whether there is a GPU at all.
say "quick correctness run"
timeout 120 "$BENCH" --check-only --quick --out "$OUT_DIR/quick" >"$OUT_DIR/quick.log" 2>&1
rc=$?
tail -n 3 "$OUT_DIR/quick.log"
if [ $rc -eq 3 ]; then
  say "$(grep -m1 -o 'no usable GPU.*' "$OUT_DIR/quick.log"); stopping here (the CPU cross-check passed)"
  exit 3
elif [ $rc -ne 0 ]; then
  say "FAILED: quick correctness, status $rc (log: $OUT_DIR/quick.log)"
  failed=1
else
  say "quick correctness passed ($(elapsed))"
fi

# ---- compute-sanitizer
SANITIZER="$(command -v compute-sanitizer || echo "$CUDA_BIN/compute-sanitizer")"
if [ -x "$SANITIZER" ]; then
  for tool in memcheck racecheck; do
    limit=90
    extra=()
    if [ "$tool" = memcheck ]; then
      limit=120
      extra=(--leak-check full)
    fi
    timeout "$limit" "$SANITIZER" --tool "$tool" ${extra[@]+"${extra[@]}"} --error-exitcode 86 \
      "$BENCH" --check-only --quick --out "$OUT_DIR/sanitizer-$tool" \
      >"$OUT_DIR/sanitizer-$tool.log" 2>&1
    rc=$?
    summary="$(grep -E '========= (ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY)' "$OUT_DIR/sanitizer-$tool.log" | tr '\n' ' ')"
    if [ $rc -eq 0 ]; then
      say "compute-sanitizer $tool: clean ${summary} ($(elapsed))"
    else
      grep -m 20 -E '^========= ' "$OUT_DIR/sanitizer-$tool.log"
      say "FAILED: compute-sanitizer $tool, status $rc ${summary} (log: $OUT_DIR/sanitizer-$tool.log)"
      failed=1
    fi
  done
else
  say "compute-sanitizer: not found, memcheck and racecheck skipped"
fi

# ---- the full bench
say "full bench"
timeout 240 "$BENCH" --out "$OUT_DIR" 2>&1 | tee "$OUT_DIR/gpu-bench.log" | grep -v '^  \[ok\]'
rc=${PIPESTATUS[0]}
if [ $rc -ne 0 ]; then
  say "FAILED: strata-gpu-bench, status $rc (log: $OUT_DIR/gpu-bench.log)"
  failed=1
else
  say "strata-gpu-bench passed ($(elapsed))"
fi

echo
cat "$SUMMARY"
echo
if [ -f "$OUT_DIR/gpu-bench-table.txt" ]; then
  cat "$OUT_DIR/gpu-bench-table.txt"
else
  echo "run_on_device: no table (the bench did not finish)"
fi
exit $failed
