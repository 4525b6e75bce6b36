/* test_intercepts.c — instructions the vCPU takes over: CPUID (KVM leaves),
 * RDMSR/WRMSR (dispatch table, #GP for unknown MSRs and reserved bits, PV
 * CPUID enforcement, EFER), RDTSC/RDTSCP and RDRAND/RDSEED from callbacks,
 * port I/O, HLT, the start-up scan's refusals, sites found when unscanned
 * code first runs, and the cycle accounting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static struct vcpu_exit run_cpuid(struct harness *h, uint32_t leaf) {
  h_boot(h, T_CPUID, false);
  h_set_reg(h, R_RAX, leaf);
  h_set_reg(h, R_RCX, 0);
  return h_run(h, 10);
}

static void cpuid_kvm_leaves(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.cfg.kvm_features = (1u << 4) | (1u << 14); /* ASYNC_PF, ASYNC_PF_INT */
  run_cpuid(&h, 0x40000000);
  char sig[13] = {0};
  uint32_t r[3] = {(uint32_t)h_reg(&h, R_RBX), (uint32_t)h_reg(&h, R_RCX), (uint32_t)h_reg(&h, R_RDX)};
  memcpy(sig, r, 12);
  assert_memory_equal(sig, "KVMKVMKVM\0\0\0", 12);
  assert_int_equal(h_reg(&h, R_RAX), 0x40000001);
  h_free(&h);

  h_init(&h);
  h.cfg.kvm_features = (1u << 4) | (1u << 14);
  run_cpuid(&h, 0x40000001);
  assert_int_equal(h_reg(&h, R_RAX), (1u << 4) | (1u << 14));
  h_free(&h);

  h_init(&h);
  h.cfg.cpuid_x2apic = true;
  struct vcpu_exit e = run_cpuid(&h, 1);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_true(h_reg(&h, R_RCX) & (1u << 31)); /* hypervisor */
  assert_true(h_reg(&h, R_RCX) & (1u << 21)); /* x2APIC */
  h_free(&h);
}

/* ---------- MSRs ---------- */

struct msr_dev {
  uint64_t value;
  unsigned reads, writes;
};

static enum vcpu_msr_result dev_read(void *ctx, struct vcpu *v, uint32_t msr, uint64_t *value) {
  (void)v;
  (void)msr;
  struct msr_dev *d = ctx;
  d->reads++;
  *value = d->value;
  return VCPU_MSR_OK;
}

static enum vcpu_msr_result dev_write(void *ctx, struct vcpu *v, uint32_t msr, uint64_t value) {
  (void)v;
  (void)msr;
  struct msr_dev *d = ctx;
  d->writes++;
  d->value = value;
  return value == 0xc0 ? VCPU_MSR_EXIT : VCPU_MSR_OK;
}

static void register_apf_like(struct harness *h, struct msr_dev *d) {
  struct vcpu_msr_handler hd = {.name = "async_pf_en", .first = 0x4b564d02, .last = 0x4b564d02,
                                .write_reserved = 0x30, .pv_feature = 1u << 4, .read = dev_read,
                                .write = dev_write, .ctx = d};
  struct diag err = {{0}};
  assert_true(vcpu_msr_register(h->msrs, &hd, &err));
}

static struct vcpu_exit wrmsr(struct harness *h, uint32_t msr, uint64_t value) {
  h_boot(h, T_WRMSR, false);
  h_set_reg(h, R_RCX, msr);
  h_set_reg(h, R_RAX, (uint32_t)value);
  h_set_reg(h, R_RDX, value >> 32);
  return h_run(h, 10);
}

static void msr_dispatch_and_gp(void **state) {
  (void)state;
  struct harness h;
  struct msr_dev d = {0};
  h_init(&h);
  h.cfg.kvm_features = 1u << 4;
  register_apf_like(&h, &d);
  struct vcpu_exit e = wrmsr(&h, 0x4b564d02, UINT64_C(0x123456789000) | 0x9);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(e.rip, CODE(T_WRMSR) + 3); /* wrmsr completed, hlt retired */
  assert_int_equal(d.writes, 1);
  assert_int_equal(d.value, UINT64_C(0x123456789009));
  h_free(&h);

  /* reserved bits 5:4: #GP(0) and the handler is not called */
  h_init(&h);
  register_apf_like(&h, &d);
  d.writes = 0;
  h.cfg.kvm_features = 1u << 4;
  e = wrmsr(&h, 0x4b564d02, 0x11);
  assert_int_equal(e.rip, CODE(H_HLT) + 1);
  assert_int_equal(h_q(&h, h_reg(&h, R_RSP)), 0); /* error code */
  assert_int_equal(h_q(&h, h_reg(&h, R_RSP) + 8), CODE(T_WRMSR));
  assert_int_equal(d.writes, 0);
  h_free(&h);

  /* a handler may end the run after its instruction */
  h_init(&h);
  register_apf_like(&h, &d);
  h.cfg.kvm_features = 1u << 4;
  e = wrmsr(&h, 0x4b564d02, 0xc0);
  assert_int_equal(e.reason, VCPU_EXIT_REQUEST);
  assert_int_equal(e.rip, CODE(T_WRMSR) + 2);
  assert_int_equal(e.instructions, 1);
  h_free(&h);

  /* rdmsr through the handler */
  h_init(&h);
  d.value = UINT64_C(0xabcdef0011223344);
  register_apf_like(&h, &d);
  h_boot(&h, T_RDMSR, false);
  h_set_reg(&h, R_RCX, 0x4b564d02);
  e = h_run(&h, 10);
  assert_int_equal(h_reg(&h, R_RAX), 0x11223344);
  assert_int_equal(h_reg(&h, R_RDX), 0xabcdef00);
  h_free(&h);
}

static void pv_cpuid_enforcement(void **state) {
  (void)state;
  struct harness h;
  struct msr_dev d = {0};
  /* feature not offered, enforcement off (KVM's default): the MSR works */
  h_init(&h);
  register_apf_like(&h, &d);
  struct vcpu_exit e = wrmsr(&h, 0x4b564d02, 0x1);
  assert_int_equal(e.rip, CODE(T_WRMSR) + 3);
  assert_int_equal(d.writes, 1);
  h_free(&h);
  /* enforcement on: #GP */
  h_init(&h);
  register_apf_like(&h, &d);
  h.cfg.enforce_pv_cpuid = true;
  e = wrmsr(&h, 0x4b564d02, 0x1);
  assert_int_equal(e.rip, CODE(H_HLT) + 1);
  assert_int_equal(h_q(&h, h_reg(&h, R_RSP) + 8), CODE(T_WRMSR));
  assert_int_equal(d.writes, 1);
  h_free(&h);
}

static void registration_conflicts_fail(void **state) {
  (void)state;
  struct vcpu_msr_table *t = vcpu_msr_table_new();
  struct diag err = {{0}};
  struct vcpu_msr_handler a = {.name = "a", .first = 0x800, .last = 0x8ff};
  struct vcpu_msr_handler b = {.name = "b", .first = 0x8fe, .last = 0x900};
  struct vcpu_msr_handler efer = {.name = "efer", .first = 0xc0000080, .last = 0xc0000080};
  assert_true(vcpu_msr_register(t, &a, &err));
  assert_false(vcpu_msr_register(t, &b, &err));
  assert_non_null(strstr(err.msg, "overlaps"));
  assert_false(vcpu_msr_register(t, &efer, &err));
  vcpu_msr_table_free(t);
}

static void efer_nxe_and_reserved_bits(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  struct vcpu_exit e = wrmsr(&h, 0xc0000080, 0xd01); /* SCE | LME | LMA | NXE */
  assert_int_equal(e.rip, CODE(T_WRMSR) + 3);
  struct vcpu_sregs s;
  vcpu_get_sregs(h.v, &s);
  assert_int_equal(s.efer, 0xd01);
  h_free(&h);
  h_init(&h);
  e = wrmsr(&h, 0xc0000080, 0x500 | (1u << 12)); /* reserved bit */
  assert_int_equal(e.rip, CODE(H_HLT) + 1);
  h_free(&h);
  h_init(&h);
  e = wrmsr(&h, 0xc0000080, 0x400); /* clearing LME in long mode */
  assert_int_equal(e.rip, CODE(H_HLT) + 1);
  h_free(&h);
}

/* ---------- time, randomness, I/O ---------- */

static void rdtsc_and_rdtscp_come_from_the_callback(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.tsc = UINT64_C(0x0000001234567890);
  h_boot(&h, T_RDTSC, false);
  h_run(&h, 10);
  assert_int_equal(h_reg(&h, R_RAX), 0x34567890);
  assert_int_equal(h_reg(&h, R_RDX), 0x12);
  h_free(&h);

  h_init(&h);
  h.tsc = 77;
  h_boot(&h, T_WRMSR, false); /* TSC_AUX = 5, then rdtscp */
  h_set_reg(&h, R_RCX, 0xc0000103);
  h_set_reg(&h, R_RAX, 5);
  h_set_reg(&h, R_RDX, 0);
  h_run(&h, 1);
  h_set_reg(&h, R_RIP, CODE(T_RDTSCP));
  h_run(&h, 10);
  assert_int_equal(h_reg(&h, R_RAX), 77);
  assert_int_equal(h_reg(&h, R_RCX), 5);
  h_free(&h);

  /* without a callback the TSC is the vCPU's cycle count */
  h_init(&h);
  h.pf.tsc = NULL;
  h.cfg.costs.cpi_milli = 2500;
  h_boot(&h, T_NOPS, false);
  h_run(&h, 40);
  h_set_reg(&h, R_RIP, CODE(T_RDTSC));
  h_run(&h, 1);
  assert_int_equal(h_reg(&h, R_RAX), 100); /* 40 instructions x 2.5 cycles */
  h_free(&h);
}

static void rdrand_and_rdseed_come_from_the_seeded_stream(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.random_next = 0x1111222233334444;
  h_boot(&h, T_RDRAND, false);
  h_run(&h, 10);
  assert_int_equal(h_reg(&h, R_RAX), 0x1111222233334444);
  assert_int_equal(h_reg(&h, R_RBX) & 0xff, 1);      /* CF = 1 */
  assert_int_equal(h_reg(&h, R_RCX), 0x33334445);     /* 32-bit destination, zero-extended */
  assert_int_equal(h_reg(&h, R_RDX) & 0xff, 1);
  h_free(&h);
  h_init(&h);
  h.pf.random = NULL;
  h_boot(&h, T_RDRAND, false);
  h_run(&h, 10);
  assert_int_equal(h_reg(&h, R_RAX), 0);
  assert_int_equal(h_reg(&h, R_RBX) & 0xff, 0); /* CF = 0: no entropy */
  h_free(&h);
}

/* T_IO: out 0xe9, in 0x60, out 0x3f8. The uncosted port's write reaches its callback
 * but charges no exit, entry or I/O cycles; the other two accesses do. */
static void uncosted_out_port_charges_nothing(void **state) {
  (void)state;
  for (int uncosted = 0; uncosted <= 1; uncosted++) {
    struct harness h;
    h_init(&h);
    h.cfg.costs = (struct vcpu_costs){.cpi_milli = 1000, .vm_exit_cycles = 100, .vm_entry_cycles = 50,
                                      .io_access_cycles = 7};
    h.cfg.uncosted_out_port = uncosted ? 0xe9 : 0;
    h_boot(&h, T_IO, false);
    h_set_reg(&h, R_RAX, 'A');
    struct vcpu_exit e = h_run(&h, 10);
    assert_int_equal(e.reason, VCPU_EXIT_HLT);
    assert_int_equal(h.n_out, 2);
    assert_int_equal(h.out_port[0], 0xe9);
    const uint64_t accesses = uncosted ? 2 : 3;
    assert_int_equal(h.charged[VCPU_COST_IO], accesses * 7);
    /* the HLT at the end exits too */
    assert_int_equal(h.charged[VCPU_COST_EXIT_ENTRY], (accesses + 1) * 150);
    h_free(&h);
  }
}

static void port_io_reaches_the_callbacks(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_IO, false);
  h_set_reg(&h, R_RAX, 'A');
  struct vcpu_exit e = h_run(&h, 10);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(h.n_out, 2);
  assert_int_equal(h.out_port[0], 0xe9);
  assert_int_equal(h.out_value[0], 'A');
  assert_int_equal(h.out_port[1], 0x3f8);
  assert_int_equal(h.out_value[1], 0x40 + 0x60); /* what `in al, 0x60` returned */
  assert_int_equal(e.instructions, 5);
  h_free(&h);

  /* a callback may end the run right after its instruction */
  h_init(&h);
  h_boot(&h, T_OUT_HLT, false);
  e = h_run(&h, 10);
  assert_int_equal(e.reason, VCPU_EXIT_REQUEST);
  assert_int_equal(e.rip, CODE(T_OUT_HLT) + 2);
  assert_int_equal(e.instructions, 1);
  e = h_run(&h, 10);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  h_free(&h);
}

/* ---------- scanning ---------- */

static void scan_refuses_what_cannot_be_emulated(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.text[0] = (struct vcpu_text_range){G_CODE, G_CODE + L_END};
  struct diag err = {{0}};
  struct vcpu *v = vcpu_create(&h.cfg, &err);
  assert_null(v);
  assert_non_null(strstr(err.msg, "syscall"));
  assert_non_null(strstr(err.msg, "0x103020"));
  h_free(&h);
}

static void unscanned_code_is_intercepted_when_it_runs(void **state) {
  (void)state;
  struct harness h;
  struct msr_dev d = {0};
  h_init(&h);
  register_apf_like(&h, &d);
  h_boot(&h, L_WRMSR, false); /* outside the scanned text */
  h_set_reg(&h, R_RAX, 0x7);
  h_set_reg(&h, R_RDX, 0);
  vcpu_set_cr2(h.v, 0xc2c2000);
  struct vcpu_exit e = h_run(&h, 10);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(e.instructions, 3);
  assert_int_equal(d.writes, 1);
  assert_int_equal(d.value, 7);
  assert_int_equal(vcpu_cr2(h.v), 0xc2c2000); /* the retranslation did not leak into CR2 */
  h_free(&h);

  h_init(&h);
  h_boot(&h, L_SYSCALL, false);
  e = h_run(&h, 10);
  assert_int_equal(e.reason, VCPU_EXIT_INTERNAL_ERROR);
  assert_non_null(strstr(e.message, "syscall"));
  h_free(&h);
}

/* ---------- cycles ---------- */

static void cycles_follow_the_cost_model(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.cfg.costs = (struct vcpu_costs){.cpi_milli = 1500, .vm_exit_cycles = 100, .vm_entry_cycles = 50,
                                    .cpuid_cycles = 30, .event_injection_cycles = 7};
  h_boot(&h, T_CPUID, false);
  struct vcpu_exit e = h_run(&h, 10); /* cpuid; hlt */
  assert_int_equal(e.instructions, 2);
  /* 2 x 1.5 + cpuid exit (100 + 50 + 30) + hlt exit (100 + 50) */
  assert_int_equal(e.cycles, 3 + 180 + 150);
  assert_int_equal(vcpu_cycles(h.v), 333);
  assert_int_equal(h.charged[VCPU_COST_EXIT_ENTRY], 300);
  assert_int_equal(h.charged[VCPU_COST_CPUID], 30);
  vcpu_queue_nmi(h.v);
  e = h_run(&h, 0);
  assert_int_equal(e.cycles, 7);
  assert_int_equal(h.charged[VCPU_COST_INJECTION], 7);
  h_free(&h);
}

static void runs_stop_where_local_time_reaches_the_bound(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.cfg.costs = (struct vcpu_costs){.cpi_milli = 2500, .vm_exit_cycles = 100, .vm_entry_cycles = 50,
                                    .cpuid_cycles = 30};
  h_boot(&h, T_NOPS, false);
  struct vcpu_exit e;
  vcpu_run_cycles(h.v, 10, &e); /* 4 instructions of 2.5 cycles fit in 10 */
  assert_int_equal(e.reason, VCPU_EXIT_QUANTUM);
  assert_int_equal(e.instructions, 4);
  assert_int_equal(e.cycles, 10);
  vcpu_run_cycles(h.v, 7, &e); /* 2 more (5 cycles); a third would end at 7.5 */
  assert_int_equal(e.instructions, 2);
  h_free(&h);

  /* a costly instruction mid-run shrinks what is left: cpuid costs 2.5 + 180 */
  h_init(&h);
  h.cfg.costs = (struct vcpu_costs){.cpi_milli = 1000, .vm_exit_cycles = 100, .vm_entry_cycles = 50,
                                    .cpuid_cycles = 30};
  h_boot(&h, T_CR2, false); /* mov cr2; jmp; mov r9, cr2; xor; cpuid; mov r8, cr2; hlt */
  vcpu_run_cycles(h.v, 186, &e);
  assert_int_equal(e.reason, VCPU_EXIT_QUANTUM);
  /* 5 instructions (5 cycles) + cpuid's 180 = 185; mov r8 ends at 186; hlt would end at 187 */
  assert_int_equal(e.instructions, 6);
  assert_int_equal(e.cycles, 186);
  vcpu_run_cycles(h.v, 3, &e);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  h_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cpuid_kvm_leaves),
      cmocka_unit_test(msr_dispatch_and_gp),
      cmocka_unit_test(pv_cpuid_enforcement),
      cmocka_unit_test(registration_conflicts_fail),
      cmocka_unit_test(efer_nxe_and_reserved_bits),
      cmocka_unit_test(rdtsc_and_rdtscp_come_from_the_callback),
      cmocka_unit_test(rdrand_and_rdseed_come_from_the_seeded_stream),
      cmocka_unit_test(port_io_reaches_the_callbacks),
      cmocka_unit_test(uncosted_out_port_charges_nothing),
      cmocka_unit_test(scan_refuses_what_cannot_be_emulated),
      cmocka_unit_test(unscanned_code_is_intercepted_when_it_runs),
      cmocka_unit_test(cycles_follow_the_cost_model),
      cmocka_unit_test(runs_stop_where_local_time_reaches_the_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
