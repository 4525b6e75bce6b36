/* engine.c — creating the APF engine from its config, the scenario-to-engine mapping,
 * statistics, names and the trace helper. Not for: any APF rule (see internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apf/internal.h"

void apf_engine_config_from(struct apf_engine_config *out, const struct apf_config *apf,
                            const struct host_config *host, unsigned n_vcpus) {
  memset(out, 0, sizeof(*out));
  out->n_vcpus = n_vcpus;
  /* OFF models a host that never takes the async path; HALT is an ordinary host whose
   * guest never writes MSR_KVM_ASYNC_PF_EN, so it needs nothing special here. */
  out->async_pf = apf->protocol != APF_OFF;
  /* DESIGN.md §2: apfsim's "2010" mode is a pre-5.8 host with a pre-5.8 guest. */
  out->host_pre_5_8 = host->host_pre_5_8 || apf->protocol == APF_2010;
  out->max_outstanding = apf->max_outstanding;
  out->error_reporting = apf->error_reporting;
  out->enforce_pv_cpuid = host->enforce_pv_cpuid;
  out->kvm_features = apf_cpuid_features(apf, out->host_pre_5_8);
}

uint32_t apf_cpuid_features(const struct apf_config *apf, bool host_pre_5_8) {
  uint32_t f = 0;
  if (apf->cpuid_async_pf) f |= UINT32_C(1) << APF_FEATURE_ASYNC_PF;
  if (apf->cpuid_async_pf_vmexit) f |= UINT32_C(1) << APF_FEATURE_ASYNC_PF_VMEXIT;
  /* Interrupt-based page-ready (and its MSRs) exist from Linux 5.8 on. */
  if (!host_pre_5_8 && apf->cpuid_async_pf_int) f |= UINT32_C(1) << APF_FEATURE_ASYNC_PF_INT;
  if (!host_pre_5_8 && apf->error_reporting == APF_ERR_PAGE_READY) f |= UINT32_C(1) << APF_FEATURE_ASYNC_PF_ERROR;
  return f;
}

static unsigned log2_ceil(uint32_t n) {
  unsigned b = 0;
  while ((UINT32_C(1) << b) < n) b++;
  return b;
}

struct apf_engine *apf_engine_create(const struct apf_engine_config *cfg, const struct apf_host_ops *ops,
                                     struct diag *err) {
  if (!cfg || !ops) {
    diag_set(err, "apf: config and ops are required");
    return NULL;
  }
  if (cfg->n_vcpus == 0 || cfg->n_vcpus > APF_MAX_VCPUS) {
    diag_set(err, "apf: n_vcpus %u out of range 1..%u (a token carries the vCPU id in 12 bits)", cfg->n_vcpus,
             APF_MAX_VCPUS);
    return NULL;
  }
  uint32_t max = cfg->max_outstanding ? cfg->max_outstanding : APF_PER_VCPU_DEFAULT;
  if (max > APF_MAX_OUTSTANDING) {
    diag_set(err, "apf: max_outstanding %u out of range 1..%u", max, APF_MAX_OUTSTANDING);
    return NULL;
  }
  if (cfg->host_pre_5_8 && cfg->error_reporting == APF_ERR_PAGE_READY) {
    diag_set(err, "apf: error reporting through page-ready (ready_flags) needs a 5.8+ host: a pre-5.8 host "
                  "delivers page-ready as #PF and has no ready_flags word");
    return NULL;
  }
  const char *missing = !ops->now_ns      ? "now_ns"
                        : !ops->read_u32  ? "read_u32"
                        : !ops->write_u32 ? "write_u32"
                        : !ops->vcpu_state ? "vcpu_state"
                        : !ops->inject_pf ? "inject_pf"
                        : !ops->raise_irq ? "raise_irq"
                        : !ops->fetch     ? "fetch"
                        : !ops->halt      ? "halt"
                        : !ops->kick      ? "kick"
                                          : NULL;
  if (missing) {
    diag_set(err, "apf: host op %s is required", missing);
    return NULL;
  }

  struct apf_engine *e = calloc(1, sizeof(*e));
  if (!e) {
    diag_set(err, "apf: out of memory");
    return NULL;
  }
  e->cfg = *cfg;
  e->cfg.max_outstanding = max;
  e->ops = *ops;
  e->capacity = max + 1;
  /* KVM sizes apf.gfns to roundup_pow_of_two(ASYNC_PF_PER_VCPU) = 64; a larger queue
   * needs a larger table so linear probing always finds an empty slot. */
  e->hash_bits = log2_ceil(max > APF_PER_VCPU_DEFAULT ? max : APF_PER_VCPU_DEFAULT);
  e->vcpus = calloc(cfg->n_vcpus, sizeof(*e->vcpus));
  if (!e->vcpus) goto oom;
  for (unsigned i = 0; i < cfg->n_vcpus; i++) {
    struct apf_vcpu *v = &e->vcpus[i];
    v->id = i;
    v->works = calloc(e->capacity, sizeof(*v->works));
    v->gfns = calloc((size_t)1 << e->hash_bits, sizeof(*v->gfns));
    if (!v->works || !v->gfns) goto oom;
    v->done_head = v->done_tail = APF_NO_WORK;
    apf_gfn_hash_reset(e, v);
    apf_error_gfn_reset(v);
  }
  return e;
oom:
  apf_engine_destroy(e);
  diag_set(err, "apf: out of memory");
  return NULL;
}

void apf_engine_destroy(struct apf_engine *e) {
  if (!e) return;
  if (e->vcpus) {
    for (unsigned i = 0; i < e->cfg.n_vcpus; i++) {
      free(e->vcpus[i].works);
      free(e->vcpus[i].gfns);
    }
  }
  free(e->vcpus);
  free(e);
}

void apf_trace(struct apf_engine *e, unsigned vcpu, const char *name, const char *fmt, ...) {
  if (!e->ops.trace) return;
  char fields[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(fields, sizeof(fields), fmt, ap);
  va_end(ap);
  e->ops.trace(e->ops.ctx, e->ops.now_ns(e->ops.ctx), (int)vcpu, name, fields);
}

void apf_vcpu_state(struct apf_engine *e, unsigned vcpu, struct apf_vcpu_state *s) {
  memset(s, 0, sizeof(*s));
  e->ops.vcpu_state(e->ops.ctx, vcpu, s);
}

/* kvm_pv_async_pf_enabled (5.8+): ENABLED and DELIVERY_AS_INT both set; before 5.8 the
 * enable bit alone. */
bool apf_enabled(const struct apf_engine *e, const struct apf_vcpu *v) {
  if (e->cfg.host_pre_5_8) return (v->msr_en & APF_EN_ENABLED) != 0;
  const uint64_t mask = APF_EN_ENABLED | APF_EN_DELIVERY_AS_INT;
  return (v->msr_en & mask) == mask;
}

bool apf_vcpu_enabled(const struct apf_engine *e, unsigned vcpu) {
  return vcpu < e->cfg.n_vcpus && apf_enabled(e, &e->vcpus[vcpu]);
}

bool apf_vcpu_has_events(const struct apf_engine *e, unsigned vcpu) {
  return vcpu < e->cfg.n_vcpus && !apf_done_empty(&e->vcpus[vcpu]);
}

bool apf_token_pending(const struct apf_engine *e, uint32_t token) {
  for (unsigned i = 0; i < e->cfg.n_vcpus; i++) {
    const struct apf_vcpu *v = &e->vcpus[i];
    for (uint32_t w = 0; w < e->capacity; w++) {
      const struct apf_work *work = &v->works[w];
      if (work->state != APF_WORK_FREE && (work->wakeup_all || work->token == token)) return true;
    }
  }
  return false;
}

bool apf_token_issued(const struct apf_engine *e, uint32_t token) {
  const uint32_t vcpu = token & 0xfffu, id = token >> 12;
  if (vcpu >= e->cfg.n_vcpus || id == 0) return false;
  return id < e->vcpus[vcpu].token_id; /* the next id to give out */
}

const struct apf_stats *apf_vcpu_stats(const struct apf_engine *e, unsigned vcpu) {
  return vcpu < e->cfg.n_vcpus ? &e->vcpus[vcpu].stats : NULL;
}

void apf_total_stats(const struct apf_engine *e, struct apf_stats *out) {
  memset(out, 0, sizeof(*out));
  for (unsigned i = 0; i < e->cfg.n_vcpus; i++) {
    const struct apf_stats *s = &e->vcpus[i].stats;
    out->faults += s->faults;
    out->sync_faults += s->sync_faults;
    out->efaults += s->efaults;
    out->try_async += s->try_async;
    out->repeated_faults += s->repeated_faults;
    out->works += s->works;
    out->not_present += s->not_present;
    out->synthetic_halts += s->synthetic_halts;
    out->completed += s->completed;
    out->failed += s->failed;
    out->page_ready += s->page_ready;
    out->page_ready_suppressed += s->page_ready_suppressed;
    out->orphan_page_ready += s->orphan_page_ready;
    out->wake_all += s->wake_all;
    out->wake_all_skipped += s->wake_all_skipped;
    out->wake_all_delivered += s->wake_all_delivered;
    out->page_ready_deferred += s->page_ready_deferred;
    out->acks += s->acks;
    out->error_reports += s->error_reports;
    out->forced_sync += s->forced_sync;
    out->prefaults += s->prefaults;
    out->cancelled += s->cancelled;
    out->msr_gp += s->msr_gp;
    out->ve_not_present += s->ve_not_present;
    out->ve_page_errors += s->ve_page_errors;
    out->ve_refused += s->ve_refused;
    for (int w = 0; w < APF_N_WHY; w++) {
      out->sync_why[w] += s->sync_why[w];
      out->halt_why[w] += s->halt_why[w];
    }
    out->outstanding += s->outstanding;
    out->outstanding_peak += s->outstanding_peak;
  }
}

void apf_vcpu_reset(struct apf_engine *e, unsigned vcpu) {
  if (vcpu >= e->cfg.n_vcpus) return;
  struct apf_vcpu *v = &e->vcpus[vcpu];
  /* kvm_vcpu_reset: clear the completion queue and the hash, zero the MSRs. apf.id is
   * kept, as in KVM. */
  apf_queue_clear(e, v);
  apf_gfn_hash_reset(e, v);
  apf_error_gfn_reset(v);
  if (v->area_announced && e->ops.shared_area) e->ops.shared_area(e->ops.ctx, vcpu, v->area_gpa, false);
  v->area_announced = false;
  v->area_valid = false;
  apf_ve_release(e, v);
  v->msr_ve = 0;
  v->msr_en = v->msr_int = 0;
  v->vec = 0;
  v->send_always = v->delivery_as_pf_vmexit = v->send_pf_error = false;
  v->pageready_pending = false;
  v->ready_request = false;
  apf_trace(e, vcpu, "apf_vcpu_reset", "works dropped, msrs cleared");
}

const char *apf_outcome_name(enum apf_outcome o) {
  switch (o) {
  case APF_OUTCOME_SYNC: return "sync";
  case APF_OUTCOME_HALT: return "halt";
  case APF_OUTCOME_ASYNC: return "async";
  case APF_OUTCOME_EFAULT: return "efault";
  case APF_OUTCOME_ERROR_EXCEPTION: return "error_exception";
  }
  return "?";
}

const char *apf_why_name(enum apf_why w) {
  switch (w) {
  case APF_WHY_NONE: return "none";
  case APF_WHY_ASYNC_DISABLED: return "async_disabled";
  case APF_WHY_REINJECTION: return "event_reinjection";
  case APF_WHY_EXCEPTION_PENDING: return "exception_pending";
  case APF_WHY_INTERRUPTS_BLOCKED: return "interrupts_blocked";
  case APF_WHY_QUEUE_FULL: return "queue_full";
  case APF_WHY_FORCED_SYNC: return "forced_sync";
  case APF_WHY_NOT_ENABLED: return "apf_not_enabled";
  case APF_WHY_CPL0: return "cpl0_without_send_always";
  case APF_WHY_AREA_WRITE_FAILED: return "shared_area_write_failed";
  case APF_WHY_REPEATED_FAULT: return "repeated_fault";
  case APF_WHY_VE_BUSY: return "ve_area_busy";
  }
  return "?";
}
