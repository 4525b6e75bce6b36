/* test_points.c — the point grid: enumeration order (first dimension
 * slowest, then seed, then repetition), the overrides each point runs with,
 * shards (disjoint and covering for any N), the columns, and the
 * fingerprint (stable under formatting, sensitive to anything that changes
 * results). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>

#include "helpers.h"

#define GRID                                                                     \
  "<set path='smoke/timer-period'>10us</set>"                                    \
  "<param path='swap-device/channels'><values>1 2 4</values></param>"            \
  "<zip><param path='smoke/request-interval'><values>2us 5us</values></param>"   \
  "<param path='smoke/device-requests'><values>100 40</values></param></zip>"    \
  "<seeds>7 5</seeds><repetitions>2</repetitions>"                               \
  "<window><warm-up>1ms</warm-up><measure>2ms</measure></window>"

static struct sweep_plan *grid(void) {
  struct diag err;
  struct sweep_plan *p = plan_from(GRID, &err);
  if (!p) fail_msg("%s", err.msg);
  return p;
}

static void points_enumerate_in_a_fixed_order(void **state) {
  (void)state;
  struct sweep_plan *p = grid();
  assert_int_equal(p->n_points, 3 * 2 * 2 * 2);
  assert_int_equal(p->n_combos, 6);
  /* index = ((channels * 2 + zip) * 2 + seed) * 2 + rep */
  for (uint64_t i = 0; i < p->n_points; i++) {
    struct sweep_point pt;
    sweep_plan_point(p, i, &pt);
    assert_int_equal(pt.index, i);
    assert_int_equal(pt.rep, i % 2 + 1);
    assert_int_equal(pt.seed, (i / 2) % 2 == 0 ? 7 : 5);
    assert_int_equal(pt.combo, i / 4);
    static const char *const ch[] = {"1", "2", "4"};
    static const char *const iv[] = {"2us", "5us"}, *const rq[] = {"100", "40"};
    assert_string_equal(sweep_plan_value(p, pt.combo, 0, 0), ch[pt.combo / 2]);
    assert_string_equal(sweep_plan_value(p, pt.combo, 1, 0), iv[pt.combo % 2]);
    assert_string_equal(sweep_plan_value(p, pt.combo, 1, 1), rq[pt.combo % 2]);
  }
  char **ov;
  size_t n;
  assert_true(sweep_plan_overrides(p, 3, &ov, &n));
  assert_int_equal(n, 6);
  assert_string_equal(ov[0], "smoke/timer-period=10us");
  assert_string_equal(ov[1], "swap-device/channels=2");
  assert_string_equal(ov[2], "smoke/request-interval=5us");
  assert_string_equal(ov[3], "smoke/device-requests=40");
  assert_string_equal(ov[4], "limits/max-sim-time=3ms");
  assert_string_equal(ov[5], "limits/measure-from=1ms"); /* the warm-up */
  sweep_strings_free(ov, n);
  assert_true(sweep_plan_check_points(p, NULL));
  sweep_plan_free(p);
}

static void columns_are_parameters_then_metrics_then_provenance(void **state) {
  (void)state;
  struct diag err;
  struct sweep_plan *p =
      plan_from("<param path='machine/vcpus'><values>1 2</values></param>"
                "<metrics><metric>storage/requests</metric><metric>host_seconds</metric></metrics>",
                &err);
  if (!p) fail_msg("%s", err.msg);
  static const char *const want[] = {"point", "machine/vcpus", "seed", "rep", "outcome",
                                     "storage/requests", "host_seconds", "apfsim_version",
                                     "guest_image_sha256", "trace_sha256", "sweep",
                                     "sweep_points"};
  assert_int_equal(p->n_columns, sizeof want / sizeof want[0]);
  for (size_t i = 0; i < p->n_columns; i++) assert_string_equal(p->columns[i], want[i]);
  assert_int_equal(p->n_param_columns, 1);
  assert_int_equal(p->first_metric, 4);
  sweep_plan_free(p);
}

static void shards_partition_the_points(void **state) {
  (void)state;
  for (uint64_t total = 0; total <= 25; total++) {
    for (uint64_t n = 1; n <= 7; n++) {
      unsigned seen[32] = {0};
      uint64_t sum = 0;
      for (uint64_t k = 0; k < n; k++) {
        struct sweep_shard s = {k, n};
        uint64_t size = sweep_shard_size(&s, total);
        sum += size;
        uint64_t prev = 0;
        for (uint64_t i = 0; i < size; i++) {
          uint64_t pt = sweep_shard_point(&s, i);
          assert_true(pt < total);
          assert_int_equal(pt % n, k);
          if (i) assert_true(pt > prev); /* in point order */
          prev = pt;
          seen[pt]++;
        }
      }
      assert_int_equal(sum, total);
      for (uint64_t i = 0; i < total; i++) assert_int_equal(seen[i], 1); /* disjoint, covering */
    }
  }
  struct sweep_shard s;
  char why[256];
  assert_true(sweep_shard_parse("2/5", &s, why, sizeof why));
  assert_int_equal(s.k, 2);
  assert_int_equal(s.n, 5);
  assert_true(sweep_shard_parse("0/1", &s, why, sizeof why));
  static const char *const bad[] = {"5/5", "1/0", "-1/2", "1/-2", "a/b", "1/2x", "1", "/2", "1/"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (sweep_shard_parse(bad[i], &s, why, sizeof why)) fail_msg("'%s' parsed", bad[i]);
  assert_false(sweep_shard_parse("3/3", &s, why, sizeof why));
  assert_string_equal(why, "'3/3': K must be in 0..N-1 and N at least 1");
}

static const char *fingerprint(const char *body) {
  static char fp[17];
  struct diag err;
  struct sweep_plan *p = plan_from(body, &err);
  if (!p) fail_msg("%s", err.msg);
  memcpy(fp, p->fingerprint, sizeof fp);
  sweep_plan_free(p);
  return fp;
}

static void fingerprint_follows_what_changes_results(void **state) {
  (void)state;
  char base[17];
  snprintf(base, sizeof base, "%s", fingerprint(GRID));
  assert_int_equal(strlen(base), 16);
  /* Formatting and spelling that give the same values: same sweep. */
  assert_string_equal(fingerprint("<!-- a comment -->\n" GRID "\n"), base);
  assert_string_equal(
      fingerprint("<set path='smoke/timer-period'>10us</set>"
                  "<param path='swap-device/channels'><value>1</value><value>2</value>"
                  "<value>4</value></param>"
                  "<zip><param path='smoke/request-interval'><values>\n2us\n5us\n</values></param>"
                  "<param path='smoke/device-requests'><values>100 40</values></param></zip>"
                  "<seeds>7 5</seeds><repetitions>2</repetitions>"
                  "<window><warm-up>1ms</warm-up><measure>2ms</measure></window>"),
      base);
  /* Anything else: a different sweep. */
  static const char *const others[] = {
      "<set path='smoke/timer-period'>20us</set>"
      "<param path='swap-device/channels'><values>1 2 4</values></param>"
      "<zip><param path='smoke/request-interval'><values>2us 5us</values></param>"
      "<param path='smoke/device-requests'><values>100 40</values></param></zip>"
      "<seeds>7 5</seeds><repetitions>2</repetitions>"
      "<window><warm-up>1ms</warm-up><measure>2ms</measure></window>",
      "<set path='smoke/timer-period'>10us</set>"
      "<param path='swap-device/channels'><values>1 2 4</values></param>"
      "<zip><param path='smoke/request-interval'><values>2us 5us</values></param>"
      "<param path='smoke/device-requests'><values>100 40</values></param></zip>"
      "<seeds>5 7</seeds><repetitions>2</repetitions>"
      "<window><warm-up>1ms</warm-up><measure>2ms</measure></window>",
      GRID "<metrics><metric>storage/requests</metric></metrics>",
  };
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
    if (!strcmp(fingerprint(others[i]), base)) fail_msg("sweep %zu has the same fingerprint", i);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(points_enumerate_in_a_fixed_order),
      cmocka_unit_test(columns_are_parameters_then_metrics_then_provenance),
      cmocka_unit_test(shards_partition_the_points),
      cmocka_unit_test(fingerprint_follows_what_changes_results),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
