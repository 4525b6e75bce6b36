/* test_guest_ve_dax.c — apfsim's #VE delivery (the information area, its busy word, the
 * registration MSR), not-present events by #VE, synchronous page errors by #VE (SIGBUS
 * for a user access, the exception-table fixup and -EFAULT for the kernel's copy_to_user),
 * and the DAX workloads the truncation scenarios run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest_machine.h"

#define FEATURES_2020 (GM_KVM_FEATURE_ASYNC_PF | GM_KVM_FEATURE_ASYNC_PF_INT)
#define T1 0x1000u

static const struct gm_options opt_2020 = {.kvm_features = FEATURES_2020};

static void run_to_shutdown(struct gm *m) {
  gm_run(m, 40000);
  if (m->state != GM_SHUTDOWN) fail_msg("state %d, console:\n%s", m->state, gm_console(m));
}

/* kind + a compute process, 1 vCPU */
static struct sim_config *with(enum workload_kind kind, uint64_t ops) {
  struct sim_config *cfg = gm_config(1);
  cfg->workload.n_processes = 2;
  cfg->workload.processes[0] = (struct process_config){
      .kind = kind, .pattern = ACCESS_SEQUENTIAL, .count = 1, .ops = ops, .working_set_bytes = 64 << 10};
  cfg->workload.processes[1] =
      (struct process_config){.kind = WORKLOAD_COMPUTE, .count = 1, .ops = 200, .compute_per_op = 1000};
  return cfg;
}

static void ve_area_is_registered_after_apf(void **state) {
  (void)state;
  struct sim_config *cfg = gm_config(2);
  cfg->guest.not_present_delivery = NOT_PRESENT_VE;
  cfg->apf.error_reporting = APF_ERR_SYNC_EXCEPTION;
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run(m, 20);
  for (unsigned i = 0; i < 2; i++) {
    assert_string_equal(m->cpu[i].msr_log, "INT EN VE");
    uint64_t ve = m->cpu[i].msr_ve;
    assert_int_equal(ve & 0x3f, APFSIM_VE_INFO_ENABLE | APFSIM_VE_INFO_NOT_PRESENT | APFSIM_VE_INFO_PAGE_ERROR);
    assert_int_equal(gm_vcpu(m, i).ve_info_gpa, ve & ~UINT64_C(0x3f));
    assert_int_equal(gm_ve_info(m, i)->busy, 0);
  }
  gm_free(m);
  /* page errors alone (any protocol): only bit 2 */
  cfg->guest.not_present_delivery = NOT_PRESENT_PF;
  cfg->apf.protocol = APF_OFF;
  m = gm_boot(cfg, &opt_2020);
  gm_run(m, 20);
  assert_string_equal(m->cpu[0].msr_log, "VE");
  assert_int_equal(m->cpu[0].msr_ve & 0x3f, APFSIM_VE_INFO_ENABLE | APFSIM_VE_INFO_PAGE_ERROR);
  gm_free(m);
  free(cfg);
}

static void a_host_without_ve_is_a_clear_panic(void **state) {
  (void)state;
  struct sim_config *cfg = gm_config(1);
  cfg->guest.not_present_delivery = NOT_PRESENT_VE;
  struct gm_options opt = {.kvm_features = FEATURES_2020, .ve_msr_gp = true};
  struct gm *m = gm_boot(cfg, &opt);
  gm_run(m, 20);
  assert_string_equal(gm_panic(m).message, "kvm: the host refused the #VE information area (MSR 0x4b564df0 raised #GP)");
  gm_free(m);
  /* #VE delivery needs the 2020 protocol to be enabled (here the host lacks ASYNC_PF_INT) */
  struct gm_options old = {.kvm_features = GM_KVM_FEATURE_ASYNC_PF};
  m = gm_boot(cfg, &old);
  gm_run(m, 20);
  assert_string_equal(gm_panic(m).message, "kvm: not-present delivery by #VE needs the 2020 APF protocol enabled");
  gm_free(m);
  free(cfg);
}

/* Not-present by #VE: the token comes from the information area (never CR2, never the APF
 * word); the guest releases the area, then sleeps like the #PF path. */
static void ve_not_present_sleeps_and_releases_the_area(void **state) {
  (void)state;
  struct sim_config *cfg = with(WORKLOAD_MEMORY, 2000);
  cfg->guest.not_present_delivery = NOT_PRESENT_VE;
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run_until_user(m, 0, 1, false);
  assert_true(gm_inject_ve(m, 0, APFSIM_VE_REASON_NOT_PRESENT, T1, 0x123000, APFSIM_VE_ACCESS_USER));
  assert_false(gm_inject_ve(m, 0, APFSIM_VE_REASON_NOT_PRESENT, 0x2000, 0x124000, 0)); /* busy */
  gm_run(m, 4);
  assert_int_equal(gm_ve_info(m, 0)->busy, 0);
  assert_int_not_equal(vcpu_cr2(m->cpu[0].v), T1);
  struct apfsim_proc_stats p1 = gm_proc(m, 1);
  assert_int_equal(p1.state, APFSIM_PROC_SLEEPING);
  assert_int_equal(p1.apf_token, T1);
  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  assert_int_equal(vs.ve_exceptions, 1);
  assert_int_equal(vs.apf_not_present, 1);
  assert_int_equal(*gm_apf_word(m, 0), 0); /* the #PF-path word is never involved */
  assert_true(gm_inject_page_ready(m, 0, T1, 0));
  run_to_shutdown(m);
  assert_int_equal(gm_proc(m, 1).ops_done, 2000);
  assert_int_equal(m->cpu[0].acks, 1);
  gm_free(m);
  free(cfg);
}

/* The DAX workloads: dax-read maps the window user read-only on first touch and reads the
 * file's bytes; dax-copy copies lines through SYS_dax_read (copy_to_user). */
static void dax_workloads_run_over_the_window(void **state) {
  (void)state;
  struct sim_config *cfg = gm_config(1);
  cfg->workload.n_processes = 2;
  cfg->workload.processes[0] =
      (struct process_config){.kind = WORKLOAD_DAX_READ, .pattern = ACCESS_SEQUENTIAL, .count = 1, .ops = 20000};
  cfg->workload.processes[1] =
      (struct process_config){.kind = WORKLOAD_DAX_COPY, .pattern = ACCESS_RANDOM, .count = 1, .ops = 3000};
  struct gm *m = gm_boot(cfg, &opt_2020);
  run_to_shutdown(m);
  struct apfsim_proc_stats r = gm_proc(m, 1), c = gm_proc(m, 2);
  assert_int_equal(r.ops_done, 20000);
  assert_int_equal(c.ops_done, 3000);
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(c.exit_code, 0);
  /* 20000 sequential lines = 1250000 bytes: the whole 1 MiB window (256 pages) plus the stack */
  assert_int_equal(r.demand_faults, 256 + 1);
  assert_true(c.demand_faults > 100); /* random lines over 256 pages, and its stack */
  assert_int_equal(c.efaults, 0);
  assert_true(c.syscalls >= 3000);
  gm_free(m);
  free(cfg);
}

/* A synchronous page error (#VE) on a user load from the DAX window: SIGBUS at the address. */
static void ve_page_error_on_a_user_access_is_sigbus(void **state) {
  (void)state;
  struct sim_config *cfg = with(WORKLOAD_DAX_READ, 20000);
  cfg->apf.error_reporting = APF_ERR_SYNC_EXCEPTION;
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run_until_user(m, 0, 1, false);
  uint64_t rip = gm_regs(m, 0).rip;
  uint64_t gva = GM_DAX_GPA + 0x5000;
  assert_true(gm_inject_ve(m, 0, APFSIM_VE_REASON_PAGE_ERROR, 0, gva, APFSIM_VE_ACCESS_USER));
  run_to_shutdown(m);
  assert_int_equal(m->n_sigbus, 1);
  struct apfsim_proc_stats p1 = gm_proc(m, 1);
  assert_int_equal(p1.term_signal, APFSIM_SIGBUS);
  assert_int_equal(p1.sig_code, APFSIM_SIGBUS_VE_PAGE_ERROR);
  assert_int_equal(p1.sig_addr, gva);
  assert_int_equal(p1.sig_token, 0);
  assert_int_equal(p1.sig_rip, rip);
  assert_int_equal(p1.exit_code, 135);
  assert_int_equal(gm_proc(m, 2).ops_done, 200);
  assert_int_equal(gm_ve_info(m, 0)->busy, 0);
  gm_free(m);
  free(cfg);
}

/* The seed's case that page-ready cannot report: the kernel's copy_to_user from a
 * truncated DAX page. The #VE page error resumes `rep movsb` at its exception-table fixup:
 * the system call returns -EFAULT, counted, and the run goes on. */
static void ve_page_error_in_copy_to_user_returns_efault(void **state) {
  (void)state;
  struct sim_config *cfg = with(WORKLOAD_DAX_COPY, 500);
  cfg->apf.error_reporting = APF_ERR_SYNC_EXCEPTION;
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run_until_user(m, 0, 1, false);
  char sym[96];
  unsigned steps = 0;
  for (;; steps++) { /* to the copy's rep movsb, with the source page already mapped */
    struct vcpu_regs r = gm_regs(m, 0);
    if (strncmp(gm_sym(m, r.rip, sym, sizeof sym), "copy_user_generic+0x3", 21) == 0 && r.rcx == 64) break;
    assert_true(steps < 200000);
    gm_step(m, 0, 1);
  }
  struct vcpu_regs r = gm_regs(m, 0);
  assert_true(gm_inject_ve(m, 0, APFSIM_VE_REASON_PAGE_ERROR, 0, r.rsi, 0));
  gm_step(m, 0, 200);
  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  assert_int_equal(vs.ve_exceptions, 1);
  assert_int_equal(vs.efault_fixups, 1);
  assert_int_equal(gm_proc(m, 1).efaults, 1);
  run_to_shutdown(m);
  struct apfsim_proc_stats p1 = gm_proc(m, 1);
  assert_int_equal(p1.ops_done, 500);
  assert_int_equal(p1.term_signal, 0);
  assert_int_equal(p1.efaults, 1);
  assert_int_equal(m->n_sigbus, 0);
  gm_free(m);
  free(cfg);
}

/* Without an exception-table entry a kernel page error is fatal, naming the address. */
static void ve_page_error_elsewhere_in_the_kernel_panics(void **state) {
  (void)state;
  struct sim_config *cfg = with(WORKLOAD_MEMORY, 2000);
  cfg->apf.error_reporting = APF_ERR_SYNC_EXCEPTION;
  struct gm *m = gm_boot(cfg, &opt_2020);
  while (gm_vcpu(m, 0).online != 1) gm_step(m, 0, 1); /* the kernel, booting */
  assert_true(gm_inject_ve(m, 0, APFSIM_VE_REASON_PAGE_ERROR, 0, 0x7000, 0));
  gm_run(m, 2);
  struct apfsim_panic_record p = gm_panic(m);
  assert_int_equal(p.vector, 20);
  assert_true(strncmp(p.message, "host page error in kernel mode, no exception-table fixup: #VE (vector 20) in kernel mode", 88) == 0);
  assert_int_equal(p.cr2, 0x7000);
  gm_free(m);
  free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ve_area_is_registered_after_apf),
      cmocka_unit_test(a_host_without_ve_is_a_clear_panic),
      cmocka_unit_test(ve_not_present_sleeps_and_releases_the_area),
      cmocka_unit_test(dax_workloads_run_over_the_window),
      cmocka_unit_test(ve_page_error_on_a_user_access_is_sigbus),
      cmocka_unit_test(ve_page_error_in_copy_to_user_returns_efault),
      cmocka_unit_test(ve_page_error_elsewhere_in_the_kernel_panics),
  };
  return cmocka_run_group_tests(tests, gm_setup, gm_teardown);
}
