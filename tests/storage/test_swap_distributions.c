/* test_swap_distributions.c — every latency distribution the config offers,
 * sampled through the device (latency.h + swap_device.h) with no queueing
 * and no transfer, so each request's latency is one draw: its sample mean
 * and variance against the analytic values.
 *
 * 200000 draws from a fixed seed, so the outcome is deterministic; each
 * tolerance is at least 5 standard errors of the estimate for that
 * distribution (SE of the mean = sd / sqrt(n); of the variance =
 * var * sqrt((kurtosis - 1) / n)), stated beside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "helpers.h"
#include "storage/latency.h"
#include "storage/swap_device.h"

#define SAMPLES 200000
/* Far apart: a request never waits for the previous one (the longest draw
 * here is well below this). */
#define SPACING_NS UINT64_C(1000000000000)

struct moments {
  double mean, var;
  uint64_t min, max;
};

static struct moments through_device(const struct latency_config *cfg, const char *stream) {
  static struct latency_source src;
  static struct swap_device dev;
  latency_source_init(&src, cfg, 2024, stream);
  swap_device_init(&dev, 1, 0, latency_source_sample, &src);
  double sum = 0, sum2 = 0;
  struct moments m = {.min = UINT64_MAX};
  for (uint64_t i = 0; i < SAMPLES; i++) {
    struct swap_io io;
    swap_device_submit_io(&dev, i * SPACING_NS, 4096, &io);
    assert_int_equal(io.start_ns, io.arrival_ns); /* no queueing */
    uint64_t v = io.done_ns - io.arrival_ns;
    sum += (double)v;
    sum2 += (double)v * (double)v;
    if (v < m.min) m.min = v;
    if (v > m.max) m.max = v;
  }
  m.mean = sum / SAMPLES;
  m.var = sum2 / SAMPLES - m.mean * m.mean;
  assert_int_equal(dev.stats.total_queue_ns, 0);
  return m;
}

static void fixed_is_exact(void **state) {
  (void)state;
  struct latency_config c = {.dist = LATENCY_FIXED, .fixed_ns = 12345};
  struct moments m = through_device(&c, "fixed");
  assert_int_equal(m.min, 12345);
  assert_int_equal(m.max, 12345);
}

static void uniform_mean_and_variance(void **state) {
  (void)state;
  struct latency_config c = {.dist = LATENCY_UNIFORM, .min_ns = 50000, .max_ns = 150000};
  struct moments m = through_device(&c, "uniform");
  double n = 100001; /* integers 50000..150000 */
  double var = (n * n - 1) / 12;
  /* SE(mean) = 0.065 %, SE(var) = 0.2 % (kurtosis 1.8) */
  CHECK_REL("uniform mean", m.mean, 100000, 0.004);
  CHECK_REL("uniform variance", m.var, var, 0.012);
  assert_true(m.min >= 50000 && m.max <= 150000);
  assert_true(m.min < 50100 && m.max > 149900); /* reaches both ends */
}

static void exponential_mean_and_variance(void **state) {
  (void)state;
  struct latency_config c = {.dist = LATENCY_EXPONENTIAL, .mean_ns = 100000};
  struct moments m = through_device(&c, "exponential");
  /* SE(mean) = 0.22 %, SE(var) = 0.63 % (kurtosis 9) */
  CHECK_REL("exponential mean", m.mean, 100000, 0.012);
  CHECK_REL("exponential variance", m.var, 1e10, 0.035);
}

static void lognormal_mean_and_variance(void **state) {
  (void)state;
  struct latency_config c = {.dist = LATENCY_LOGNORMAL, .median_ns = 100000, .sigma_milli = 500};
  struct moments m = through_device(&c, "lognormal");
  double s2 = 0.25;
  double mean = 100000 * exp(s2 / 2), var = 1e10 * exp(s2) * (exp(s2) - 1);
  /* CV 0.53: SE(mean) = 0.12 %; kurtosis 8.9: SE(var) = 0.6 % */
  CHECK_REL("lognormal mean", m.mean, mean, 0.007);
  CHECK_REL("lognormal variance", m.var, var, 0.035);
}

/* The histogram of the smoke scenario's NVMe-like file, 4 bins: a bin is
 * chosen with probability count/total, then a uniform integer inside it. */
static void empirical_mean_and_variance(void **state) {
  (void)state;
  static struct latency_config c = {.dist = LATENCY_EMPIRICAL, .n_bins = 4};
  c.bins[0] = (struct latency_histogram_bin){50000, 120};
  c.bins[1] = (struct latency_histogram_bin){80000, 3100};
  c.bins[2] = (struct latency_histogram_bin){120000, 610};
  c.bins[3] = (struct latency_histogram_bin){1000000, 4};
  double total = 0, mean = 0, m2 = 0;
  for (uint32_t i = 0; i < c.n_bins; i++) total += (double)c.bins[i].count;
  for (uint32_t i = 0; i < c.n_bins; i++) {
    double lo = i == 0 ? 0 : (double)c.bins[i - 1].upper_ns + 1, hi = (double)c.bins[i].upper_ns;
    double p = (double)c.bins[i].count / total, w = hi - lo + 1;
    double bm = (lo + hi) / 2, bv = (w * w - 1) / 12;
    mean += p * bm;
    m2 += p * (bv + bm * bm);
  }
  double var = m2 - mean * mean;
  struct moments m = through_device(&c, "empirical");
  /* CV 0.36: SE(mean) = 0.08 %; the rare 1 ms bin makes the variance
   * heavy-tailed (kurtosis ~ 410): SE(var) = 4.5 %, so 23 % is 5 SE */
  CHECK_REL("empirical mean", m.mean, mean, 0.005);
  CHECK_REL("empirical variance", m.var, var, 0.23);
  assert_true(m.max <= 1000000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fixed_is_exact),
      cmocka_unit_test(uniform_mean_and_variance),
      cmocka_unit_test(exponential_mean_and_variance),
      cmocka_unit_test(lognormal_mean_and_variance),
      cmocka_unit_test(empirical_mean_and_variance),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
