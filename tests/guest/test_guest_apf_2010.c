/* test_guest_apf_2010.c — the guest side of the pre-5.8 ("2010") APF protocol (Linux
 * 4.19-5.7), the real kernel against a fake host: EN without the interrupt bit, not-present
 * and page-ready both as #PF (reason 1 / 2 in the shared word, token in CR2), a page-ready
 * nobody waits for leaves a dummy node, wake-all by reason 2, and the halt-based wait when
 * the faulting context cannot schedule (kernel mode). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest_machine.h"

#define T1 0x1000u
#define T2 0x2000u

static const struct gm_options opt_2010 = {.kvm_features = GM_KVM_FEATURE_ASYNC_PF};

static struct sim_config *config_2010(enum workload_kind first_kind) {
  struct sim_config *cfg = gm_config(1);
  cfg->apf.protocol = APF_2010;
  cfg->apf.send_always = true;
  cfg->workload.n_processes = 2;
  cfg->workload.processes[0] = (struct process_config){
      .kind = first_kind, .pattern = ACCESS_RANDOM, .count = 1, .ops = 2000, .working_set_bytes = 64 << 10};
  cfg->workload.processes[1] =
      (struct process_config){.kind = WORKLOAD_COMPUTE, .count = 1, .ops = 300, .compute_per_op = 1000};
  return cfg;
}

static void run_to_shutdown(struct gm *m) {
  gm_run(m, 40000);
  if (m->state != GM_SHUTDOWN) fail_msg("state %d, console:\n%s", m->state, gm_console(m));
}

static void enable_writes_en_without_the_interrupt_bit(void **state) {
  (void)state;
  struct sim_config *cfg = config_2010(WORKLOAD_MEMORY);
  struct gm *m = gm_boot(cfg, &opt_2010);
  gm_run(m, 20);
  assert_string_equal(m->cpu[0].msr_log, "EN");
  assert_int_equal(m->cpu[0].msr_en & 0x3f, GM_KVM_ASYNC_PF_ENABLED | GM_KVM_ASYNC_PF_SEND_ALWAYS);
  assert_int_equal(gm_vcpu(m, 0).apf_enabled, APFSIM_APF_2010);
  gm_free(m);
  /* a host without ASYNC_PF: nothing written */
  struct gm_options none = {0};
  m = gm_boot(cfg, &none);
  gm_run(m, 20);
  assert_string_equal(m->cpu[0].msr_log, "");
  assert_non_null(strstr(gm_console(m), "kvm: APF protocol 2010 asked for, but the host does not offer the CPUID feature"));
  gm_free(m);
  free(cfg);
}

static void reason_2_page_ready_wakes_the_sleeper(void **state) {
  (void)state;
  struct sim_config *cfg = config_2010(WORKLOAD_MEMORY);
  struct gm *m = gm_boot(cfg, &opt_2010);
  gm_run_until_user(m, 0, 1, false);
  gm_inject_not_present(m, 0, T1);
  gm_run(m, 4);
  struct apfsim_proc_stats p1 = gm_proc(m, 1);
  assert_int_equal(p1.state, APFSIM_PROC_SLEEPING);
  assert_int_equal(p1.apf_token, T1);
  assert_int_equal(gm_vcpu(m, 0).apf_sleeps, 1);
  gm_run_until_user(m, 0, 2, false); /* the host sends page-ready once IF = 1 */
  gm_inject_page_ready_2010(m, 0, T1);
  gm_step(m, 0, 300);
  assert_int_equal(*gm_apf_word(m, 0), 0);
  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_page_ready, 1);
  assert_int_equal(vs.apf_dummy_created, 0);
  assert_int_equal(gm_proc(m, 1).state, APFSIM_PROC_RUNNABLE);
  assert_int_equal(m->cpu[0].acks, 0); /* no ACK in the 2010 protocol */
  run_to_shutdown(m);
  assert_int_equal(gm_proc(m, 1).ops_done, 2000);
  gm_free(m);
  free(cfg);
}

/* Pre-5.8 hosts sent page-ready for faults whose not-present was never delivered: the
 * guest leaves a dummy node, consumed only if that token ever faults. Wake-all (reason 2,
 * token 0xffffffff) drops the rest. */
static void orphan_page_ready_leaves_a_dummy(void **state) {
  (void)state;
  struct sim_config *cfg = config_2010(WORKLOAD_MEMORY);
  struct gm *m = gm_boot(cfg, &opt_2010);
  gm_run_until_user(m, 0, 1, false);
  gm_inject_page_ready_2010(m, 0, T1);
  gm_step(m, 0, 300);
  gm_run_until_user(m, 0, 1, false);
  gm_inject_page_ready_2010(m, 0, T2);
  gm_step(m, 0, 300);
  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_page_ready, 2);
  assert_int_equal(vs.apf_dummy_created, 2);
  gm_run_until_user(m, 0, 1, false);
  uint64_t switches = gm_proc(m, 1).switches_in;
  gm_inject_not_present(m, 0, T1);
  gm_step(m, 0, 300);
  vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_dummy_consumed, 1);
  assert_int_equal(vs.apf_sleeps, 0);
  assert_int_equal(gm_proc(m, 1).switches_in, switches);
  gm_run_until_user(m, 0, 1, false);
  gm_inject_page_ready_2010(m, 0, 0xffffffffu);
  gm_step(m, 0, 2000);
  vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_wake_all, 1);
  assert_int_equal(vs.apf_dummy_dropped, 1); /* T2's */
  run_to_shutdown(m);
  gm_free(m);
  free(cfg);
}

/* A not-present event in kernel mode (send-always; here inside a system call, IF = 1):
 * the task cannot schedule, so the vCPU halts with interrupts on until the token is woken
 * (Linux <= 5.7 kvm_async_pf_task_wait with interrupt_kernel). Nothing else runs meanwhile. */
static void kernel_mode_not_present_halts_the_vcpu_until_page_ready(void **state) {
  (void)state;
  struct sim_config *cfg = config_2010(WORKLOAD_DAX_COPY);
  cfg->workload.processes[0].pattern = ACCESS_SEQUENTIAL;
  struct gm *m = gm_boot(cfg, &opt_2010);
  gm_run_until_user(m, 0, 1, false);
  for (;;) { /* into a system call body: CPL 0, IF = 1 */
    struct vcpu_sregs s;
    vcpu_get_sregs(m->cpu[0].v, &s);
    if (s.cpl == 0 && (gm_regs(m, 0).rflags & (1u << 9))) break;
    gm_step(m, 0, 1);
  }
  uint64_t pid2_in = gm_proc(m, 2).switches_in, ops = gm_proc(m, 1).ops_done;
  gm_inject_not_present(m, 0, T1);
  gm_run(m, 30); /* 150k instructions' worth, timer ticks included */
  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_not_present, 1);
  assert_int_equal(vs.apf_halt_waits, 1);
  assert_int_equal(vs.apf_sleeps, 0);
  assert_int_equal(vs.apf_halt_token, T1);
  assert_true(vs.apf_halt_since_tsc > 0);
  assert_true(vcpu_halted(m->cpu[0].v));
  struct apfsim_proc_stats p1 = gm_proc(m, 1);
  assert_int_equal(p1.state, APFSIM_PROC_RUNNING); /* not asleep: the vCPU is */
  assert_int_equal(p1.ops_done, ops);
  assert_int_equal(gm_proc(m, 2).switches_in, pid2_in);

  gm_run_until_interruptible(m, 0);
  uint64_t ipis = vs.ipis_sent;
  gm_inject_page_ready_2010(m, 0, T1);
  gm_run(m, 2);
  vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_halt_token, 0);
  assert_int_equal(vs.ipis_sent, ipis + 1); /* smp_send_reschedule to the halted vCPU: itself */
  run_to_shutdown(m);
  assert_int_equal(gm_proc(m, 1).ops_done, 2000);
  gm_free(m);
  free(cfg);
}

/* The idle task cannot sleep either (is_idle_task): a not-present event in the idle loop
 * halts the vCPU until its page-ready. */
static void idle_task_halts_too(void **state) {
  (void)state;
  struct sim_config *cfg = gm_config(1);
  cfg->apf.protocol = APF_2010;
  cfg->apf.send_always = true;
  struct gm *m = gm_boot(cfg, &opt_2010);
  gm_run(m, 20);
  assert_true(m->cpu[0].halted);
  gm_inject_not_present(m, 0, T2);
  gm_run(m, 10);
  assert_int_equal(gm_vcpu(m, 0).apf_halt_token, T2);
  gm_inject_page_ready_2010(m, 0, T2);
  gm_run(m, 3);
  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_halt_waits, 1);
  assert_int_equal(vs.apf_halt_token, 0);
  assert_int_equal(m->state, GM_RUNNING);
  gm_free(m);
  free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(enable_writes_en_without_the_interrupt_bit),
      cmocka_unit_test(reason_2_page_ready_wakes_the_sleeper),
      cmocka_unit_test(orphan_page_ready_leaves_a_dummy),
      cmocka_unit_test(kernel_mode_not_present_halts_the_vcpu_until_page_ready),
      cmocka_unit_test(idle_task_halts_too),
  };
  return cmocka_run_group_tests(tests, gm_setup, gm_teardown);
}
