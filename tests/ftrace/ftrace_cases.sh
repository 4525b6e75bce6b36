#!/usr/bin/env bash
# ftrace_cases.sh APFSIM SOURCE_DIR WORK_DIR CASE — end-to-end cases of
# `apfsim import-ftrace` (tests/ftrace/CMakeLists.txt), one ctest each.
set -uo pipefail
apfsim=$1 src=$2 work=$3 case=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

fail() { echo "FAIL [$case]: $*" >&2; exit 1; }
expect_status() {
  local want=$1; shift
  "$@" >out 2>err
  local got=$?
  [ "$got" -eq "$want" ] || { cat out err >&2; fail "'$*' exited $got, expected $want"; }
}
no_leftovers() { ls -A | grep -Eq '\.tmp-' && fail "temporary files left: $(ls -A)"; true; }

sample=$src/tests/ftrace/data/kvm-apf.txt
smoke=$src/configs/smoke.xml
case $case in
  help)
    expect_status 0 "$apfsim" import-ftrace --help
    grep -q '^usage: apfsim import-ftrace' out || fail "no usage line"
    expect_status 0 "$apfsim" --help
    grep -q '^  import-ftrace ' out || fail "top-level help does not list import-ftrace"
    expect_status 2 "$apfsim" import-ftrace
    expect_status 2 "$apfsim" import-ftrace "$sample" --as csv
    expect_status 2 "$apfsim" import-ftrace "$sample" --bins 0
    expect_status 2 "$apfsim" import-ftrace "$sample" --bins 256
    expect_status 2 "$apfsim" import-ftrace "$sample" --pairs gfn
    ;;
  histogram-run)
    # Import, then run the smoke scenario on the imported latencies.
    expect_status 0 "$apfsim" import-ftrace "$sample" -o "$work/kvm.hist" --bins 3
    [ ! -s out ] || fail "stdout not empty with -o"
    grep -q 'kvm-apf.txt:26: line: not an ftrace event line' err || fail "bad line not reported: $(cat err)"
    grep -q 'kvm-apf.txt:37: kvm_async_pf_not_present: fields "token zz gva 0x1"' err ||
      fail "bad fields not reported: $(cat err)"
    grep -q '4 pairs by get-page; unpaired: 1 starts, 0 completions' err || fail "pair report: $(cat err)"
    grep -q ', 2 unparseable' err || fail "unparseable count: $(cat err)"
    diff <(grep -v '^#' kvm.hist) <(printf '39999ns 0\n60us 2\n100us 1\n400us 1\n') ||
      fail "histogram: $(cat kvm.hist)"
    set_hist=(--set swap-device/latency/@dist=empirical --set "swap-device/latency/histogram/@file=$work/kvm.hist")
    expect_status 0 "$apfsim" validate "$smoke" "${set_hist[@]}"
    expect_status 0 "$apfsim" run "$smoke" "${set_hist[@]}" --trace run.trace --json sum.json --quiet --expect ok
    grep -q "^#| *<histogram inlined-from=\"$work/kvm.hist\">" run.trace ||
      fail "trace header does not inline the imported histogram"
    grep -q '^#| *<bin upper="400us" count="1"/>' run.trace || fail "bins not inlined"
    # The device latencies the run drew come from the imported range (plus at
    # most the 4 KiB transfer time), and reach into its 100..400us tail.
    awk '/ swap_read_done / { for (i = 1; i < NF; i++) if ($i == "latency_ns") l = $(i + 1);
                              if (l < 40000 || l > 410000) bad = 1; if (l > 100000) tail++; n++ }
         END { exit !(n > 0 && !bad && tail > 0) }' run.trace ||
      fail "latencies do not follow the imported histogram: $(grep swap_read_done run.trace)"
    expect_status 0 "$apfsim" replay run.trace
    no_leftovers
    ;;
  token-and-schedule)
    expect_status 0 "$apfsim" import-ftrace "$sample" --pairs token --as schedule -o sched.txt --quiet
    # --quiet keeps the problems (both bad lines), drops the summary.
    [ "$(wc -l < err)" -eq 2 ] && ! grep -q '^apfsim import-ftrace:' err || fail "--quiet printed: $(cat err)"
    diff <(grep -v '^#' sched.txt) <(printf '0 0x7f0012340000 47000\n98000 0x7f0012341000 119000\n898000 0x7f0012342000 419000\n1898000 0x7f0012343000 69000\n') ||
      fail "schedule: $(cat sched.txt)"
    head -n 1 sched.txt | grep -qx '# apfsim-ftrace-schedule 1' || fail "schedule header"
    # Without -o the output goes to stdout, and only there.
    expect_status 0 "$apfsim" import-ftrace "$sample"
    grep -q '^400us 1$' out || fail "histogram not on stdout"
    grep -q '^# imported by apfsim import-ftrace' out || fail "no provenance comment"
    ;;
  nothing-parses)
    printf 'hello\nworld\n' > junk.txt
    expect_status 2 "$apfsim" import-ftrace junk.txt -o junk.hist
    [ ! -e junk.hist ] || fail "output written for unparseable input"
    grep -q '^junk.txt:1: line: not an ftrace event line' err || fail "first bad line: $(cat err)"
    grep -q '^junk.txt: nothing parses as ftrace text: 2 lines, 2 unparseable' err || fail "message: $(cat err)"
    # Parses, but nothing pairs: also nothing to write.
    grep 'kvm_exit' "$sample" > exits.txt
    expect_status 2 "$apfsim" import-ftrace exits.txt -o exits.hist
    [ ! -e exits.hist ] || fail "output written without pairs"
    grep -q 'no get-page pairs' err || fail "no-pairs message: $(cat err)"
    expect_status 2 "$apfsim" import-ftrace missing.txt -o m.hist
    [ ! -e m.hist ] || fail "output written for a missing file"
    no_leftovers
    ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$case]"
