#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang-14, ASan+UBSan) in build-fuzz and runs each one for a
# bounded time on a copy of its corpus, then prints a summary table (see fuzz/README.md).
#
#   scripts/fuzz.sh                  # CI: FUZZ_SECONDS (default 20) per target
#   FUZZ_RUNS=100000 scripts/fuzz.sh # a number of executions per target instead of a time
#   scripts/fuzz.sh --full           # 10,000,000 executions per target (hours in all)
#   scripts/fuzz.sh --merge          # also fold new coverage into fuzz/corpus (minimised)
#   scripts/fuzz.sh resp_parser ...  # only these targets
#
# Exits non-zero when a target crashes, leaks, times out or runs out of memory; the artefact (the
# input that does it) is kept and its path printed: reproduce with `build-fuzz/fuzz/<t>_fuzzer
# <artefact>`. The repository's corpus is only written with --merge.
#
# Environment: FUZZ_SECONDS, FUZZ_RUNS, FUZZ_BUILD_DIR (build-fuzz), FUZZ_WORK_DIR (a fresh temp
# dir; kept when anything failed), FUZZ_JOBS (ninja jobs, 2), CXX_FUZZ (clang++), CC_FUZZ (clang).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

ALL_TARGETS=(resp_parser vllm_event_decode trace_parser chain_hash grpc_requests)
# Longest input per target: enough for the limits each fuzzer sets to be reachable (resp_parser's
# small profiles shrink its header area, direct-read threshold and bulk limits to fit; a 1 KiB
# trace holds several records), small enough to stay fast: the cost of an execution grows with
# the input, and a full run is 10 million of them.
declare -A MAX_LEN=([resp_parser]=1024 [vllm_event_decode]=8192 [trace_parser]=1024
  [chain_hash]=1024 [grpc_requests]=8192)

FULL=0
MERGE=0
TARGETS=()
for arg in "$@"; do
  case "$arg" in
    --full) FULL=1 ;;
    --merge) MERGE=1 ;;
    -h | --help)
      sed -n '2,17p' "$0"
      exit 0
      ;;
    -*)
      echo "fuzz.sh: unknown option $arg" >&2
      exit 2
      ;;
    *)
      if [[ ! " ${ALL_TARGETS[*]} " == *" $arg "* ]]; then
        echo "fuzz.sh: unknown target $arg (targets: ${ALL_TARGETS[*]})" >&2
        exit 2
      fi
      TARGETS+=("$arg")
      ;;
  esac
done
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=("${ALL_TARGETS[@]}")

BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
RUNS="${FUZZ_RUNS:-}"
if [[ $FULL -eq 1 ]]; then RUNS=10000000; fi

# ---- build ------------------------------------------------------------------------------------
# The top project, compiled by clang with coverage (fuzzer-no-link) and ASan+UBSan everywhere;
# fuzz/project_include.cmake adds the targets. -O1 with line tables: what libFuzzer recommends,
# and it builds much faster than -O2 -g on a shared machine.
if [[ ! -f "$BUILD/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja \
    -DCMAKE_C_COMPILER="${CC_FUZZ:-clang}" -DCMAKE_CXX_COMPILER="${CXX_FUZZ:-clang++}" \
    -DCMAKE_BUILD_TYPE=Fuzz \
    "-DCMAKE_CXX_FLAGS_FUZZ=-O1 -gline-tables-only" "-DCMAKE_C_FLAGS_FUZZ=-O1 -gline-tables-only" \
    -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link \
    -DSTRATA_SANITIZE=address -DSTRATA_ENABLE_CUDA=OFF \
    -DCMAKE_PROJECT_strata_INCLUDE="$ROOT/fuzz/project_include.cmake" >/dev/null
fi
BINS=()
for t in "${TARGETS[@]}"; do BINS+=("${t}_fuzzer"); done
CCACHE_BASEDIR="$ROOT" ninja -C "$BUILD" -j"${FUZZ_JOBS:-2}" "${BINS[@]}"

# ---- run --------------------------------------------------------------------------------------
WORK="${FUZZ_WORK_DIR:-$(mktemp -d -t strata-fuzz.XXXXXX)}"
mkdir -p "$WORK"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

declare -A EXECS RATE TIME CORPUS CRASHES
FAILED=0
for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz/${t}_fuzzer"
  corpus="$WORK/corpus/$t"
  artifacts="$WORK/artifacts/$t/"
  log="$WORK/$t.log"
  rm -rf "$corpus" "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  # A copy: libFuzzer writes new inputs into its first corpus directory.
  if [[ -d "fuzz/corpus/$t" ]]; then cp -r "fuzz/corpus/$t/." "$corpus/"; fi
  args=(-max_len="${MAX_LEN[$t]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$artifacts")
  if [[ -n "$RUNS" ]]; then
    args+=(-runs="$RUNS")
    what="$RUNS runs"
  else
    args+=(-max_total_time="$SECONDS_PER_TARGET")
    what="${SECONDS_PER_TARGET}s"
  fi
  echo "== $t: $what (log $log)"
  start=$(date +%s.%N)
  rc=0
  "$bin" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  TIME[$t]=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
  # -print_final_stats=1 ends the log with "stat::number_of_executed_units: N" and friends; a
  # target that died early has only its last "#N ..." status line.
  EXECS[$t]=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log" | tail -1)
  RATE[$t]=$(awk '/^stat::average_exec_per_sec:/ { print $2 }' "$log" | tail -1)
  if [[ -z "${EXECS[$t]}" ]]; then
    EXECS[$t]=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
  fi
  CORPUS[$t]=$(find "$corpus" -type f | wc -l)
  mapfile -t found < <(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' \
    -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)
  bad=0
  for f in "${found[@]}"; do [[ "$(basename "$f")" == slow-unit-* ]] || bad=$((bad + 1)); done
  if [[ $rc -ne 0 && $bad -eq 0 ]]; then bad=1; fi  # died without an artefact (e.g. a build issue)
  CRASHES[$t]=$bad
  printf '   executions %s, %s exec/s, corpus %s files, crashes %s\n' "${EXECS[$t]:-?}" \
    "${RATE[$t]:-?}" "${CORPUS[$t]}" "$bad"
  if [[ $bad -ne 0 ]]; then
    FAILED=1
    echo "   FAILED (exit $rc); artefacts:"
    for f in "${found[@]}"; do echo "     $f"; done
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|check failed' \
      "$log" | sed 's/^/     /' || true
    echo "     reproduce: $bin <artefact>"
  fi
  if [[ $MERGE -eq 1 && $bad -eq 0 ]]; then
    mkdir -p "fuzz/corpus/$t"
    before=$(find "fuzz/corpus/$t" -type f | wc -l)
    "$bin" -merge=1 -max_len="${MAX_LEN[$t]}" "fuzz/corpus/$t" "$corpus" >"$WORK/$t.merge.log" 2>&1
    after=$(find "fuzz/corpus/$t" -type f | wc -l)
    echo "   merged: fuzz/corpus/$t $before -> $after files"
  fi
done

echo
echo "| target | executions | time (s) | exec/s | corpus | crashes |"
echo "|---|---:|---:|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
  echo "| $t | ${EXECS[$t]:-?} | ${TIME[$t]} | ${RATE[$t]:-?} | ${CORPUS[$t]} | ${CRASHES[$t]} |"
done
if [[ $FAILED -ne 0 ]]; then
  echo "fuzz.sh: failures; logs and artefacts kept in $WORK" >&2
  exit 1
fi
[[ -z "${FUZZ_WORK_DIR:-}" ]] && rm -rf "$WORK"
exit 0
