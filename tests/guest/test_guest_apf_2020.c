/* test_guest_apf_2020.c — the guest side of the 2020 APF protocol (Linux 5.9+), the real
 * kernel against a fake host: enabling (CPUID, INT before EN, the EN bits), a not-present
 * #PF puts the task to sleep and another runs, page-ready by interrupt resumes the same
 * task, wake-before-wait (dummy nodes), wake-all, the busy token slot (zeroed before the
 * ACK), the two panics, page-error reporting (SIGBUS), and APF off / halt / not offered. */
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
#define T1 0x1000u /* tokens as KVM makes them: (id << 12) | vcpu */
#define T2 0x2000u
#define T3 0x3000u

static const struct gm_options opt_2020 = {.kvm_features = FEATURES_2020};

/* pid 1 memory (the one that faults), pid 2 compute (runs meanwhile) [, pid 3 memory] */
static struct sim_config *two_tasks(unsigned extra_memory) {
  struct sim_config *cfg = gm_config(1);
  cfg->workload.n_processes = 2;
  cfg->workload.processes[0] = (struct process_config){
      .kind = WORKLOAD_MEMORY, .pattern = ACCESS_RANDOM, .count = 1 + extra_memory, .ops = 3000, .working_set_bytes = 64 << 10};
  cfg->workload.processes[1] =
      (struct process_config){.kind = WORKLOAD_COMPUTE, .count = 1, .ops = 300, .compute_per_op = 1000};
  return cfg;
}

static void run_to_shutdown(struct gm *m) {
  gm_run(m, 40000);
  if (m->state != GM_SHUTDOWN) fail_msg("state %d, console:\n%s", m->state, gm_console(m));
}

static void enable_writes_int_then_en_with_the_area(void **state) {
  (void)state;
  struct sim_config *cfg = gm_config(2);
  cfg->apf.send_always = true;
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run(m, 20);
  for (unsigned i = 0; i < 2; i++) {
    struct apfsim_vcpu_stats vs = gm_vcpu(m, i);
    assert_int_equal(vs.online, 1);
    assert_string_equal(m->cpu[i].msr_log, "INT EN");
    assert_int_equal(m->cpu[i].msr_int, 0xf3);
    uint64_t en = m->cpu[i].msr_en;
    assert_int_equal(en & 0x3f, GM_KVM_ASYNC_PF_ENABLED | GM_KVM_ASYNC_PF_SEND_ALWAYS | GM_KVM_ASYNC_PF_DELIVERY_AS_INT);
    assert_int_equal(vs.apf_area_gpa, en & ~UINT64_C(0x3f));
    assert_int_equal(vs.apf_enabled, APFSIM_APF_2020);
    assert_int_equal(m->cpu[i].ve_writes, 0);
  }
  assert_int_not_equal(m->cpu[0].msr_en & ~UINT64_C(0x3f), m->cpu[1].msr_en & ~UINT64_C(0x3f)); /* per vCPU */
  assert_non_null(strstr(gm_console(m), "kvm: APF protocol 2020 enabled"));
  gm_free(m);
  free(cfg);
}

static void page_error_opt_in_needs_the_cpuid_bit(void **state) {
  (void)state;
  struct sim_config *cfg = gm_config(1);
  cfg->apf.error_reporting = APF_ERR_PAGE_READY;
  struct gm_options opt = {.kvm_features = FEATURES_2020 | GM_KVM_FEATURE_ASYNC_PF_ERROR};
  struct gm *m = gm_boot(cfg, &opt);
  gm_run(m, 20);
  assert_int_equal(m->cpu[0].msr_en & 0x3f, GM_KVM_ASYNC_PF_ENABLED | GM_KVM_ASYNC_PF_DELIVERY_AS_INT | GM_KVM_ASYNC_PF_SEND_ERROR);
  gm_free(m);
  m = gm_boot(cfg, &opt_2020);
  gm_run(m, 20);
  assert_int_equal(m->cpu[0].msr_en & 0x3f, GM_KVM_ASYNC_PF_ENABLED | GM_KVM_ASYNC_PF_DELIVERY_AS_INT);
  assert_non_null(strstr(gm_console(m), "kvm: APF page-error reporting asked for, but the host does not offer it"));
  gm_free(m);
  free(cfg);
}

/* off and halt never write EN; 2020 without ASYNC_PF_INT (a pre-5.8 host) stays off */
static void apf_stays_off_unless_asked_and_offered(void **state) {
  (void)state;
  const enum apf_protocol protos[] = {APF_OFF, APF_HALT, APF_2020};
  const uint32_t feats[] = {FEATURES_2020, FEATURES_2020, GM_KVM_FEATURE_ASYNC_PF};
  for (int i = 0; i < 3; i++) {
    struct sim_config *cfg = gm_config(1);
    cfg->apf.protocol = protos[i];
    struct gm_options opt = {.kvm_features = feats[i]};
    struct gm *m = gm_boot(cfg, &opt);
    gm_run(m, 20);
    assert_int_equal(gm_vcpu(m, 0).online, 1);
    assert_string_equal(m->cpu[0].msr_log, "");
    assert_int_equal(gm_vcpu(m, 0).apf_enabled, 0);
    /* a page-ready interrupt anyway: EOI'd and counted, nothing else */
    assert_true(lapic_accept(&m->cpu[0].apic, 0xf3));
    gm_run(m, 20);
    assert_int_equal(m->state, GM_RUNNING);
    assert_int_equal(gm_vcpu(m, 0).spurious_page_ready, 1);
    if (i == 2) assert_non_null(strstr(gm_console(m), "kvm: APF protocol 2020 asked for, but the host does not offer the CPUID feature"));
    gm_free(m);
    free(cfg);
  }
}

/* The heart of issue 6's guest side: token T -> the task sleeps -> another task runs ->
 * page-ready T -> the same task resumes and finishes its work. */
static void not_present_sleeps_and_page_ready_resumes_the_same_task(void **state) {
  (void)state;
  struct sim_config *cfg = two_tasks(0);
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run_until_user(m, 0, 1, false);
  uint64_t rip = gm_regs(m, 0).rip;
  uint64_t ops_before = gm_proc(m, 1).ops_done, pid2_in = gm_proc(m, 2).switches_in;
  gm_inject_not_present(m, 0, T1);
  gm_run(m, 40);
  struct apfsim_proc_stats p1 = gm_proc(m, 1), p2 = gm_proc(m, 2);
  assert_int_equal(p1.state, APFSIM_PROC_SLEEPING);
  assert_int_equal(p1.apf_token, T1);
  assert_int_equal(p1.apf_waits, 1);
  assert_int_equal(p1.ops_done, ops_before);
  assert_true(p2.switches_in > pid2_in); /* another task ran meanwhile */
  assert_int_equal(*gm_apf_word(m, 0), 0); /* flags read and reset */
  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_not_present, 1);
  assert_int_equal(vs.apf_sleeps, 1);

  assert_true(gm_inject_page_ready(m, 0, T1, 0));
  gm_run(m, 5);
  vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_page_ready, 1);
  assert_int_equal(vs.apf_dummy_created, 0);
  assert_int_equal(*gm_apf_token(m, 0), 0);
  assert_int_equal(m->cpu[0].acks, 1);
  assert_int_equal(m->cpu[0].acks_with_token_set, 0);
  p1 = gm_proc(m, 1);
  assert_int_not_equal(p1.state, APFSIM_PROC_SLEEPING);
  assert_int_equal(p1.apf_token, 0);
  run_to_shutdown(m);
  p1 = gm_proc(m, 1);
  assert_int_equal(p1.state, APFSIM_PROC_EXITED);
  assert_int_equal(p1.ops_done, 3000);
  assert_int_equal(p1.exit_code, 0);
  assert_true(p1.apf_wait_tsc > 0);
  assert_int_equal(gm_proc(m, 2).ops_done, 300);
  (void)rip;
  gm_free(m);
  free(cfg);
}

static void wake_before_wait_leaves_then_consumes_a_dummy(void **state) {
  (void)state;
  struct sim_config *cfg = two_tasks(0);
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run_until_user(m, 0, 1, false);
  assert_true(gm_inject_page_ready(m, 0, T1, 0));
  gm_run_until_interruptible(m, 0);
  gm_run(m, 1); /* the interrupt is taken */
  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_dummy_created, 1);
  assert_int_equal(m->cpu[0].acks, 1);

  gm_run_until_user(m, 0, 1, false);
  uint64_t switches = gm_proc(m, 1).switches_in;
  gm_inject_not_present(m, 0, T1);
  gm_step(m, 0, 400); /* the #PF handler finds the dummy and returns */
  vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_not_present, 1);
  assert_int_equal(vs.apf_dummy_consumed, 1);
  assert_int_equal(vs.apf_sleeps, 0);
  struct apfsim_proc_stats p1 = gm_proc(m, 1);
  assert_int_equal(p1.state, APFSIM_PROC_RUNNING);
  assert_int_equal(p1.switches_in, switches);
  assert_int_equal(p1.apf_waits, 1);
  run_to_shutdown(m);
  assert_int_equal(gm_proc(m, 1).ops_done, 3000);
  gm_free(m);
  free(cfg);
}

static void wake_all_wakes_every_sleeper_and_drops_dummies(void **state) {
  (void)state;
  struct sim_config *cfg = two_tasks(1); /* pids 1, 2 memory; pid 3 compute */
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run_until_user(m, 0, 1, false);
  gm_inject_not_present(m, 0, T1);
  gm_run(m, 2);
  gm_run_until_user(m, 0, 2, false);
  gm_inject_not_present(m, 0, T2);
  gm_run(m, 2);
  assert_int_equal(gm_proc(m, 1).state, APFSIM_PROC_SLEEPING);
  assert_int_equal(gm_proc(m, 2).state, APFSIM_PROC_SLEEPING);
  assert_int_equal(gm_proc(m, 2).apf_token, T2);
  /* an orphan page-ready leaves a dummy... */
  assert_true(gm_inject_page_ready(m, 0, T3, 0));
  gm_run(m, 2);
  assert_int_equal(gm_vcpu(m, 0).apf_dummy_created, 1);
  /* ...and wake-all takes everything of this vCPU away */
  assert_true(gm_inject_page_ready(m, 0, 0xffffffffu, 0));
  gm_run(m, 4);
  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_wake_all, 1);
  assert_int_equal(vs.apf_dummy_dropped, 1);
  assert_int_equal(vs.apf_page_ready, 2);
  assert_int_not_equal(gm_proc(m, 1).state, APFSIM_PROC_SLEEPING);
  assert_int_not_equal(gm_proc(m, 2).state, APFSIM_PROC_SLEEPING);
  run_to_shutdown(m);
  for (unsigned pid = 1; pid <= 2; pid++) assert_int_equal(gm_proc(m, pid).ops_done, 3000);
  gm_free(m);
  free(cfg);
}

/* The host may deliver the next page-ready only once the guest freed the token slot and
 * ACKed; the guest zeroes the token before its ACK. */
static void token_slot_is_freed_before_the_ack(void **state) {
  (void)state;
  struct sim_config *cfg = two_tasks(1);
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run_until_user(m, 0, 1, false);
  gm_inject_not_present(m, 0, T1);
  gm_run(m, 2);
  gm_run_until_user(m, 0, 2, false);
  gm_inject_not_present(m, 0, T2);
  gm_run(m, 2);
  assert_true(gm_inject_page_ready(m, 0, T1, 0));
  assert_false(gm_inject_page_ready(m, 0, T2, 0)); /* busy until the guest takes T1 */
  assert_int_equal(*gm_apf_token(m, 0), T1);
  gm_run(m, 2);
  assert_int_equal(*gm_apf_token(m, 0), 0);
  assert_string_equal(m->cpu[0].msr_log, "INT EN ACK");
  assert_true(gm_inject_page_ready(m, 0, T2, 0));
  gm_run(m, 2);
  assert_int_equal(m->cpu[0].acks, 2);
  assert_int_equal(m->cpu[0].acks_with_token_set, 0);
  assert_int_equal(gm_vcpu(m, 0).apf_dummy_created, 0);
  run_to_shutdown(m);
  gm_free(m);
  free(cfg);
}

/* Linux 5.9+: "Host injected async #PF in interrupt disabled region" — checked first. */
static void apf_with_interrupts_disabled_panics(void **state) {
  (void)state;
  struct sim_config *cfg = gm_config(1);
  struct gm *m = gm_boot(cfg, &opt_2020);
  while (gm_vcpu(m, 0).online != 1) gm_step(m, 0, 1); /* still booting: CPL 0, IF = 0 */
  struct vcpu_regs r = gm_regs(m, 0);
  assert_int_equal(r.rflags & (1u << 9), 0);
  gm_inject_not_present(m, 0, T1);
  gm_run(m, 2);
  struct apfsim_panic_record p = gm_panic(m);
  assert_int_equal(p.vector, 14);
  assert_int_equal(p.rip, r.rip);
  assert_int_equal(p.cr2, T1);
  char want[256];
  snprintf(want, sizeof want,
           "Host injected async #PF in interrupt disabled region: #PF (vector 14) in kernel mode at rip %#llx, error code 0x0, "
           "cr2 0x1000, task idle/0 pid 0, vCPU 0",
           (unsigned long long)r.rip);
  assert_string_equal(p.message, want);
  gm_free(m);
  free(cfg);
}

/* Linux 5.9+: "Host injected async #PF in kernel mode" (IF was 1: the idle loop's hlt). */
static void apf_from_kernel_mode_panics(void **state) {
  (void)state;
  struct sim_config *cfg = gm_config(1); /* no processes: the vCPU idles */
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run(m, 20);
  assert_true(m->cpu[0].halted);
  struct vcpu_regs r = gm_regs(m, 0);
  assert_int_not_equal(r.rflags & (1u << 9), 0);
  gm_inject_not_present(m, 0, T2);
  m->cpu[0].halted = false;
  gm_run(m, 2);
  struct apfsim_panic_record p = gm_panic(m);
  assert_int_equal(p.vector, 14);
  assert_true(strncmp(p.message, "Host injected async #PF in kernel mode: #PF (vector 14) in kernel mode at rip ", 78) == 0);
  assert_non_null(strstr(p.message, "cr2 0x2000, task idle/0 pid 0, vCPU 0"));
  gm_free(m);
  free(cfg);
}

/* The 2020 error-reporting series: page-ready with ready_flags PAGE_ERROR -> SIGBUS. */
static void page_error_in_page_ready_kills_the_task_with_sigbus(void **state) {
  (void)state;
  struct sim_config *cfg = two_tasks(0);
  cfg->apf.error_reporting = APF_ERR_PAGE_READY;
  struct gm_options opt = {.kvm_features = FEATURES_2020 | GM_KVM_FEATURE_ASYNC_PF_ERROR};
  struct gm *m = gm_boot(cfg, &opt);
  gm_run_until_user(m, 0, 1, false);
  uint64_t rip = gm_regs(m, 0).rip;
  gm_inject_not_present(m, 0, T1);
  gm_run(m, 4);
  assert_int_equal(gm_proc(m, 1).state, APFSIM_PROC_SLEEPING);
  assert_true(gm_inject_page_ready(m, 0, T1, 1 /* KVM_PV_REASON_PAGE_ERROR */));
  run_to_shutdown(m);
  assert_int_equal(m->n_sigbus, 1);
  assert_int_equal(m->sigbus_pids[0], 1);
  struct apfsim_proc_stats p1 = gm_proc(m, 1);
  assert_int_equal(p1.state, APFSIM_PROC_EXITED);
  assert_int_equal(p1.term_signal, APFSIM_SIGBUS);
  assert_int_equal(p1.sig_code, APFSIM_SIGBUS_APF_PAGE_ERROR);
  assert_int_equal(p1.sig_token, T1);
  assert_int_equal(p1.sig_addr, 0);
  assert_int_equal(p1.sig_rip, rip);
  assert_int_equal(p1.exit_code, 128 + 7);
  assert_true(p1.ops_done < 3000);
  assert_int_equal(gm_proc(m, 2).ops_done, 300); /* the run goes on */
  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  assert_int_equal(vs.apf_page_errors, 1);
  assert_int_equal(vs.sigbus_kills, 1);
  assert_int_equal(*gm_apf_ready_flags(m, 0), 0);
  char want[160];
  snprintf(want, sizeof want, "pid 1 (memory) killed by SIGBUS (APF page error, addr 0x0, token 0x1000, rip %#llx)\n",
           (unsigned long long)rip);
  assert_non_null(strstr(gm_console(m), want));
  gm_free(m);
  free(cfg);
}

/* Without the opt-in (EN bit 4 not set) ready_flags mean nothing: mainline behaviour,
 * the task retries the access (and, on a truncated file, faults again: the livelock). */
static void page_error_without_opt_in_is_ignored(void **state) {
  (void)state;
  struct sim_config *cfg = two_tasks(0);
  struct gm *m = gm_boot(cfg, &opt_2020);
  gm_run_until_user(m, 0, 1, false);
  gm_inject_not_present(m, 0, T1);
  gm_run(m, 4);
  assert_true(gm_inject_page_ready(m, 0, T1, 1));
  run_to_shutdown(m);
  assert_int_equal(m->n_sigbus, 0);
  assert_int_equal(gm_proc(m, 1).ops_done, 3000);
  assert_int_equal(gm_vcpu(m, 0).apf_page_errors, 0);
  gm_free(m);
  free(cfg);
}

/* A dummy left by an erroring page-ready: the not-present that consumes it gets SIGBUS. */
static void page_error_on_a_dummy_kills_at_the_not_present(void **state) {
  (void)state;
  struct sim_config *cfg = two_tasks(0);
  cfg->apf.error_reporting = APF_ERR_PAGE_READY;
  struct gm_options opt = {.kvm_features = FEATURES_2020 | GM_KVM_FEATURE_ASYNC_PF_ERROR};
  struct gm *m = gm_boot(cfg, &opt);
  gm_run_until_user(m, 0, 1, false);
  assert_true(gm_inject_page_ready(m, 0, T1, 1));
  gm_run_until_interruptible(m, 0);
  gm_run(m, 1);
  gm_run_until_user(m, 0, 1, false);
  gm_inject_not_present(m, 0, T1);
  run_to_shutdown(m);
  struct apfsim_proc_stats p1 = gm_proc(m, 1);
  assert_int_equal(p1.term_signal, APFSIM_SIGBUS);
  assert_int_equal(p1.sig_token, T1);
  assert_int_equal(gm_vcpu(m, 0).apf_dummy_consumed, 1);
  gm_free(m);
  free(cfg);
}

/* Two vCPUs: each sleeps a task on its own token (KVM's tokens carry the vCPU id) and
 * wakes it from its own page-ready; everything completes. */
static void two_vcpus_sleep_and_wake_their_own_tasks(void **state) {
  (void)state;
  struct sim_config *cfg = gm_config(2);
  cfg->workload.n_processes = 2;
  cfg->workload.processes[0] = (struct process_config){
      .kind = WORKLOAD_MEMORY, .pattern = ACCESS_RANDOM, .count = 2, .ops = 3000, .working_set_bytes = 64 << 10};
  cfg->workload.processes[1] =
      (struct process_config){.kind = WORKLOAD_COMPUTE, .count = 2, .ops = 200, .compute_per_op = 1000};
  struct gm *m = gm_boot(cfg, &opt_2020);
  unsigned asleep[2] = {0, 0};
  for (unsigned round = 0; round < 2000 && !(asleep[0] && asleep[1]); round++) {
    gm_run(m, 1);
    for (unsigned cpu = 0; cpu < 2; cpu++) { /* a memory task at CPL 3 on this vCPU: fault it */
      struct vcpu_sregs s;
      vcpu_get_sregs(m->cpu[cpu].v, &s);
      for (unsigned pid = 1; pid <= 2 && !asleep[cpu] && s.cpl == 3; pid++) {
        struct apfsim_proc_stats ps = gm_proc(m, pid);
        if (ps.state == APFSIM_PROC_RUNNING && ps.last_vcpu == cpu) {
          asleep[cpu] = pid;
          gm_inject_not_present(m, cpu, T1 | cpu);
        }
      }
    }
  }
  gm_run(m, 2);
  assert_int_not_equal(asleep[0], asleep[1]);
  for (unsigned cpu = 0; cpu < 2; cpu++) {
    struct apfsim_proc_stats ps = gm_proc(m, asleep[cpu]);
    assert_int_equal(ps.state, APFSIM_PROC_SLEEPING);
    assert_int_equal(ps.apf_token, T1 | cpu);
    assert_int_equal(gm_vcpu(m, cpu).apf_sleeps, 1);
  }
  gm_run(m, 20);
  for (unsigned cpu = 0; cpu < 2; cpu++) assert_true(gm_inject_page_ready(m, cpu, T1 | cpu, 0));
  run_to_shutdown(m);
  for (unsigned pid = 1; pid <= 4; pid++) assert_int_equal(gm_proc(m, pid).ops_done, pid <= 2 ? 3000 : 200);
  for (unsigned cpu = 0; cpu < 2; cpu++) {
    struct apfsim_vcpu_stats vs = gm_vcpu(m, cpu);
    assert_int_equal(vs.apf_page_ready, 1);
    assert_int_equal(vs.apf_dummy_created, 0);
    assert_int_equal(m->cpu[cpu].acks, 1);
  }
  gm_free(m);
  free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(enable_writes_int_then_en_with_the_area),
      cmocka_unit_test(page_error_opt_in_needs_the_cpuid_bit),
      cmocka_unit_test(apf_stays_off_unless_asked_and_offered),
      cmocka_unit_test(not_present_sleeps_and_page_ready_resumes_the_same_task),
      cmocka_unit_test(wake_before_wait_leaves_then_consumes_a_dummy),
      cmocka_unit_test(wake_all_wakes_every_sleeper_and_drops_dummies),
      cmocka_unit_test(token_slot_is_freed_before_the_ack),
      cmocka_unit_test(apf_with_interrupts_disabled_panics),
      cmocka_unit_test(apf_from_kernel_mode_panics),
      cmocka_unit_test(page_error_in_page_ready_kills_the_task_with_sigbus),
      cmocka_unit_test(page_error_without_opt_in_is_ignored),
      cmocka_unit_test(page_error_on_a_dummy_kills_at_the_not_present),
      cmocka_unit_test(two_vcpus_sleep_and_wake_their_own_tasks),
  };
  return cmocka_run_group_tests(tests, gm_setup, gm_teardown);
}
