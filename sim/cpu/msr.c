/* msr.c — RDMSR/WRMSR and CPUID as the guest sees them.
 *
 * Unicorn 2.0.1 ignores writes to unknown MSRs, reads them as 0 and drops
 * EFER.SCE/NXE, so every MSR access is emulated here (sites.c hooks the
 * instructions): the architectural MSRs the vCPU owns, then a dispatch
 * table other modules register handlers in (the APF engine, the APIC).
 * Unknown MSRs, reserved bits and — when the host enforces PV CPUID — MSRs
 * of a paravirtual feature the guest was not offered all raise #GP.
 *
 * CPUID answers from the table Unicorn's own model gave at start-up, edited
 * (hypervisor bit, x2APIC, APIC ID) and extended with the KVM leaves
 * 0x40000000 ("KVMKVMKVM\0\0\0") and 0x40000001 (features from the config).
 *
 * Not for: what the registered MSRs mean (their owners decide). */
#include <stdlib.h>
#include <string.h>

#include "cpu/vcpu_internal.h"

/* Architectural MSR indexes (SDM vol. 4). */
#define MSR_IA32_TSC 0x10u
#define MSR_SYSENTER_CS 0x174u
#define MSR_SYSENTER_ESP 0x175u
#define MSR_SYSENTER_EIP 0x176u
#define MSR_PAT 0x277u
#define MSR_EFER 0xc0000080u
#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_CSTAR 0xc0000083u
#define MSR_SFMASK 0xc0000084u
#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define MSR_TSC_AUX 0xc0000103u
#define MSR_X2APIC_FIRST 0x800u
#define MSR_X2APIC_LAST 0x8ffu

/* KVM's paravirtual CPUID leaves (Linux Documentation/virt/kvm/cpuid.rst). */
#define KVM_CPUID_SIGNATURE 0x40000000u
#define KVM_CPUID_FEATURES 0x40000001u

struct vcpu_msr_table {
  struct vcpu_msr_handler *h;
  size_t n, cap;
};

static bool is_builtin(uint32_t i) {
  switch (i) {
    case MSR_IA32_TSC: case MSR_SYSENTER_CS: case MSR_SYSENTER_ESP: case MSR_SYSENTER_EIP: case MSR_PAT:
    case MSR_EFER: case MSR_STAR: case MSR_LSTAR: case MSR_CSTAR: case MSR_SFMASK:
    case MSR_FS_BASE: case MSR_GS_BASE: case MSR_KERNEL_GS_BASE: case MSR_TSC_AUX:
      return true;
    default:
      return false;
  }
}

struct vcpu_msr_table *vcpu_msr_table_new(void) { return calloc(1, sizeof(struct vcpu_msr_table)); }

void vcpu_msr_table_free(struct vcpu_msr_table *t) {
  if (!t) return;
  free(t->h);
  free(t);
}

bool vcpu_msr_register(struct vcpu_msr_table *t, const struct vcpu_msr_handler *h, struct diag *err) {
  const char *name = h->name ? h->name : "(unnamed)";
  if (h->last < h->first) return diag_set(err, "MSR handler %s: empty range %#x..%#x", name, h->first, h->last);
  for (uint64_t i = h->first; i <= h->last; i++)
    if (is_builtin((uint32_t)i))
      return diag_set(err, "MSR handler %s: MSR %#llx is owned by the vCPU", name, (unsigned long long)i);
  for (size_t k = 0; k < t->n; k++)
    if (h->first <= t->h[k].last && t->h[k].first <= h->last)
      return diag_set(err, "MSR handler %s: range %#x..%#x overlaps %s", name, h->first, h->last,
                      t->h[k].name ? t->h[k].name : "(unnamed)");
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 16;
    struct vcpu_msr_handler *p = realloc(t->h, cap * sizeof *p);
    if (!p) return diag_set(err, "out of memory registering MSR handler %s", name);
    t->h = p;
    t->cap = cap;
  }
  t->h[t->n++] = *h;
  return true;
}

static const struct vcpu_msr_handler *lookup(const struct vcpu *v, uint32_t index) {
  if (!v->msrs) return NULL;
  for (size_t k = 0; k < v->msrs->n; k++)
    if (index >= v->msrs->h[k].first && index <= v->msrs->h[k].last) return &v->msrs->h[k];
  return NULL;
}

/* KVM_CAP_ENFORCE_PV_FEATURE_CPUID: an MSR of a feature the guest was not
 * offered in CPUID 0x40000001 EAX is #GP. */
static bool pv_hidden(const struct vcpu *v, const struct vcpu_msr_handler *h) {
  return v->enforce_pv_cpuid && h->pv_feature && (v->kvm_features & h->pv_feature) != h->pv_feature;
}

static void charge_handler(struct vcpu *v, const struct vcpu_msr_handler *h, uint32_t index) {
  if (h->no_exit) return;
  vcpu_charge(v, VCPU_COST_EXIT_ENTRY, v->costs.vm_exit_cycles + v->costs.vm_entry_cycles);
  if (index >= MSR_X2APIC_FIRST && index <= MSR_X2APIC_LAST)
    vcpu_charge(v, VCPU_COST_APIC, v->costs.apic_access_cycles);
  else
    vcpu_charge(v, VCPU_COST_MSR, v->costs.msr_access_cycles);
}

static enum msr_status status_of(enum vcpu_msr_result r) {
  switch (r) {
    case VCPU_MSR_OK: return MSR_DONE;
    case VCPU_MSR_EXIT: return MSR_DONE_EXIT;
    case VCPU_MSR_SHUTDOWN: return MSR_DONE_SHUTDOWN;
    case VCPU_MSR_GP: break;
  }
  return MSR_RAISE_GP;
}

static uint64_t unicorn_msr(struct vcpu *v, uint32_t index) {
  uc_x86_msr m = {index, 0};
  uc_reg_read(v->uc, UC_X86_REG_MSR, &m);
  return m.value;
}

static void set_unicorn_msr(struct vcpu *v, uint32_t index, uint64_t value) {
  uc_x86_msr m = {index, value};
  uc_reg_write(v->uc, UC_X86_REG_MSR, &m);
}

/* Unicorn's EFER follows the guest's: LME/LMA always, SCE/NXE patched in
 * (its WRMSR drops them). */
static void apply_efer(struct vcpu *v, uint64_t old) {
  ubk_begin(&v->be);
  ubk_set_efer(&v->be, EFER_LME | EFER_LMA | (v->efer & EFER_SCE) | (v->has_mmu ? EFER_NXE : v->efer & EFER_NXE));
  ubk_commit(&v->be);
  if (v->has_mmu && ((old ^ v->efer) & EFER_NXE)) { /* shadow leaves were filled under the old NXE */
    shadow_reset(v->shadow, v->id);
    v->flush_all = true;
  }
}

enum msr_status msr_read(struct vcpu *v, uint32_t index, uint64_t *value) {
  switch (index) {
    case MSR_EFER: *value = v->efer; return MSR_DONE;
    case MSR_STAR: *value = v->star; return MSR_DONE;
    case MSR_LSTAR: *value = v->lstar; return MSR_DONE;
    case MSR_CSTAR: *value = v->cstar; return MSR_DONE;
    case MSR_SFMASK: *value = v->sfmask; return MSR_DONE;
    case MSR_FS_BASE: *value = rd(v, UC_X86_REG_FS_BASE); return MSR_DONE;
    case MSR_GS_BASE: *value = rd(v, UC_X86_REG_GS_BASE); return MSR_DONE;
    case MSR_KERNEL_GS_BASE: *value = unicorn_msr(v, MSR_KERNEL_GS_BASE); return MSR_DONE;
    case MSR_TSC_AUX: *value = v->tsc_aux; return MSR_DONE;
    case MSR_IA32_TSC: *value = v->pf.tsc ? v->pf.tsc(v->pf.ctx, v) : vcpu_cycles(v); return MSR_DONE;
    case MSR_PAT: *value = v->pat; return MSR_DONE;
    case MSR_SYSENTER_CS: *value = v->sysenter_cs; return MSR_DONE;
    case MSR_SYSENTER_ESP: *value = v->sysenter_esp; return MSR_DONE;
    case MSR_SYSENTER_EIP: *value = v->sysenter_eip; return MSR_DONE;
    default: break;
  }
  const struct vcpu_msr_handler *h = lookup(v, index);
  if (!h || !h->read || pv_hidden(v, h)) return MSR_RAISE_GP;
  charge_handler(v, h, index);
  return status_of(h->read(h->ctx, v, index, value));
}

static bool pat_valid(uint64_t pat) {
  for (unsigned i = 0; i < 8; i++) {
    unsigned t = (pat >> (8 * i)) & 0xff;
    if (t != 0 && t != 1 && t != 4 && t != 5 && t != 6 && t != 7) return false;
  }
  return true;
}

enum msr_status msr_write(struct vcpu *v, uint32_t index, uint64_t value) {
  switch (index) {
    case MSR_EFER:
      /* SCE, LME, LMA (read-only here) and NXE exist; LME cannot change in
       * long mode with paging on. */
      if (value & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)) return MSR_RAISE_GP;
      if ((value & EFER_LME) != (v->efer & EFER_LME)) return MSR_RAISE_GP;
      {
        const uint64_t old = v->efer;
        v->efer = (v->efer & EFER_LMA) | (value & (EFER_SCE | EFER_LME | EFER_NXE));
        apply_efer(v, old);
        /* a pending flush needs a stop: the run loop does it before going on */
        return v->flush_all ? MSR_DONE_FLUSH : MSR_DONE;
      }
    case MSR_STAR: v->star = value; return MSR_DONE;
    case MSR_LSTAR:
    case MSR_CSTAR:
      if (!paging_is_canonical(value)) return MSR_RAISE_GP;
      *(index == MSR_LSTAR ? &v->lstar : &v->cstar) = value;
      return MSR_DONE;
    case MSR_SFMASK:
      if (value >> 32) return MSR_RAISE_GP;
      v->sfmask = value;
      return MSR_DONE;
    case MSR_FS_BASE:
    case MSR_GS_BASE:
    case MSR_KERNEL_GS_BASE:
      if (!paging_is_canonical(value)) return MSR_RAISE_GP;
      set_unicorn_msr(v, index, value); /* so SWAPGS and FS:/GS: work natively */
      return MSR_DONE;
    case MSR_TSC_AUX:
      if (value >> 32) return MSR_RAISE_GP;
      v->tsc_aux = value;
      return MSR_DONE;
    case MSR_IA32_TSC:
      return MSR_DONE; /* the TSC is simulated time: writes are ignored (docs/vcpu.md) */
    case MSR_PAT:
      if (!pat_valid(value)) return MSR_RAISE_GP;
      v->pat = value;
      return MSR_DONE;
    case MSR_SYSENTER_CS: v->sysenter_cs = value & 0xffff; return MSR_DONE;
    case MSR_SYSENTER_ESP:
    case MSR_SYSENTER_EIP:
      if (!paging_is_canonical(value)) return MSR_RAISE_GP;
      *(index == MSR_SYSENTER_ESP ? &v->sysenter_esp : &v->sysenter_eip) = value;
      return MSR_DONE;
    default:
      break;
  }
  const struct vcpu_msr_handler *h = lookup(v, index);
  if (!h || !h->write || pv_hidden(v, h) || (value & h->write_reserved)) return MSR_RAISE_GP;
  charge_handler(v, h, index);
  return status_of(h->write(h->ctx, v, index, value));
}

/* ---------- CPUID ---------- */

static uint32_t ascii4(const char *s) {
  return (uint32_t)(uint8_t)s[0] | (uint32_t)(uint8_t)s[1] << 8 | (uint32_t)(uint8_t)s[2] << 16 |
         (uint32_t)(uint8_t)s[3] << 24;
}

void cpuid_answer(struct vcpu *v, uint32_t leaf, uint32_t subleaf, uint32_t r[4]) {
  memset(r, 0, 4 * sizeof *r);
  if (v->pf.cpuid && v->pf.cpuid(v->pf.ctx, v, leaf, subleaf, r)) return;
  if (leaf == KVM_CPUID_SIGNATURE) {
    r[0] = KVM_CPUID_FEATURES; /* the highest KVM leaf */
    r[1] = ascii4("KVMK");
    r[2] = ascii4("VMKV");
    r[3] = ascii4("M\0\0\0");
    return;
  }
  if (leaf == KVM_CPUID_FEATURES) {
    r[0] = v->kvm_features;
    return;
  }
  if (leaf >= KVM_CPUID_SIGNATURE && leaf < 0x40000100u) return;
  const struct ubk_cpuid_table *t = &v->be.cpuid;
  for (unsigned i = 0; i < t->n; i++)
    if (t->e[i].leaf == leaf && (t->e[i].subleaf == UINT32_MAX || t->e[i].subleaf == subleaf)) {
      memcpy(r, t->e[i].r, 4 * sizeof *r);
      break;
    }
  if (leaf == 1) {
    r[1] = (r[1] & 0x00ffffffu) | (v->id & 0xffu) << 24; /* initial APIC ID */
    r[2] |= 1u << 31;                                      /* running under a hypervisor */
    if (v->cpuid_x2apic)
      r[2] |= 1u << 21;
    else
      r[2] &= ~(1u << 21);
  }
}
