/* fault.c — the page-fault handler (Linux arch/x86/mm/fault.c, much reduced).
 *
 * Two entries (entry.S), one per guest variant of DESIGN.md §2:
 *   exc_page_fault()              5.3+: CR2 arrives from the entry code, then the APF flags
 *   exc_page_fault_reason_first() 2.6.38-5.2: APF reason first, CR2 read after it
 * Both read-and-reset the APF word and, if it is set, hand the event to kvm.c — that is
 * where the "is this an async page fault?" decision is made. Everything else is an
 * ordinary fault: demand-zero for a not-present user page in the current process's areas,
 * the DAX window mapped on first touch for DAX processes (user read-only for dax-read, a
 * supervisor mapping for dax-copy's kernel copies: the kernel's mapping of the window),
 * the exception-table fixup for a kernel access to user memory that cannot be served, and
 * die() (guest_panic) for anything else — including user faults outside the process's
 * areas, which a real kernel would turn into SIGSEGV: here a workload bug ends the run.
 * A fault from user mode returns through exit_to_user_mode(): reschedule, fatal signals.
 */
#include "kvm.h"
#include "mm.h"
#include "percpu.h"
#include "process.h"
#include "traps.h"
#include "x86.h"

extern const struct exception_table_entry __start___ex_table[], __stop___ex_table[];

bool fixup_exception(struct pt_regs *regs) {
  for (const struct exception_table_entry *e = __start___ex_table; e < __stop___ex_table; e++) {
    if (e->insn == regs->rip) {
      regs->rip = e->fixup;
      return true;
    }
  }
  return false;
}

static void handle_page_fault(struct pt_regs *regs, uint64_t error_code, uint64_t address) {
  struct percpu *pc = this_cpu();
  struct task *t = pc->current;
  pc->stats->page_faults++;

  if (error_code & PF_RSVD) die(regs, address, "reserved bit set in a page-table entry");

  /* Linux enables interrupts in the fault handler when the faulting context had them
   * on; the host's APF decisions (DESIGN.md §2) depend on the guest's IF. NMI context
   * never gets here with IF set. */
  bool irqs = regs->rflags & X86_RFLAGS_IF;

  if (user_mode(regs)) {
    if (irqs) local_irq_enable();
    if (!(error_code & PF_PROT) && in_demand_area(t, address)) {
      handle_demand_fault(t, address);
      local_irq_disable();
      return;
    }
    if (!(error_code & (PF_PROT | PF_WRITE)) && in_dax_area(t, address, APFSIM_WORK_DAX_READ)) {
      handle_dax_fault(t, address, true);
      local_irq_disable();
      return;
    }
    die(regs, address, "user page fault outside the process's memory");
  }

  /* Kernel mode. Page faults are "disabled" in NMI context (Linux: pagefault_disable()
   * around copy_from_user_nmi): a user page is then never mapped, the access fails. */
  if (pc->nmi_depth == 0 && !(error_code & PF_PROT) && in_demand_area(t, address)) {
    if (irqs) local_irq_enable();
    handle_demand_fault(t, address);
    local_irq_disable();
    return;
  }
  if (pc->nmi_depth == 0 && !(error_code & (PF_PROT | PF_WRITE)) && in_dax_area(t, address, APFSIM_WORK_DAX_COPY)) {
    if (irqs) local_irq_enable();
    handle_dax_fault(t, address, false);
    local_irq_disable();
    return;
  }
  if (fixup_exception(regs)) return;
  die(regs, address, "kernel page fault");
}

void exc_page_fault(struct pt_regs *regs, uint64_t error_code, uint64_t address) {
  /* The APF check (Linux 5.8+ exc_page_fault -> kvm_handle_async_pf) */
  uint32_t flags = kvm_read_and_reset_apf_flags();
  if (!unlikely(flags) || !kvm_handle_async_pf(regs, address, flags)) handle_page_fault(regs, error_code, address);
  if (user_mode(regs)) exit_to_user_mode();
}

void exc_page_fault_reason_first(struct pt_regs *regs, uint64_t error_code) {
  /* Linux 2.6.38-5.2 do_async_page_fault(): the reason is read and cleared first, CR2 only
   * afterwards (in do_page_fault) — a different race window from the 5.3+ order. */
  uint32_t reason = kvm_read_and_reset_apf_flags();
  uint64_t address = read_cr2();
  if (!unlikely(reason) || !kvm_handle_async_pf(regs, address, reason)) handle_page_fault(regs, error_code, address);
  if (user_mode(regs)) exit_to_user_mode();
}
