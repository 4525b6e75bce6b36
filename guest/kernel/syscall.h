/* syscall.h — the int 0x80 system call dispatcher (ABI: apfsim_uapi.h). */
#ifndef GUEST_SYSCALL_H
#define GUEST_SYSCALL_H

#include "kernel.h"

void do_syscall(struct pt_regs *regs);

#endif
