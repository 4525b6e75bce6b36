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
  guest-task-switch)
    # The guest reports every context switch (port 0xEF): one task_switch per switch its
    # statistics count, per vCPU and per task, named like the summary's processes.
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none --expect ok \
      --trace t.trace --json s.json
    python3 - <<'PY' || fail "task_switch events and the guest's context switches differ"
import json
d = json.load(open("s.json"))
sw = [l.split() for l in open("t.trace") if not l.startswith("#") and l.split()[2:3] == ["task_switch"]]
assert sum(v["context_switches"] for v in d["vcpu_time"]) == len(sw) > 0, len(sw)
for v in d["vcpu_time"]:
    assert v["context_switches"] == sum(1 for l in sw if l[1] == "cpu%d" % v["vcpu"]), v
comm = {0: "compute", 1: "memory", 2: "mixed"}
for p in d["processes"]:
    mine = [l for l in sw if l[3:5] == ["pid", str(p["pid"])]]
    assert len(mine) == p["switches_in"] > 0, p
    assert all(l[5:] == ["comm", comm[p["kind"]]] for l in mine), mine
assert all(l[5:] == ["comm", "idle"] for l in sw if l[4] == "0")
PY
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
  dax-truncate-async)
    # DAX truncation under APF, mainline: the endless fault/page-ready loop on one gfn is
    # caught (apf/livelock-faults); deterministic (two runs at once) and replayable.
    cfg=$src/configs/dax-truncate-async.xml
    "$apfsim" run "$cfg" --quiet --console none --expect livelock --trace b.trace >/dev/null 2>&1 &
    expect_status 0 "$apfsim" run "$cfg" --quiet --console none --expect livelock --trace a.trace --json a.json
    wait $! || fail "second run failed"
    cmp a.trace b.trace || fail "two runs, different traces"
    expect_status 0 "$apfsim" replay a.trace
    grep -q "^replay identical" out || fail "replay output: $(cat out)"
    python3 - <<'PY' || fail "summary: $(cat a.json)"
import json
d = json.load(open("a.json"))
v = d["verdict"]
for want in ["100 async page faults in a row on gpa 0x100010000 (gfn 0x100010;", "file offset 0x10000)",
             " = user_main+0x", "(user mode) in task pid 1 (dax-read)", "truncated the file at 2.000 ms",
             "apf/error-reporting none"]:
    assert want in v, (want, v)
lines = [l.split() for l in open("a.trace") if not l.startswith("#")]
failed = [l for l in lines if l[2] == "apf_fetch_failed"]
assert len(failed) == 99 and all(l[-1] == "0x100010" for l in failed), len(failed)
assert sum(1 for l in lines if l[2] == "apf_livelock") == 1
assert sum(1 for l in lines if l[2] == "efault") == 0
assert d["dax"]["efault_exits"] == 0 and sum(r["failed_reads"] for r in d["apf_vcpu"]) == 99, d["dax"]
PY
    # the threshold is the config's: 10 faults end it sooner, 0 never does (the time limit does)
    expect_status 0 "$apfsim" run "$cfg" --quiet --console none --expect livelock --json c.json \
      --set apf/livelock-faults=10
    grep -q 'took 10 async page faults in a row' c.json || fail "threshold 10: $(cat c.json)"
    expect_status 0 "$apfsim" run "$cfg" --quiet --console none --json d.json \
      --set apf/livelock-faults=0 --set limits/max-sim-time=3ms
    python3 - <<'PY' || fail "threshold 0: $(cat d.json)"
import json
d = json.load(open("d.json"))
# the loop goes on undetected to the time limit: the task is retrying, not lost
assert d["outcome"] == "timeout" and sum(r["failed_reads"] for r in d["apf_vcpu"]) > 150, (d["outcome"], d["apf_vcpu"])
assert d["race"]["lost_tokens"] == 0, d["race"]
PY
    ;;
  dax-truncate-page-error)
    # The error through page-ready (ready_flags PAGE_ERROR): the user task gets SIGBUS.
    expect_status 0 "$apfsim" run "$src/configs/dax-truncate-page-error.xml" --quiet --console none --expect sigbus \
      --trace a.trace --json a.json
    python3 - <<'PY' || fail "summary: $(cat a.json)"
import json
d = json.load(open("a.json"))
v = d["verdict"]
for want in ["killed task pid 1 (dax-read) with SIGBUS", "ready_flags PAGE_ERROR", "APF token 0x",
             "rip 0x4003c6 = user_main+0x", "(user mode)"]:
    assert want in v, (want, v)
lines = [l.split() for l in open("a.trace") if not l.startswith("#")]
assert sum(1 for l in lines if l[2] == "apf_page_error") == 1
assert sum(1 for l in lines if l[2] == "sigbus") == 1
p = d["processes"][0]
assert p["term_signal"] == 7 and d["dax"]["sigbus_kills"] == 1, (p, d["dax"])
assert sum(r["page_error_reports"] for r in d["apf_vcpu"]) == sum(r["guest_page_errors"] for r in d["apf_vcpu"]) == 1
PY
    ;;
  dax-truncate-force-sync)
    # A forced synchronous fault for the gfn that failed: the EFAULT exit, one async round late.
    expect_status 0 "$apfsim" run "$src/configs/dax-truncate-force-sync.xml" --quiet --console none \
      --expect efault_exit --trace a.trace --json a.json
    python3 - <<'PY' || fail "summary: $(cat a.json)"
import json
d = json.load(open("a.json"))
v = d["verdict"]
for want in ['"kvm run failed: Bad address"', "gpa 0x100010000 ", "file offset 0x10000)", " = user_main+0x",
             "(user mode)", "truncated the file at 2.000 ms"]:
    assert want in v, (want, v)
lines = [l.split() for l in open("a.trace") if not l.startswith("#")]
assert sum(1 for l in lines if l[2] == "apf_fetch_failed") == 1
assert sum(1 for l in lines if l[2] == "apf_error_gfn") == 1
assert sum(1 for l in lines if l[2] == "efault") == 1
assert d["dax"]["efault_exits"] == 1 and sum(r["forced_sync"] for r in d["apf_vcpu"]) == 1, d
PY
    ;;
  dax-copy-sync-exception)
    # A kernel copy_to_user from truncated DAX pages: #VE page errors, the exception-table
    # fixup, -EFAULT to the process, counted; the run goes on to ok.
    expect_status 0 "$apfsim" run "$src/configs/dax-copy-sync-exception.xml" --quiet --console none --expect ok \
      --trace a.trace --json a.json
    python3 - <<'PY' || fail "summary: $(cat a.json)"
import json
d = json.load(open("a.json"))
assert d["verdict"].startswith("all 2 processes finished"), d["verdict"]
p = d["processes"][0]
n = p["efaults"]
assert p["kind"] == 4 and p["exited"] == 1 and p["term_signal"] == 0 and n > 100, p
assert d["dax"]["copy_efaults"] == d["dax"]["efault_fixups"] == n and d["dax"]["efault_exits"] == 0, d["dax"]
apf = d["apf_vcpu"]
assert sum(r["ve_page_errors"] for r in apf) == sum(r["guest_efault_fixups"] for r in apf) == n, apf
lines = [l.split() for l in open("a.trace") if not l.startswith("#")]
assert sum(1 for l in lines if l[2] == "apf_inject_ve" and l[4] == "page_error") == n
PY
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
  measure-window)
    # limits/measure-from: the summary's window section counts from the warm-up's end.
    # (a small host memory and a fast device: APF traffic from the first milliseconds; 4
    # vCPUs, whose interleaving would show any change of slicing the window made)
    fast=(--set limits/max-sim-time=60ms --set host/memory-limit=4MiB --set swap-device/@preset=nvme-ssd
      --set machine/vcpus=4)
    expect_status 0 "$apfsim" run "$src/configs/apf-2020.xml" --quiet --console none --json w.json --trace w.trace \
      "${fast[@]}" --set limits/measure-from=20ms
    expect_status 0 "$apfsim" run "$src/configs/apf-2020.xml" --quiet --console none --json all.json \
      --trace all.trace "${fast[@]}"
    python3 - <<'PY' || fail "window counters"
import json
w, a = json.load(open("w.json")), json.load(open("all.json"))
win, whole = w["window"], a["window"]
# the first vCPU slice at or after 20 ms reads the start counts (a slice: 10000 instructions)
assert 20000000 <= win["from_ns"] < 20100000 and win["to_ns"] == 60000000, win
assert (whole["from_ns"], whole["to_ns"]) == (0, 60000000), whole
# the same run (the window's start changes nothing the guest sees)
assert w["workload"]["ops"] == a["workload"]["ops"] and w["apf"] == a["apf"]
assert w["guest_instructions"] == a["guest_instructions"] and w["vcpus"] == a["vcpus"]
assert whole["ops"] == a["workload"]["ops"] and whole["not_present"] == a["apf"]["not_present"]
assert 0 < win["ops"] < whole["ops"] and 0 < win["not_present"] < whole["not_present"], (win, whole)
assert win["ops_per_sec"] == round(win["ops"] * 1e9 / (win["to_ns"] - win["from_ns"])), win
assert win["instructions"] < whole["instructions"] == a["guest_instructions"]
PY
    [ "$(grep -c ' measure_start ' w.trace)" = 1 ] || fail "measure_start events: $(grep -c ' measure_start ' w.trace)"
    grep -Eq '^ +200[0-9]{5} host +measure_start ops [0-9]+ instructions [0-9]+$' w.trace || fail "measure_start line"
    # the window changes nothing else: the same events, but for that one line
    [ "$(grep -v ' measure_start ' w.trace | grep -v '^#' | sha256sum)" = "$(grep -v '^#' all.trace | sha256sum)" ] ||
      fail "the measurement window changed the run's events"
    ! grep -q ' measure_start ' all.trace || fail "measure_start without a warm-up"
    expect_status 2 "$apfsim" run "$src/configs/apf-2020.xml" --set limits/max-sim-time=60ms \
      --set limits/measure-from=60ms
    grep -q 'limits/measure-from: the measurement window must start before limits/max-sim-time' err ||
      fail "message: $(cat err)"
    ;;
  nmi-at-symbol)
    # race/nmi trigger at-symbol (issue 7): the NMI lands right before sched_tick on its 2nd
    # execution by vCPU 1; an unknown symbol or a mid-instruction offset is bad input.
    boot=$src/configs/boot.xml
    at=(--set limits/max-sim-time=5ms --set 'race/nmi[1]/@trigger=at-symbol' --set 'race/nmi[1]/vcpu=1')
    expect_status 0 "$apfsim" run "$boot" "${at[@]}" --set 'race/nmi[1]/symbol=sched_tick' \
      --set 'race/nmi[1]/nth=2' --json s.json --trace t.trace --quiet
    grep -Eq '^ *[0-9]+ +cpu1 +nmi_inject plan 1 trigger at_symbol retired [0-9]+ rip 0x[0-9a-f]+ sym sched_tick$' t.trace \
      || fail "no nmi_inject at sched_tick: $(grep nmi_inject t.trace)"
    python3 -c 'import json,sys; d=json.load(open("s.json")); sys.exit(d["race"]["nmi_injected"] != 1)' \
      || fail "race.nmi_injected is not 1"
    expect_status 2 "$apfsim" run "$boot" "${at[@]}" --set 'race/nmi[1]/symbol=no_such_symbol' --quiet
    grep -q 'race/nmi\[1\]/symbol: ' err || fail "unknown symbol: $(cat err)"
    expect_status 2 "$apfsim" run "$boot" "${at[@]}" --set 'race/nmi[1]/symbol=asm_exc_page_fault' \
      --set 'race/nmi[1]/offset=1' --quiet
    grep -q 'race/nmi\[1\]/offset: .*not on an instruction boundary' err || fail "mid-instruction offset: $(cat err)"
    ;;
  limit-guest-instructions)
    # limits/max-guest-instructions: outcome timeout naming the limit, the same trace twice.
    for i in 1 2; do
      expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none --trace i$i.trace \
        --json i$i.json --set limits/max-guest-instructions=300000 --expect timeout
      grep -q '^timeout: the guest instruction limit (300000, limits/max-guest-instructions) was reached' out \
        || fail "verdict: $(cat out)"
    done
    cmp -s i1.trace i2.trace || fail "two runs with an instruction limit differ"
    python3 -c 'import json; d=json.load(open("i1.json")); assert d["guest_instructions"] >= 300000, d' \
      || fail "guest_instructions below the limit"
    grep -v '^#' i1.trace | tail -n 1 | grep -Eq ' run_end outcome timeout$' || fail "last event: $(tail -n 2 i1.trace)"
    ;;
  limit-host-seconds)
    # A run that cannot finish (unbounded work, a simulated-time limit of days) stops at
    # limits/max-host-seconds: outcome timeout, a host_limit event before run_end, and the
    # events before the stop are those of any other run of the config. Only the outcome
    # is asserted, never how long it took.
    for i in 1 2; do
      expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none --trace h$i.trace \
        --set limits/max-sim-time=100000s --set limits/max-host-seconds=1 \
        --set 'workload/process[1]/ops=unlimited' --set 'workload/process[2]/ops=unlimited' \
        --set 'workload/process[3]/ops=unlimited' --expect timeout
      grep -q '^timeout: the host time limit (1 s, limits/max-host-seconds) stopped the run' out \
        || fail "verdict: $(cat out)"
      grep -v '^#' h$i.trace | grep -E ' host +(host_limit|run_end) ' > ends
      grep -Eq ' host +host_limit limit max-host-seconds seconds 1$' <(head -n 1 ends) \
        && grep -Eq ' run_end outcome timeout$' <(tail -n 1 ends) && [ "$(wc -l < ends)" = 2 ] \
        || fail "host_limit then run_end: $(cat ends)"
    done
    python3 - <<'PY' || fail "the two stopped runs differ before the earlier stop"
def events(p):
    return [l for l in open(p) if not l.startswith("#")]
a, b = events("h1.trace"), events("h2.trace")
end = min(int(a[-1].split()[0]), int(b[-1].split()[0]))
# every event strictly before the earlier stop is in both traces, in the same order
pa = [l for l in a if int(l.split()[0]) < end]
pb = [l for l in b if int(l.split()[0]) < end]
assert pa == pb and len(pa) > 100, (len(pa), len(pb))
PY
    ;;
  limit-host-memory)
    # limits/max-host-memory: RAM (+ DAX window) beyond it is bad input ...
    expect_status 2 "$apfsim" run "$src/configs/boot.xml" --set limits/max-host-memory=32MiB
    grep -Eq 'boot\.xml(:[0-9]+)?: (--set )?limits/max-host-memory: guest memory 64MiB needs more than the limit 32MiB' err \
      || fail "message: $(cat err)"
    expect_status 2 "$apfsim" run "$src/configs/dax-truncate-sync.xml" --set limits/max-host-memory=32MiB
    grep -q 'limits/max-host-memory: guest memory .* + DAX window .* needs more than the limit 32MiB' err \
      || fail "message: $(cat err)"
    # ... a trace buffer beyond the rest ends the run: timeout, at the same point every time ...
    for i in 1 2; do
      expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none --trace m$i.trace \
        --set limits/max-host-memory=65544KiB --expect timeout
      grep -q '^timeout: the host memory limit (67117056 bytes, limits/max-host-memory) stopped the run at .* the trace buffer holds [0-9]* bytes, more than the 8192 left' out \
        || fail "verdict: $(cat out)"
      # host_limit, then run_end at the same time (vCPU events of that instant may follow).
      grep -v '^#' m$i.trace | grep -E ' host +(host_limit|run_end) ' > ends
      grep -Eq ' host +host_limit limit max-host-memory bytes [0-9]+$' <(head -n 1 ends) \
        && grep -Eq ' run_end outcome timeout$' <(tail -n 1 ends) && [ "$(wc -l < ends)" = 2 ] \
        || fail "host_limit then run_end: $(cat ends)"
    done
    cmp -s m1.trace m2.trace || fail "two runs stopped by the memory limit differ"
    # ... and a limit with room changes nothing.
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none --json free.json
    expect_status 0 "$apfsim" run "$src/configs/boot.xml" --quiet --console none --json roomy.json \
      --set limits/max-host-memory=1GiB
    python3 -c 'import json; a,b=(json.load(open(f)) for f in ("free.json","roomy.json")); assert a["outcome"]==b["outcome"]=="ok" and a["guest_instructions"]==b["guest_instructions"], (a["outcome"], b["outcome"])' \
      || fail "a roomy memory limit changed the run"
    ;;
  race-reproduced)
    # The seed's race on the vulnerable 2020 guest: the verdict names the delivery, the NMI's
    # instruction, both CR2 values and the panic; the counters and trace events say the same;
    # two runs give the same trace.
    cfg=$src/configs/nmi-cr2-race.xml
    expect_status 0 "$apfsim" validate "$cfg"
    "$apfsim" run "$cfg" --quiet --console none --expect guest_panic --trace b.trace --json b.json >/dev/null 2>&1 &
    expect_status 0 "$apfsim" run "$cfg" --quiet --console none --expect guest_panic --trace a.trace --json a.json
    wait $! || fail "second run failed"
    v=$(cat out)
    for w in '^guest_panic: race reproduced on vCPU 0: APF not-present token 0x3000 \(CR2 0x3000\) was delivered at 0x[0-9a-f]+ \(user_main\+0x[0-9a-f]+, user mode\)' \
             'an NMI injected 10 instructions later at 0x[0-9a-f]+ \(asm_exc_page_fault\+0x[0-9a-f]+\), before the handler consumed the APF reason' \
             'faulted \(CR2 0x[0-9a-f]+\); the nested #PF took the APF reason: guest panic on vCPU 0' \
             'Host injected async #PF in interrupt disabled region'; do
      grep -Eq "$w" <<<"$v" || fail "verdict lacks /$w/: $v"
    done
    python3 - <<'PY' || fail "summary"
import json
a, b = (json.load(open(f)) for f in ("a.json", "b.json"))
assert a["trace_sha256"] == b["trace_sha256"], "two runs differ"
assert a["race"] == {"nmi_injected": 1, "cr2_clobbered": 1, "lost_tokens": 0}, a["race"]
PY
    cmp -s a.trace b.trace || fail "traces differ"
    grep -Eq ' cpu0 +apf_user_not_present token 0x3000 gva 0x[0-9a-f]+ rip 0x[0-9a-f]+ sym user_main\+0x[0-9a-f]+ via pf$' a.trace \
      || fail "no apf_user_not_present"
    grep -Eq ' race_nmi_in_window token 0x3000 k 10 rip 0x[0-9a-f]+ sym asm_exc_page_fault\+0x[0-9a-f]+ word set$' a.trace \
      || fail "no race_nmi_in_window"
    grep -Eq ' race_cr2_clobbered token 0x3000 cr2 0x[0-9a-f]+ how nested_fault$' a.trace || fail "no race_cr2_clobbered"
    # The nested fault's CR2 is the one the verdict and the panic record name.
    cr2=$(grep -Eo 'race_cr2_clobbered token 0x3000 cr2 0x[0-9a-f]+' a.trace | awk '{print $5}')
    grep -qF "faulted (CR2 $cr2)" <<<"$v" && grep -Eq "guest_panic .* cr2 $cr2 " a.trace || fail "CR2 $cr2 not in verdict and panic"
    ;;
  race-variants)
    # One config per row of docs/guest.md §4: each ends with the outcome the guest's code gives.
    while read -r name outcome words; do
      cfg=$src/configs/$name.xml
      expect_status 0 "$apfsim" validate "$cfg"
      expect_status 0 "$apfsim" run "$cfg" --quiet --console none --expect "$outcome" --json "$name.json"
      grep -Eq "^$outcome: .*$words" out || fail "$name verdict lacks /$words/: $(cat out)"
    done <<'VARIANTS'
nmi-cr2-fixed ok on vCPU 0 an NMI was injected 10 instructions after the delivery of APF not-present token 0x3000, at 0x[0-9a-f]+ \(asm_exc_page_fault\+0x[0-9a-f]+\), while the APF word still held the reason, and no clobbered CR2
nmi-cr2-nosave guest_panic race reproduced on vCPU 0: APF not-present token 0x3000 .*Host injected async #PF in interrupt disabled region
nmi-cr2-reason-first guest_panic race reproduced .*asm_exc_page_fault_reason_first\+0x[0-9a-f]+.*Host injected async #PF in interrupt disabled region
nmi-cr2-reason-first-nosave hung_task injected 35 instructions later .*after the handler cleared the APF reason but before it read CR2.*task pid 1 \(memory\) on vCPU 0 hangs: it sleeps on APF token 0x[0-9a-f]+, which the host never issued.*the page-ready for token 0x3000 found no sleeper \(1 dummy node left
nmi-cr2-ve ok inside the #VE handler, and no clobbered CR2 or lost token followed
nmi-cr2-2010 hung_vcpu token 0x2000 \(CR2 0x2000\).*the nested #PF took the APF reason and its own CR2 as the token, so vCPU 0 hangs: the guest halt-waits at 0x[0-9a-f]+ \(kvm_[a-z_]+\+0x[0-9a-f]+\) on APF token 0x[0-9a-f]+, which the host never issued
nmi-cr2-2010-reason-first hung_vcpu race reproduced .*vCPU 0 hangs: the guest halt-waits
nmi-cr2-2010-reason-first-nosave hung_task injected 35 instructions later.*task pid 1 \(memory\) on vCPU 0 hangs
nmi-cr2-2010-stash ok an NMI was injected 10 instructions after the delivery of APF not-present token 0x2000
VARIANTS
    python3 - <<'PY' || fail "race counters"
import json
want = {"nmi-cr2-fixed": (0, 0), "nmi-cr2-ve": (0, 0), "nmi-cr2-2010-stash": (0, 0), "nmi-cr2-nosave": (1, 0),
        "nmi-cr2-reason-first-nosave": (1, 1), "nmi-cr2-2010": (1, 1), "nmi-cr2-2010-reason-first-nosave": (1, 1)}
for name, (clob, lost) in want.items():
    r = json.load(open(name + ".json"))["race"]
    assert (r["nmi_injected"], r["cr2_clobbered"], r["lost_tokens"]) == (1, clob, lost), (name, r)
PY
    ;;
  race-horizon)
    # A run stopped at any horizon is judged: a lost wait at the time limit is a hang, not a
    # timeout (the explorer's short children rely on it) ...
    expect_status 0 "$apfsim" run "$src/configs/nmi-cr2-2010.xml" --quiet --console none --expect hung_vcpu \
      --set limits/max-sim-time=2ms
    grep -qF 'judged at the time limit) at 2.000 ms' out || fail "verdict: $(cat out)"
    expect_status 0 "$apfsim" run "$src/configs/nmi-cr2-reason-first-nosave.xml" --quiet --console none \
      --expect hung_task --set limits/max-sim-time=2ms
    grep -qF 'judged at the time limit) at 2.000 ms' out || fail "verdict: $(cat out)"
    # ... race/stuck-timeout decides when a lost wait ends a running simulation ...
    expect_status 0 "$apfsim" run "$src/configs/nmi-cr2-reason-first-nosave.xml" --quiet --console none \
      --expect hung_task --set race/stuck-timeout=1ms --trace s.trace
    grep -qF '(race/stuck-timeout 1.000 ms) at ' out || fail "verdict: $(cat out)"
    grep -Eq ' race_lost_token pid 1 token 0x[0-9a-f]+ since_ns [0-9]+ why never_issued$' s.trace || fail "no race_lost_token"
    # ... and a run without a race that stops early is still a timeout.
    expect_status 0 "$apfsim" run "$src/configs/nmi-cr2-fixed.xml" --quiet --console none --expect timeout \
      --set limits/max-sim-time=2ms
    ;;
  *) fail "unknown case" ;;
esac
echo "PASS [$case]"
