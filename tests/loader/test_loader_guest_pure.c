/* test_loader_guest_pure.c — the guest's pure integer code, built for the host: the user
 * workloads' PRNG and zipf sampler, and the layout helpers of apfsim_boot.h that guest and
 * simulator both evaluate. (libm appears here only as the yardstick for the fixed-point
 * functions; the guest never uses floating point.) */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apfsim_boot.h"
#include "prng.h"
#include "zipf.h"

#define Q32 4294967296.0

/* rand_xoshiro (rand_xoshiro/src/xoshiro256starstar.rs, test `reference`): state
 * {1, 2, 3, 4}, values from the reference xoshiro256starstar.c — the same vector
 * tests/rng uses for the simulator's generator. */
static void prng_matches_xoshiro256starstar_reference(void **state) {
  (void)state;
  static const uint64_t expected[] = {11520u, 0u, 1509978240u, UINT64_C(1215971899390074240),
                                      UINT64_C(1216172134540287360), UINT64_C(607988272756665600)};
  struct prng p = {{1, 2, 3, 4}};
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) assert_int_equal(prng_next(&p), expected[i]);
}

/* Seeding through splitmix64: seed 42 -> the values tests/rng pins for the same scheme. */
static void prng_seeding_matches_the_simulators_scheme(void **state) {
  (void)state;
  struct prng p;
  prng_seed(&p, 42);
  assert_int_equal(prng_next(&p), UINT64_C(1546998764402558742));
  assert_int_equal(prng_next(&p), UINT64_C(6990951692964543102));
  assert_int_equal(prng_next(&p), UINT64_C(12544586762248559009));
}

static void prng_below_stays_in_range_and_covers_it(void **state) {
  (void)state;
  struct prng p;
  prng_seed(&p, 1);
  unsigned seen[10] = {0};
  for (int i = 0; i < 10000; i++) {
    uint64_t v = prng_below(&p, 10);
    assert_true(v < 10);
    seen[v]++;
  }
  for (int i = 0; i < 10; i++) assert_in_range(seen[i], 850, 1150);
}

static void log2_is_exact_on_powers_and_close_elsewhere(void **state) {
  (void)state;
  for (int k = 0; k < 40; k++) assert_int_equal(zipf_log2_q32(UINT64_C(1) << k), (uint64_t)k << 32);
  for (uint64_t x = 3; x < 5000000; x = x * 3 + 1) {
    double got = (double)zipf_log2_q32(x) / Q32;
    assert_true(fabs(got - log2((double)x)) < 1e-8);
  }
}

static void exp2_neg_matches_the_definition(void **state) {
  (void)state;
  assert_int_equal(zipf_exp2_neg_q32(0), UINT64_C(1) << 32);
  assert_int_equal(zipf_exp2_neg_q32(UINT64_C(1) << 32), UINT64_C(1) << 31);
  assert_int_equal(zipf_exp2_neg_q32(UINT64_C(40) << 32), 0);
  for (uint64_t x = 12345; x < (UINT64_C(20) << 32); x = x * 5 / 2 + 77) {
    double want = exp2(-(double)x / Q32) * Q32;
    assert_true(fabs((double)zipf_exp2_neg_q32(x) - want) <= 2.0 + want * 1e-9);
  }
}

static void weights_follow_rank_to_the_minus_s(void **state) {
  (void)state;
  assert_int_equal(zipf_weight(1, 990), UINT64_C(1) << 32);
  assert_int_equal(zipf_weight(1000, 0), UINT64_C(1) << 32); /* s = 0: uniform */
  const uint32_t s_milli[] = {500, 990, 1200, 2000};
  for (size_t i = 0; i < 4; i++)
    for (uint64_t r = 2; r < 100000; r = r * 7 + 3) {
      double want = pow((double)r, -(double)s_milli[i] / 1000.0) * Q32;
      assert_true(fabs((double)zipf_weight(r, s_milli[i]) - want) <= 4.0 + want * 1e-8);
    }
}

static void picks_follow_the_prefix_sums(void **state) {
  (void)state;
  const uint64_t n = 1000;
  uint64_t *prefix = malloc(n * sizeof *prefix);
  zipf_build(prefix, n, 1000);
  for (uint64_t i = 1; i < n; i++) assert_true(prefix[i] > prefix[i - 1]);
  assert_int_equal(zipf_pick(prefix, n, 0), 0);
  assert_int_equal(zipf_pick(prefix, n, prefix[0] - 1), 0);
  assert_int_equal(zipf_pick(prefix, n, prefix[0]), 1);
  assert_int_equal(zipf_pick(prefix, n, prefix[n - 1] - 1), n - 1);
  /* empirical frequencies of ranks 1 and 2 against 1/H and 1/(2H), s = 1 */
  struct prng p;
  prng_seed(&p, 3);
  unsigned hits[2] = {0};
  const int draws = 200000;
  for (int i = 0; i < draws; i++) {
    uint64_t r = zipf_pick(prefix, n, prng_below(&p, prefix[n - 1]));
    if (r < 2) hits[r]++;
  }
  double h = 0;
  for (uint64_t r = 1; r <= n; r++) h += 1.0 / (double)r;
  assert_true(fabs(hits[0] / (double)draws - 1.0 / h) < 0.005);
  assert_true(fabs(hits[1] / (double)draws - 0.5 / h) < 0.005);
  free(prefix);
}

/* Pinned: changing these changes every process's access stream, so every golden trace. */
static void process_seeds_are_pinned(void **state) {
  (void)state;
  assert_int_equal(apfsim_process_seed(1, 0), UINT64_C(0x910a2dec89025cc1));
  assert_true(apfsim_process_seed(1, 0) != apfsim_process_seed(1, 1));
  assert_true(apfsim_process_seed(1, 0) != apfsim_process_seed(2, 0));
}

static void process_layout_separates_areas_with_guards(void **state) {
  (void)state;
  struct apfsim_workload_class c = {.kind = APFSIM_WORK_MEMORY, .pattern = APFSIM_ACCESS_ZIPF, .count = 1,
                                    .working_set_bytes = 3 << 20};
  struct apfsim_proc_layout l;
  apfsim_proc_layout(&c, &l);
  assert_int_equal(l.params_off, 0);
  assert_int_equal(l.ws_off, 2 * APFSIM_PAGE_SIZE); /* guard page after the parameters */
  assert_int_equal(l.ws_bytes, 3 << 20);
  assert_int_equal(l.zipf_off, l.ws_off + l.ws_bytes + APFSIM_PAGE_SIZE);
  assert_int_equal(l.zipf_bytes, 0x2000); /* 768 pages x 8 bytes, rounded up to pages */
  assert_int_equal(l.stack_off, l.zipf_off + l.zipf_bytes + APFSIM_PAGE_SIZE);
  assert_int_equal(l.range_bytes % APFSIM_LARGE_PAGE_SIZE, 0);
  assert_true(l.stack_off + l.stack_bytes <= l.range_bytes);

  c.kind = APFSIM_WORK_COMPUTE; /* no working set, no table: one 2 MiB range */
  apfsim_proc_layout(&c, &l);
  assert_int_equal(l.ws_bytes, 0);
  assert_int_equal(l.zipf_bytes, 0);
  assert_int_equal(l.range_bytes, APFSIM_LARGE_PAGE_SIZE);
}

static void guest_layout_refuses_what_does_not_fit(void **state) {
  (void)state;
  struct apfsim_boot_info bi = {.n_vcpus = 2, .ram_bytes = 32 << 20, .n_classes = 1};
  bi.classes[0] = (struct apfsim_workload_class){.kind = APFSIM_WORK_MEMORY, .count = 2, .working_set_bytes = 4 << 20};
  struct apfsim_guest_layout l;
  assert_null(apfsim_guest_layout(&bi, 0x401000, &l));
  assert_int_equal(l.n_processes, 2);
  assert_int_equal(l.user_end - l.user_start, 2 * (6 << 20));
  bi.classes[0].count = 5;
  assert_string_equal(apfsim_guest_layout(&bi, 0x401000, &l), "the workload does not fit in guest RAM");
  bi.classes[0].count = 0;
  assert_string_equal(apfsim_guest_layout(&bi, 0x401000, &l), "workload class with count 0");
  bi.n_vcpus = 65;
  assert_string_equal(apfsim_guest_layout(&bi, 0x401000, &l), "n_vcpus out of range");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(prng_matches_xoshiro256starstar_reference),
      cmocka_unit_test(prng_seeding_matches_the_simulators_scheme),
      cmocka_unit_test(prng_below_stays_in_range_and_covers_it),
      cmocka_unit_test(log2_is_exact_on_powers_and_close_elsewhere),
      cmocka_unit_test(exp2_neg_matches_the_definition),
      cmocka_unit_test(weights_follow_rank_to_the_minus_s),
      cmocka_unit_test(picks_follow_the_prefix_sums),
      cmocka_unit_test(process_seeds_are_pinned),
      cmocka_unit_test(process_layout_separates_areas_with_guards),
      cmocka_unit_test(guest_layout_refuses_what_does_not_fit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
