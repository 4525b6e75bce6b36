/* test_latency_hist.c — the log2/linear latency histogram: exact small
 * values, the 1/16 resolution bound at every scale, nearest-rank
 * percentiles, log2 octave counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "storage/latency_hist.h"

static void empty_histogram_reports_zero(void **state) {
  (void)state;
  struct latency_hist h;
  latency_hist_init(&h);
  assert_int_equal(latency_hist_percentile(&h, 500), 0);
  assert_int_equal(latency_hist_percentile(&h, 1000), 0);
  assert_int_equal(h.count, 0);
}

static void small_values_are_exact(void **state) {
  (void)state;
  struct latency_hist h;
  latency_hist_init(&h);
  for (uint64_t v = 0; v < 32; v++) latency_hist_add(&h, v); /* 32 values: 0..31 */
  for (uint32_t k = 1; k <= 32; k++)
    assert_int_equal(latency_hist_percentile(&h, k * 1000 / 32), k - 1);
  assert_int_equal(latency_hist_percentile(&h, 0), 0);
  assert_int_equal(latency_hist_octave(&h, 0), 2); /* 0 and 1 */
  assert_int_equal(latency_hist_octave(&h, 1), 2); /* 2, 3 */
  assert_int_equal(latency_hist_octave(&h, 4), 16); /* 16..31 */
}

/* A single value v at any scale: every percentile is within v..v*(1+1/16),
 * and clamping to max makes it exactly v. */
static void percentile_of_one_value_is_that_value(void **state) {
  (void)state;
  for (uint64_t v = 1; v < UINT64_MAX / 3; v = v * 3 + 1) {
    struct latency_hist h;
    latency_hist_init(&h);
    latency_hist_add(&h, v);
    assert_int_equal(latency_hist_percentile(&h, 500), v);
    assert_int_equal(latency_hist_percentile(&h, 990), v);
  }
  struct latency_hist h;
  latency_hist_init(&h);
  latency_hist_add(&h, UINT64_MAX);
  assert_int_equal(latency_hist_percentile(&h, 990), UINT64_MAX);
  assert_int_equal(latency_hist_octave(&h, 63), 1);
}

/* Percentiles of 1..100000 (p = k/1000 of them): the report is the upper
 * bound of the bucket holding the exact nearest-rank value, so it is at
 * least that value and at most 1/16 above it. */
static void percentiles_within_resolution(void **state) {
  (void)state;
  static struct latency_hist h;
  latency_hist_init(&h);
  const uint64_t n = 100000;
  for (uint64_t v = 1; v <= n; v++) latency_hist_add(&h, v * 7);
  for (uint32_t pm = 1; pm <= 1000; pm++) {
    uint64_t exact = 7 * ((pm * n + 999) / 1000); /* nearest rank */
    uint64_t got = latency_hist_percentile(&h, pm);
    if (got < exact || (double)got > (double)exact * (1 + 1.0 / 16))
      fail_msg("p%u/1000: got %llu, exact %llu", pm, (unsigned long long)got,
               (unsigned long long)exact);
  }
  assert_int_equal(latency_hist_percentile(&h, 1000), 7 * n);
  assert_int_equal(latency_hist_percentile(&h, 0), 7);
  assert_int_equal(latency_hist_percentile(&h, 5000), 7 * n); /* > 1000 is p100 */
}

static void octaves_partition_the_values(void **state) {
  (void)state;
  struct latency_hist h;
  latency_hist_init(&h);
  latency_hist_add(&h, 1000);    /* octave 9: [512, 1024) */
  latency_hist_add(&h, 1023);
  latency_hist_add(&h, 1024);    /* octave 10 */
  latency_hist_add(&h, 5000000); /* octave 22: [4194304, 8388608) */
  assert_int_equal(latency_hist_octave(&h, 9), 2);
  assert_int_equal(latency_hist_octave(&h, 10), 1);
  assert_int_equal(latency_hist_octave(&h, 22), 1);
  assert_int_equal(latency_hist_octave(&h, 64), 0);
  uint64_t total = 0;
  for (unsigned k = 0; k < LATENCY_HIST_OCTAVES; k++) total += latency_hist_octave(&h, k);
  assert_int_equal(total, 4);
  assert_int_equal(h.min_ns, 1000);
  assert_int_equal(h.max_ns, 5000000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(empty_histogram_reports_zero),
      cmocka_unit_test(small_values_are_exact),
      cmocka_unit_test(percentile_of_one_value_is_that_value),
      cmocka_unit_test(percentiles_within_resolution),
      cmocka_unit_test(octaves_partition_the_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
