/* msr.c — MSR_KVM_ASYNC_PF_EN / _INT / _ACK as kvm_set_msr_common and kvm_get_msr_common
 * handle them: reserved bits, the PV-CPUID checks, what counts as "enabled" for the
 * host's ABI, setting up the shared area, and the wake-all an enabling write queues.
 * Sources: Linux 5.10 (kvm_pv_enable_async_pf, kvm_pv_enable_async_pf_int) for 5.8+ hosts,
 * Linux 5.4 for pre-5.8 hosts, the 5.14 fix for ACK's feature bit, the June 2020 series
 * for EN bit 4. Details and differences: docs/apf.md "MSRs".
 * Not for: delivering anything (complete.c). */
#include <inttypes.h>

#include "apf/internal.h"

static bool offered(const struct apf_engine *e, int bit) {
  return (e->cfg.kvm_features >> bit) & 1u;
}

/* guest_pv_has(): with KVM_CAP_ENFORCE_PV_FEATURE_CPUID, an MSR (or EN bit) of a feature
 * the guest was not offered is #GP. The capability arrived in 5.10: pre-5.8 hosts ignore it. */
static bool pv_missing(const struct apf_engine *e, int bit) {
  return !e->cfg.host_pre_5_8 && e->cfg.enforce_pv_cpuid && !offered(e, bit);
}

static uint64_t en_reserved(const struct apf_engine *e) {
  if (e->cfg.host_pre_5_8) return APF_EN_RESERVED_PRE_5_8;
  /* The opt-in error-reporting variant gives bit 4 a meaning (KVM_ASYNC_PF_SEND_ERROR). */
  if (e->cfg.error_reporting == APF_ERR_PAGE_READY) return APF_EN_RESERVED_5_8 & ~APF_EN_SEND_ERROR;
  return APF_EN_RESERVED_5_8;
}

/* Bytes of the area the host touches: the reason (pre-5.8, sizeof(u32)), flags + token
 * (5.8+, sizeof(u64)), + ready_flags (the error series, sizeof(u64) + sizeof(u32)). */
static unsigned area_bytes(const struct apf_engine *e) {
  if (e->cfg.host_pre_5_8) return 4;
  return e->cfg.error_reporting == APF_ERR_PAGE_READY ? 12 : 8;
}

void apf_wakeup_all(struct apf_engine *e, struct apf_vcpu *v) {
  /* kvm_async_pf_wakeup_all: nothing is queued while completions are pending — the guest
   * will see those anyway. The wake-all counts in async_pf.queued until presented. */
  if (!apf_done_empty(v)) {
    v->stats.wake_all_skipped++;
    apf_trace(e, v->id, "apf_wake_all", "skipped: completions pending");
    return;
  }
  uint32_t w = apf_work_alloc(e, v);
  if (w == APF_NO_WORK) return; /* cannot happen: the pool has room for max + 1 */
  v->works[w].wakeup_all = true;
  v->works[w].token = APF_TOKEN_WAKE_ALL;
  apf_done_push(v, w);
  v->queued++;
  v->stats.outstanding = v->queued;
  if (v->queued > v->stats.outstanding_peak) v->stats.outstanding_peak = v->queued;
  v->stats.wake_all++;
  apf_trace(e, v->id, "apf_wake_all", "token %#" PRIx32 " queued", APF_TOKEN_WAKE_ALL);
  apf_present_queued(e, v, true);
}

static void release_area(struct apf_engine *e, struct apf_vcpu *v) {
  if (v->area_announced && e->ops.shared_area) e->ops.shared_area(e->ops.ctx, v->id, v->area_gpa, false);
  v->area_announced = false;
}

static enum apf_msr_result write_en(struct apf_engine *e, struct apf_vcpu *v, uint64_t value, const char **why) {
  if (pv_missing(e, APF_FEATURE_ASYNC_PF)) {
    *why = "ASYNC_PF (CPUID 0x40000001 EAX bit 4) not offered";
    return APF_MSR_GP;
  }
  if (value & en_reserved(e)) {
    *why = e->cfg.host_pre_5_8 ? "reserved bits 5:3 set (pre-5.8 host)" : "reserved bits set";
    return APF_MSR_GP;
  }
  if ((value & APF_EN_DELIVERY_AS_PF_VMEXIT) && pv_missing(e, APF_FEATURE_ASYNC_PF_VMEXIT)) {
    *why = "bit 2 needs ASYNC_PF_VMEXIT (CPUID bit 10)";
    return APF_MSR_GP;
  }
  if ((value & APF_EN_DELIVERY_AS_INT) && pv_missing(e, APF_FEATURE_ASYNC_PF_INT)) {
    *why = "bit 3 needs ASYNC_PF_INT (CPUID bit 14)";
    return APF_MSR_GP;
  }
  if ((value & APF_EN_SEND_ERROR) && pv_missing(e, APF_FEATURE_ASYNC_PF_ERROR)) {
    *why = "bit 4 needs ASYNC_PF_ERROR (CPUID bit 15)";
    return APF_MSR_GP;
  }

  /* KVM stores the value before it looks any further, so it is kept even when the area
   * set-up below fails with #GP. */
  v->msr_en = value;
  if (!apf_enabled(e, v)) {
    apf_queue_clear(e, v);
    apf_gfn_hash_reset(e, v);
    release_area(e, v);
    v->area_valid = false;
    return APF_MSR_OK;
  }

  /* kvm_gfn_to_hva_cache_init fails (#GP) when the area is not guest memory. */
  uint64_t gpa = value & APF_EN_GPA_MASK;
  uint32_t probe;
  for (unsigned off = 0; off < area_bytes(e); off += 4) {
    if (!e->ops.read_u32(e->ops.ctx, gpa + off, &probe)) {
      v->area_valid = false;
      *why = "shared area is not guest RAM";
      return APF_MSR_GP;
    }
  }
  if (v->area_announced && v->area_gpa != gpa) release_area(e, v);
  v->area_gpa = gpa;
  v->area_valid = true;
  if (!v->area_announced && e->ops.shared_area) {
    e->ops.shared_area(e->ops.ctx, v->id, gpa, true);
    v->area_announced = true;
  }
  v->send_always = (value & APF_EN_SEND_ALWAYS) != 0;
  v->delivery_as_pf_vmexit = (value & APF_EN_DELIVERY_AS_PF_VMEXIT) != 0;
  v->send_pf_error = (value & APF_EN_SEND_ERROR) != 0;
  /* Every enabling write queues a wake-all (Linux 5.4 and 5.10 alike). */
  apf_wakeup_all(e, v);
  return APF_MSR_OK;
}

static enum apf_msr_result write_int(struct apf_engine *e, struct apf_vcpu *v, uint64_t value, const char **why) {
  if (e->cfg.host_pre_5_8) {
    *why = "no such MSR before Linux 5.8";
    return APF_MSR_GP;
  }
  if (pv_missing(e, APF_FEATURE_ASYNC_PF_INT)) {
    *why = "ASYNC_PF_INT (CPUID bit 14) not offered";
    return APF_MSR_GP;
  }
  if (value >> 8) {
    *why = "reserved bits 63:8 set";
    return APF_MSR_GP;
  }
  /* KVM checks no vector range: a vector below 32 (or 16) is accepted here and goes
   * wrong only when the APIC is asked to deliver it. */
  v->msr_int = value;
  v->vec = (uint8_t)(value & APF_INT_VECTOR_MASK);
  return APF_MSR_OK;
}

static enum apf_msr_result write_ack(struct apf_engine *e, struct apf_vcpu *v, uint64_t value, const char **why) {
  if (e->cfg.host_pre_5_8) {
    *why = "no such MSR before Linux 5.8";
    return APF_MSR_GP;
  }
  /* 5.10 checked ASYNC_PF here; 5.14 ("Check the right feature bit for
   * MSR_KVM_ASYNC_PF_ACK access") made it ASYNC_PF_INT, as msr.rst documents. */
  if (pv_missing(e, APF_FEATURE_ASYNC_PF_INT)) {
    *why = "ASYNC_PF_INT (CPUID bit 14) not offered";
    return APF_MSR_GP;
  }
  /* Only bit 0 means anything; any other value is accepted and ignored (no #GP). */
  if (value & 1) {
    v->pageready_pending = false;
    v->stats.acks++;
    apf_trace(e, v->id, "apf_ack", "ready_queued %s", apf_done_empty(v) ? "no" : "yes");
    apf_check_completion(e, v);
  }
  return APF_MSR_OK;
}

enum apf_msr_result apf_msr_write(struct apf_engine *e, unsigned vcpu, uint32_t msr, uint64_t value) {
  if (vcpu >= e->cfg.n_vcpus) return APF_MSR_GP;
  struct apf_vcpu *v = &e->vcpus[vcpu];
  const char *why = "not an APF MSR";
  enum apf_msr_result r = APF_MSR_GP;
  switch (msr) {
  case APF_MSR_EN: r = write_en(e, v, value, &why); break;
  case APF_MSR_INT: r = write_int(e, v, value, &why); break;
  case APF_MSR_ACK: r = write_ack(e, v, value, &why); break;
  case APF_MSR_VE_INFO: r = apf_ve_msr_write(e, v, value, &why); break;
  default: break;
  }
  if (r == APF_MSR_GP) {
    v->stats.msr_gp++;
    apf_trace(e, vcpu, "apf_msr_write", "msr %#" PRIx32 " value %#" PRIx64 " gp: %s", msr, value, why);
    return r;
  }
  apf_trace(e, vcpu, "apf_msr_write", "msr %#" PRIx32 " value %#" PRIx64 " ok", msr, value);
  /* KVM presents queued work before it re-enters the guest after the WRMSR exit. */
  apf_vcpu_service(e, vcpu);
  return r;
}

enum apf_msr_result apf_msr_read(struct apf_engine *e, unsigned vcpu, uint32_t msr, uint64_t *value) {
  if (vcpu >= e->cfg.n_vcpus) return APF_MSR_GP;
  struct apf_vcpu *v = &e->vcpus[vcpu];
  enum apf_msr_result r = APF_MSR_GP;
  switch (msr) {
  case APF_MSR_EN:
    if (!pv_missing(e, APF_FEATURE_ASYNC_PF)) {
      *value = v->msr_en;
      r = APF_MSR_OK;
    }
    break;
  case APF_MSR_INT:
    if (!e->cfg.host_pre_5_8 && !pv_missing(e, APF_FEATURE_ASYNC_PF_INT)) {
      *value = v->msr_int;
      r = APF_MSR_OK;
    }
    break;
  case APF_MSR_ACK:
    if (!e->cfg.host_pre_5_8 && !pv_missing(e, APF_FEATURE_ASYNC_PF_INT)) {
      *value = 0; /* write-only in effect: reads as 0 */
      r = APF_MSR_OK;
    }
    break;
  case APF_MSR_VE_INFO:
    if (e->ops.inject_ve) {
      *value = v->msr_ve;
      r = APF_MSR_OK;
    }
    break;
  default: break;
  }
  if (r == APF_MSR_GP) v->stats.msr_gp++;
  return r;
}

size_t apf_msr_specs(const struct apf_engine *e, struct apf_msr_spec out[APF_N_MSRS]) {
  /* The vCPU applies pv_feature only with enforcement on; pre-5.8 hosts predate it. */
  bool pv = !e->cfg.host_pre_5_8;
  size_t n = 0;
  out[n++] = (struct apf_msr_spec){"MSR_KVM_ASYNC_PF_EN", APF_MSR_EN, en_reserved(e),
                                   pv ? UINT32_C(1) << APF_FEATURE_ASYNC_PF : 0};
  if (e->cfg.host_pre_5_8) return n;
  out[n++] = (struct apf_msr_spec){"MSR_KVM_ASYNC_PF_INT", APF_MSR_INT, ~APF_INT_VECTOR_MASK,
                                   UINT32_C(1) << APF_FEATURE_ASYNC_PF_INT};
  out[n++] = (struct apf_msr_spec){"MSR_KVM_ASYNC_PF_ACK", APF_MSR_ACK, 0, UINT32_C(1) << APF_FEATURE_ASYNC_PF_INT};
  return n;
}
