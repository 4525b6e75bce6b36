#!/usr/bin/env bash
# timeline_cases.sh APFSIM SOURCE_DIR WORK_DIR CASE — end-to-end cases of
# `apfsim export --perfetto` (tests/timeline/CMakeLists.txt), one ctest each.
# Every export is checked by validate_timeline.py: it loads as trace-event
# JSON with balanced slices, paired flows and monotone tracks.
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
validate() { python3 "$src/tests/timeline/validate_timeline.py" "$@" > summary || fail "invalid: $1"; }
no_leftovers() { ls -A | grep -Eq '\.tmp-' && fail "temporary files left: $(ls -A)"; true; }

vocab=$src/tests/timeline/data/vocabulary.trace
case $case in
  help)
    expect_status 0 "$apfsim" export --help
    grep -q '^usage: apfsim export --perfetto TRACE -o FILE' out || fail "usage line: $(cat out)"
    expect_status 2 "$apfsim" export --perfetto "$vocab"
    grep -q 'expected -o FILE' err || fail "missing -o not explained"
    expect_status 2 "$apfsim" export --perfetto -o x.json
    expect_status 2 "$apfsim" export --perfetto "$vocab" "$vocab" -o x.json
    expect_status 2 "$apfsim" export --perfetto "$vocab" -o no-such-dir/x.json
    [ ! -e x.json ] || fail "output written on a usage error"
    ;;
  smoke)
    # A real trace from the simulator: the platform smoke run.
    expect_status 0 "$apfsim" run "$src/configs/smoke.xml" --trace run.trace --quiet
    expect_status 0 "$apfsim" export --perfetto run.trace -o run.json
    [ ! -s out ] || fail "stdout not empty"
    grep -q '^apfsim export: run.json: ' err || fail "no summary: $(cat err)"
    n=$(grep -c ' swap_read_submit ' run.trace)
    validate run.json async_swap="$n" flows=0 instants_event="$(grep -c ' timer_tick ' run.trace)"
    no_leftovers
    ;;
  vocabulary)
    # Every event kind of docs/trace-format.md "Event vocabulary".
    expect_status 0 "$apfsim" export --perfetto "$vocab" -o v.json
    validate v.json vcpu_tracks=2 task_tracks=3 slices_pid1=9 slices_pid2=6 async_apf=3 \
      async_swap=3 flows=2 instants_apf=7 instants_event=4 instants_malformed=2 \
      instants_outcome=1 instants_task=1
    grep -q '2 APF flows, 15 instants (4 outside the vocabulary, 2 malformed); 1 tokens never ready, 1 requests unfinished' err ||
      fail "summary: $(cat err)"
    python3 - v.json <<'PY' || fail "details"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
names = {e["tid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
assert names[1000] == "vCPU 0" and names[1001] == "vCPU 1", names
assert "pid 2 (memhog worker)" in names.values(), names
# Each flow starts right after the not-present instant on the same track and
# ends right after the page-ready instant, so Perfetto binds it to them.
for i, e in enumerate(ev):
    if e["ph"] in "sf":
        prev = ev[i - 1]
        want = "kvm_async_pf_not_present" if e["ph"] == "s" else "kvm_async_pf_ready"
        assert prev["ph"] == "i" and prev["name"] == want, (prev, e)
        assert (prev["pid"], prev["tid"], prev["ts"]) == (e["pid"], e["tid"], e["ts"]), (prev, e)
# vCPU states in order on vCPU 1, with the aliases.
states = [e["name"] for e in ev if e["ph"] == "B" and e["tid"] == 1001]
assert states == ["user", "halted", "blocked on host", "blocked on host", "halted"], states
# Task 1: runs, waits for its page, runs again, migrates to vCPU 1.
t1 = [e["name"] for e in ev if e["ph"] == "B" and e["tid"] == 20000]
assert t1 == ["on vCPU 0", "waiting for page", "on vCPU 0", "on vCPU 1"], t1
# ns precision from integers: the last state change at 9999 ns.
assert any(e["ph"] == "B" and e["ts"] == 9.999 for e in ev)
# The panic is a global instant; the superseded token is closed where it was.
assert any(e["ph"] == "i" and e["name"] == "guest_panic" and e["s"] == "g" for e in ev)
assert any(e["ph"] == "e" and e.get("args", {}).get("superseded_at_trace_line") == 38 for e in ev)
assert any(e["ph"] == "e" and e.get("args", {}).get("done") == "never (trace ended)" for e in ev)
PY
    grep -q '"ts":9.999,' v.json || fail "ts not written as 9.999"
    ;;
  corrupt)
    # A corrupt trace: FILE:LINE: field: problem, exit 2, nothing written.
    head -n -1 "$vocab" > cut.trace
    expect_status 2 "$apfsim" export --perfetto cut.trace -o cut.json
    grep -Eq '^cut\.trace:[0-9]+: trace-end: missing' err || fail "message: $(cat err)"
    awk '/^ +100 cpu0 / { sub(/^ +100/, "            999") } { print }' "$vocab" > order.trace
    expect_status 2 "$apfsim" export --perfetto order.trace -o order.json
    grep -Eq '^order\.trace:8: time: event at 100 ns \(cpu1\) comes after one at 999 ns' err || fail "message: $(cat err)"
    printf 'not a trace\n' > junk.trace
    expect_status 2 "$apfsim" export --perfetto junk.trace -o junk.json
    grep -q '^junk\.trace:1: header: not an apfsim trace' err || fail "message: $(cat err)"
    expect_status 2 "$apfsim" export --perfetto missing.trace -o missing.json
    # An existing output is left as it was.
    echo keep > keep.json
    expect_status 2 "$apfsim" export --perfetto cut.trace -o keep.json
    [ "$(cat keep.json)" = keep ] || fail "existing output replaced"
    [ -z "$(ls -A | grep '\.json$' | grep -v keep.json)" ] || fail "output written: $(ls -A)"
    no_leftovers
    ;;
  deterministic)
    expect_status 0 "$apfsim" export --perfetto "$vocab" -o a.json --quiet
    [ ! -s err ] || fail "--quiet printed: $(cat err)"
    expect_status 0 "$apfsim" export --perfetto "$vocab" -o b.json --quiet
    cmp a.json b.json || fail "two exports differ"
    expect_status 0 "$apfsim" export "$vocab" -o - --quiet
    cmp a.json out || fail "-o - differs from the file"
    ;;
  race)
    # The race scenario (DESIGN.md §1) and its fixed twin: the exports load, with APF
    # token flows and the injected NMI on the timeline.
    for name in nmi-cr2-race nmi-cr2-fixed; do
      [ -f "$src/configs/$name.xml" ] || fail "configs/$name.xml is missing"
      "$apfsim" run "$src/configs/$name.xml" --trace "$name.trace" --quiet --console none > /dev/null 2>&1
      [ -s "$name.trace" ] || fail "$name: no trace"
      expect_status 0 "$apfsim" export --perfetto "$name.trace" -o "$name.json"
      validate "$name.json"
      python3 - "$name.json" summary <<'PY' || fail "$name: timeline content"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
summary = json.load(open(sys.argv[2]))
assert summary["flows"] >= 1, summary            # not-present -> page-ready arrows
assert summary["vcpu_tracks"] >= 1, summary
assert summary["task_tracks"] >= 1, summary      # the guest reports its switches (port 0xEF)
assert sum(1 for e in ev if e.get("name") == "nmi_inject") == 1, "one injected NMI"
PY
    done
    ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$case]"
