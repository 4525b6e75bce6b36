/* apf_vcpu.h — wiring the APF engine's MSRs into a vCPU MSR table (sim/cpu/vcpu.h).
 * Kept apart from apf.h so the engine and its tests never link the vCPU (Unicorn).
 * Library apfsim_apf_vcpu. Not for: anything but the three MSR handlers. */
#ifndef APFSIM_APF_VCPU_H
#define APFSIM_APF_VCPU_H

#include <stdbool.h>

#include "apf/apf.h"
#include "core/diag.h"

struct vcpu_msr_table;

/* Registers a handler for each APF MSR this host has (apf_msr_specs): name, index,
 * write_reserved and pv_feature as the spec says (so the vCPU's PV-CPUID enforcement
 * applies), read/write forwarded to apf_msr_read/apf_msr_write with the vCPU's id. The
 * engine must outlive the table. */
bool apf_register_vcpu_msrs(struct apf_engine *e, struct vcpu_msr_table *t, struct diag *err);

#endif
