#!/bin/sh
# check_kernel.sh OBJDUMP ELF — fails the build if the guest image contains instructions
# the boot contract (docs/guest.md) forbids.
#
# Kernel and user text: nothing that leaks the host or that the simulator cannot intercept
# (Unicorn 2.0.1, DESIGN.md §7): syscall/sysret/sysenter/sysexit (no privilege change in
# Unicorn: the guest uses int 0x80), rdrand/rdseed/rdtscp/rdpid/rdpmc (host values),
# xsave*/xrstor*/fxsave*/fxrstor*/xgetbv/xsetbv and any x87/MMX/SSE/AVX register (the kernel
# saves no FPU state: it is built -mgeneral-regs-only), monitor/mwait/umwait/tpause (no
# hook), swapgs and FS/GS-base instructions (the GS-base rule in percpu.h), vmcall/vmmcall,
# invd/wbinvd.
# User text, in addition: no privileged instruction and no `int` but `int $0x80`.
set -eu
objdump=$1
elf=$2

status=0

disasm() { "$objdump" -d --no-show-raw-insn -j "$1" "$elf"; }

# Instruction lines look like "  1000f3:\tmov    %cr2,%rdx"
insn_lines() { grep -E '^ +[0-9a-f]+:' || true; }

forbidden='(^|[[:space:]])(syscall|sysretl?q?|sysenter|sysexitl?q?|rdrand|rdseed|rdtscp|rdpid|rdpmc|xsave[a-z0-9]*|xrstor[a-z0-9]*|fxsave[a-z0-9]*|fxrstor[a-z0-9]*|xgetbv|xsetbv|monitor[a-z]*|mwait[a-z]*|umonitor|umwait|tpause|swapgs|wrgsbase|wrfsbase|rdgsbase|rdfsbase|vmcall|vmmcall|invd|wbinvd)([[:space:]]|$)'
fpu_regs='%(x|y|z)mm[0-9]|%st(\(|[[:space:]]|,|$)|%mm[0-9]'

for section in .text .user.text; do
  bad=$(disasm "$section" | insn_lines | grep -E "$forbidden|$fpu_regs" || true)
  if [ -n "$bad" ]; then
    echo "check_kernel: $elf: forbidden instructions in $section:" >&2
    echo "$bad" >&2
    status=1
  fi
done

privileged='(^|[[:space:]])(int3|int1|icebp|into|cli|sti|hlt|in[bwl]?|out[bwl]?|ins[bwl]?|outs[bwl]?|lgdt|lidt|lldt|ltr|invlpg|wrmsr|rdmsr|iretq?|lretq?|clts|wbinvd|swapgs)([[:space:]]|$)|%cr[0-9]|%dr[0-9]'
bad=$(disasm .user.text | insn_lines | grep -E "$privileged" || true)
bad_int=$(disasm .user.text | insn_lines | grep -E '(^|[[:space:]])int[[:space:]]' | grep -v -E 'int[[:space:]]+\$0x80' || true)
if [ -n "$bad$bad_int" ]; then
  echo "check_kernel: $elf: privileged instructions in the user text:" >&2
  printf '%s\n%s\n' "$bad" "$bad_int" >&2
  status=1
fi

# The user text must be non-empty and hold the entry the kernel starts processes at.
if ! disasm .user.text | grep -q '<_user_start>:'; then
  echo "check_kernel: $elf: _user_start is not in .user.text" >&2
  status=1
fi
exit $status
