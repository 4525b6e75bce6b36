#!/usr/bin/env bash
# tools/fuzz.sh — builds apfsim's libFuzzer harnesses with clang and fuzzes one
# of them, or each in turn, for a given time; new inputs that add coverage are
# merged (-merge=1) into the committed corpus tests/fuzz/corpus/HARNESS/.
# docs/fuzzing.md explains the harnesses, the corpora and what to do with a
# crash.
#
#   tools/fuzz.sh HARNESS SECONDS     e.g. tools/fuzz.sh config 600
#   tools/fuzz.sh all SECONDS         every harness, SECONDS each, one after another
#   tools/fuzz.sh list                the harness names
#
# Environment:
#   APFSIM_FUZZ_BUILD  build directory (default: build-fuzz in the repository)
#   APFSIM_FUZZ_NICE   niceness of the fuzzer (default 19: it shares the machine)
#   APFSIM_FUZZ_ARGS   extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
#   APFSIM_FUZZ_UNIT_TIMEOUT  seconds one input may take before it counts as a hang (120)
#
# One fuzzer process at a time. Exit status: 0 when nothing was found, 1 when
# a harness crashed, hung, leaked or broke an invariant (the input is saved
# under BUILD/fuzz-artifacts/HARNESS/ and the command to reproduce it printed),
# 2 on a usage or build error.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dir=$repo/tests/fuzz
harnesses=(config overrides histogram sweep trace trace_export ftrace elf)

usage() {
  echo "usage: $0 HARNESS|all SECONDS   (harnesses: ${harnesses[*]})" >&2
  exit 2
}

[ $# -ge 1 ] || usage
if [ "$1" = list ]; then
  printf '%s\n' "${harnesses[@]}"
  exit 0
fi
[ $# -eq 2 ] || usage
which=$1
seconds=$2
[[ $seconds =~ ^[1-9][0-9]*$ ]] || usage
if [ "$which" = all ]; then
  run=("${harnesses[@]}")
else
  found=0
  for h in "${harnesses[@]}"; do [ "$h" = "$which" ] && found=1; done
  [ $found = 1 ] || usage
  run=("$which")
fi

build=${APFSIM_FUZZ_BUILD:-$repo/build-fuzz}
nice_level=${APFSIM_FUZZ_NICE:-19}

# libFuzzer ships in Debian's libclang-rt-14-dev; say so instead of failing
# deep inside the build.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
  >"$probe/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" 2>"$probe/err"; then
  echo "fuzz: clang cannot link libFuzzer:" >&2
  cat "$probe/err" >&2
  echo "fuzz: install clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi

echo "== building the harnesses in $build" >&2
targets=()
for h in "${run[@]}"; do targets+=("fuzz_$h"); done
mkdir -p "$build"
cmake -S "$repo" -B "$build" -DCMAKE_C_COMPILER=clang -DAPFSIM_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/fuzz-configure.log" 2>&1 ||
  { cat "$build/fuzz-configure.log" >&2; exit 2; }
nice -n "$nice_level" cmake --build "$build" -j2 --target "${targets[@]}" >&2 || exit 2

# Largest input worth trying, per harness: a little above the biggest seed.
max_len() {
  case $1 in
    trace | trace_export) echo 16384 ;;
    config | histogram | ftrace | elf) echo 8192 ;;
    *) echo 4096 ;;
  esac
}
dict_for() {
  case $1 in
    trace_export) echo "$fuzz_dir/dict/trace.dict" ;;
    *) [ -f "$fuzz_dir/dict/$1.dict" ] && echo "$fuzz_dir/dict/$1.dict" ;;
  esac
}

# Leak checking stays on; UBSan stops at the first report (the harnesses are
# also built with -fno-sanitize-recover=undefined).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# Seconds one input may take before libFuzzer calls it a hang. Every input here runs in
# well under a second; the margin is for a shared machine, where a nice 19 fuzzer can be
# starved for many seconds (10 s gave false "timeouts" of 0.03 s inputs under load).
unit_timeout=${APFSIM_FUZZ_UNIT_TIMEOUT:-120}

status=0
for h in "${run[@]}"; do
  bin=$build/tests/fuzz/fuzz_$h
  corpus=$fuzz_dir/corpus/$h
  scratch=$build/fuzz-scratch/$h          # everything this run finds
  artifacts=$build/fuzz-artifacts/$h      # crashes, timeouts, leaks
  mkdir -p "$scratch" "$artifacts" "$corpus"
  dict=$(dict_for "$h" || true)
  seeds=("$corpus")
  [ -d "$fuzz_dir/regressions/$h" ] && seeds+=("$fuzz_dir/regressions/$h")
  log=$build/fuzz-logs/$h-$(date +%Y%m%d-%H%M%S).log
  mkdir -p "$(dirname "$log")"
  echo "== fuzzing $h for ${seconds}s (log: $log)" >&2
  # New inputs go to the scratch directory first (the first directory is
  # where libFuzzer writes); the committed corpus is read as seeds.
  set +e
  # shellcheck disable=SC2086
  nice -n "$nice_level" "$bin" "$scratch" "${seeds[@]}" \
    -max_total_time="$seconds" -max_len="$(max_len "$h")" -timeout="$unit_timeout" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" ${dict:+-dict="$dict"} \
    ${APFSIM_FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  # -fork=N prints no final stats; its last progress line has the count.
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  echo "   $h: exit $rc, ${execs:-?} executions, ${cov:-cov: ?}" >&2
  if [ $rc -ne 0 ]; then
    status=1
    grep -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|invariant broken|Test unit written' \
      "$log" | head -5 >&2 || true
    echo "   reproduce: $bin $artifacts/<crash file>   (then fix, and commit the input under" >&2
    echo "   tests/fuzz/regressions/$h/; see docs/fuzzing.md)" >&2
  fi
  # Keep only what adds coverage to the committed corpus.
  echo "== merging new $h inputs into tests/fuzz/corpus/$h" >&2
  before=$(find "$corpus" -type f | wc -l)
  nice -n "$nice_level" "$bin" -merge=1 -max_len="$(max_len "$h")" -timeout="$unit_timeout" -rss_limit_mb=2048 \
    "$corpus" "$scratch" >>"$log" 2>&1 || { echo "   merge failed (see $log)" >&2; status=1; }
  after=$(find "$corpus" -type f | wc -l)
  echo "   $h corpus: $before -> $after inputs" >&2
done
exit $status
