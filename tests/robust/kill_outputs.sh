#!/usr/bin/env bash
# kill_outputs.sh APFSIM SOURCE_DIR WORK_DIR CASE — "nothing half-written" (issue 9,
# DESIGN.md §4): an apfsim command killed at a pseudo-random point leaves every output
# it was asked for either absent or whole. The kill points come from a fixed seed (the
# same list every time); signals alternate SIGKILL (no chance to clean up) and SIGTERM.
# What each kill hits depends on the host's speed, so nothing here asserts timing:
# every outcome of a kill is checked the same way, only whole-or-absent counts.
#   run     apfsim run --trace T --json J: T replays identically, J parses
#   sweep   apfsim sweep -o CSV: only complete rows, and --resume finishes the sweep
#   export  apfsim export --perfetto: the JSON parses
set -uo pipefail
apfsim=$1 src=$2 work=$3 case=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL [$case]: $*" >&2; exit 1; }

# Kill delays in seconds: a 31-bit LCG from seed 9 mapped to 0.005 .. 1.5 s.
delays=()
x=9
for _ in $(seq 10); do
  x=$(((x * 1103515245 + 12345) % 2147483648))
  delays+=("$(printf '%d.%03d' $((x % 1500 / 1000)) $((5 + x % 1495)))")
done

# killed SIGNAL DELAY CMD...: runs CMD under timeout; prints how it ended.
killed() {
  local sig=$1 delay=$2; shift 2
  timeout -s "$sig" "$delay" "$@" >/dev/null 2>cmd.err
  echo $?
}

# No file may be left under a name that is not an output or a hidden temporary.
check_only() {
  local f ok o
  for f in * .[!.]*; do
    [ -e "$f" ] || continue
    ok=0
    for o in "$@" cmd.err; do [ "$f" = "$o" ] && ok=1; done
    case $f in .*.tmp-*) ok=1 ;; esac
    [ $ok = 1 ] || fail "unexpected file '$f'"
  done
}

cfg=$src/configs/boot.xml
case $case in
  run)
    absent=0 whole=0
    for k in "${!delays[@]}"; do
      sig=KILL; [ $((k % 2)) -eq 1 ] && sig=TERM
      rm -f t.trace s.json .t.trace.tmp-* .s.json.tmp-*
      st=$(killed $sig "${delays[$k]}" "$apfsim" run "$cfg" --quiet --console none --trace t.trace \
             --json s.json --set limits/max-sim-time=40ms)
      for out in t.trace s.json; do
        [ -e $out ] && whole=$((whole + 1)) || absent=$((absent + 1))
      done
      if [ -e t.trace ]; then
        "$apfsim" replay t.trace >replay.out 2>&1 || fail "kill $sig at ${delays[$k]} s (status $st): t.trace does not replay: $(tail -n 3 replay.out)"
        rm -f replay.out
      fi
      if [ -e s.json ]; then
        python3 -c 'import json,sys; d=json.load(open("s.json")); assert d["outcome"]' \
          || fail "kill $sig at ${delays[$k]} s (status $st): s.json is not a whole summary"
        [ -e t.trace ] || fail "the summary exists but the trace does not (the trace is committed first)"
      fi
      check_only t.trace s.json
      rm -f .t.trace.tmp-* .s.json.tmp-*
    done
    # A run that is not killed writes both (so the checks above had something to check).
    "$apfsim" run "$cfg" --quiet --console none --trace t.trace --json s.json \
      --set limits/max-sim-time=40ms >/dev/null || fail "an uninterrupted run failed"
    [ -s t.trace ] && [ -s s.json ] || fail "an uninterrupted run left no outputs"
    echo "run: ${#delays[@]} kills, outputs whole $whole, absent $absent"
    ;;
  sweep)
    sweep=$src/configs/sweep-ci.xml
    for k in 0 1 2 3 4 5; do
      sig=KILL; [ $((k % 2)) -eq 1 ] && sig=TERM
      st=$(killed $sig "${delays[$k]}" "$apfsim" sweep "$sweep" -o r.csv -j 2 --quiet --resume)
      [ -e r.csv ] || continue
      # Every line complete: a newline at the end, as many fields as the header.
      python3 - <<'PY' || fail "kill $sig at ${delays[$k]} s (status $st): r.csv has an incomplete row"
import csv
data = open("r.csv", newline="").read()
assert data.endswith("\n"), "last line has no newline"
rows = list(csv.reader(data.splitlines()))
assert all(len(r) == len(rows[0]) for r in rows), [len(r) for r in rows]
PY
      check_only r.csv
    done
    "$apfsim" sweep "$sweep" -o r.csv -j 2 --quiet --resume >/dev/null 2>cmd.err \
      || fail "resume after the kills failed: $(cat cmd.err)"
    python3 - <<'PY' || fail "the resumed sweep is not whole"
import csv
rows = list(csv.DictReader(open("r.csv", newline="")))
assert len(rows) == 40, len(rows)
assert [int(r["point"]) for r in rows] == sorted(int(r["point"]) for r in rows)
PY
    echo "sweep: killed 6 times, resumed to 40 rows"
    ;;
  export)
    "$apfsim" run "$cfg" --quiet --console none --trace in.trace --set limits/max-sim-time=40ms >/dev/null \
      || fail "run for the trace failed"
    for k in "${!delays[@]}"; do
      sig=KILL; [ $((k % 2)) -eq 1 ] && sig=TERM
      rm -f out.json
      # delays scaled down: an export takes a fraction of a run
      d=$(python3 -c "print(${delays[$k]} / 10)")
      st=$(killed $sig "$d" "$apfsim" export --perfetto in.trace -o out.json)
      if [ -e out.json ]; then
        python3 -c 'import json; json.load(open("out.json"))' \
          || fail "kill $sig at $d s (status $st): out.json does not parse"
      fi
      check_only in.trace out.json
      rm -f .out.json.tmp-*
    done
    "$apfsim" export --perfetto in.trace -o out.json --quiet || fail "an uninterrupted export failed"
    python3 -c 'import json; json.load(open("out.json"))' || fail "an uninterrupted export is not JSON"
    echo "export: ${#delays[@]} kills"
    ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$case]"
