/* test_rng_variates.c — the integer latency variates and the fixed-point
 * functions under them. libm appears here only as the yardstick: the code
 * under test never uses it. Sample-moment checks run 200000 draws from a
 * fixed seed, so they are deterministic; each tolerance is several standard
 * errors wide and says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "rng/fixmath.h"
#include "rng/rng.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SAMPLES 200000

static double q48(uint64_t v) { return (double)v / 281474976710656.0; }
static double q62(int64_t v) { return (double)v / 4611686018427387904.0; }

static void check_close(const char *what, double got, double want, double rel_tol) {
  double rel = fabs(got / want - 1);
  if (rel > rel_tol) fail_msg("%s: got %.6g, want %.6g (rel. error %.3g > %.3g)", what, got, want, rel, rel_tol);
}

/* ---- fixed-point functions against libm (double has ~1e-16 resolution, so
 * the bounds below are near the yardstick's own precision) ---------------- */

static void neg_ln_is_accurate(void **state) {
  (void)state;
  double worst = 0;
  for (uint64_t k = 1; k < (UINT64_C(1) << 63); k = k * 3 + 7) {
    double want = -log((double)k / 9223372036854775808.0);
    double err = fabs(q48(fix_neg_ln_u63(k)) - want);
    if (err > worst) worst = err;
  }
  if (worst > 2e-14) fail_msg("max |error| %.3g", worst); /* 2^-46 = 1.4e-14 plus double rounding */
  assert_int_equal(fix_neg_ln_u63(UINT64_C(1) << 63), 0);
  assert_int_equal(fix_neg_log2_u63(UINT64_C(1) << 62), FIX_ONE_Q48); /* -log2(1/2) = 1 exactly */
  assert_int_equal(fix_neg_log2_u63(1), (uint64_t)63 << 48);
}

static void exp2_fraction_is_accurate(void **state) {
  (void)state;
  double worst = 0;
  for (uint64_t f = 0; f < FIX_ONE_Q48; f += UINT64_C(12345678901)) {
    double want = exp2(q48(f));
    double err = fabs(q62((int64_t)fix_exp2_frac_q48(f)) / want - 1);
    if (err > worst) worst = err;
  }
  if (worst > 1e-15) fail_msg("max rel. error %.3g", worst);
  assert_int_equal(fix_exp2_frac_q48(0), FIX_ONE_Q62);
}

static void sqrt_is_floor_of_exact_root(void **state) {
  (void)state;
  for (uint64_t x = 1; x < (UINT64_C(100) << 48); x = x * 5 + 3) {
    uint64_t s = fix_sqrt_q48(x);
    /* floor: s^2 <= x * 2^48 < (s+1)^2, compared in 128 bits */
    __extension__ unsigned __int128 n = (unsigned __int128)x << 48;
    assert_true((unsigned __int128)s * s <= n);
    assert_true((unsigned __int128)(s + 1) * (s + 1) > n);
  }
  assert_int_equal(fix_sqrt_q48(4 * FIX_ONE_Q48), 2 * FIX_ONE_Q48);
}

static void cos_of_turn_is_accurate(void **state) {
  (void)state;
  double worst = 0;
  for (uint64_t t = 0; t < UINT64_MAX - UINT64_C(1234567890123457); t += UINT64_C(1234567890123457)) {
    double want = cos(2 * M_PI * ((double)t / 18446744073709551616.0));
    double err = fabs(q62(fix_cos_turn_q62(t)) - want);
    if (err > worst) worst = err;
  }
  if (worst > 2e-15) fail_msg("max |error| %.3g", worst);
  assert_int_equal(fix_cos_turn_q62(0), (int64_t)FIX_ONE_Q62);
  assert_int_equal(fix_cos_turn_q62(UINT64_C(1) << 63), -(int64_t)FIX_ONE_Q62);
}

static void mul_exp_scales_and_saturates(void **state) {
  (void)state;
  /* 10^12 e^(+-1) against libm: the exact value rounded to an integer */
  double up = (double)fix_mul_exp_sat(1000000000000, FIX_ONE_Q48, false);
  double down = (double)fix_mul_exp_sat(1000000000000, FIX_ONE_Q48, true);
  if (fabs(up - 1e12 * M_E) > 0.5 + 1e-14 * up) fail_msg("1e12*e = %.1f", up);
  if (fabs(down - 1e12 / M_E) > 0.5 + 1e-14 * down) fail_msg("1e12/e = %.1f", down);
  assert_int_equal(fix_mul_exp_sat(12345, 0, false), 12345);
  assert_int_equal(fix_mul_exp_sat(12345, 0, true), 12345);
  assert_int_equal(fix_mul_exp_sat(UINT64_C(1) << 40, (uint64_t)50 << 48, false), UINT64_MAX);
  assert_int_equal(fix_mul_exp_sat(UINT64_C(1) << 40, (uint64_t)50 << 48, true), 0);
  assert_int_equal(fix_mul_q48_sat(UINT64_MAX, 2 * FIX_ONE_Q48), UINT64_MAX);
}

/* ---- distributions: sample moments against the analytic values -------- */

struct moments {
  double mean, var;
};

static struct moments moments_of(const uint64_t *v, size_t n) {
  double sum = 0, sq = 0;
  for (size_t i = 0; i < n; i++) sum += (double)v[i];
  double mean = sum / (double)n;
  for (size_t i = 0; i < n; i++) sq += ((double)v[i] - mean) * ((double)v[i] - mean);
  return (struct moments){mean, sq / (double)(n - 1)};
}

static uint64_t samples[SAMPLES];

/* Mean 1e6 ns: standard error of the mean is mean/sqrt(n) = 0.22%, of the
 * variance sqrt(8/n) = 0.63%; tolerances 1% and 3%. */
static void exponential_has_its_mean_and_variance(void **state) {
  (void)state;
  const double mean = 1e6;
  struct rng r;
  rng_stream_init(&r, 42, "exponential");
  for (size_t i = 0; i < SAMPLES; i++) samples[i] = rng_exponential_ns(&r, (uint64_t)mean);
  struct moments m = moments_of(samples, SAMPLES);
  check_close("mean", m.mean, mean, 0.01);
  check_close("variance", m.var, mean * mean, 0.03);
}

/* median 1e6 ns, sigma 0.5: mean = m e^(s^2/2), variance = (e^(s^2) - 1)
 * e^(s^2) m^2. The log of the samples is normal(ln m, s^2): its mean to
 * +-0.005 (4.5 standard errors), its variance to 2% (3 s.e.), and half the
 * samples lie below the median (+-0.005, 4.5 s.e.). */
static void lognormal_has_its_median_mean_and_variance(void **state) {
  (void)state;
  const double median = 1e6, sigma = 0.5;
  struct rng r;
  rng_stream_init(&r, 42, "lognormal");
  for (size_t i = 0; i < SAMPLES; i++) samples[i] = rng_lognormal_ns(&r, (uint64_t)median, 500);
  struct moments m = moments_of(samples, SAMPLES);
  check_close("mean", m.mean, median * exp(sigma * sigma / 2), 0.01);
  check_close("variance", m.var, (exp(sigma * sigma) - 1) * exp(sigma * sigma) * median * median, 0.05);

  double lsum = 0, lsq = 0;
  size_t below = 0;
  for (size_t i = 0; i < SAMPLES; i++) {
    double z = log((double)samples[i] / median);
    lsum += z;
    lsq += z * z;
    below += samples[i] < median;
  }
  double lmean = lsum / SAMPLES, lvar = lsq / SAMPLES - lmean * lmean;
  if (fabs(lmean) > 0.005) fail_msg("mean of ln(x/median) %.4f, want 0", lmean);
  check_close("variance of ln x", lvar, sigma * sigma, 0.02);
  double frac = (double)below / SAMPLES;
  if (fabs(frac - 0.5) > 0.005) fail_msg("fraction below median %.4f", frac);
}

/* A normal's tails: P(|Z| > 2) = 4.55%, P(|Z| > 3) = 0.27%; with sigma = 1
 * that is x > e^2 m or x < m / e^2. Tolerances are 4 standard errors. */
static void lognormal_tails_are_normal(void **state) {
  (void)state;
  const double median = 1e6;
  struct rng r;
  rng_stream_init(&r, 42, "tails");
  size_t beyond2 = 0, beyond3 = 0;
  for (size_t i = 0; i < SAMPLES; i++) {
    double z = fabs(log((double)rng_lognormal_ns(&r, (uint64_t)median, 1000) / median));
    beyond2 += z > 2;
    beyond3 += z > 3;
  }
  double p2 = (double)beyond2 / SAMPLES, p3 = (double)beyond3 / SAMPLES;
  if (fabs(p2 - 0.0455) > 0.0019) fail_msg("P(|Z|>2) = %.4f", p2);
  if (fabs(p3 - 0.0027) > 0.00047) fail_msg("P(|Z|>3) = %.5f", p3);
}

static void lognormal_with_zero_sigma_is_the_median_and_draws_twice(void **state) {
  (void)state;
  struct rng a, b;
  rng_stream_init(&a, 42, "sigma0");
  b = a;
  for (int i = 0; i < 100; i++) assert_int_equal(rng_lognormal_ns(&a, 123456, 0), 123456);
  for (int i = 0; i < 200; i++) rng_next_u64(&b);
  assert_int_equal(rng_next_u64(&a), rng_next_u64(&b));
}

static void exponential_draws_once(void **state) {
  (void)state;
  struct rng a, b;
  rng_stream_init(&a, 42, "draws");
  b = a;
  for (int i = 0; i < 100; i++) rng_exponential_ns(&a, 1000);
  for (int i = 0; i < 100; i++) rng_next_u64(&b);
  assert_int_equal(rng_next_u64(&a), rng_next_u64(&b));
}

/* The same draws at median/mean 2^62 and 2^30: the big one is the small one
 * times 2^32 until the product passes 2^64 (e^x > 4), then exactly
 * UINT64_MAX — never a wrapped small number. */
static void check_saturation(uint64_t big, uint64_t small) {
  const double four = 4.0 * (double)(UINT64_C(1) << 30);
  if ((double)small > four * 1.001) {
    assert_int_equal(big, UINT64_MAX);
  } else if ((double)small < four * 0.999) {
    assert_true(big != UINT64_MAX);
    double diff = fabs((double)big - (double)small * 4294967296.0);
    if (diff > 4294967296.0) fail_msg("big %llu, small %llu", (unsigned long long)big, (unsigned long long)small);
  }
}

static void variates_saturate_instead_of_wrapping(void **state) {
  (void)state;
  struct rng a, b;
  int saturated = 0;
  rng_stream_init(&a, 42, "saturate");
  b = a;
  for (int i = 0; i < 2000; i++) {
    uint64_t big = rng_exponential_ns(&a, UINT64_C(1) << 62);
    check_saturation(big, rng_exponential_ns(&b, UINT64_C(1) << 30));
    saturated += big == UINT64_MAX;
  }
  for (int i = 0; i < 2000; i++) {
    uint64_t big = rng_lognormal_ns(&a, UINT64_C(1) << 62, 1000);
    check_saturation(big, rng_lognormal_ns(&b, UINT64_C(1) << 30, 1000));
    saturated += big == UINT64_MAX;
  }
  assert_true(saturated > 0); /* P(-ln U > ln 4) = 25%, P(Z > ln 4) = 8% */
}

/* Uniform on [lo, hi]: mean (lo + hi) / 2, variance ((hi - lo + 1)^2 - 1)/12.
 * Standard errors 0.06% and 0.2%; tolerances 0.5% and 1%. */
static void uniform_has_its_mean_and_variance(void **state) {
  (void)state;
  const uint64_t lo = 1000, hi = 501000;
  struct rng r;
  rng_stream_init(&r, 42, "uniform");
  for (size_t i = 0; i < SAMPLES; i++) {
    samples[i] = rng_uniform_ns(&r, lo, hi);
    assert_true(samples[i] >= lo && samples[i] <= hi);
  }
  struct moments m = moments_of(samples, SAMPLES);
  double w = (double)(hi - lo + 1);
  check_close("mean", m.mean, (lo + hi) / 2.0, 0.005);
  check_close("variance", m.var, (w * w - 1) / 12, 0.01);
}

/* Bins (0..100], (100..1000] x3 weight, an empty bin, (5000..10000]: mean of
 * the mixture of discrete uniforms. Standard error ~0.5%; tolerance 2%. */
static void empirical_follows_the_histogram(void **state) {
  (void)state;
  static const struct rng_hist_bin bins[] = {{100, 1}, {1000, 3}, {5000, 0}, {10000, 1}};
  const double total = 5;
  const double want_mean = (1 * 50.0 + 3 * 550.5 + 1 * 7500.5) / total;
  struct rng r;
  rng_stream_init(&r, 42, "empirical");
  size_t in_empty = 0, in_first = 0;
  for (size_t i = 0; i < SAMPLES; i++) {
    samples[i] = rng_empirical_ns(&r, bins, ARRAY_LEN(bins));
    assert_true(samples[i] <= 10000);
    in_empty += samples[i] > 1000 && samples[i] <= 5000;
    in_first += samples[i] <= 100;
  }
  assert_int_equal(in_empty, 0);
  double frac_first = (double)in_first / SAMPLES;
  if (fabs(frac_first - 0.2) > 0.005) fail_msg("first bin fraction %.4f, want 0.2", frac_first);
  check_close("mean", moments_of(samples, SAMPLES).mean, want_mean, 0.02);
}

static void histogram_problems_are_named(void **state) {
  (void)state;
  size_t bad = 99;
  assert_non_null(rng_hist_problem(NULL, 0, &bad));
  static const struct rng_hist_bin unsorted[] = {{100, 1}, {100, 1}};
  assert_string_equal(rng_hist_problem(unsorted, 2, &bad), "upper bound not above the previous bin's");
  assert_int_equal(bad, 1);
  static const struct rng_hist_bin empty[] = {{100, 0}, {200, 0}};
  assert_string_equal(rng_hist_problem(empty, 2, &bad), "all counts are 0");
  static const struct rng_hist_bin overflow[] = {{100, UINT64_MAX}, {200, 1}};
  assert_string_equal(rng_hist_problem(overflow, 2, &bad), "counts overflow 64 bits");
  assert_int_equal(bad, 1);
  static const struct rng_hist_bin fixed[] = {{99999, 0}, {100000, 5}};
  assert_null(rng_hist_problem(fixed, 2, &bad));
  struct rng r;
  rng_stream_init(&r, 1, "fixed");
  for (int i = 0; i < 100; i++) assert_int_equal(rng_empirical_ns(&r, fixed, 2), 100000);
  assert_int_equal(rng_empirical_ns(&r, empty, 2), 0);
}

/* ---- pinned values: the first eight of each variate for seed 42, stream
 * "storage". The exponential and lognormal values were checked once against
 * a 50-digit mpmath evaluation of the same draws (equal, each being the exact
 * value rounded to the nearest ns). Any change in the arithmetic shows here. */
static void variates_are_pinned(void **state) {
  (void)state;
  static const uint64_t exponential[] = {634486, 2311, 150793, 761087, 347645, 725858, 241126, 363666};
  static const uint64_t lognormal[] = {1756255, 764327, 660478, 889261, 665646, 1430559, 616558, 858385};
  static const uint64_t uniform[] = {1530, 1998, 1860, 1467, 1707, 1484, 1786, 1695};
  static const uint64_t empirical[] = {998, 7336, 536, 726, 566, 204, 498, 7326};
  static const struct rng_hist_bin bins[] = {{100, 1}, {1000, 3}, {5000, 0}, {10000, 1}};
  struct rng r;
  rng_stream_init(&r, 42, "storage");
  for (size_t i = 0; i < 8; i++) assert_int_equal(rng_exponential_ns(&r, 1000000), exponential[i]);
  rng_stream_init(&r, 42, "storage");
  for (size_t i = 0; i < 8; i++) assert_int_equal(rng_lognormal_ns(&r, 1000000, 500), lognormal[i]);
  rng_stream_init(&r, 42, "storage");
  for (size_t i = 0; i < 8; i++) assert_int_equal(rng_uniform_ns(&r, 1000, 2000), uniform[i]);
  rng_stream_init(&r, 42, "storage");
  for (size_t i = 0; i < 8; i++) assert_int_equal(rng_empirical_ns(&r, bins, 4), empirical[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(neg_ln_is_accurate),
      cmocka_unit_test(exp2_fraction_is_accurate),
      cmocka_unit_test(sqrt_is_floor_of_exact_root),
      cmocka_unit_test(cos_of_turn_is_accurate),
      cmocka_unit_test(mul_exp_scales_and_saturates),
      cmocka_unit_test(exponential_has_its_mean_and_variance),
      cmocka_unit_test(lognormal_has_its_median_mean_and_variance),
      cmocka_unit_test(lognormal_tails_are_normal),
      cmocka_unit_test(lognormal_with_zero_sigma_is_the_median_and_draws_twice),
      cmocka_unit_test(exponential_draws_once),
      cmocka_unit_test(variates_saturate_instead_of_wrapping),
      cmocka_unit_test(uniform_has_its_mean_and_variance),
      cmocka_unit_test(empirical_follows_the_histogram),
      cmocka_unit_test(histogram_problems_are_named),
      cmocka_unit_test(variates_are_pinned),
  };
  return cmocka_run_group_tests_name("rng variates", tests, NULL, NULL);
}
