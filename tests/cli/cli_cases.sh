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
    for cmd in explore; do
      expect_status 4 "$apfsim" "$cmd" x
      grep -q "is not built yet" err || fail "$cmd does not say it is not built"
      [ ! -s out ] || fail "$cmd wrote to stdout"
    done
    ;;
  validate-configs)
    for f in "$src"/configs/*.xml; do
      case ${f##*/} in sweep*.xml) continue ;; esac # sweep files: tests/sweep checks them
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
  guest-boot)
    # configs/boot.xml: the guest kernel on 2 vCPUs runs its 4 processes to the end.
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --expect ok --quiet --json s.json
    grep -Eq '^ok: all 4 processes finished: pid 1 compute 2000 ops, pid 2 compute 2000 ops, pid 3 memory 100000 ops, pid 4 mixed 50000 ops in [0-9]+\.[0-9]{3} ms simulated$' out \
      || fail "verdict: $(tail -n 1 out)"
    [ ! -s err ] || fail "stderr not empty: $(cat err)"
    python3 - <<'PY' || fail "summary counts"
import json
d = json.load(open("s.json"))
assert d["outcome"] == "ok" and d["guest_instructions"] > 10**6, d
assert len(d["vcpus"]) == 2 and all(v["instructions"] > 0 and v["interrupts"] > 0 for v in d["vcpus"])
assert sum(v["instructions"] for v in d["vcpus"]) == d["guest_instructions"]
assert [p["ops"] for p in d["processes"]] == [2000, 2000, 100000, 50000], d["processes"]
assert all(p["exited"] == 1 and p["cpu_ns"] > 0 for p in d["processes"])
assert d["workload"]["ops"] == 154000 and d["workload"]["ops_per_sec"] > 0
assert len(d["vcpu_time"]) == 2 and "host" in d and "swap_device" in d
PY
    ;;
  guest-console)
    # Console lines go to stdout by default, to stderr with --json -, and always to the trace.
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --trace t.trace
    grep -q '^apfsim guest kernel, boot contract' out || fail "no console on stdout: $(head -n 3 out)"
    [ "$(grep -c ' console vcpu [0-9]* text "' t.trace)" -eq "$(($(wc -l < out) - 1))" ] \
      || fail "console lines in the trace and on stdout differ"
    grep -q 'text "all processes exited"$' t.trace || fail "last console line not in the trace"
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --json -
    python3 -c 'import json; json.load(open("out"))' || fail "stdout is not the JSON summary alone"
    grep -q '^apfsim guest kernel' err || fail "console not moved to stderr with --json -"
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none
    [ "$(wc -l < out)" -eq 1 ] && grep -q '^ok: ' out || fail "--console none: $(cat out)"
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console stderr
    grep -q '^apfsim guest kernel' err || fail "--console stderr"
    expect_status 2 "$apfsim" run "$src/configs/boot.xml" --console printer
    ;;
  guest-deterministic)
    # Two runs at once (as under ctest -j) give the same trace, byte for byte.
    "$apfsim" run "$src/configs/boot.xml" --quiet --console none --trace a.trace --json a.json >/dev/null 2>&1 &
    "$apfsim" run "$src/configs/boot.xml" --quiet --console none --trace b.trace --json b.json >/dev/null 2>&1
    wait $! || fail "first run failed"
    cmp a.trace b.trace || fail "same config, different traces"
    python3 -c 'import json; a=json.load(open("a.json")); b=json.load(open("b.json")); assert a["trace_sha256"]==b["trace_sha256"]' \
      || fail "trace_sha256 differs"
    grep -Eq '^# guest-image-sha256 [0-9a-f]{64}$' a.trace || fail "no guest image hash in the header"
    ;;
  guest-replay)
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none --trace r.trace
    expect_status 0 "$apfsim" replay r.trace
    grep -q "^replay identical" out || fail "replay output: $(cat out)"
    [ "$(wc -l < out)" -eq 1 ] || fail "replay printed more than its result: $(cat out)"
    ;;
  guest-time-limit)
    # Bounded processes unfinished at max-sim-time: timeout naming them; only unbounded ones: ok.
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none --set limits/max-sim-time=3ms --expect timeout
    grep -Eq '^timeout: the simulated time limit \(3\.000 ms, limits/max-sim-time\) was reached with 4 of 4 processes unfinished: pid 1 compute [0-9]+ of 2000 ops, ' out \
      || fail "verdict: $(cat out)"
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none --set limits/max-sim-time=3ms \
      --set 'workload/process[1]/ops=unlimited' --set 'workload/process[2]/ops=unlimited' \
      --set 'workload/process[3]/ops=unlimited' --expect ok --json s.json
    python3 -c 'import json; d=json.load(open("s.json")); assert d["sim_time_ns"]==3000000, d["sim_time_ns"]' || fail "sim_time_ns"
    ;;
  guest-bad-kernel)
    expect_status 2 "$apfsim" run "$src/configs/boot.xml" --set guest/kernel=missing.elf
    grep -q 'guest/kernel: .*missing\.elf' err || fail "message: $(cat err)"
    [ ! -s out ] || fail "stdout not empty"
    printf 'not an ELF' > junk.elf
    expect_status 2 "$apfsim" run "$src/configs/boot.xml" --set guest/kernel="$PWD/junk.elf"
    ;;
  guest-timer-exact)
    # Timer expiries stop the vCPU at their own time, not at the end of a 500 us quantum.
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none --trace t.trace \
      --set machine/quantum-instructions=1000000 --set guest/timer-period=100us
    awk '$3=="apic_timer" { n++; late=$1-$5; if (late<0) bad++; if (late<=1) ok++; if (late>w) w=late }
         END { printf "%d %d %d %d\n", n, ok, w, bad }' t.trace > stats
    read -r n exact worst bad < stats
    [ "$n" -gt 200 ] && [ "$bad" -eq 0 ] && [ $((exact * 100)) -ge $((n * 90)) ] && [ "$worst" -le 1675 ] \
      || fail "apic_timer lateness: $n expiries, $exact exact, worst $worst ns, $bad early"
    ;;
  sync-trace-counts)
    # Synchronous host faults: the summary's counts are the trace's lines; HDD blocks far longer.
    for dev in nvme hdd; do
      expect_status 0 "$apfsim" run "$src/configs/swap-sync-$dev.xml" --quiet --console none --expect ok \
        --trace $dev.trace --json $dev.json
    done
    python3 - <<'PY' || fail "counts differ"
import json
blocked = {}
for dev in ["nvme", "hdd"]:
    d = json.load(open(dev + ".json"))
    lines = [l.split() for l in open(dev + ".trace") if not l.startswith("#")]
    count = lambda name, cpu=None: sum(1 for l in lines if l[2] == name and (cpu is None or l[1] == cpu))
    for i, v in enumerate(d["vcpus"]):
        assert v["sync_faults"] == count("sync_fault_start", "cpu%d" % i), (dev, i)
        assert v["ept_violations"] == count("ept_violation", "cpu%d" % i), (dev, i)
    assert d["apf"]["sync_faults"] == count("sync_fault_end") > 100, dev
    assert d["host"]["page_reads"] == count("swap_read_submit") == count("swap_read_done"), dev
    assert d["host"]["writebacks"] == count("swap_write_submit"), dev
    assert d["storage"]["requests"] == count("swap_read_submit") + count("swap_write_submit"), dev
    hist = sum(r["count"] for r in d["sync_fault_latency"])
    assert hist == d["apf"]["sync_faults"], dev
    blocked[dev] = sum(v["blocked_ns"] for v in d["vcpu_time"])
assert blocked["hdd"] > 100 * blocked["nvme"] > 0, blocked
PY
    ;;
  dax-truncate-sync)
    # virtiofs DAX truncation, synchronous: efault_exit naming gpa, rip + symbol, file offset;
    # deterministic and replayable; a window the machine cannot hold is bad input.
    cfg=$src/configs/dax-truncate-sync.xml
    expect_status 0 "$apfsim" run "$cfg" --quiet --console none --expect efault_exit --trace a.trace --json a.json
    python3 - <<'PY' || fail "summary: $(cat a.json)"
import json
d = json.load(open("a.json"))
v = d["verdict"]
for want in ['"kvm run failed: Bad address"', "gpa 0x100010000 ", "file offset 0x10000)", " = user_main+0x",
             "(user mode)"]:
    assert want in v, (want, v)
assert d["dax"]["efault_exits"] == 1 and d["dax"]["pages_truncated"] == 48, d["dax"]
lines = [l.split() for l in open("a.trace") if not l.startswith("#")]
assert sum(1 for l in lines if l[2] == "efault") == 1
assert sum(1 for l in lines if l[2] == "dax_truncate") == 1
assert sum(1 for l in lines if l[2] == "dax_read_submit") == sum(1 for l in lines if l[2] == "dax_read_done") == 64
PY
    expect_status 0 "$apfsim" run "$cfg" --quiet --console none --trace b.trace
    cmp a.trace b.trace || fail "two runs, different traces"
    expect_status 0 "$apfsim" replay a.trace
    grep -q "^replay identical" out || fail "replay output: $(cat out)"
    expect_status 2 "$apfsim" run "$cfg" --quiet --set dax/window-gpa=0x1000000000
    grep -q 'dax/window-gpa' err || fail "bad window message: $(cat err)"
    ;;
  apf-off|apf-halt|apf-2010|apf-2020)
    # Each APF scenario: outcome ok, the same trace twice (two runs at once), replay identical.
    cfg=$src/configs/$case.xml
    "$apfsim" run "$cfg" --quiet --console none --expect ok --trace a.trace --json a.json >/dev/null 2>&1 &
    expect_status 0 "$apfsim" run "$cfg" --quiet --console none --expect ok --trace b.trace --json b.json
    wait $! || fail "first run failed"
    cmp a.trace b.trace || fail "same config, different traces"
    expect_status 0 "$apfsim" replay a.trace
    grep -q "^replay identical" out || fail "replay output: $(cat out)"
    python3 - "$case" <<'PY' || fail "summary"
import json, sys
case = sys.argv[1]
d = json.load(open("a.json"))
lines = [l.split() for l in open("a.trace") if not l.startswith("#")]
count = lambda name, text="": sum(1 for l in lines if l[2] == name and text in " ".join(l[3:]))
a = d["apf"]
assert d["workload"]["ops"] > 0 and d["workload"]["ops_per_sec"] > 0
assert a["sync_faults"] == count("sync_fault_start") > 0
assert a["not_present"] == count("apf_inject_pf", "kind not_present") + count("apf_inject_ve", "kind not_present")
assert a["synthetic_halts"] == count("apf_synthetic_halt")
assert a["wake_all"] == count("apf_wake_all", "queued")
assert [r["not_present"] for r in d["apf_vcpu"]] == [v["apf_not_present"] for v in d["vcpus"]]
if case == "apf-off":
    assert a["not_present"] == a["synthetic_halts"] == a["wake_all"] == 0
    assert count("apf_sync_fault", "why async_disabled") == a["sync_faults"]
elif case == "apf-halt":
    assert a["not_present"] == 0 and a["synthetic_halts"] > 10 and a["wake_all"] == 0
else:
    assert a["not_present"] > 10 and a["wake_all"] == 2
    if case == "apf-2010":
        assert a["page_ready"] == count("apf_inject_pf", "kind page_ready")
        assert count("apf_orphan_page_ready") >= 1 and a["dummy_nodes"] >= 1
    else:
        assert a["page_ready"] == count("apf_page_ready_irq") - a["wake_all"]
        assert count("apf_orphan_page_ready") == 0 and a["dummy_nodes"] == 0
PY
    ;;
  apf-throughput)
    # The note's claim (docs/apf-results.md): APF (2020, 2010) completes clearly more guest
    # operations per simulated second than synchronous faults; the halt-only host in between.
    for p in off halt 2010 2020; do
      expect_status 0 "$apfsim" run "$src/configs/apf-$p.xml" --quiet --console none --expect ok --json $p.json
    done
    python3 - <<'PY' || fail "throughput order"
import json
r = {p: json.load(open(p + ".json")) for p in ["off", "halt", "2010", "2020"]}
ops = {p: d["workload"]["ops_per_sec"] for p, d in r.items()}
blocked = {p: sum(v["blocked_ns"] for v in d["vcpu_time"]) for p, d in r.items()}
assert ops["2020"] > 1.5 * ops["off"] and ops["2010"] > 1.5 * ops["off"], ops
assert ops["off"] < ops["halt"] < min(ops["2010"], ops["2020"]), ops
assert blocked["off"] > blocked["halt"] and blocked["off"] > blocked["2020"], blocked
PY
    ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$case]"
