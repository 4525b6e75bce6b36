#!/usr/bin/env bash
# tools/golden.sh — regenerates the golden traces in traces/ after an intentional change
# of the simulator, the guest or a scenario (docs/golden-traces.md). Each scenario listed
# in traces/SCENARIOS is run from configs/NAME.xml and its trace written to
# traces/NAME.trace (through a temporary file: a failed run leaves the old trace).
#
#   tools/golden.sh [BUILD_DIR]     default BUILD_DIR: build
#
# Review the change with `git diff --stat traces/` and `apfsim diff OLD NEW` before
# committing: a golden trace that changes is a behaviour that changed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
apfsim=$build/apfsim
[ -x "$apfsim" ] || { echo "golden: no $apfsim (build first: cmake --build $build)" >&2; exit 2; }
status=0
while read -r name outcome; do
  case $name in '' | '#'*) continue ;; esac
  cfg=$repo/configs/$name.xml
  out=$repo/traces/$name.trace
  tmp=$out.tmp-$$
  if "$apfsim" run "$cfg" --quiet --console none --trace "$tmp" --expect "$outcome" >/dev/null; then
    mv "$tmp" "$out"
    echo "golden: traces/$name.trace ($outcome, $(wc -l <"$out") lines)"
  else
    rm -f "$tmp"
    echo "golden: $name did not end '$outcome': traces/$name.trace kept as it was" >&2
    status=1
  fi
done <"$repo/traces/SCENARIOS"
exit $status
