/* complete.c — completions and "page ready", the mechanism KVM splits between
 * virt/kvm/async_pf.c (async_pf_execute, kvm_check_async_pf_completion) and x86.c
 * (kvm_arch_async_page_ready / _present / _present_queued, kvm_arch_can_dequeue_async_
 * page_present — called kvm_arch_can_inject_async_page_present before 5.8).
 *
 * A finished read moves the vCPU's work to its done FIFO and kicks the vCPU. Before each
 * guest entry the FIFO is presented in order while the ABI allows:
 *   5.8+ (2020): while APF is off, or the guest's token slot (offset 4) reads 0. Each work
 *     is prefaulted, its gfn leaves the hash, and — only if its not-present was delivered
 *     (or it is a wake-all) — the token is written to the slot and the page-ready vector
 *     raised. The guest clears the slot and writes ACK, which rescans the FIFO.
 *   pre-5.8 (2010): while APF is off, or the vCPU could take an async #PF now (no event to
 *     re-inject, no exception pending, interrupts allowed). Reason = 2 and #PF with
 *     CR2 = token, for every work — also those whose not-present was never delivered (the
 *     guest then leaves a dummy node: an "orphan" page-ready). One #PF per entry.
 * Not for: the fault-time decision (decide.c). */
#include <inttypes.h>

#include "apf/internal.h"

void apf_present_queued(struct apf_engine *e, struct apf_vcpu *v, bool first) {
  if (!e->cfg.host_pre_5_8 && first) {
    /* kvm_arch_async_page_present_queued: KVM_REQ_APF_READY, and a kick unless a
     * page-ready is still in the guest's hands (its ACK will rescan). */
    v->ready_request = true;
    e->ops.kick(e->ops.ctx, v->id, !v->pageready_pending);
    return;
  }
  /* The worker's rcuwait_wake_up / swake_up: wakes a blocked vCPU, does not interrupt a
   * running one (pre-5.8 hosts present completions at the next entry). */
  e->ops.kick(e->ops.ctx, v->id, false);
}

void apf_fetch_done(struct apf_engine *e, uint64_t gfn, bool failed) {
  for (unsigned i = 0; i < e->cfg.n_vcpus; i++) {
    struct apf_vcpu *v = &e->vcpus[i];
    for (uint32_t w = 0; w < e->capacity; w++) {
      struct apf_work *work = &v->works[w];
      if (work->state != APF_WORK_QUEUED || work->wakeup_all || work->gfn != gfn) continue;
      work->failed = failed;
      v->stats.completed++;
      if (failed) v->stats.failed++;
      /* KVM prints the hva as "address"; apfsim has none and prints the gpa. */
      apf_trace(e, i, "kvm_async_pf_completed", "gva %#" PRIx64 " address %#" PRIx64, work->gva, gfn << 12);
      if (failed) apf_trace(e, i, "apf_fetch_failed", "token %#" PRIx32 " gfn %#" PRIx64, work->token, gfn);
      bool first = apf_done_empty(v);
      apf_done_push(v, w);
      apf_present_queued(e, v, first);
    }
  }
}

static bool slot_free(struct apf_engine *e, struct apf_vcpu *v, uint32_t *slot) {
  *slot = 0;
  if (!v->area_valid || !e->ops.read_u32(e->ops.ctx, v->area_gpa + APF_AREA_TOKEN, slot)) return false;
  return *slot == 0;
}

/* kvm_can_do_async_pf without the fault-only parts: may the host inject an async #PF now? */
static bool can_take_pf(struct apf_engine *e, struct apf_vcpu *v, const char **why) {
  struct apf_vcpu_state s;
  apf_vcpu_state(e, v->id, &s);
  *why = s.event_reinjecting   ? "event_reinjection"
         : s.exception_pending ? "exception_pending"
         : !s.interrupts_allowed ? "interrupts_blocked"
                                 : NULL;
  return *why == NULL;
}

static bool can_dequeue(struct apf_engine *e, struct apf_vcpu *v) {
  const char *why = NULL;
  uint32_t slot = 0;
  bool ok;
  if (e->cfg.host_pre_5_8)
    ok = !apf_enabled(e, v) || can_take_pf(e, v, &why);
  else
    ok = !apf_enabled(e, v) || slot_free(e, v, &slot);
  if (!ok) {
    struct apf_work *head = &v->works[v->done_head];
    if (!head->deferred) {
      head->deferred = true;
      v->stats.page_ready_deferred++;
      if (e->cfg.host_pre_5_8)
        apf_trace(e, v->id, "apf_page_ready_deferred", "token %#" PRIx32 " why %s", head->token, why);
      else
        apf_trace(e, v->id, "apf_page_ready_deferred", "token %#" PRIx32 " why slot_busy slot %#" PRIx32,
                  head->token, slot);
    }
  }
  return ok;
}

/* kvm_arch_async_page_ready: map the page now so the retry does not exit again. A read
 * that failed leaves nothing to map; the 2020 error series remembers its gfn. */
static void page_ready(struct apf_engine *e, struct apf_vcpu *v, struct apf_work *w) {
  if (w->wakeup_all) return;
  if (w->failed) {
    if (e->cfg.error_reporting == APF_ERR_FORCE_SYNC || e->cfg.error_reporting == APF_ERR_SYNC_EXCEPTION) {
      apf_error_gfn_add(v, w->gfn);
      apf_trace(e, v->id, "apf_error_gfn", "gfn %#" PRIx64 " next fault synchronous", w->gfn);
    }
    return;
  }
  v->stats.prefaults++;
  apf_trace(e, v->id, "apf_prefault", "gfn %#" PRIx64, w->gfn);
  if (e->ops.prefault) e->ops.prefault(e->ops.ctx, v->id, w->gfn);
}

static void count_delivered(struct apf_vcpu *v, const struct apf_work *w) {
  if (w->wakeup_all)
    v->stats.wake_all_delivered++;
  else
    v->stats.page_ready++;
}

static void suppressed(struct apf_engine *e, struct apf_vcpu *v, uint32_t token, const char *why) {
  v->stats.page_ready_suppressed++;
  apf_trace(e, v->id, "apf_page_ready_suppressed", "token %#" PRIx32 " why %s", token, why);
}

/* 2010 ABI: returns whether a #PF was injected. */
static bool present_2010(struct apf_engine *e, struct apf_vcpu *v, struct apf_work *w, uint32_t token) {
  uint32_t reason;
  if (!apf_enabled(e, v)) {
    suppressed(e, v, token, "apf_disabled");
    return false;
  }
  /* 5.4 reads the reason first and, were a not-present #PF still pending, would cancel
   * it instead; can_dequeue has just required that no exception is pending, so that
   * branch cannot run here (nor in x86 KVM). */
  if (!v->area_valid || !e->ops.read_u32(e->ops.ctx, v->area_gpa + APF_AREA_FLAGS, &reason) ||
      !e->ops.write_u32(e->ops.ctx, v->area_gpa + APF_AREA_FLAGS, APF_REASON_PAGE_READY)) {
    suppressed(e, v, token, "shared_area_write_failed");
    return false;
  }
  count_delivered(v, w);
  if (!w->wakeup_all && !w->notpresent_injected) {
    v->stats.orphan_page_ready++;
    apf_trace(e, v->id, "apf_orphan_page_ready", "token %#" PRIx32 " not-present was never delivered", token);
  }
  apf_trace(e, v->id, "apf_inject_pf", "kind %s error_code 0 cr2 %#" PRIx64,
            w->wakeup_all ? "wake_all" : "page_ready", (uint64_t)token);
  e->ops.inject_pf(e->ops.ctx, v->id, 0, token);
  return true;
}

/* apf_put_user_ready (+ the error series' ready_flags). */
static bool put_user_ready(struct apf_engine *e, struct apf_vcpu *v, uint32_t token, bool error) {
  if (!v->area_valid || !e->ops.write_u32(e->ops.ctx, v->area_gpa + APF_AREA_TOKEN, token)) return false;
  if (e->cfg.error_reporting == APF_ERR_PAGE_READY) {
    uint32_t flags = error && v->send_pf_error ? APF_READY_FLAG_PAGE_ERROR : 0;
    if (!e->ops.write_u32(e->ops.ctx, v->area_gpa + APF_AREA_READY_FLAGS, flags)) return false;
  }
  return true;
}

static void present_2020(struct apf_engine *e, struct apf_vcpu *v, struct apf_work *w, uint32_t token) {
  bool reported = false;
  if (!w->wakeup_all && !w->notpresent_injected)
    suppressed(e, v, token, "not_present_undelivered");
  else if (!apf_enabled(e, v))
    suppressed(e, v, token, "apf_disabled");
  else if (!put_user_ready(e, v, token, w->failed))
    suppressed(e, v, token, "shared_area_write_failed");
  else {
    v->pageready_pending = true;
    reported = true;
    count_delivered(v, w);
    apf_trace(e, v->id, "apf_page_ready_irq", "token %#" PRIx32 " vector %#x", token, v->vec);
    if (w->failed && v->send_pf_error) {
      v->stats.error_reports++;
      apf_trace(e, v->id, "apf_page_error", "token %#" PRIx32 " ready_flags %#x", token, APF_READY_FLAG_PAGE_ERROR);
    }
    e->ops.raise_irq(e->ops.ctx, v->id, v->vec);
  }
  /* The series' fallback: an error the guest did not hear of forces the next fault on
   * that gfn to be synchronous (and so to end in EFAULT). */
  if (w->failed && e->cfg.error_reporting == APF_ERR_PAGE_READY && !(reported && v->send_pf_error)) {
    apf_error_gfn_add(v, w->gfn);
    apf_trace(e, v->id, "apf_error_gfn", "gfn %#" PRIx64 " next fault synchronous", w->gfn);
  }
}

/* kvm_arch_async_page_present; returns whether a (2010) #PF was injected. */
static bool page_present(struct apf_engine *e, struct apf_vcpu *v, struct apf_work *w) {
  uint32_t token = w->wakeup_all ? APF_TOKEN_WAKE_ALL : w->token;
  if (!w->wakeup_all) apf_gfn_hash_del(e, v, w->gfn);
  apf_trace(e, v->id, "kvm_async_pf_ready", "token %#" PRIx64 " gva %#" PRIx64, (uint64_t)token, w->gva);
  if (e->cfg.host_pre_5_8) return present_2010(e, v, w, token);
  present_2020(e, v, w, token);
  return false;
}

void apf_check_completion(struct apf_engine *e, struct apf_vcpu *v) {
  while (!apf_done_empty(v) && can_dequeue(e, v)) {
    uint32_t i = apf_done_pop(v);
    struct apf_work *w = &v->works[i];
    page_ready(e, v, w);
    bool injected = page_present(e, v, w);
    v->queued--;
    v->stats.outstanding = v->queued;
    apf_work_free(v, i);
    /* The #PF just queued is pending: KVM's next can-inject check refuses. */
    if (injected) break;
  }
}

void apf_vcpu_service(struct apf_engine *e, unsigned vcpu) {
  if (vcpu >= e->cfg.n_vcpus) return;
  struct apf_vcpu *v = &e->vcpus[vcpu];
  if (e->cfg.host_pre_5_8) {
    /* 5.4's vcpu_run loop checks the done list on every iteration. */
    apf_check_completion(e, v);
    return;
  }
  if (!v->ready_request) return;
  v->ready_request = false;
  apf_check_completion(e, v);
}
