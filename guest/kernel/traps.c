/* traps.c — dispatch of every entry that goes through the generic stubs, and the way back
 * to user mode.
 *
 * Exceptions other than #PF (fault.c), NMI (nmi.c) and #VE (kvm.c) are not handled: they
 * end the run through die() with vector, RIP, error code, CR2 and the current task — in
 * user mode too (a workload bug), where Linux would send a signal — except a kernel #GP at
 * an instruction with an exception-table entry (wrmsr_safe), which resumes at its fixup.
 */
#include "traps.h"

#include "apic.h"
#include "kvm.h"
#include "percpu.h"
#include "sched.h"
#include "syscall.h"
#include "x86.h"

/* Linux's exit_to_user_mode_loop(), reduced to its two pieces of work here: a fatal
 * signal (SIGBUS: the task dies) and a reschedule. */
void exit_to_user_mode(void) {
  for (;;) {
    struct percpu *pc = this_cpu();
    if (pc->current->sig_pending) do_exit_by_signal();
    if (!pc->need_resched) return;
    schedule();
  }
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
  } else if (v == X86_TRAP_GP && !user_mode(regs) && fixup_exception(regs)) {
    /* wrmsr_safe */
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
    sysvec_kvm_asyncpf_interrupt(regs);
  } else {
    die(regs, read_cr2(), "unexpected interrupt vector");
  }

  if (user_mode(regs)) exit_to_user_mode();
}
