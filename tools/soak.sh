#!/usr/bin/env bash
# tools/soak.sh — the soak of generated configs (issue 9, docs/soak.md).
#
#   tools/soak.sh N SEED [APFSIM]     e.g. tools/soak.sh 500 1 build/apfsim
#
# Writes N random, valid configs with apfsim-soakgen (beside APFSIM, or
# $APFSIM_SOAKGEN), runs each with `apfsim run CFG --json -` and classifies it:
#   pass  exit 0 with a JSON summary naming an outcome, or exit 2 with a
#         "CFG:LINE: field: problem" (or "CFG: problem") message;
#   fail  any other exit status (5 internal error, a signal, ...), an
#         assertion or a sanitizer report on stderr, a summary that does not
#         parse, or a hang (killed after $SOAK_TIMEOUT seconds).
# A failing config is copied, with its stderr, to WORK/failures/. Prints the
# outcome histogram and every failure with the command that reproduces it.
#
# Environment:
#   SOAK_WORK     working directory (default: a new /tmp/apfsim-soak.XXXXXX)
#   SOAK_FIRST    index of the first config (default 0): a slice of a larger soak
#   SOAK_JOBS     runs in parallel (default 1)
#   SOAK_TIMEOUT  host seconds before a run counts as hung (default 120; the
#                 configs' own limits/max-host-seconds stops them at 20-30 s)
#   SOAK_MAX_SIM_NS  longest simulated time of a run (default 5000000 = 5 ms; the
#                 CI slice uses less, to stay fast under the sanitizers)
#
# Exit status: 0 when every run passed, 1 when any failed, 2 on a usage error.
set -uo pipefail

usage() {
  echo "usage: $0 N SEED [APFSIM]" >&2
  exit 2
}
[ $# -ge 2 ] && [ $# -le 3 ] || usage
n=$1 seed=$2
[[ $n =~ ^[0-9]+$ && $seed =~ ^[0-9]+$ ]] || usage
repo=$(cd "$(dirname "$0")/.." && pwd)
apfsim=${3:-$repo/build/apfsim}
[ -x "$apfsim" ] || { echo "$0: $apfsim: no apfsim binary (give its path)" >&2; exit 2; }
apfsim=$(cd "$(dirname "$apfsim")" && pwd)/$(basename "$apfsim")
gen=${APFSIM_SOAKGEN:-$(dirname "$apfsim")/apfsim-soakgen}
[ -x "$gen" ] || { echo "$0: $gen: no apfsim-soakgen (build the apfsim-soakgen target)" >&2; exit 2; }
first=${SOAK_FIRST:-0} jobs=${SOAK_JOBS:-1} limit=${SOAK_TIMEOUT:-120}
work=${SOAK_WORK:-$(mktemp -d /tmp/apfsim-soak.XXXXXX)}
mkdir -p "$work/configs" "$work/runs" "$work/failures" || exit 2
rm -f "$work"/configs/soak-*.xml "$work"/runs/* "$work"/failures/*

"$gen" "$seed" "$first" "$n" "$work/configs" ${SOAK_MAX_SIM_NS:+"$SOAK_MAX_SIM_NS"} || { echo "$0: apfsim-soakgen failed" >&2; exit 2; }

# run_one CFG: runs one config; leaves runs/NAME.{json,err,rc}.
run_one() {
  local cfg=$1 name
  name=$(basename "$cfg" .xml)
  (cd "$work/configs" && timeout -k 5 "$limit" "$apfsim" run "$(basename "$cfg")" --json - --quiet \
     --console none >"$work/runs/$name.json" 2>"$work/runs/$name.err")
  echo $? >"$work/runs/$name.rc"
}

start=$(date +%s)
running=0
for cfg in "$work"/configs/soak-*.xml; do
  run_one "$cfg" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
elapsed=$(($(date +%s) - start))

# Classify every run: one python pass over the results (JSON parsing).
python3 - "$work" "$apfsim" "$seed" "$n" "$elapsed" "$limit" <<'EOF'
import collections, json, os, re, shutil, sys
work, apfsim, seed, n, elapsed, limit = sys.argv[1:7]
runs = os.path.join(work, "runs")
hist = collections.Counter()
bad_input = collections.Counter()
failures = []
sanitizer = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error: |"
                       r"SUMMARY: UndefinedBehaviorSanitizer|Assertion .* failed|assertion failed",
                       re.I)
names = sorted(f[:-3] for f in os.listdir(runs) if f.endswith(".rc"))
for name in names:
    rc = int(open(os.path.join(runs, name + ".rc")).read())
    err = open(os.path.join(runs, name + ".err"), errors="replace").read()
    out = open(os.path.join(runs, name + ".json"), errors="replace").read()
    cfg = name + ".xml"
    why = None
    if sanitizer.search(err):
        why = "sanitizer report or assertion on stderr"
    elif rc in (124, 137):
        why = "hung: killed after %s s" % limit
    elif rc == 0:
        try:
            outcome = json.loads(out)["outcome"]
            hist[outcome] += 1
        except Exception as e:
            why = "exit 0 but the JSON summary does not parse: %s" % e
    elif rc == 2:
        first = err.splitlines()[0] if err else ""
        m = re.match(re.escape(cfg) + r"(:\d+)?: (([a-z0-9@/\[\]._-]+): )?(.+)$", first)
        if m:
            hist["bad-input (exit 2)"] += 1
            bad_input[(m.group(3) or "(file)") + ": " + re.sub(r"'[^']*'|\d+", "…", m.group(4))[:90]] += 1
        else:
            why = "exit 2 without a FILE:LINE: field: problem message: %r" % first[:200]
    elif rc > 128:
        why = "killed by signal %d" % (rc - 128)
    else:
        why = "exit %d: %s" % (rc, (err.strip().splitlines() or [""])[-1][:300])
    if why:
        failures.append((name, why))
        shutil.copy(os.path.join(work, "configs", cfg), os.path.join(work, "failures", cfg))
        shutil.copy(os.path.join(runs, name + ".err"), os.path.join(work, "failures", name + ".err"))
print("soak: %s configs (seed %s) in %s s; work directory %s" % (n, seed, elapsed, work))
print("outcomes:")
for k, v in sorted(hist.items(), key=lambda kv: -kv[1]):
    print("  %-22s %d" % (k, v))
if bad_input:
    print("bad-input messages (exit 2):")
    for k, v in sorted(bad_input.items(), key=lambda kv: -kv[1]):
        print("  %4d  %s" % (v, k))
if os.path.exists(os.path.join(work, "configs", "soak.hist")):
    shutil.copy(os.path.join(work, "configs", "soak.hist"), os.path.join(work, "failures", "soak.hist"))
print("failures: %d" % len(failures))
for name, why in failures:
    print("  %s: %s" % (name, why))
    print("    reproduce: (cd %s/failures && %s run %s.xml --json -)" % (work, apfsim, name))
sys.exit(1 if failures else 0)
EOF
