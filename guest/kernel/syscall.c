/* syscall.c — system calls, entered by `int $0x80` from CPL3 (apfsim_uapi.h).
 *
 * The body runs with interrupts enabled, as Linux's do_int80_syscall_32() does, so the
 * timer and page-ready interrupts are not held up by a system call.
 */
#include "syscall.h"

#include "apfsim_uapi.h"
#include "percpu.h"
#include "process.h"
#include "sched.h"
#include "traps.h"
#include "x86.h"

static int64_t sys_write(uint64_t fd, uint64_t buf, uint64_t len) {
  char kbuf[128];
  uint64_t done = 0;
  if (fd != 1 && fd != 2) return -UAPI_EINVAL;
  if (len > 4096) len = 4096;
  if (!access_ok(buf, len)) return -UAPI_EFAULT;
  while (done < len) {
    uint64_t n = len - done < sizeof kbuf ? len - done : sizeof kbuf;
    uint64_t left = copy_user_generic(kbuf, (const void *)(uintptr_t)(buf + done), n);
    console_write(kbuf, n - left);
    done += n - left;
    if (left) return done ? (int64_t)done : -UAPI_EFAULT;
  }
  return (int64_t)done;
}

/* read(2) on a virtiofs DAX file, reduced: copy_to_user from the kernel's mapping of the
 * DAX window (faulted in on first touch, fault.c). A host page error on the window is a
 * synchronous #VE whose fixup ends the copy early (kvm.c); no byte copied is -EFAULT. */
static int64_t sys_dax_read(struct task *t, uint64_t off, uint64_t buf, uint64_t len) {
  if (!boot_info.dax_bytes || t->stats->kind != APFSIM_WORK_DAX_COPY) return -UAPI_EINVAL;
  if (off >= boot_info.dax_bytes) return 0;
  if (len > 4096) len = 4096;
  if (len > boot_info.dax_bytes - off) len = boot_info.dax_bytes - off;
  if (!access_ok(buf, len)) return -UAPI_EFAULT;
  uint64_t left = copy_user_generic((void *)(uintptr_t)buf, (const void *)(uintptr_t)(boot_info.dax_gpa + off), len);
  if (!left) return (int64_t)len;
  t->stats->efaults++;
  return left < len ? (int64_t)(len - left) : -UAPI_EFAULT;
}

void do_syscall(struct pt_regs *regs) {
  struct percpu *pc = this_cpu();
  struct task *t = pc->current;
  int64_t ret;

  pc->stats->syscalls++;
  t->stats->syscalls++;
  local_irq_enable();
  switch (regs->rax) {
  case SYS_write:
    ret = sys_write(regs->rdi, regs->rsi, regs->rdx);
    break;
  case SYS_sched_yield:
    schedule();
    ret = 0;
    break;
  case SYS_getpid:
    ret = t->pid;
    break;
  case SYS_exit:
    do_exit((int64_t)regs->rdi);
  case SYS_clock_ns:
    ret = (int64_t)ktime_ns();
    break;
  case SYS_dax_read:
    ret = sys_dax_read(t, regs->rdi, regs->rsi, regs->rdx);
    break;
  case SYS_report_ops:
    /* t is still current: a task only migrates inside schedule() */
    t->stats->ops_done += regs->rdi;
    ret = (int64_t)t->stats->ops_done;
    break;
  default:
    ret = -UAPI_ENOSYS;
    break;
  }
  local_irq_disable();
  regs->rax = (uint64_t)ret;
}
