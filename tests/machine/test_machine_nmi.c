/* test_machine_nmi.c — the configuration's NMI injection plans (race/nmi; sim/machine/
 * nmi_plan.c): an NMI planned at retired instruction N lands with the vCPU's count exactly
 * N whatever the quantum; after-event plans count the APF engine's events; periodic plans
 * are seeded; at-symbol plans are refused as bad input (not implemented). */
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

static void at_symbol_refused(void **state) {
  (void)state;
  struct sim_config *cfg = hx_config("boot.xml", NULL, 0);
  cfg->race.n_nmi_plans = 1;
  cfg->race.nmi[0].trigger = NMI_AT_SYMBOL;
  snprintf(cfg->race.nmi[0].symbol, sizeof cfg->race.nmi[0].symbol, "asm_exc_page_fault");
  cfg->race.nmi[0].nth = 1;
  struct diag d = {{0}};
  struct guest_image *img = machine_open_kernel(cfg, &d);
  assert_non_null(img);
  struct trace_writer *tw = trace_writer_open(NULL, NULL, 0, NULL, 0, &d);
  assert_non_null(tw);
  bool config_error = false;
  struct machine_params p = {.cfg = cfg, .image = img, .trace = tw, .config_error = &config_error};
  assert_null(machine_create(&p, &d));
  assert_true(config_error);
  assert_non_null(strstr(d.msg, "race/nmi[1]"));
  assert_non_null(strstr(d.msg, "not implemented yet"));
  trace_abort(tw);
  guest_image_free(img);
  free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exact_instruction_any_quantum),
      cmocka_unit_test(after_event),
      cmocka_unit_test(periodic_is_seeded),
      cmocka_unit_test(at_symbol_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
