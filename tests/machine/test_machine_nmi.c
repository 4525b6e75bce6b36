/* test_machine_nmi.c — the configuration's NMI injection plans (race/nmi; sim/machine/
 * nmi_plan.c): an NMI planned at retired instruction N lands with the vCPU's count exactly
 * N whatever the quantum; after-event plans count the APF engine's events; periodic plans
 * are seeded; at-symbol plans land right before symbol+offset on its n-th execution, and a
 * symbol or offset they cannot watch is bad input naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

/* The first trace line containing `needle`, or "" (static buffer). */
static const char *grep_line(const char *path, const char *needle) {
  static char line[512];
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  while (fgets(line, sizeof line, f))
    if (strstr(line, needle)) {
      fclose(f);
      return line;
    }
  fclose(f);
  line[0] = '\0';
  return line;
}

static size_t count_lines(const char *path, const char *needle) {
  char line[512];
  size_t n = 0;
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  while (fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

static void run_with(struct sim_config *cfg, const char *trace, struct harness *h, struct run_summary *s) {
  hx_start(h, cfg, trace);
  hx_run(h, cfg->limits.max_sim_time_ns * 1000, NULL, NULL);
  hx_finish(h, s);
}

static void exact_instruction_any_quantum(void **state) {
  (void)state;
  const char *quanta[] = {"machine/quantum-instructions=1000", "machine/quantum-instructions=10000",
                          "machine/quantum-instructions=123457"};
  const uint64_t n = 3000001; /* vCPU 1, well after its bring-up */
  for (size_t q = 0; q < 3; q++) {
    const char *sets[] = {quanta[q], "limits/max-sim-time=5ms"};
    struct sim_config *cfg = hx_config("boot.xml", sets, 2);
    cfg->race.n_nmi_plans = 1;
    cfg->race.nmi[0].trigger = NMI_AT_INSTRUCTION;
    cfg->race.nmi[0].vcpu = 1;
    cfg->race.nmi[0].at_instruction = n;
    cfg->race.nmi[0].nth = 1;
    struct harness h;
    struct run_summary s;
    run_with(cfg, "nmi_exact.trace", &h, &s);
    char want[128];
    snprintf(want, sizeof want, "cpu1  nmi_inject plan 1 trigger at_instruction retired %llu ",
             (unsigned long long)n);
    assert_true(grep_line("nmi_exact.trace", want)[0]);
    assert_int_equal(count_lines("nmi_exact.trace", "nmi_inject"), 1);
    assert_int_equal(s.race.nmi_injected, 1);
    assert_int_equal(s.vcpus[1].nmis, 1); /* the guest's NMI handler ran once */
    assert_int_equal(s.vcpus[0].nmis, 0);
    hx_free(&h);
  }
}

/* An NMI right after the n-th APF not-present of vCPU 0 (offset 0: at the #PF handler's
 * first instruction, the race window's start). */
static void after_event(void **state) {
  (void)state;
  const char *sets[] = {"limits/max-sim-time=300ms"};
  struct sim_config *cfg = hx_config("apf-2020.xml", sets, 1);
  cfg->race.n_nmi_plans = 1;
  cfg->race.nmi[0].trigger = NMI_AFTER_EVENT;
  cfg->race.nmi[0].vcpu = 0;
  snprintf(cfg->race.nmi[0].event, sizeof cfg->race.nmi[0].event, "kvm_async_pf_not_present");
  cfg->race.nmi[0].offset = 0;
  cfg->race.nmi[0].nth = 2;
  struct harness h;
  struct run_summary s;
  run_with(cfg, "nmi_event.trace", &h, &s);
  assert_int_equal(s.race.nmi_injected, 1);
  /* the injection is at the time of the second not-present on cpu0 */
  char line[512];
  FILE *f = fopen("nmi_event.trace", "r");
  unsigned long long t_np = 0, t_nmi = 0;
  unsigned seen = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long long t;
    char cpu[16], name[64];
    if (sscanf(line, "%llu %15s %63s", &t, cpu, name) != 3 || strcmp(cpu, "cpu0")) continue;
    if (!strcmp(name, "kvm_async_pf_not_present") && ++seen == 2) t_np = t;
    if (!strcmp(name, "nmi_inject")) t_nmi = t;
  }
  fclose(f);
  assert_true(seen >= 2 && t_np > 0);
  assert_int_equal(t_nmi, t_np);
  assert_int_equal(s.vcpus[0].nmis, 1);
  assert_int_equal(s.outcome, OUTCOME_OK);
  hx_free(&h);
}

static void periodic_is_seeded(void **state) {
  (void)state;
  uint64_t counts[2];
  char sha[2][65];
  for (int k = 0; k < 2; k++) {
    const char *sets[] = {"limits/max-sim-time=10ms", k ? "machine/quantum-instructions=1000" : "machine/quantum-instructions=10000"};
    struct sim_config *cfg = hx_config("boot.xml", sets, 2);
    cfg->race.n_nmi_plans = 1;
    cfg->race.nmi[0].trigger = NMI_PERIODIC;
    cfg->race.nmi[0].vcpu = 0;
    cfg->race.nmi[0].period_ns = 1000000;
    struct harness h;
    struct run_summary s;
    char tname[32];
    snprintf(tname, sizeof tname, "nmi_periodic%d.trace", k);
    run_with(cfg, tname, &h, &s);
    counts[k] = s.race.nmi_injected;
    print_message("%s: %llu NMIs: %s\n", sets[1], (unsigned long long)counts[k], s.verdict);
    snprintf(sha[k], sizeof sha[k], "%s", grep_line(tname, "nmi_inject plan 1 trigger periodic"));
    assert_int_equal(s.vcpus[0].nmis, s.race.nmi_injected);
    hx_free(&h);
  }
  /* a Poisson process of mean 1 ms over ~8 ms after boot; its times do not depend on the quantum */
  assert_true(counts[0] >= 3 && counts[0] <= 20);
  assert_int_equal(counts[0], counts[1]);
}

/* The NMI of an at-symbol plan on sched_tick (once per timer interrupt) of vCPU 1: taken
 * right before the symbol's first instruction (the trace's rip), on its nth execution
 * (exactly nth timer interrupts traced on cpu1 precede it), with a small and a large
 * quantum; the guest's NMI handler runs once. (The retired count itself may differ between
 * quanta: the two vCPUs' interleaving does.) */
static void at_symbol_lands(void **state) {
  (void)state;
  for (int k = 0; k < 3; k++) {
    const uint32_t nth = k == 0 ? 1 : 3;
    const char *sets[] = {k == 2 ? "machine/quantum-instructions=1000" : "machine/quantum-instructions=100000",
                          "limits/max-sim-time=6ms"};
    struct sim_config *cfg = hx_config("boot.xml", sets, 2);
    cfg->race.n_nmi_plans = 1;
    cfg->race.nmi[0].trigger = NMI_AT_SYMBOL;
    cfg->race.nmi[0].vcpu = 1;
    snprintf(cfg->race.nmi[0].symbol, sizeof cfg->race.nmi[0].symbol, "sched_tick");
    cfg->race.nmi[0].nth = nth;
    struct harness h;
    struct run_summary s;
    run_with(cfg, "nmi_symbol.trace", &h, &s);
    uint64_t addr, size;
    assert_true(guest_image_lookup(h.img, "sched_tick", &addr, &size));
    assert_int_equal(s.race.nmi_injected, 1);
    assert_int_equal(s.vcpus[1].nmis, 1);
    assert_int_equal(s.vcpus[0].nmis, 0);
    const char *line = grep_line("nmi_symbol.trace", "nmi_inject");
    char want[128];
    snprintf(want, sizeof want, " rip %#llx sym sched_tick\n", (unsigned long long)addr);
    assert_non_null(strstr(line, "cpu1  nmi_inject plan 1 trigger at_symbol retired "));
    if (!strstr(line, want)) fail_msg("want '%s' in: %s", want, line);
    /* exactly nth timer interrupts of cpu1 come before it */
    char l[512];
    unsigned timers = 0;
    bool seen = false;
    FILE *f = fopen("nmi_symbol.trace", "r");
    while (fgets(l, sizeof l, f) && !seen) {
      if (strstr(l, "cpu1  apic_timer ")) timers++;
      seen = strstr(l, "nmi_inject") != NULL;
    }
    fclose(f);
    assert_true(seen);
    assert_int_equal(timers, nth);
    hx_free(&h);
  }
}

/* Two plans inside the #PF entry of vCPU 0 (asm_exc_page_fault+2: after its `pushq $14`), on
 * the first and the second #PF: both land there, in that order, and the guest's NMI handler
 * runs twice. */
static void at_symbol_offset_two_plans(void **state) {
  (void)state;
  const char *sets[] = {"limits/max-sim-time=3ms"};
  struct sim_config *cfg = hx_config("boot.xml", sets, 1);
  cfg->race.n_nmi_plans = 2;
  for (int k = 0; k < 2; k++) {
    cfg->race.nmi[k].trigger = NMI_AT_SYMBOL;
    cfg->race.nmi[k].vcpu = 0;
    snprintf(cfg->race.nmi[k].symbol, sizeof cfg->race.nmi[k].symbol, "asm_exc_page_fault");
    cfg->race.nmi[k].offset = 2;
    cfg->race.nmi[k].nth = (uint32_t)(2 - k); /* plan 1 on the 2nd #PF, plan 2 on the 1st */
  }
  struct harness h;
  struct run_summary s;
  run_with(cfg, "nmi_symbol2.trace", &h, &s);
  uint64_t addr, size;
  assert_true(guest_image_lookup(h.img, "asm_exc_page_fault", &addr, &size));
  assert_int_equal(s.race.nmi_injected, 2);
  assert_int_equal(s.vcpus[0].nmis, 2);
  char l[512];
  unsigned long long retired[2] = {0, 0}, rip;
  unsigned plan, n = 0;
  FILE *f = fopen("nmi_symbol2.trace", "r");
  while (fgets(l, sizeof l, f)) {
    const char *p = strstr(l, "cpu0  nmi_inject plan ");
    if (!p) continue;
    assert_true(n < 2);
    assert_int_equal(sscanf(p, "cpu0  nmi_inject plan %u trigger at_symbol retired %llu rip %llx", &plan,
                            &retired[n], &rip), 3);
    assert_int_equal(plan, n == 0 ? 2 : 1); /* the first #PF's plan first */
    assert_int_equal(rip, addr + 2);
    assert_non_null(strstr(p, "sym asm_exc_page_fault+0x2\n"));
    n++;
  }
  fclose(f);
  assert_int_equal(n, 2);
  assert_true(retired[0] < retired[1]);
  hx_free(&h);
}

/* symbol+offset that cannot be watched: machine_create refuses it as bad input. */
static void at_symbol_bad(void **state) {
  (void)state;
  const struct {
    const char *symbol;
    uint64_t offset;
    const char *field, *words;
  } cases[] = {
      {"no_such_symbol", 0, "race/nmi[1]/symbol: ", "no_such_symbol"},
      {"asm_exc_page_fault", 0x10000, "race/nmi[1]/offset: ", "is outside asm_exc_page_fault"},
      {"asm_exc_page_fault", 1, "race/nmi[1]/offset: ", "not on an instruction boundary"}, /* inside pushq $14 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sim_config *cfg = hx_config("boot.xml", NULL, 0);
    cfg->race.n_nmi_plans = 1;
    cfg->race.nmi[0].trigger = NMI_AT_SYMBOL;
    snprintf(cfg->race.nmi[0].symbol, sizeof cfg->race.nmi[0].symbol, "%s", cases[i].symbol);
    cfg->race.nmi[0].offset = cases[i].offset;
    cfg->race.nmi[0].nth = 1;
    struct diag d = {{0}};
    struct guest_image *img = machine_open_kernel(cfg, &d);
    assert_non_null(img);
    struct trace_writer *tw = trace_writer_open(NULL, NULL, 0, NULL, 0, &d);
    assert_non_null(tw);
    bool config_error = false;
    struct machine_params p = {.cfg = cfg, .image = img, .trace = tw, .config_error = &config_error};
    struct machine *m = machine_create(&p, &d);
    if (m) fail_msg("case %zu accepted", i);
    assert_true(config_error);
    if (!strstr(d.msg, cases[i].field) || !strstr(d.msg, cases[i].words)) fail_msg("case %zu: %s", i, d.msg);
    trace_abort(tw);
    guest_image_free(img);
    free(cfg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exact_instruction_any_quantum),
      cmocka_unit_test(after_event),
      cmocka_unit_test(periodic_is_seeded),
      cmocka_unit_test(at_symbol_lands),
      cmocka_unit_test(at_symbol_offset_two_plans),
      cmocka_unit_test(at_symbol_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
