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
};

#endif
