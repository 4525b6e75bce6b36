/* traps.c — dispatch of every entry that goes through the generic stubs, and the way back
 * to user mode.
 *
 * Exceptions other than #PF (fault.c), NMI (nmi.c) and #VE (kvm.c) are not handled: they
 * end the run through die() with vector, RIP, error code, CR2 and the current task — in
 * user mode too (a workload bug), where Linux would send a signal.
 */
#include "traps.h"

#include "apic.h"
#include "kvm.h"
#include "percpu.h"
#include "sched.h"
#include "syscall.h"
#include "x86.h"

/* Linux's exit_to_user_mode_loop(), reduced to the one piece of work it has here. */
static void exit_to_user_mode(void) {
  while (this_cpu()->need_resched) schedule();
}

static void timer_interrupt(struct percpu *pc) {
  apic_eoi();
  pc->stats->ticks++;
  sched_tick();
  if (pc->cpu == 0) hung_task_check(ktime_ns());
}

void do_idt_entry(struct pt_regs *regs) {
  struct percpu *pc = this_cpu();
  uint64_t v = regs->vector;

  if (v == X86_TRAP_VE) {
    exc_virtualization_exception(regs);
  } else if (v < 32) {
    die(regs, read_cr2(), "unhandled exception");
  } else if (v == APFSIM_VEC_SYSCALL) {
    do_syscall(regs);
  } else if (v == APFSIM_VEC_TIMER) {
    pc->stats->interrupts++;
    timer_interrupt(pc);
  } else if (v == APFSIM_VEC_RESCHEDULE) {
    pc->stats->interrupts++;
    apic_eoi();
    sched_resched_ipi();
  } else if (v == APFSIM_VEC_SPURIOUS) {
    /* no EOI for a spurious interrupt (SDM vol. 3A §11.9) */
  } else if (v == boot_info.page_ready_vector) {
    pc->stats->interrupts++;
    kvm_async_pf_intr(regs);
  } else {
    die(regs, read_cr2(), "unexpected interrupt vector");
  }

  if (user_mode(regs)) exit_to_user_mode();
}
