/* ftrace_output.c — the imported latencies as an empirical histogram file
 * (docs/config.md, "Histogram files") or a replay schedule
 * (docs/ftrace-import.md). Integer arithmetic only, so the same input gives
 * the same bytes everywhere.
 *
 * Why equal-count bins: the simulator draws a bin with probability
 * count/total, then a latency uniformly inside (previous upper, upper]
 * (sim/rng rng_empirical_ns). Bounds placed at observed quantiles make that
 * a piecewise-linear interpolation of the measured distribution function:
 * fine where samples are dense, wide only where the data is thin, on any
 * scale from a microsecond to seconds. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ftrace/ftrace.h"

static int cmp_u64(const void *pa, const void *pb) {
  uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
  return (a > b) - (a < b);
}

static uint64_t *sorted_latencies(const struct ftrace_import *im) {
  uint64_t *v = malloc((im->n_pairs ? im->n_pairs : 1) * sizeof *v);
  if (!v) return NULL;
  for (size_t i = 0; i < im->n_pairs; i++) v[i] = im->pairs[i].latency_ns;
  qsort(v, im->n_pairs, sizeof *v, cmp_u64);
  return v;
}

size_t ftrace_histogram(const struct ftrace_import *im, unsigned bins,
                        struct ftrace_hist_bin *out) {
  if (!im->n_pairs || bins == 0) return 0;
  if (bins > FTRACE_MAX_BINS) bins = FTRACE_MAX_BINS;
  uint64_t *v = sorted_latencies(im);
  if (!v) return 0;
  size_t n = im->n_pairs, nb = 0;
  /* An empty first bin ends just below the smallest latency, so the first
   * real bin starts at it rather than at 0. */
  if (v[0] > 1) out[nb++] = (struct ftrace_hist_bin){v[0] - 1, 0};
  size_t from = 0;
  for (unsigned k = 1; k <= bins; k++) {
    /* The k-th quantile bound: the ceil(k*n/bins)-th smallest latency. */
    size_t idx = (size_t)(((uint64_t)k * n + bins - 1) / bins) - 1;
    uint64_t upper = v[idx];
    if (nb && out[nb - 1].count && out[nb - 1].upper_ns >= upper) continue;
    size_t to = from;
    while (to < n && v[to] <= upper) to++;
    if (to == from) continue;
    out[nb++] = (struct ftrace_hist_bin){upper, (uint64_t)(to - from)};
    from = to;
  }
  free(v);
  return nb;
}

/* The largest unit that states ns exactly, as a config duration. */
static void duration(uint64_t ns, char *buf, size_t len) {
  static const struct {
    uint64_t ns;
    const char *unit;
  } units[] = {{1000000000u, "s"}, {1000000u, "ms"}, {1000u, "us"}, {1u, "ns"}};
  for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
    if (ns % units[i].ns == 0) {
      snprintf(buf, len, "%" PRIu64 "%s", ns / units[i].ns, units[i].unit);
      return;
    }
  }
}

static const char *pairing_text(enum ftrace_pairing p) {
  return p == FTRACE_PAIR_TOKEN
             ? "kvm_async_pf_not_present -> kvm_async_pf_ready, same token"
             : "kvm_try_async_get_page -> kvm_async_pf_completed, same gva";
}

/* Comment text must stay on one line: a name with a newline would end the
 * comment and start a bogus bin line. */
static void one_line(const char *s, char *buf, size_t len) {
  snprintf(buf, len, "%s", s);
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
}

bool ftrace_write_histogram(FILE *f, const struct ftrace_import *im, unsigned bins,
                            const char *source) {
  if (!im->n_pairs) return false;
  struct ftrace_hist_bin out[FTRACE_MAX_BINS + 1];
  size_t nb = ftrace_histogram(im, bins, out);
  uint64_t *v = sorted_latencies(im);
  if (!nb || !v) {
    free(v);
    return false;
  }
  char name[512], lo[32], med[32], hi[32];
  one_line(source, name, sizeof name);
  duration(v[0], lo, sizeof lo);
  duration(v[(im->n_pairs - 1) / 2], med, sizeof med);
  duration(v[im->n_pairs - 1], hi, sizeof hi);
  free(v);
  fprintf(f,
          "# apfsim empirical latency histogram (docs/config.md, \"Histogram files\")\n"
          "# imported by apfsim import-ftrace from %s\n"
          "# pairs: %s\n"
          "# %zu samples: min %s, median %s, max %s; %zu bins of about equal count\n"
          "# <upper bound> <count>: a bin covers (previous upper bound, upper bound]\n",
          name, pairing_text(im->pairing), im->n_pairs, lo, med, hi, nb);
  for (size_t i = 0; i < nb; i++) {
    char upper[32];
    duration(out[i].upper_ns, upper, sizeof upper);
    fprintf(f, "%s %" PRIu64 "\n", upper, out[i].count);
  }
  return fflush(f) == 0 && !ferror(f);
}

bool ftrace_write_schedule(FILE *f, const struct ftrace_import *im, const char *source) {
  if (!im->n_pairs) return false;
  char name[512];
  one_line(source, name, sizeof name);
  fprintf(f,
          "# apfsim-ftrace-schedule 1\n"
          "# imported by apfsim import-ftrace from %s\n"
          "# pairs: %s\n"
          "# %zu faults; columns: OFFSET_NS GVA LATENCY_NS (offset from the first fault)\n",
          name, pairing_text(im->pairing), im->n_pairs);
  uint64_t t0 = im->pairs[0].start_ns;
  for (size_t i = 0; i < im->n_pairs; i++)
    fprintf(f, "%" PRIu64 " %#" PRIx64 " %" PRIu64 "\n", im->pairs[i].start_ns - t0,
            im->pairs[i].gva, im->pairs[i].latency_ns);
  return fflush(f) == 0 && !ferror(f);
}
