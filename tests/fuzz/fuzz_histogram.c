/* fuzz_histogram.c — libFuzzer harness: the empirical-latency histogram file
 * reader (sim/config/histogram.c, histogram_read_file), which a config
 * reaches through <histogram file="...">.
 *
 * The input is the histogram file's bytes, opened by path from a memfd. The
 * reader is called directly through the config module's internal header (as
 * its white-box tests do) rather than through a whole config load, so the
 * fuzzer spends its time in the file format instead of the XSD.
 *
 * Oracles besides the sanitizers:
 *  - a rejected file gives a one-line message;
 *  - an accepted one has 1..CONFIG_MAX_HISTOGRAM_BINS bins that pass
 *    histogram_check_bins, and survives being inlined into a config's
 *    canonical XML and loaded back (what every trace header does with it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "config/internal.h"
#include "fuzz_common.h"
#include "fuzz_config_check.h"

static bool initialized;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!initialized) {
    initialized = true;
    atexit(xmlCleanupParser);
  }
  char path[64];
  int fd = fuzz_file(data, size, path);
  struct diag err = {{0}};
  struct load_ctx c = {.name = "fuzz.xml", .err = &err};
  struct latency_config *lat = calloc(1, sizeof *lat);
  if (!lat) fuzz_fail("histogram", "out of memory");
  const char *field = "swap-device/latency/histogram/@file";
  bool ok = histogram_read_file(&c, NULL, field, path, lat);
  fuzz_file_close(fd);
  if (!ok) {
    fuzz_check_message("histogram", &err);
    free(lat);
    return 0;
  }
  uint32_t bad;
  char why[256];
  if (lat->n_bins == 0 || lat->n_bins > CONFIG_MAX_HISTOGRAM_BINS)
    fuzz_fail("histogram", "accepted with %u bins", lat->n_bins);
  if (!histogram_check_bins(lat, &bad, why, sizeof why))
    fuzz_fail("histogram", "accepted bins fail histogram_check_bins: %s", why);

  struct sim_config *cfg = config_new();
  if (!cfg) fuzz_fail("histogram", "out of memory");
  cfg->swap.latency.dist = LATENCY_EMPIRICAL;
  cfg->swap.latency.n_bins = lat->n_bins;
  memcpy(cfg->swap.latency.bins, lat->bins, sizeof lat->bins);
  snprintf(cfg->swap.latency.histogram_path, sizeof cfg->swap.latency.histogram_path, "fuzz.hist");
  fuzz_config_round_trip("histogram", "fuzz.xml", cfg);
  free(cfg);
  free(lat);
  return 0;
}
