/* asm_offsets.h — structure offsets the assembly uses. Plain numbers so the .S files can
 * include this; the C headers pin each one with a _Static_assert against offsetof, so a
 * layout change that forgets this file fails the build. (Linux generates its asm-offsets.h;
 * ours is small enough to keep by hand.)
 */
#ifndef GUEST_ASM_OFFSETS_H
#define GUEST_ASM_OFFSETS_H

/* struct pt_regs (kernel.h) */
#define PTREGS_VECTOR 120
#define PTREGS_ERROR_CODE 128
#define PTREGS_RIP 136
#define PTREGS_SIZE 176

/* struct percpu (percpu.h), reached through %gs (GS base = this vCPU's struct percpu) */
#define PCPU_SELF 0
#define PCPU_NMI_RUNNING 8
#define PCPU_NMI_LATCHED 16
#define PCPU_NMI_FRAME 24      /* saved hardware frame: rip, cs, rflags, rsp, ss */
#define PCPU_NMI_STACK_TOP 64  /* top of the NMI IST stack */
#define PCPU_NMI_NESTED 72     /* count of NMIs latched while the handler ran */

/* The NMI handler works below the hardware frame area of its IST stack, leaving room for
 * a nested NMI's frame (40 bytes) above it. */
#define NMI_WORK_OFFSET 128

/* struct task (sched.h) */
#define TASK_THREAD_SP 0

/* head.S: the boot page tables map this many 2 MiB pages from address 0
 * (main.c asserts it equals APFSIM_BOOT_MAP_BYTES). */
#define BOOT_MAP_LARGE_PAGES 8

#endif
