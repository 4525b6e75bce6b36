#!/usr/bin/env bash
# explore_cases.sh APFSIM SOURCE_DIR WORK_DIR CASE — one end-to-end case of `apfsim explore`,
# run by ctest (tests/explore/CMakeLists.txt). The windows are small (tens of offsets, one
# child each) so each case takes seconds; the expected offsets and symbols are docs/guest.md §4's.
set -uo pipefail
apfsim=$1 src=$2 work=$3 case=$4
mkdir -p "$work" && cd "$work" || exit 1

fail() { echo "FAIL [$case]: $*" >&2; exit 1; }
expect_status() {
  local want=$1; shift
  "$@" >out 2>err
  local got=$?
  [ "$got" -eq "$want" ] || { cat out err >&2; fail "'$*' exited $got, expected $want"; }
}
# csv_row K: the CSV row of offset K (the CSV's first column)
csv_row() { grep "^$1," table.csv || fail "no CSV row for offset $1"; }

race=$src/configs/nmi-cr2-race.xml fixed=$src/configs/nmi-cr2-fixed.xml
window=apf_user_not_present+30..40
case $case in
  race-window)
    # 2020, CR2 first: offsets 0-36 panic (the APF word is still set), 37 on are ok; the
    # window ends at the store that clears the word.
    expect_status 0 "$apfsim" explore "$race" --window "$window" -j 2 --csv table.csv
    [ "$(wc -l < table.csv)" -eq 12 ] || fail "CSV: $(wc -l < table.csv) lines, expected header + 11"
    head -1 table.csv | grep -qx 'offset,address,symbol,disassembly,outcome,detail' || fail "CSV header: $(head -1 table.csv)"
    for k in 30 31 32 33 34 35 36; do
      csv_row $k | grep -q ',"guest_panic","' || fail "offset $k: $(csv_row $k)"
    done
    for k in 37 38 39 40; do
      csv_row $k | grep -q ',"ok","' || fail "offset $k: $(csv_row $k)"
    done
    csv_row 31 | grep -q '^31,"0x[0-9a-f]*","kvm_read_and_reset_apf_flags+0x0",' || fail "offset 31: $(csv_row 31)"
    csv_row 36 | grep -q '^36,"0x[0-9a-f]*","kvm_read_and_reset_apf_flags+0x19","mov dword ptr \[rdx + 0x[0-9a-f]*\], 0",' ||
      fail "offset 36: $(csv_row 36)"
    csv_row 37 | grep -q '"kvm_read_and_reset_apf_flags+0x23","ret"' || fail "offset 37: $(csv_row 37)"
    grep -qx 'race window: offsets 30-36 (7 instructions, exc_page_fault+0x16 .. kvm_read_and_reset_apf_flags+0x19): guest_panic' out ||
      fail "summary line: $(grep window out)"
    grep -Eq '^ +36  0x[0-9a-f]+ +kvm_read_and_reset_apf_flags\+0x19 +mov dword ptr .* guest_panic$' out ||
      fail "printed row 36: $(grep '^ *36 ' out)"
    grep -q 'horizon 20ms' out || fail "no horizon in the header: $(head -2 out)"
    # the window starts at the #PF handler's first instruction (the NMI is taken right after
    # the #PF's delivery)
    expect_status 0 "$apfsim" explore "$race" --window apf_user_not_present+0..1 -j 2
    grep -Eq '^ +0  0x[0-9a-f]+ +asm_exc_page_fault\+0x0 .* guest_panic$' out || fail "offset 0: $(grep '^ *0 ' out)"
    ;;
  fixed-no-window)
    # the NMI stashes and clears the APF word: no offset fails
    expect_status 0 "$apfsim" explore "$fixed" --window "$window" -j 2 --csv table.csv
    grep -qx 'no race window in offsets 30-40' out || fail "summary: $(tail -1 out)"
    [ "$(grep -c ',"ok","' table.csv)" -eq 11 ] || fail "not every offset is ok: $(cat table.csv)"
    ;;
  deterministic)
    # the same table on every run, whatever the number of children at a time
    expect_status 0 "$apfsim" explore "$race" --window apf_user_not_present+33..39 -j 2 --csv a.csv
    cp out a.out
    expect_status 0 "$apfsim" explore "$race" --window apf_user_not_present+33..39 -j 1 --csv b.csv
    cmp a.csv b.csv || fail "two runs gave different CSVs"
    cmp a.out out || fail "two runs printed different tables"
    ;;
  bad-input)
    for w in nonsense 'apf_user_not_present+5' 'apf_user_not_present+9..3' '+0..3' 'apf user+0..3' \
             'apf_user_not_present+-1..3' 'apf_user_not_present+0..x'; do
      expect_status 2 "$apfsim" explore "$race" --window "$w"
      grep -q -- '--window' err || fail "--window '$w': no message naming the option: $(cat err)"
      [ ! -s out ] || fail "--window '$w' wrote to stdout"
    done
    expect_status 2 "$apfsim" explore "$race"
    grep -q 'is required' err || fail "missing --window: $(cat err)"
    expect_status 2 "$apfsim" explore "$race" --window "$window" --vcpu 3
    grep -q -- '--vcpu' err || fail "--vcpu 3: $(cat err)"
    expect_status 2 "$apfsim" explore "$race" --window "$window" --horizon 5parsec
    expect_status 2 "$apfsim" explore "$race" --window "$window" -j 0
    # an event that never comes (unknown, or not that many times) within limits/max-sim-time
    expect_status 2 "$apfsim" explore "$race" --window no_such_event+0..3 --csv never.csv
    grep -q "anchor, 'no_such_event' number 1 on vCPU 0, was not reached" err || fail "unknown event: $(cat err)"
    [ ! -e never.csv ] || fail "a CSV was written for a window never reached"
    expect_status 2 "$apfsim" explore "$race" --window "$window" --nth 100000
    grep -q 'was not reached' err || fail "--nth 100000: $(cat err)"
    expect_status 0 "$apfsim" explore --help
    grep -q '^usage: apfsim explore' out || fail "--help: $(head -1 out)"
    ;;
  *) fail "unknown case" ;;
esac
