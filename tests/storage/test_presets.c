/* test_presets.c — the device presets (presets.h) are what docs/storage.md
 * says: the table there is parsed and compared with the code, the stated
 * means and saturation rates follow from the parameters, and the simulated
 * device delivers them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "helpers.h"
#include "storage/latency.h"
#include "storage/presets.h"
#include "storage/swap_device.h"

static const enum device_preset all[] = {DEVICE_PRESET_CUSTOM,   DEVICE_PRESET_HDD,
                                         DEVICE_PRESET_SATA_SSD, DEVICE_PRESET_NVME_SSD,
                                         DEVICE_PRESET_ZSWAP,    DEVICE_PRESET_RDMA};
#define N_ALL (sizeof all / sizeof all[0])

/* ---- docs/storage.md, section "Device presets": one table row per preset:
 * | `name` | dist, median|value X unit[, σ S] | channels | bandwidth | mean ns | reads/s | ... */

static uint64_t parse_duration_ns(const char *s) {
  char *end;
  double v = strtod(s, &end);
  while (*end == ' ') end++;
  double unit = 0;
  if (strncmp(end, "ns", 2) == 0) unit = 1;
  else if (strncmp(end, "us", 2) == 0 || strncmp(end, "µs", 3) == 0) unit = 1e3;
  else if (strncmp(end, "ms", 2) == 0) unit = 1e6;
  else fail_msg("no duration unit in '%s'", s);
  return (uint64_t)llround(v * unit);
}

static uint64_t parse_bandwidth(const char *s) {
  while (*s == ' ') s++;
  if (strncmp(s, "unlimited", 9) == 0) return 0;
  char *end;
  double v = strtod(s, &end);
  if (strncmp(end, "GB/s", 4) == 0) return (uint64_t)llround(v * 1e9);
  if (strncmp(end, "MB/s", 4) == 0) return (uint64_t)llround(v * 1e6);
  fail_msg("bad bandwidth '%s'", s);
  return 0;
}

struct doc_row {
  char name[32];
  char latency[128];
  uint32_t channels;
  uint64_t bandwidth, mean_ns, per_s;
};

static size_t read_doc_rows(struct doc_row *rows, size_t max) {
  FILE *f = fopen(APFSIM_SOURCE_DIR "/docs/storage.md", "r");
  assert_non_null(f);
  char line[2048];
  bool in_section = false;
  size_t n = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "## ", 3) == 0) in_section = strncmp(line, "## Device presets", 17) == 0;
    if (!in_section || strncmp(line, "| `", 3) != 0 || n == max) continue;
    char *cols[8] = {0};
    size_t nc = 0;
    char *save = NULL;
    for (char *p = strtok_r(line + 1, "|", &save); p && nc < 8; p = strtok_r(NULL, "|", &save))
      cols[nc++] = p;
    assert_true(nc >= 6);
    struct doc_row *r = &rows[n++];
    assert_int_equal(sscanf(cols[0], " `%31[^`]`", r->name), 1);
    snprintf(r->latency, sizeof r->latency, "%s", cols[1]);
    r->channels = (uint32_t)strtoul(cols[2], NULL, 10);
    r->bandwidth = parse_bandwidth(cols[3]);
    r->mean_ns = strtoull(cols[4], NULL, 10);
    r->per_s = strtoull(cols[5], NULL, 10);
  }
  fclose(f);
  return n;
}

static void docs_table_matches_presets(void **state) {
  (void)state;
  struct doc_row rows[16];
  size_t n = read_doc_rows(rows, 16);
  assert_int_equal(n, N_ALL);
  for (size_t i = 0; i < n; i++) {
    const struct swap_device_preset *p = storage_preset_by_name(rows[i].name);
    if (!p) fail_msg("docs/storage.md names preset '%s', which the code does not have", rows[i].name);
    const char *lat = rows[i].latency;
    if (p->dist == LATENCY_FIXED) {
      const char *v = strstr(lat, "fixed ");
      assert_non_null(v);
      assert_int_equal(parse_duration_ns(v + 6), p->value_ns);
    } else {
      const char *m = strstr(lat, "median "), *s = strstr(lat, "σ ");
      assert_non_null(strstr(lat, "lognormal"));
      assert_non_null(m);
      assert_non_null(s);
      assert_int_equal(parse_duration_ns(m + 7), p->value_ns);
      assert_int_equal(llround(strtod(s + strlen("σ "), NULL) * 1000), p->sigma_milli);
    }
    assert_int_equal(rows[i].channels, p->channels);
    assert_int_equal(rows[i].bandwidth, p->bandwidth_bytes_per_s);
    assert_int_equal(rows[i].mean_ns, p->mean_4k_ns);
    assert_int_equal(rows[i].per_s, p->max_4k_per_s);
  }
}

static void lookup_and_apply(void **state) {
  (void)state;
  for (size_t i = 0; i < N_ALL; i++) {
    const struct swap_device_preset *p = storage_preset(all[i]);
    assert_non_null(p);
    assert_int_equal(p->id, all[i]);
    assert_ptr_equal(storage_preset_by_name(p->name), p);
    assert_non_null(p->source);
    static struct swap_device_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.latency.mean_ns = 777; /* not the preset's: left alone */
    assert_true(storage_preset_apply(all[i], &cfg));
    assert_int_equal(cfg.preset, all[i]);
    assert_int_equal(cfg.latency.dist, p->dist);
    if (p->dist == LATENCY_FIXED) {
      assert_int_equal(cfg.latency.fixed_ns, p->value_ns);
    } else {
      assert_int_equal(cfg.latency.median_ns, p->value_ns);
      assert_int_equal(cfg.latency.sigma_milli, p->sigma_milli);
    }
    assert_int_equal(cfg.latency.mean_ns, 777);
    assert_int_equal(cfg.channels, p->channels);
    assert_int_equal(cfg.bandwidth_bytes_per_s, p->bandwidth_bytes_per_s);
  }
  assert_null(storage_preset((enum device_preset)99));
  assert_null(storage_preset_by_name("floppy"));
  assert_null(storage_preset_by_name(NULL));
  struct swap_device_config cfg = {.channels = 3};
  assert_false(storage_preset_apply((enum device_preset)99, &cfg));
  assert_int_equal(cfg.channels, 3);
}

static double analytic_access_mean(const struct swap_device_preset *p) {
  if (p->dist == LATENCY_FIXED) return (double)p->value_ns;
  double s = p->sigma_milli / 1000.0;
  return (double)p->value_ns * exp(s * s / 2);
}

/* The stated figures follow from the parameters: mean = E[access] + 4 KiB
 * transfer; rate = min(channels / mean, bandwidth / 4 KiB). */
static void stated_figures_follow_from_parameters(void **state) {
  (void)state;
  for (size_t i = 0; i < N_ALL; i++) {
    const struct swap_device_preset *p = storage_preset(all[i]);
    double mean = analytic_access_mean(p) +
                  (double)swap_device_transfer_ns(4096, p->bandwidth_bytes_per_s);
    if (fabs(mean - (double)p->mean_4k_ns) > 1)
      fail_msg("%s: stated mean %llu ns, parameters give %.1f", p->name,
               (unsigned long long)p->mean_4k_ns, mean);
    double rate = p->channels * 1e9 / mean;
    if (p->bandwidth_bytes_per_s && p->bandwidth_bytes_per_s / 4096.0 < rate)
      rate = p->bandwidth_bytes_per_s / 4096.0;
    if (fabs(rate - (double)p->max_4k_per_s) > 1)
      fail_msg("%s: stated rate %llu/s, parameters give %.1f", p->name,
               (unsigned long long)p->max_4k_per_s, rate);
  }
}

/* The device built from each preset: the mean latency of 4 KiB reads on an
 * idle device (20000 reads far apart; CV <= 0.31 so SE <= 0.22 %; 1 %
 * tolerance), and the throughput of 20000 reads submitted at once: at most
 * the stated bound (+ 0.2 % for sampling) and at least 93 % of it — the
 * link's reservation timeline loses idle stretches shorter than a transfer
 * (docs/storage.md, "Queueing semantics": 94-97 % for the link-heavy
 * presets). */
static void simulated_device_delivers_stated_figures(void **state) {
  (void)state;
  static struct swap_device dev;
  static struct latency_source src;
  static struct swap_device_config cfg;
  const uint64_t n = 20000;
  for (size_t i = 0; i < N_ALL; i++) {
    const struct swap_device_preset *p = storage_preset(all[i]);
    memset(&cfg, 0, sizeof cfg);
    storage_preset_apply(all[i], &cfg);
    latency_source_init(&src, &cfg.latency, 5, "swap-device");
    swap_device_init(&dev, cfg.channels, cfg.bandwidth_bytes_per_s, latency_source_sample, &src);
    for (uint64_t k = 0; k < n; k++) swap_device_submit(&dev, k * UINT64_C(1000000000), 4096);
    assert_int_equal(dev.stats.total_queue_ns, 0);
    CHECK_REL(p->name, (double)dev.stats.total_latency_ns / n, p->mean_4k_ns, 0.01);

    swap_device_init(&dev, cfg.channels, cfg.bandwidth_bytes_per_s, latency_source_sample, &src);
    for (uint64_t k = 0; k < n; k++) swap_device_submit(&dev, 0, 4096);
    double rate = n * 1e9 / (double)dev.stats.last_done_ns;
    double bound = (double)p->max_4k_per_s;
    if (rate > bound * 1.002 || rate < bound * 0.93)
      fail_msg("%s: saturated at %.0f reads/s, bound %.0f", p->name, rate, bound);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(docs_table_matches_presets),
      cmocka_unit_test(lookup_and_apply),
      cmocka_unit_test(stated_figures_follow_from_parameters),
      cmocka_unit_test(simulated_device_delivers_stated_figures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
