#!/usr/bin/env bash
# sweep_e2e.sh APFSIM SOURCE_DIR WORK_DIR CASE — one end-to-end case of
# `apfsim sweep`, `merge` and `plot`, run by ctest (tests/sweep/CMakeLists.txt)
# on configs/sweep-ci.xml (40 smoke runs). CSVs are compared whole except for
# host_seconds, the one wall-clock column (docs/sweeps.md).
set -uo pipefail
apfsim=$1 src=$2 work=$3 case=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
ci=$src/configs/sweep-ci.xml
smoke=$src/configs/smoke.xml
total=40

fail() { echo "FAIL [$case]: $*" >&2; exit 1; }
# expect_status N CMD...: runs CMD, stdout/stderr into out/err.
expect_status() {
  local want=$1; shift
  "$@" >out 2>err
  local got=$?
  [ "$got" -eq "$want" ] || { cat out err >&2; fail "'$*' exited $got, expected $want"; }
}
rows() { echo $(( $(wc -l < "$1") - 1 )); }
# same_csv A B: identical but for the host_seconds column.
same_csv() {
  python3 - "$1" "$2" <<'PY' || fail "$1 and $2 differ"
import csv, sys
def load(p):
    with open(p, newline="") as f:
        text = f.read()
    assert text.endswith("\n"), p + ": no final newline"
    rows = list(csv.reader(text.splitlines()))
    drop = rows[0].index("host_seconds") if "host_seconds" in rows[0] else None
    return [[c for i, c in enumerate(r) if i != drop] for r in rows]
a, b = load(sys.argv[1]), load(sys.argv[2])
for i, (x, y) in enumerate(zip(a, b)):
    if x != y:
        sys.exit(f"line {i + 1}:\n  {x}\n  {y}")
if len(a) != len(b):
    sys.exit(f"{len(a)} lines against {len(b)}")
PY
}
reference() { expect_status 0 "$apfsim" sweep "$ci" -o ref.csv -j 2 --quiet; }

case $case in
  jobs-identical)
    expect_status 0 "$apfsim" sweep "$ci" -o j1.csv -j 1 --quiet
    [ ! -s out ] || fail "stdout not empty"
    expect_status 0 "$apfsim" sweep "$ci" -o j2.csv -j 2
    [ ! -s out ] || fail "stdout not empty"
    grep -q "^sweep: 40 of 40 points in j2.csv (0 resumed, 40 run: ok 40)$" err \
      || fail "final tally: $(tail -1 err)"
    [ "$(grep -c '^sweep: [0-9]*/40 point ' err)" -eq 40 ] || fail "not one progress line per row"
    [ "$(rows j1.csv)" -eq $total ] || fail "j1.csv has $(rows j1.csv) rows"
    same_csv j1.csv j2.csv
    python3 - <<'PY' || fail "j2.csv content"
import csv
rows = list(csv.DictReader(open("j2.csv", newline="")))
assert [int(r["point"]) for r in rows] == list(range(40)), "not in point order"
assert all(r["outcome"] == "ok" for r in rows)
assert len({r["sweep"] for r in rows}) == 1 and rows[0]["sweep_points"] == "40"
assert all(len(r["trace_sha256"]) == 64 for r in rows)
assert rows[0]["guest_image_sha256"] == "none" and rows[0]["apfsim_version"]
assert rows[0]["swap-device/latency/median"] == "10us" and rows[8]["swap-device/latency/median"] == "31.6us"
assert float(rows[0]["host_seconds"]) >= 0
PY
    # A row is what `apfsim run` gives for that point: replay point 13 by hand.
    expect_status 0 "$apfsim" sweep "$ci" --dry-run
    line=$(grep '^13,' out) || fail "no point 13 in --dry-run"
    IFS=, read -r _ median channels interval requests seed _ <<< "$line"
    expect_status 0 "$apfsim" run "$smoke" --seed "$seed" --set smoke/timer-period=10us \
      --set "swap-device/latency/median=$median" --set "swap-device/channels=$channels" \
      --set "smoke/request-interval=$interval" --set "smoke/device-requests=$requests" \
      --set limits/max-sim-time=50ms --json - --quiet
    want=$(python3 -c 'import json,sys; print(json.load(open("out"))["trace_sha256"])')
    got=$(python3 -c 'import csv; print([r for r in csv.DictReader(open("j1.csv"))][13]["trace_sha256"])')
    [ "$want" = "$got" ] || fail "point 13: the row's trace hash $got is not the run's $want"
    ;;
  stop-and-resume)
    reference
    # --stop-after K stops exactly as SIGTERM would, after K rows.
    expect_status 143 "$apfsim" sweep "$ci" -o r.csv -j 2 --stop-after 7 --quiet
    [ "$(rows r.csv)" -eq 7 ] || fail "$(rows r.csv) rows after --stop-after 7"
    grep -q "stopped by Terminated with 7 of 40 rows in r.csv; run again with --resume" err \
      || fail "stop message: $(cat err)"
    expect_status 2 "$apfsim" sweep "$ci" -o r.csv -j 2 --quiet
    grep -q "already exists: use --resume" err || fail "overwrote without --resume"
    # A row cut short by a crash mid-write: resume drops it and says so.
    printf '7,10us,4,5us,8000,2' >> r.csv
    expect_status 0 "$apfsim" sweep "$ci" -o r.csv -j 2 --resume
    grep -q "dropped an incomplete last line (19 bytes)" err || fail "no note: $(cat err)"
    grep -q "r.csv has 7 of 40 rows; resuming" err || fail "no resume note: $(cat err)"
    grep -q "(7 resumed, 33 run: ok 33)" err || fail "tally: $(tail -1 err)"
    same_csv ref.csv r.csv
    # Resuming a finished sweep runs nothing.
    expect_status 0 "$apfsim" sweep "$ci" -o r.csv -j 2 --resume
    grep -q "(40 resumed, 0 run)" err || fail "finished sweep re-ran: $(tail -1 err)"
    same_csv ref.csv r.csv
    ;;
  kill-and-resume)
    reference
    # A real SIGKILL: no chance to clean up. Wait (by polling the file, not
    # by timing) until some rows are written, then kill.
    "$apfsim" sweep "$ci" -o k.csv -j 1 --quiet 2>k.err &
    pid=$!
    for _ in $(seq 6000); do
      [ -f k.csv ] && [ "$(rows k.csv)" -ge 5 ] && break
      sleep 0.01
    done
    kill -KILL $pid
    wait $pid; status=$?
    at_kill=$(rows k.csv)
    [ "$at_kill" -ge 5 ] || fail "only $at_kill rows before the kill"
    if [ $status -ne 137 ]; then
      echo "note: the sweep ended (status $status) before the kill; resume still checked" >&2
    fi
    expect_status 0 "$apfsim" sweep "$ci" -o k.csv -j 2 --resume
    grep -q "k.csv has $at_kill of 40 rows; resuming" err || fail "resume note: $(cat err)"
    same_csv ref.csv k.csv
    echo "killed with $at_kill of $total rows written"
    ;;
  shards-merge)
    reference
    for k in 0 1 2; do
      expect_status 0 "$apfsim" sweep "$ci" --shard $k/3 -o s$k.csv -j 2 --quiet
    done
    [ "$(rows s0.csv) $(rows s1.csv) $(rows s2.csv)" = "14 13 13" ] || fail "shard sizes"
    expect_status 0 "$apfsim" merge s2.csv s0.csv s1.csv -o all.csv
    [ ! -s out ] && [ ! -s err ] || fail "merge printed: $(cat out err)"
    same_csv ref.csv all.csv
    expect_status 2 "$apfsim" merge s0.csv s1.csv -o x.csv
    grep -q "^13 of 40 points missing: 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, ... (run their shards" err \
      || fail "missing points: $(cat err)"
    [ ! -e x.csv ] || fail "a failed merge wrote x.csv"
    expect_status 0 "$apfsim" merge s0.csv s1.csv -o part.csv --partial
    grep -q "merge: 13 of 40 points missing" err || fail "--partial note: $(cat err)"
    expect_status 2 "$apfsim" merge s0.csv s1.csv s2.csv s1.csv -o x.csv
    grep -q "^point 1 is in both s1.csv:2 and s1.csv:2 (13 overlapping rows in all)" err \
      || fail "overlap: $(cat err)"
    # A shard of another sweep (same columns, another fingerprint).
    sed 's/<seeds count="2"\/>/<seeds count="2" first="3"\/>/' "$ci" > other.xml
    sed -i "s|<base>smoke.xml</base>|<base>$smoke</base>|" other.xml
    expect_status 0 "$apfsim" sweep other.xml --shard 2/3 -o o2.csv -j 2 --quiet
    expect_status 2 "$apfsim" merge s0.csv s1.csv o2.csv -o x.csv
    grep -q "^o2.csv:2: sweep: fingerprint [0-9a-f]* differs from s0.csv's [0-9a-f]*: not the same sweep" err \
      || fail "other sweep: $(cat err)"
    # Resuming a shard file as another shard is refused.
    expect_status 2 "$apfsim" sweep "$ci" --shard 0/3 -o s1.csv --resume
    grep -q "^s1.csv:2: point: row for point 1 where point 0 comes next" err || fail "$(cat err)"
    ;;
  failed-runs)
    # A stand-in apfsim: seed 2 dies of SIGSEGV, seed 3 hangs, seed 4 exits 5
    # (internal error); the others run for real.
    cat > fake-apfsim <<EOF
#!/usr/bin/env bash
seed=; prev=
for a in "\$@"; do [ "\$prev" = --seed ] && seed=\$a; prev=\$a; done
case "\$seed" in
  2) kill -SEGV \$\$ ;;
  3) exec sleep 60 ;;
  4) echo "apfsim run: internal error: something broke" >&2; exit 5 ;;
esac
exec "$apfsim" "\$@"
EOF
    chmod +x fake-apfsim
    printf '<sweep><base>%s</base><seeds>1 2 3 4 5</seeds></sweep>\n' "$smoke" > five.xml
    expect_status 0 "$apfsim" sweep five.xml -o f.csv -j 2 --apfsim ./fake-apfsim --run-timeout 1
    python3 - <<'PY' || fail "outcomes"
import csv
rows = list(csv.DictReader(open("f.csv", newline="")))
got = [(r["seed"], r["outcome"]) for r in rows]
assert got == [("1", "ok"), ("2", "crashed"), ("3", "host_timeout"), ("4", "crashed"), ("5", "ok")], got
assert rows[1]["sim_time_ns"] == "" and rows[1]["trace_sha256"] == ""
assert rows[0]["sim_time_ns"] == "5000000"
PY
    grep -q "^sweep: point 1 crashed: killed by signal 11 (Segmentation fault)" err || fail "$(cat err)"
    grep -q "^sweep: point 2 host_timeout: killed after 1 s of host time (--run-timeout)" err || fail "$(cat err)"
    grep -q "^sweep: point 3 crashed: exited with status 5: apfsim run: internal error: something broke" err \
      || fail "$(cat err)"
    grep -q "(0 resumed, 5 run: ok 2, crashed 2, host_timeout 1)" err || fail "tally: $(tail -1 err)"
    ;;
  refused)
    # A point that `apfsim run` refuses (bad input, or a part not built yet)
    # stops the sweep with that status: every point would fail alike.
    for code in 2 4; do
      printf '#!/bin/sh\n[ "$1" = run ] || exec "%s" "$@"\necho "nope: status %s" >&2\nexit %s\n' \
        "$apfsim" $code $code > fake$code
      chmod +x fake$code
      expect_status $code "$apfsim" sweep "$ci" -o r$code.csv -j 2 --apfsim ./fake$code --quiet
      grep -q "^apfsim sweep: point [0-9]*: \`apfsim run\` exited with status $code: nope: status $code$" err \
        || fail "status $code: $(cat err)"
      [ "$(rows r$code.csv)" -eq 0 ] || fail "rows written for refused runs"
    done
    printf '#!/bin/sh\necho not apfsim\n' > notapfsim && chmod +x notapfsim
    expect_status 2 "$apfsim" sweep "$ci" -o n.csv --apfsim ./notapfsim
    grep -q "does not answer as apfsim does" err || fail "$(cat err)"
    ;;
  bad-input)
    expect_status 0 "$apfsim" sweep --help
    grep -q "^usage: apfsim sweep SWEEP -o RESULTS.csv" out || fail "help"
    # A base config that does not exist stops the sweep before anything runs.
    sed 's|<base>apf-2020.xml</base>|<base>no-such-base.xml</base>|' "$src/configs/sweep-latency.xml" > nobase.xml
    expect_status 2 "$apfsim" sweep nobase.xml -o lat.csv -j 2
    grep -q "nobase.xml:[0-9]*: base: base config 'no-such-base.xml' cannot be used: .*no-such-base.xml: cannot open: No such file or directory" err \
      || fail "missing base: $(cat err)"
    [ ! -e lat.csv ] || fail "a CSV was created"
    # configs/sweep-latency.xml (780 points on the issue 6 APF scenario) checks out.
    expect_status 0 "$apfsim" sweep "$src/configs/sweep-latency.xml" -o lat.csv --dry-run
    [ "$(wc -l < out)" -eq 781 ] || fail "sweep-latency points: $(wc -l < out)"
    [ ! -e lat.csv ] || fail "a CSV was created by --dry-run"
    # A bad value in one point is reported before anything runs.
    printf '<sweep>\n<base>%s</base>\n<param path="swap-device/channels"><values>4 0</values></param>\n</sweep>\n' \
      "$smoke" > badpoint.xml
    expect_status 2 "$apfsim" sweep badpoint.xml -o bp.csv
    grep -q "^badpoint.xml:3: param\[1\]: point 1 (swap-device/channels=0): .*--set swap-device/channels: '0' is out of range (1..1024)$" err \
      || fail "bad point: $(cat err)"
    [ ! -e bp.csv ] || fail "a CSV was created"
    [ ! -s out ] || fail "stdout not empty"
    # A CSV of another sweep is not resumed.
    printf '<sweep><base>%s</base><seeds>1 2</seeds><metrics><metric>storage/requests</metric></metrics></sweep>\n' \
      "$smoke" > two.xml
    expect_status 0 "$apfsim" sweep two.xml -o two.csv --quiet
    expect_status 2 "$apfsim" sweep "$ci" -o two.csv --resume
    grep -q "^two.csv:1: the header differs from this sweep's columns" err || fail "$(cat err)"
    expect_status 2 "$apfsim" sweep "$ci" -o x.csv -j 0
    expect_status 2 "$apfsim" sweep "$ci" -o x.csv --shard 3/3
    expect_status 2 "$apfsim" sweep "$ci"
    expect_status 2 "$apfsim" sweep "$ci" -o x.csv --run-timeout soon
    expect_status 2 "$apfsim" sweep does-not-exist.xml -o x.csv
    grep -q "^does-not-exist.xml: cannot open: No such file or directory$" err || fail "$(cat err)"
    [ ! -e x.csv ] || fail "x.csv created"
    ;;
  plot)
    reference
    expect_status 0 "$apfsim" plot ref.csv -o fig --y storage/mean_latency_ns --logy
    for f in fig.png fig.svg; do [ -s $f ] || fail "no $f"; done
    [ "$(head -c 8 fig.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "fig.png is not a PNG"
    size=$(stat -c %s fig.png)
    [ "$size" -gt 20000 ] && [ "$size" -lt 2000000 ] || fail "fig.png is $size bytes"
    grep -q "<svg" fig.svg || fail "fig.svg is not SVG"
    grep -q "swap-device/channels=4, smoke/request-interval=5us, smoke/device-requests=8000" fig.svg \
      || fail "series labels missing from the SVG"
    grep -q "^plot: fig.png, fig.svg: 4 lines, 40 rows$" err || fail "$(cat err)"
    # Defaults: ops_per_sec (all zero without a guest) against the first parameter.
    expect_status 0 "$apfsim" plot ref.csv -o def --series swap-device/channels
    grep -q "2 lines" err || fail "$(cat err)"
    expect_status 2 "$apfsim" plot ref.csv -o x --y no_such_metric
    grep -q "no column 'no_such_metric'" err || fail "$(cat err)"
    ls -a | grep -q 'tmp' && fail "temporary files left: $(ls -a)"
    true
    ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$case]"
