#!/usr/bin/env bash
# cli_cases.sh APFSIM SOURCE_DIR WORK_DIR CASE — one end-to-end case of the
# apfsim command line, run by ctest (tests/cli/CMakeLists.txt). Each case
# checks exit status and output, and fails with a message saying what differed.
set -uo pipefail
apfsim=$1 src=$2 work=$3 case=$4
mkdir -p "$work" && cd "$work" || exit 1

fail() { echo "FAIL [$case]: $*" >&2; exit 1; }
# expect_status N CMD...: runs CMD, captures stdout/stderr into out/err.
expect_status() {
  local want=$1; shift
  "$@" >out 2>err
  local got=$?
  [ "$got" -eq "$want" ] || { cat out err >&2; fail "'$*' exited $got, expected $want"; }
}

smoke=$src/configs/smoke.xml
case $case in
  version)
    expect_status 0 "$apfsim" --version
    grep -Eq '^apfsim [0-9]+\.[0-9]+\.[0-9]+ \(unicorn 2\.0\.1, systemc 2\.3\.4' out || fail "version line: $(cat out)"
    ;;
  help)
    expect_status 0 "$apfsim" --help
    cp out top-help
    for cmd in run validate replay diff sweep merge plot explore export; do
      grep -q "^  $cmd " top-help || fail "--help does not list $cmd"
      expect_status 0 "$apfsim" "$cmd" --help
      grep -q "^usage: apfsim $cmd" out || fail "$cmd --help has no usage line"
    done
    expect_status 2 "$apfsim"
    expect_status 2 "$apfsim" frobnicate
    grep -q "unknown command 'frobnicate'" err || fail "unknown command message"
    ;;
  not-built)
    for cmd in sweep merge plot explore export; do
      expect_status 4 "$apfsim" "$cmd" x
      grep -q "is not built yet" err || fail "$cmd does not say it is not built"
      [ ! -s out ] || fail "$cmd wrote to stdout"
    done
    ;;
  validate-configs)
    for f in "$src"/configs/*.xml; do
      expect_status 0 "$apfsim" validate "$f"
      grep -q ": valid$" out || fail "validate $f: $(cat out)"
    done
    ;;
  validate-bad)
    printf '<apfsim>\n  <machine>\n    <vcpus>0</vcpus>\n  </machine>\n</apfsim>\n' > bad.xml
    expect_status 2 "$apfsim" validate bad.xml
    grep -Eq '^bad\.xml:3: machine/vcpus: ' err || fail "no FILE:LINE: field: message: $(cat err)"
    [ ! -s out ] || fail "bad input wrote to stdout"
    expect_status 2 "$apfsim" run bad.xml
    grep -Eq '^bad\.xml:3: ' err || fail "run did not report FILE:LINE"
    expect_status 2 "$apfsim" run does-not-exist.xml
    expect_status 2 "$apfsim" run "$smoke" --set machine/vcpux=3
    expect_status 2 "$apfsim" run "$smoke" --seed -4
    expect_status 2 "$apfsim" run "$smoke" --expect fine
    ;;
  run-smoke)
    expect_status 0 "$apfsim" run "$smoke" --expect ok --quiet
    grep -Eq '^ok: platform smoke run' out || fail "verdict: $(cat out)"
    [ ! -s err ] || fail "stderr not empty: $(cat err)"
    ;;
  expect-mismatch)
    expect_status 1 "$apfsim" run "$smoke" --expect livelock --quiet
    grep -q "expected outcome livelock, got ok" err || fail "mismatch message: $(cat err)"
    ;;
  json-stdout)
    expect_status 0 "$apfsim" run "$smoke" --json - --quiet
    python3 -c 'import json,sys; d=json.load(open("out")); assert d["outcome"]=="ok", d; assert d["seed"]==42; assert d["sim_time_ns"]==5000000; assert len(d["trace_sha256"])==64' \
      || fail "stdout is not the JSON summary alone"
    grep -q '^ok: ' err || fail "verdict not moved to stderr"
    ;;
  json-file)
    expect_status 0 "$apfsim" run "$smoke" --json sum.json --trace t.trace --quiet
    python3 - <<'PY' || fail "summary keys"
import json, hashlib
d = json.load(open("sum.json"))
for k in ["outcome","verdict","seed","sim_time_ns","guest_instructions","host_seconds","vcpus","apf","race","workload","trace_sha256"]:
    assert k in d, k
for k in ["not_present","page_ready","sync_faults","synthetic_halts","wake_all","dummy_nodes","outstanding"]:
    assert k in d["apf"], k
for k in ["nmi_injected","cr2_clobbered","lost_tokens"]:
    assert k in d["race"], k
assert d["trace_sha256"] == hashlib.sha256(open("t.trace","rb").read()).hexdigest()
PY
    ls -a | grep -Eq '\.tmp|~$' && fail "temporary files left: $(ls -a)"
    true
    ;;
  deterministic)
    expect_status 0 "$apfsim" run "$smoke" --trace a.trace --quiet --seed 9
    expect_status 0 "$apfsim" run "$smoke" --trace b.trace --quiet --seed 9
    cmp a.trace b.trace || fail "same seed, different traces"
    expect_status 0 "$apfsim" run "$smoke" --trace c.trace --quiet --seed 10
    cmp -s a.trace c.trace && fail "different seeds, same trace"
    true
    ;;
  seed-override)
    expect_status 0 "$apfsim" run "$smoke" --seed 1234 --json s.json --quiet
    python3 -c 'import json; assert json.load(open("s.json"))["seed"]==1234' || fail "--seed ignored"
    expect_status 0 "$apfsim" run "$smoke" --set smoke/device-requests=3 --json s.json --quiet
    python3 -c 'import json; assert json.load(open("s.json"))["storage"]["requests"]==3' || fail "--set ignored"
    ;;
  replay-identical)
    expect_status 0 "$apfsim" run "$smoke" --trace r.trace --quiet
    expect_status 0 "$apfsim" replay r.trace
    grep -q "^replay identical" out || fail "replay output: $(cat out)"
    ;;
  replay-divergence)
    expect_status 0 "$apfsim" run "$smoke" --trace r.trace --quiet
    # Plant a divergence in the 5th event line: a different completion time.
    awk 'BEGIN{n=0} /^#/ {print; next} {n++; if (n==5) sub(/done_at [0-9]+/, "done_at 1"); print}' r.trace > planted.trace
    cmp -s r.trace planted.trace && fail "nothing planted"
    expect_status 3 "$apfsim" replay planted.trace
    grep -q "^-.*done_at 1$" out || fail "divergent line not shown: $(cat out)"
    grep -q "^+.*done_at" out || fail "replayed line not shown: $(cat out)"
    ;;
  replay-corrupt)
    printf 'not a trace\n' > junk.trace
    expect_status 2 "$apfsim" replay junk.trace
    grep -q '^junk\.trace:1: ' err || fail "corrupt trace message: $(cat err)"
    expect_status 0 "$apfsim" run "$smoke" --trace r.trace --quiet
    head -n 120 r.trace > cut.trace
    expect_status 2 "$apfsim" diff r.trace cut.trace
    ;;
  diff)
    expect_status 0 "$apfsim" run "$smoke" --trace a.trace --quiet
    expect_status 0 "$apfsim" run "$smoke" --trace b.trace --quiet --seed 3
    expect_status 0 "$apfsim" diff a.trace a.trace
    expect_status 3 "$apfsim" diff a.trace b.trace
    grep -q 'seed' out || fail "seed difference not reported: $(cat out)"
    expect_status 3 "$apfsim" diff --events-only a.trace b.trace
    grep -q '^-' out || fail "no divergent event shown"
    ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$case]"
