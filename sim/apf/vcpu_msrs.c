/* vcpu_msrs.c — the APF MSRs as vcpu_msr_handler entries: translate the vCPU to its id
 * and the engine's answer to the vCPU's. Not for: any MSR semantics (msr.c). */
#include "apf/apf_vcpu.h"

#include "cpu/vcpu.h"

static enum vcpu_msr_result on_read(void *ctx, struct vcpu *v, uint32_t msr, uint64_t *value) {
  return apf_msr_read(ctx, vcpu_id(v), msr, value) == APF_MSR_OK ? VCPU_MSR_OK : VCPU_MSR_GP;
}

static enum vcpu_msr_result on_write(void *ctx, struct vcpu *v, uint32_t msr, uint64_t value) {
  return apf_msr_write(ctx, vcpu_id(v), msr, value) == APF_MSR_OK ? VCPU_MSR_OK : VCPU_MSR_GP;
}

bool apf_register_vcpu_msrs(struct apf_engine *e, struct vcpu_msr_table *t, struct diag *err) {
  struct apf_msr_spec specs[APF_N_MSRS];
  size_t n = apf_msr_specs(e, specs);
  for (size_t i = 0; i < n; i++) {
    struct vcpu_msr_handler h = {
        .name = specs[i].name,
        .first = specs[i].msr,
        .last = specs[i].msr,
        .write_reserved = specs[i].write_reserved,
        .pv_feature = specs[i].pv_feature,
        .no_exit = false,
        .read = on_read,
        .write = on_write,
        .ctx = e,
    };
    if (!vcpu_msr_register(t, &h, err)) return false;
  }
  return true;
}
