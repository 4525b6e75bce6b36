#!/usr/bin/env bash
# golden_case.sh APFSIM SOURCE_DIR WORK_DIR NAME OUTCOME — one golden trace's test.
set -uo pipefail
apfsim=$1 src=$2 work=$3 name=$4 outcome=$5
mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL [golden $name]: $*" >&2; echo "(after an intentional change: tools/golden.sh BUILD_DIR, see docs/golden-traces.md)" >&2; exit 1; }
golden=$src/traces/$name.trace
[ -f "$golden" ] || fail "traces/$name.trace is missing"
grep -q "^# end config$" "$golden" || fail "traces/$name.trace has no config block"
"$apfsim" replay "$golden" >out 2>err
rc=$?
[ $rc -eq 0 ] || { cat out err >&2; fail "replay exited $rc (3: the simulator no longer produces the recorded events)"; }
grep -q '^replay identical' out || fail "replay said: $(cat out)"
"$apfsim" run "$src/configs/$name.xml" --quiet --console none --trace fresh.trace --expect "$outcome" >out 2>err
rc=$?
[ $rc -eq 0 ] || { cat out err >&2; fail "configs/$name.xml exited $rc (expected outcome $outcome)"; }
"$apfsim" diff "$golden" fresh.trace >out 2>err
rc=$?
[ $rc -eq 0 ] || { cat out err >&2; fail "configs/$name.xml no longer gives the recorded trace"; }
echo "PASS [golden $name]"
