/* ve.c — apfsim's #VE delivery (docs/guest.md §1.10): the per-vCPU #VE information MSR
 * and area, and the two events it carries — an APF "page not present" (instead of the
 * #PF with flags = 1 and CR2 = token) and a host page error (the synchronous error
 * exception of APF_ERR_SYNC_EXCEPTION). No KVM code exists for this: it models the 2020
 * proposal that a not-present event should have its own vector and its own info area
 * with a busy word, so that a nested #PF (the NMI/CR2 race) cannot consume it.
 *
 * The host rule is the SDM's for a real #VE (vol. 3C §25.5.7): deliver only while the
 * area's busy word reads 0, fill it, set busy, then inject; while the guest owns the
 * area an event that would be a #VE takes another path (decide.c: a synchronous fault;
 * apf_ve_page_error: the EFAULT exit). Not for: page-ready (still the 2020 interrupt). */
#include <inttypes.h>

#include "apf/internal.h"

static bool ve_supported(const struct apf_engine *e) { return e->ops.inject_ve != NULL; }

void apf_ve_release(struct apf_engine *e, struct apf_vcpu *v) {
  if (v->ve_announced && e->ops.shared_area)
    e->ops.shared_area(e->ops.ctx, v->id, v->msr_ve & APF_EN_GPA_MASK, false);
  v->ve_announced = false;
}

enum apf_msr_result apf_ve_msr_write(struct apf_engine *e, struct apf_vcpu *v, uint64_t value, const char **why) {
  if (!ve_supported(e)) {
    *why = "this host delivers no #VE";
    return APF_MSR_GP;
  }
  if (value & APF_VE_INFO_RESERVED) {
    *why = "reserved bits 5:3 set";
    return APF_MSR_GP;
  }
  /* Not-present by #VE keeps the 2020 page-ready interrupt: a pre-5.8 host has none. */
  if ((value & APF_VE_INFO_NOT_PRESENT) && e->cfg.host_pre_5_8) {
    *why = "not-present by #VE needs a 5.8+ host (page-ready by interrupt)";
    return APF_MSR_GP;
  }
  const uint64_t gpa = value & APF_EN_GPA_MASK;
  if (value & APF_VE_INFO_ENABLE) {
    uint32_t probe;
    for (unsigned off = 0; off < APF_VE_AREA_BYTES; off += 4) {
      if (!e->ops.read_u32(e->ops.ctx, gpa + off, &probe)) {
        *why = "#VE information area is not guest RAM";
        return APF_MSR_GP;
      }
    }
  }
  apf_ve_release(e, v);
  v->msr_ve = value;
  if ((value & APF_VE_INFO_ENABLE) && e->ops.shared_area) {
    /* The host writes the area at any time: it must stay resident, like the APF area. */
    e->ops.shared_area(e->ops.ctx, v->id, gpa, true);
    v->ve_announced = true;
  }
  return APF_MSR_OK;
}

bool apf_ve_not_present(const struct apf_engine *e, const struct apf_vcpu *v) {
  const uint64_t bits = APF_VE_INFO_ENABLE | APF_VE_INFO_NOT_PRESENT;
  return ve_supported(e) && !e->cfg.host_pre_5_8 && (v->msr_ve & bits) == bits;
}

bool apf_ve_busy(struct apf_engine *e, const struct apf_vcpu *v) {
  uint32_t busy = APF_VE_BUSY;
  if (!e->ops.read_u32(e->ops.ctx, (v->msr_ve & APF_EN_GPA_MASK) + APF_VE_AREA_BUSY, &busy)) return true;
  return busy != 0;
}

static bool wr64(struct apf_engine *e, uint64_t gpa, uint64_t value) {
  return e->ops.write_u32(e->ops.ctx, gpa, (uint32_t)value) &&
         e->ops.write_u32(e->ops.ctx, gpa + 4, (uint32_t)(value >> 32));
}

bool apf_ve_deliver(struct apf_engine *e, struct apf_vcpu *v, uint32_t reason, uint64_t token,
                    const struct apf_fault *f, unsigned cpl) {
  const uint64_t a = v->msr_ve & APF_EN_GPA_MASK;
  const uint32_t access = (f->write ? APF_VE_ACCESS_WRITE : 0) | (f->fetch ? APF_VE_ACCESS_FETCH : 0) |
                          (cpl == 3 ? APF_VE_ACCESS_USER : 0);
  /* Fields first, busy last: the guest reads the area only once busy is set. */
  if (!e->ops.write_u32(e->ops.ctx, a + APF_VE_AREA_REASON, reason) || !wr64(e, a + APF_VE_AREA_TOKEN, token) ||
      !wr64(e, a + APF_VE_AREA_GVA, f->gva) || !wr64(e, a + APF_VE_AREA_GPA, f->gpa) ||
      !e->ops.write_u32(e->ops.ctx, a + APF_VE_AREA_ACCESS, access) ||
      !e->ops.write_u32(e->ops.ctx, a + APF_VE_AREA_BUSY, APF_VE_BUSY))
    return false;
  apf_trace(e, v->id, "apf_inject_ve", "kind %s token %#" PRIx64 " gva %#" PRIx64 " gpa %#" PRIx64 " access %#x",
            reason == APF_VE_REASON_NOT_PRESENT ? "not_present" : "page_error", token, f->gva, f->gpa, access);
  e->ops.inject_ve(e->ops.ctx, v->id);
  return true;
}

bool apf_ve_page_error(struct apf_engine *e, unsigned vcpu, const struct apf_fault *f) {
  if (vcpu >= e->cfg.n_vcpus) return false;
  struct apf_vcpu *v = &e->vcpus[vcpu];
  const uint64_t bits = APF_VE_INFO_ENABLE | APF_VE_INFO_PAGE_ERROR;
  const char *why = NULL;
  if (!ve_supported(e) || (v->msr_ve & bits) != bits)
    why = "not_registered";
  else if (apf_ve_busy(e, v))
    why = "busy";
  if (!why) {
    struct apf_vcpu_state s;
    apf_vcpu_state(e, vcpu, &s);
    if (apf_ve_deliver(e, v, APF_VE_REASON_PAGE_ERROR, 0, f, s.cpl)) {
      v->stats.ve_page_errors++;
      return true;
    }
    why = "area_write_failed";
  }
  v->stats.ve_refused++;
  apf_trace(e, vcpu, "apf_ve_refused", "kind page_error gva %#" PRIx64 " why %s", f->gva, why);
  return false;
}

bool apf_ve_msr_spec(const struct apf_engine *e, struct apf_msr_spec *out) {
  if (!ve_supported(e)) return false;
  *out = (struct apf_msr_spec){"MSR_APFSIM_VE_INFO", APF_MSR_VE_INFO, APF_VE_INFO_RESERVED, 0};
  return true;
}
