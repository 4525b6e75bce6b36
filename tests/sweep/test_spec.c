/* test_spec.c — the sweep file format: numbers with units, exact log and
 * linear series (pinned values, so a change in the arithmetic shows), every
 * kind of dimension, seeds, repetitions, window and metrics, and the two
 * sweeps shipped in configs/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "helpers.h"
#include "sweep/quantity.h"
#include "sweep/row.h"
#include "sweep/series.h"

static void quantities_parse_exactly(void **state) {
  (void)state;
  struct quantity q;
  char why[256];
  assert_true(quantity_parse("10us", &q, why, sizeof why));
  assert_int_equal(q.family, QUANTITY_DURATION);
  assert_int_equal(q.milli, 10000000);
  assert_true(quantity_parse("1.5ms", &q, why, sizeof why));
  assert_int_equal(q.milli, 1500000000);
  assert_true(quantity_parse("0.25", &q, why, sizeof why));
  assert_int_equal(q.family, QUANTITY_PLAIN);
  assert_int_equal(q.milli, 250);
  assert_true(quantity_parse("64MiB", &q, why, sizeof why));
  assert_int_equal(q.family, QUANTITY_SIZE);
  assert_int_equal(q.milli, 64ull * 1024 * 1024 * 1000);
  assert_true(quantity_parse("2.6GHz", &q, why, sizeof why));
  assert_int_equal(q.family, QUANTITY_FREQUENCY);
  assert_int_equal(q.milli, 2600000);
  assert_true(quantity_parse("550MB/s", &q, why, sizeof why));
  assert_int_equal(q.family, QUANTITY_BANDWIDTH);

  assert_false(quantity_parse("3parsec", &q, why, sizeof why));
  assert_string_equal(why, "'3parsec' has an unknown unit 'parsec' (expected ns, us, ms, s, B, "
                           "KiB, MiB, GiB, TiB, MHz, GHz, B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s, "
                           "GiB/s or no unit)");
  assert_false(quantity_parse("1.0001ns", &q, why, sizeof why));
  assert_string_equal(why, "'1.0001ns' is finer than a thousandth of ns");
  assert_false(quantity_parse("1.", &q, why, sizeof why));
  assert_false(quantity_parse("us", &q, why, sizeof why));
  assert_false(quantity_parse("99999999999999999999s", &q, why, sizeof why));
  assert_string_equal(why, "'99999999999999999999s' is too large");
}

static const char *fmt(enum quantity_family f, uint64_t milli) {
  static char buf[64];
  struct quantity q = {f, milli};
  quantity_format(&q, buf, sizeof buf);
  return buf;
}

static void quantities_format_in_the_largest_exact_unit(void **state) {
  (void)state;
  assert_string_equal(fmt(QUANTITY_DURATION, 17800000), "17.8us");
  assert_string_equal(fmt(QUANTITY_DURATION, 10000000000), "10ms");
  assert_string_equal(fmt(QUANTITY_DURATION, 1234567), "1234.567ns"); /* not exact in us */
  assert_string_equal(fmt(QUANTITY_DURATION, 0), "0ns");
  assert_string_equal(fmt(QUANTITY_DURATION, 500), "0.5ns");
  assert_string_equal(fmt(QUANTITY_SIZE, 1536000), "1.5KiB");
  assert_string_equal(fmt(QUANTITY_SIZE, 1000000), "1000B");
  assert_string_equal(fmt(QUANTITY_BANDWIDTH, 3500000000000ull), "3.5GB/s");
  assert_string_equal(fmt(QUANTITY_FREQUENCY, 2000000), "2GHz");
  assert_string_equal(fmt(QUANTITY_PLAIN, 22000), "22");
  assert_string_equal(fmt(QUANTITY_PLAIN, 125), "0.125");
}

static void integer_roots_are_exact(void **state) {
  (void)state;
  assert_int_equal(series_floor_root(2, 1, 1, 0, 12, 2, NULL), 1414213); /* sqrt(2e12) */
  assert_int_equal(series_floor_root(1, 0, 1, 0, 19, 3, NULL), 2154434); /* cbrt(1e19) */
  assert_int_equal(series_floor_root(1000, 2, 1, 0, 0, 2, NULL), 1000);  /* exact squares */
  assert_int_equal(series_floor_root(7, 3, 1, 0, 0, 3, NULL), 7);
  assert_int_equal(series_floor_root(1000000, 3, 1000000000, 1, 0, 4, NULL), 5623413); /* 10^6.75 */
  assert_int_equal(series_floor_root(10, 19, 1, 0, 0, 1, NULL), UINT64_MAX); /* 10^19: too big */
  bool exact;
  assert_int_equal(series_floor_root(16, 2, 1024, 1, 0, 3, &exact), 64); /* (16^2*1024)^(1/3) */
  assert_true(exact);
  series_floor_root(2, 1, 1, 0, 12, 2, &exact);
  assert_false(exact);
  assert_int_equal(series_round_significant(2154, 3), 2150);
  assert_int_equal(series_round_significant(2155, 3), 2160);
  assert_int_equal(series_round_significant(999500, 3), 1000000);
  assert_int_equal(series_round_significant(5, 3), 5);
}

static const char *param_values(const char *body) {
  struct diag err;
  struct sweep_spec *s = spec_from(body, &err);
  if (!s) fail_msg("%s", err.msg);
  static char buf[4096];
  snprintf(buf, sizeof buf, "%s", joined(&s->dims[0].params[0]));
  sweep_spec_free(s);
  return buf;
}

static void log_ranges_are_pinned(void **state) {
  (void)state;
  /* The device latencies of configs/sweep-latency.xml. */
  assert_string_equal(
      param_values("<param path='swap-device/latency/median'>"
                   "<log from='1us' to='10ms' per-decade='3'/></param>"),
      "1us 2.15us 4.64us 10us 21.5us 46.4us 100us 215us 464us 1ms 2.15ms 4.64ms 10ms");
  assert_string_equal(param_values("<param path='swap-device/latency/median'>"
                                   "<log from='1us' to='1ms' points='5'/></param>"),
                      "1us 5.62us 31.6us 178us 1ms");
  assert_string_equal(param_values("<param path='swap-device/latency/median'>"
                                   "<log from='1us' to='1ms' points='5' digits='5'/></param>"),
                      "1us 5.623us 31.623us 177.83us 1ms");
  /* Plain numbers: whole numbers when the endpoints are; equal neighbours
   * after rounding are dropped; the last value stays at or below `to`. */
  assert_string_equal(
      param_values("<param path='swap-device/channels'><log from='1' to='1024' per-decade='3'/></param>"),
      "1 2 5 10 22 46 100 215 464 1000");
  assert_string_equal(
      param_values("<param path='swap-device/channels'><log from='1' to='4' per-decade='20'/></param>"),
      "1 2 3 4");
  assert_string_equal(param_values("<param path='swap-device/latency/sigma'>"
                                   "<log from='0.01' to='1' per-decade='2'/></param>"),
                      "0.01 0.032 0.1 0.316 1");
  assert_string_equal(param_values("<param path='machine/guest-memory'>"
                                   "<log from='16MiB' to='1GiB' points='4'/></param>"),
                      "16MiB 64MiB 256MiB 1GiB");
}

static void linear_ranges_and_lists(void **state) {
  (void)state;
  assert_string_equal(param_values("<param path='swap-device/latency/median'>"
                                   "<range from='10us' to='50us' step='10us'/></param>"),
                      "10us 20us 30us 40us 50us");
  assert_string_equal(param_values("<param path='swap-device/latency/median'>"
                                   "<range from='500us' to='2ms' step='500us'/></param>"),
                      "500us 1ms 1.5ms 2ms");
  assert_string_equal(
      param_values("<param path='machine/vcpus'><range from='1' to='8' step='3'/></param>"),
      "1 4 7");
  assert_string_equal(param_values("<param path='apf/protocol'><values> off\n halt 2010\t2020 "
                                   "</values></param>"),
                      "off halt 2010 2020");
  assert_string_equal(param_values("<param path='guest/kernel'><value>a b.elf</value>"
                                   "<value> c.elf </value></param>"),
                      "a b.elf c.elf");
}

static void dimensions_seeds_window_and_metrics(void **state) {
  (void)state;
  struct diag err;
  struct sweep_spec *s = spec_from(
      "<set path='smoke/timer-period'>10us</set>"
      "<param path='swap-device/channels'><values>1 2 4</values></param>"
      "<zip><param path='smoke/request-interval'><values>2us 5us</values></param>"
      "<param path='smoke/device-requests'><values>100 40</values></param></zip>"
      "<seeds first='10' count='3'/><repetitions>2</repetitions>"
      "<window><warm-up>1ms</warm-up><measure>4ms</measure></window>"
      "<metrics include-defaults='true'><metric>vcpus/0/halted_ns</metric></metrics>",
      &err);
  if (!s) fail_msg("%s", err.msg);
  assert_int_equal(s->n_sets, 1);
  assert_string_equal(s->sets[0].path, "smoke/timer-period");
  assert_string_equal(s->sets[0].value, "10us");
  assert_int_equal(s->n_dims, 2);
  assert_int_equal(s->dims[1].n_params, 2);
  assert_int_equal(s->dims[1].n_values, 2);
  assert_string_equal(s->dims[1].params[1].field, "zip[1]/param[2]");
  assert_int_equal(s->n_seeds, 3);
  assert_int_equal(s->seeds[0], 10);
  assert_int_equal(s->seeds[2], 12);
  assert_int_equal(s->repetitions, 2);
  assert_int_equal(s->warm_up_ns, 1000000);
  assert_int_equal(s->measure_ns, 4000000);
  size_t nd;
  sweep_default_metrics(&nd);
  assert_int_equal(s->n_metrics, nd + 1);
  assert_string_equal(s->metrics[nd], "vcpus/0/halted_ns");
  assert_int_equal(sweep_spec_points(s), 3 * 2 * 3 * 2);
  sweep_spec_free(s);

  s = spec_from("<seeds>5 3 9</seeds><metrics><metric>storage/requests</metric></metrics>", &err);
  if (!s) fail_msg("%s", err.msg);
  assert_int_equal(s->n_dims, 0);
  assert_int_equal(s->n_seeds, 3);
  assert_int_equal(s->seeds[1], 3);
  assert_int_equal(s->n_metrics, 1);
  assert_int_equal(sweep_spec_points(s), 3);
  sweep_spec_free(s);

  /* Without <seeds>: one run per point with the base config's seed. */
  struct sweep_plan *p = plan_from("<param path='machine/vcpus'><values>1 2</values></param>", &err);
  if (!p) fail_msg("%s", err.msg);
  assert_int_equal(p->n_points, 2);
  assert_int_equal(p->base_seed, 42); /* configs/smoke.xml */
  struct sweep_point pt;
  sweep_plan_point(p, 1, &pt);
  assert_int_equal(pt.seed, 42);
  sweep_plan_free(p);
}

static void shipped_sweeps_are_valid(void **state) {
  (void)state;
  struct diag err;
  struct sweep_spec *s;
  /* Valid against sweep.xsd. */
  if (!sweep_spec_load(APFSIM_SOURCE_DIR "/configs/sweep-latency.xml", &s, &err))
    fail_msg("%s", err.msg);
  assert_int_equal(s->n_dims, 3);
  assert_string_equal(s->dims[0].params[0].path, "swap-device/latency/median");
  assert_int_equal(s->dims[0].n_values, 13);
  assert_string_equal(joined(&s->dims[1].params[0]), "off halt 2010 2020");
  assert_string_equal(joined(&s->dims[2].params[0]), "1 2 4");
  assert_int_equal(s->n_seeds, 5);
  assert_int_equal(sweep_spec_points(s), 13 * 4 * 3 * 5);
  sweep_spec_free(s);
  /* Its base, configs/apf-2020.xml, is the issue 6 APF scenario: every point loads. */
  struct sweep_plan *p;
  if (!sweep_plan_open(APFSIM_SOURCE_DIR "/configs/sweep-latency.xml", &p, &err)) fail_msg("%s", err.msg);
  assert_int_equal(p->n_points, 13 * 4 * 3 * 5);
  if (!sweep_plan_check_points(p, &err)) fail_msg("%s", err.msg);
  sweep_plan_free(p);

  if (!sweep_plan_open(APFSIM_SOURCE_DIR "/configs/sweep-ci.xml", &p, &err)) fail_msg("%s", err.msg);
  assert_int_equal(p->n_points, 40);
  if (!sweep_plan_check_points(p, &err)) fail_msg("%s", err.msg);
  assert_string_equal(p->window_override, "limits/max-sim-time=50ms");
  sweep_plan_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(quantities_parse_exactly),
      cmocka_unit_test(quantities_format_in_the_largest_exact_unit),
      cmocka_unit_test(integer_roots_are_exact),
      cmocka_unit_test(log_ranges_are_pinned),
      cmocka_unit_test(linear_ranges_and_lists),
      cmocka_unit_test(dimensions_seeds_window_and_metrics),
      cmocka_unit_test(shipped_sweeps_are_valid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
