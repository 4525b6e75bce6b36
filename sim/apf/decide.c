/* decide.c — the policy half: what a guest access to a page the host must read in
 * becomes. The rules are KVM's (arch/x86/kvm/mmu/mmu.c try_async_pf and x86.c
 * kvm_can_do_async_pf / kvm_can_deliver_async_pf / kvm_arch_async_page_not_present;
 * Linux 5.10 for 5.8+ hosts, 5.4 for pre-5.8 hosts — the same except "enabled"):
 *
 *   async handling off, fault during event delivery, event re-injection,
 *   exception pending, IF = 0 or interrupt shadow          -> synchronous fault
 *   [error variants: gfn failed before                     -> synchronous fault]
 *   gfn already in this vCPU's async work ("repeated")      -> synthetic halt, no new work
 *   max_outstanding works queued                            -> synchronous fault
 *   APF not enabled for the ABI, CPL0 without send-always,
 *   shared area not writable                                -> new work + synthetic halt
 *   otherwise                                               -> new work + "page not present"
 *   (apfsim's #VE variant: not-present by #VE, but the #VE area still busy -> synchronous
 *    fault, decided before a token is taken; ve.c)
 *
 * A synchronous fault on a page that can never come in is an EFAULT exit (or the
 * synchronous error exception of APF_ERR_SYNC_EXCEPTION). Not for: completions. */
#include <inttypes.h>

#include "apf/internal.h"

static void decide_sync(struct apf_engine *e, struct apf_vcpu *v, const struct apf_fault *f, uint64_t gfn,
                        enum apf_why why, struct apf_decision *out) {
  out->why = why;
  v->stats.sync_faults++;
  v->stats.sync_why[why]++;
  if (f->unresolvable) {
    /* The synchronous read fails: KVM exits to the VMM with -EFAULT. */
    out->outcome = e->cfg.error_reporting == APF_ERR_SYNC_EXCEPTION ? APF_OUTCOME_ERROR_EXCEPTION : APF_OUTCOME_EFAULT;
    v->stats.efaults++;
    apf_trace(e, v->id, "apf_efault", "gva %#" PRIx64 " gfn %#" PRIx64 " why %s outcome %s", f->gva, gfn,
              apf_why_name(why), apf_outcome_name(out->outcome));
    return;
  }
  out->outcome = APF_OUTCOME_SYNC;
  apf_trace(e, v->id, "apf_sync_fault", "gva %#" PRIx64 " gfn %#" PRIx64 " why %s", f->gva, gfn, apf_why_name(why));
  e->ops.fetch(e->ops.ctx, v->id, gfn, true);
}

static void decide_halt(struct apf_engine *e, struct apf_vcpu *v, const struct apf_fault *f, uint64_t gfn,
                        enum apf_why why, struct apf_decision *out) {
  out->outcome = APF_OUTCOME_HALT;
  out->why = why;
  v->stats.synthetic_halts++;
  v->stats.halt_why[why]++;
  apf_trace(e, v->id, "apf_synthetic_halt", "gva %#" PRIx64 " gfn %#" PRIx64 " why %s", f->gva, gfn,
            apf_why_name(why));
  e->ops.halt(e->ops.ctx, v->id);
  /* kvm_vcpu_block returns at once while completed work is pending (has_events). */
  if (!apf_done_empty(v)) e->ops.kick(e->ops.ctx, v->id, false);
}

/* kvm_can_deliver_async_pf: the guest enabled APF (for this host's ABI) and, without
 * send-always, is not at CPL 0. Nested guests (DELIVERY_AS_PF_VMEXIT) are not modelled. */
static enum apf_why cannot_deliver(const struct apf_engine *e, const struct apf_vcpu *v, unsigned cpl) {
  if (!apf_enabled(e, v)) return APF_WHY_NOT_ENABLED;
  if (!v->send_always && cpl == 0) return APF_WHY_CPL0;
  return APF_WHY_NONE;
}

void apf_fault(struct apf_engine *e, unsigned vcpu, const struct apf_fault *f, struct apf_decision *out) {
  out->outcome = APF_OUTCOME_SYNC;
  out->why = APF_WHY_NONE;
  out->new_work = false;
  out->token = 0;
  if (vcpu >= e->cfg.n_vcpus) return;
  struct apf_vcpu *v = &e->vcpus[vcpu];
  uint64_t gfn = f->gpa >> 12;
  v->stats.faults++;

  if (!e->cfg.async_pf) return decide_sync(e, v, f, gfn, APF_WHY_ASYNC_DISABLED, out);
  struct apf_vcpu_state s;
  apf_vcpu_state(e, vcpu, &s);
  /* kvm_can_do_async_pf */
  if (f->during_delivery || s.event_reinjecting) return decide_sync(e, v, f, gfn, APF_WHY_REINJECTION, out);
  if (s.exception_pending) return decide_sync(e, v, f, gfn, APF_WHY_EXCEPTION_PENDING, out);
  /* "If interrupts are off we cannot even use an artificial halt state." */
  if (!s.interrupts_allowed) return decide_sync(e, v, f, gfn, APF_WHY_INTERRUPTS_BLOCKED, out);
  /* The 2020 error series: a gfn whose async read failed faults synchronously once. */
  if (e->cfg.error_reporting != APF_ERR_NONE && apf_error_gfn_take(v, gfn)) {
    v->stats.forced_sync++;
    return decide_sync(e, v, f, gfn, APF_WHY_FORCED_SYNC, out);
  }

  v->stats.try_async++;
  apf_trace(e, vcpu, "kvm_try_async_get_page", "gva = %#" PRIx64 ", gfn = %#" PRIx64, f->gva, gfn);
  if (apf_gfn_hash_find(e, v, gfn)) {
    v->stats.repeated_faults++;
    apf_trace(e, vcpu, "kvm_async_pf_repeated_fault", "gva = %#" PRIx64 ", gfn = %#" PRIx64, f->gva, gfn);
    return decide_halt(e, v, f, gfn, APF_WHY_REPEATED_FAULT, out);
  }

  /* #VE delivery: the guest has not released its info area yet, so this not-present
   * cannot be delivered the only way the guest asked for (docs/guest.md §1.10): the host
   * handles the fault synchronously, before any work or token exists for it. */
  if (apf_ve_not_present(e, v) && cannot_deliver(e, v, s.cpl) == APF_WHY_NONE && apf_ve_busy(e, v)) {
    v->stats.ve_refused++;
    apf_trace(e, vcpu, "apf_ve_refused", "kind not_present gva %#" PRIx64 " why busy", f->gva);
    return decide_sync(e, v, f, gfn, APF_WHY_VE_BUSY, out);
  }

  /* kvm_arch_setup_async_pf takes the token before kvm_setup_async_pf checks the queue,
   * so a fault that ends up synchronous still consumes one. */
  uint32_t token = apf_token_next(&v->token_id, vcpu);
  uint32_t w = v->queued >= e->cfg.max_outstanding ? APF_NO_WORK : apf_work_alloc(e, v);
  if (w == APF_NO_WORK) return decide_sync(e, v, f, gfn, APF_WHY_QUEUE_FULL, out);

  struct apf_work *work = &v->works[w];
  work->state = APF_WORK_QUEUED;
  work->token = token;
  work->gfn = gfn;
  work->gva = f->gva;
  v->queued++;
  v->stats.works++;
  v->stats.outstanding = v->queued;
  if (v->queued > v->stats.outstanding_peak) v->stats.outstanding_peak = v->queued;
  out->new_work = true;
  out->token = token;
  e->ops.fetch(e->ops.ctx, vcpu, gfn, false);

  /* kvm_arch_async_page_not_present: the gfn goes into the hash whether or not the guest
   * hears of it, so a retry of a halted fault is a repeated fault. */
  apf_trace(e, vcpu, "kvm_async_pf_not_present", "token %#" PRIx64 " gva %#" PRIx64, (uint64_t)token, f->gva);
  apf_gfn_hash_add(e, v, gfn);
  enum apf_why why = cannot_deliver(e, v, s.cpl);
  if (why == APF_WHY_NONE && apf_ve_not_present(e, v)) {
    /* The token travels in the #VE area, never in CR2 or the APF word. */
    if (!apf_ve_deliver(e, v, APF_VE_REASON_NOT_PRESENT, token, f, s.cpl))
      return decide_halt(e, v, f, gfn, APF_WHY_AREA_WRITE_FAILED, out);
    work->notpresent_injected = true;
    v->stats.not_present++;
    v->stats.ve_not_present++;
    out->outcome = APF_OUTCOME_ASYNC;
    return;
  }
  if (why == APF_WHY_NONE) {
    /* flags (2020) / reason (2010) = PAGE_NOT_PRESENT at offset 0. */
    if (!v->area_valid || !e->ops.write_u32(e->ops.ctx, v->area_gpa + APF_AREA_FLAGS, APF_REASON_PAGE_NOT_PRESENT))
      why = APF_WHY_AREA_WRITE_FAILED;
  }
  if (why != APF_WHY_NONE) return decide_halt(e, v, f, gfn, why, out);

  work->notpresent_injected = true;
  v->stats.not_present++;
  out->outcome = APF_OUTCOME_ASYNC;
  apf_trace(e, vcpu, "apf_inject_pf", "kind not_present error_code 0 cr2 %#" PRIx64, (uint64_t)token);
  e->ops.inject_pf(e->ops.ctx, vcpu, 0, token);
}
