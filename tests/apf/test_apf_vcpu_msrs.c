/* test_apf_vcpu_msrs.c — the APF MSRs wired into a real vCPU (sim/cpu, Unicorn) with
 * apf_register_vcpu_msrs: a guest WRMSR/RDMSR reaches the engine with the vCPU's id, the
 * vCPU raises #GP(0) for reserved bits and (with enforcement) for MSRs whose CPUID
 * feature is not offered — before the engine is called. Uses the vCPU tests' machine
 * (tests/cpu/harness.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "apf/apf.h"
#include "apf/apf_vcpu.h"
#include "harness.h"

#define AREA UINT64_C(0x400000)

struct plat {
  struct harness *h;
  unsigned irqs;
  uint8_t last_vector;
};

static uint64_t p_now(void *ctx) { (void)ctx; return 0; }
static bool p_read(void *ctx, uint64_t gpa, uint32_t *v) {
  struct plat *p = ctx;
  if (gpa + 4 > G_MEM_BYTES) return false;
  memcpy(v, p->h->mem + gpa, 4);
  return true;
}
static bool p_write(void *ctx, uint64_t gpa, uint32_t v) {
  struct plat *p = ctx;
  if (gpa + 4 > G_MEM_BYTES) return false;
  memcpy(p->h->mem + gpa, &v, 4);
  return true;
}
static void p_state(void *ctx, unsigned vcpu, struct apf_vcpu_state *s) {
  (void)ctx, (void)vcpu;
  s->interrupts_allowed = true;
}
static void p_inject(void *ctx, unsigned vcpu, uint32_t ec, uint64_t cr2) { (void)ctx, (void)vcpu, (void)ec, (void)cr2; }
static void p_irq(void *ctx, unsigned vcpu, uint8_t vector) {
  struct plat *p = ctx;
  (void)vcpu;
  p->irqs++;
  p->last_vector = vector;
}
static void p_fetch(void *ctx, unsigned vcpu, uint64_t gfn, bool blocks) { (void)ctx, (void)vcpu, (void)gfn, (void)blocks; }
static void p_halt(void *ctx, unsigned vcpu) { (void)ctx, (void)vcpu; }
static void p_kick(void *ctx, unsigned vcpu, bool r) { (void)ctx, (void)vcpu, (void)r; }

static struct apf_engine *engine(struct plat *p, bool enforce, uint32_t features) {
  struct apf_engine_config c;
  memset(&c, 0, sizeof(c));
  c.n_vcpus = 1;
  c.async_pf = true;
  c.enforce_pv_cpuid = enforce;
  c.kvm_features = features;
  struct apf_host_ops ops = {.ctx = p, .now_ns = p_now, .read_u32 = p_read, .write_u32 = p_write,
                             .vcpu_state = p_state, .inject_pf = p_inject, .raise_irq = p_irq,
                             .fetch = p_fetch, .halt = p_halt, .kick = p_kick};
  struct diag d;
  struct apf_engine *e = apf_engine_create(&c, &ops, &d);
  assert_non_null(e);
  return e;
}

static struct vcpu_exit guest_wrmsr(struct harness *h, uint32_t msr, uint64_t value) {
  h_boot(h, T_WRMSR, false);
  h_set_reg(h, R_RCX, msr);
  h_set_reg(h, R_RAX, (uint32_t)value);
  h_set_reg(h, R_RDX, value >> 32);
  return h_run(h, 10);
}

static bool took_gp(struct harness *h, struct vcpu_exit e) {
  return e.rip == CODE(H_HLT) + 1 && h_q(h, h_reg(h, R_RSP) + 8) == CODE(T_WRMSR);
}

static void a_guest_wrmsr_reaches_the_engine_and_enables_apf(void **state) {
  (void)state;
  struct harness h;
  struct plat p = {.h = &h};
  h_init(&h);
  struct apf_engine *e = engine(&p, false, 0);
  struct diag d;
  assert_true(apf_register_vcpu_msrs(e, h.msrs, &d));
  struct vcpu_exit x = guest_wrmsr(&h, APF_MSR_INT, 0xf3);
  assert_int_equal(x.rip, CODE(T_WRMSR) + 3);
  x = guest_wrmsr(&h, APF_MSR_EN, AREA | APF_EN_ENABLED | APF_EN_DELIVERY_AS_INT);
  assert_int_equal(x.rip, CODE(T_WRMSR) + 3);
  assert_true(apf_vcpu_enabled(e, 0));
  assert_int_equal(p.irqs, 1); /* the wake-all */
  assert_int_equal(p.last_vector, 0xf3);
  uint32_t slot;
  memcpy(&slot, h.mem + AREA + APF_AREA_TOKEN, 4);
  assert_int_equal(slot, APF_TOKEN_WAKE_ALL);
  /* RDMSR through the engine. */
  h_boot(&h, T_RDMSR, false);
  h_set_reg(&h, R_RCX, APF_MSR_EN);
  h_run(&h, 10);
  assert_int_equal(h_reg(&h, R_RAX), AREA | 9);
  h_free(&h);
  apf_engine_destroy(e);
}

static void the_vcpu_gps_reserved_bits_before_the_engine_sees_them(void **state) {
  (void)state;
  struct harness h;
  struct plat p = {.h = &h};
  h_init(&h);
  struct apf_engine *e = engine(&p, false, 0);
  struct diag d;
  assert_true(apf_register_vcpu_msrs(e, h.msrs, &d));
  assert_true(took_gp(&h, guest_wrmsr(&h, APF_MSR_EN, AREA | 0x10 | 9)));
  assert_int_equal(apf_vcpu_stats(e, 0)->msr_gp, 0); /* refused by the vCPU itself */
  h_free(&h);
  /* A #GP the vCPU cannot know of (the area is not RAM) comes from the engine. */
  h_init(&h);
  assert_true(apf_register_vcpu_msrs(e, h.msrs, &d));
  assert_true(took_gp(&h, guest_wrmsr(&h, APF_MSR_EN, (UINT64_C(1) << 40) | 9)));
  assert_int_equal(apf_vcpu_stats(e, 0)->msr_gp, 1);
  h_free(&h);
  apf_engine_destroy(e);
}

static void pv_cpuid_enforcement_applies_through_the_vcpu(void **state) {
  (void)state;
  struct harness h;
  struct plat p = {.h = &h};
  h_init(&h);
  h.cfg.enforce_pv_cpuid = true;
  h.cfg.kvm_features = 1u << APF_FEATURE_ASYNC_PF;
  struct apf_engine *e = engine(&p, true, 1u << APF_FEATURE_ASYNC_PF);
  struct diag d;
  assert_true(apf_register_vcpu_msrs(e, h.msrs, &d));
  assert_true(took_gp(&h, guest_wrmsr(&h, APF_MSR_INT, 0xf3)));
  h_free(&h);
  h_init(&h);
  h.cfg.enforce_pv_cpuid = true;
  h.cfg.kvm_features = 1u << APF_FEATURE_ASYNC_PF;
  assert_true(apf_register_vcpu_msrs(e, h.msrs, &d));
  struct vcpu_exit x = guest_wrmsr(&h, APF_MSR_EN, AREA | APF_EN_ENABLED);
  assert_int_equal(x.rip, CODE(T_WRMSR) + 3);
  h_free(&h);
  apf_engine_destroy(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_guest_wrmsr_reaches_the_engine_and_enables_apf),
      cmocka_unit_test(the_vcpu_gps_reserved_bits_before_the_engine_sees_them),
      cmocka_unit_test(pv_cpuid_enforcement_applies_through_the_vcpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
