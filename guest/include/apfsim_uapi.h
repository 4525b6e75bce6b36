/* apfsim_uapi.h — the ABI between the guest kernel and its user processes.
 *
 * System calls: `int $0x80` (Unicorn 2.0.1's `syscall` does not change privilege),
 * number in RAX, arguments in RDI, RSI, RDX, R10, R8, R9 (the x86-64 `syscall` register
 * convention, so the numbers and registers read like Linux's), result in RAX, errors as
 * -errno. Every other register is preserved.
 *
 * A process starts at the shared user entry (`_user_start`) with RDI = the address of
 * its read-only parameter page and RSP = the top of its stack.
 *
 * Not for: anything the simulator reads (that is apfsim_boot.h).
 */
#ifndef APFSIM_UAPI_H
#define APFSIM_UAPI_H

#include <stdint.h>

/* Numbers as on x86-64 Linux where Linux has the call; ours from 1000. */
#define SYS_write 1          /* (fd 1 or 2, buf, len) -> bytes written; to the console */
#define SYS_sched_yield 24   /* () -> 0 */
#define SYS_getpid 39        /* () -> pid */
#define SYS_exit 60          /* (code) -> does not return */
#define SYS_clock_ns 228     /* () -> nanoseconds since boot, from rdtsc (Linux: clock_gettime) */
#define SYS_report_ops 1000  /* (n) -> total: add n completed operations to this process's count */
#define SYS_dax_read 1001    /* (offset, buf, len) -> bytes copied from the DAX window at offset
                                into buf, or -EFAULT if none could be (Linux read(2) on a DAX
                                file: copy_to_user from the kernel's mapping of the window) */

#define UAPI_EFAULT 14
#define UAPI_EINVAL 22
#define UAPI_ENOSYS 38

#define APFSIM_USER_PARAMS_MAGIC 0x534d524150524553ull /* "SERPARMS" */

/* The parameter page the kernel fills before the process first runs. */
struct apfsim_user_params {
  uint64_t magic;
  uint32_t pid;
  uint32_t kind;           /* enum apfsim_workload_kind */
  uint32_t pattern;        /* enum apfsim_access_pattern */
  uint32_t compute_per_op;
  uint32_t zipf_s_milli;
  uint32_t report_every;   /* ops between SYS_report_ops calls */
  uint64_t ops;            /* 0 = unbounded */
  uint64_t seed;
  uint64_t ws_base;        /* working set [ws_base, ws_base + ws_bytes) */
  uint64_t ws_bytes;
  uint64_t zipf_base;      /* room for ws_bytes / 4096 uint64_t prefix sums */
  uint64_t dax_base;       /* DAX window [dax_base, dax_base + dax_bytes) (DAX kinds) */
  uint64_t dax_bytes;
  uint32_t flags;          /* APFSIM_USER_F_* */
  uint32_t reserved0;
};

/* The memory op does its working-set access with RSP moved onto a never-touched page of
 * its stack (APFSIM_USER_FRESH_STACK_DROP below the current RSP), as a function with a
 * large frame does before it first writes it. Set when the NMI reads user stacks: an NMI
 * that samples the user stack there takes a real guest #PF (DESIGN.md §2 "The race"). */
#define APFSIM_USER_F_FRESH_STACK_ACCESS (1u << 0)
#define APFSIM_USER_FRESH_STACK_DROP 0x8000u /* 32 KiB: inside the 64 KiB stack, never touched */

#endif
