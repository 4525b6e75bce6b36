/* nmi.c — the NMI handler body (entry.S handles nesting and the IST frame).
 *
 * What it does is what makes the seed's race possible: like perf's call-chain sampling,
 * it may read the interrupted task's user stack (boot flag NMI_READS_USER_STACK), which
 * can take a real guest #PF inside the NMI; and, per the guest variant, it protects CR2
 * around that (Linux since ~2012 saves CR2 at NMI entry and restores it if it changed)
 * and may also stash the APF reason (the 2020 proposal) — see DESIGN.md §2 "The race".
 */
#include "kvm.h"
#include "percpu.h"
#include "process.h"
#include "sched.h"
#include "traps.h"
#include "x86.h"

/* Linux's copy_from_user_nmi(): no demand paging (nmi_depth > 0 makes the #PF handler
 * go straight to the fixup), returns the bytes NOT copied. */
static uint64_t copy_from_user_nmi(void *to, uint64_t from, uint64_t n) {
  if (!access_ok(from, n)) return n;
  return copy_user_generic(to, (const void *)(uintptr_t)from, n);
}

/* A perf-like user sample: perf_callchain_user() — the user RIP, then return addresses
 * along the frame-pointer chain (the workloads are built with frame pointers) — and then,
 * like PERF_SAMPLE_STACK_USER, the words at the top of the user stack (user RSP). When the
 * NMI interrupted the kernel, the user context is the frame at the top of the task's
 * kernel stack; its hardware part (RIP, RSP...) is there from the moment the CPU
 * delivered the entry, so the stack read targets the interrupted user RSP even at the
 * first instruction of an entry. Each read that faults is a real guest #PF nested in the
 * NMI, fixed up; the stack read comes last, so with both faulting CR2 ends at user RSP. */
static void perf_sample_user(struct percpu *pc, const struct pt_regs *regs) {
  struct task *t = pc->current;
  if (!t->stats) return; /* idle: no user context */
  const struct pt_regs *u = user_mode(regs) ? regs : task_pt_regs(t);
  uint32_t n = 0;
  pc->nmi_chain[n++] = u->rip;
  uint64_t fp = u->rbp;
  while (n < ARRAY_SIZE(pc->nmi_chain) && fp) {
    uint64_t frame[2]; /* saved rbp, return address */
    pc->stats->nmi_user_reads++;
    if (copy_from_user_nmi(frame, fp, sizeof frame)) {
      pc->stats->nmi_user_faults++;
      break;
    }
    pc->nmi_chain[n++] = frame[1];
    if (frame[0] <= fp) break; /* the stack grows down: callers' frames are higher */
    fp = frame[0];
  }
  pc->nmi_chain_len = n;

  pc->stats->nmi_user_reads++;
  if (copy_from_user_nmi(pc->nmi_stack_dump, u->rsp, sizeof pc->nmi_stack_dump)) pc->stats->nmi_user_faults++;
}

void exc_nmi(struct pt_regs *regs) {
  struct percpu *pc = this_cpu();
  uint32_t policy = boot_info.nmi_cr2_policy;
  pc->stats->nmis++;
  pc->stats->nmi_nested = pc->nmi_nested;
  pc->nmi_depth++;
  if (policy != APFSIM_NMI_CR2_NONE) pc->nmi_saved_cr2 = read_cr2();
  if (policy == APFSIM_NMI_CR2_STASH_REASON) kvm_nmi_stash_apf_reason();

  if (boot_info.flags & APFSIM_BOOT_F_NMI_READS_USER_STACK) perf_sample_user(pc, regs);

  if (policy == APFSIM_NMI_CR2_STASH_REASON) kvm_nmi_restore_apf_reason();
  if (policy != APFSIM_NMI_CR2_NONE && read_cr2() != pc->nmi_saved_cr2) write_cr2(pc->nmi_saved_cr2);
  pc->nmi_depth--;
}
