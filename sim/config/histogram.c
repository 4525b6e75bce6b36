/* histogram.c — empirical latency histograms, read from a small text file
 * next to the config and inlined into the struct (and into the canonical XML,
 * so a trace header carries them and replay needs no other file).
 *
 * File format: one bin per line, "<upper bound> <count>", e.g. "10us 42";
 * a bin covers (previous upper bound, upper bound]. Blank lines and lines
 * starting with '#' are ignored. Bounds strictly increase; at most
 * CONFIG_MAX_HISTOGRAM_BINS bins; the counts sum to a non-zero 64-bit value.
 *
 * Not for: drawing samples (sim/storage).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

bool histogram_check_bins(const struct latency_config *lat, uint32_t *bad, char *why, size_t len) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < lat->n_bins; i++) {
    const struct latency_histogram_bin *b = &lat->bins[i];
    *bad = i;
    if (b->upper_ns == 0) {
      snprintf(why, len, "bin upper bound must be above 0ns");
      return false;
    }
    if (i > 0 && b->upper_ns <= lat->bins[i - 1].upper_ns) {
      char cur[32], prev[32];
      value_format(T_DURATION, 0, NULL, b->upper_ns, cur, sizeof cur);
      value_format(T_DURATION, 0, NULL, lat->bins[i - 1].upper_ns, prev, sizeof prev);
      snprintf(why, len, "bin upper bound %s is not above the previous one (%s)", cur, prev);
      return false;
    }
    if (b->count > UINT64_MAX - total) {
      snprintf(why, len, "bin counts add up to more than 64 bits");
      return false;
    }
    total += b->count;
  }
  if (total == 0) {
    *bad = HISTOGRAM_WHOLE;
    snprintf(why, len, "all bin counts are 0");
    return false;
  }
  return true;
}


static bool parse_line(struct load_ctx *c, const char *file, long line, const char *field,
                       char *text, struct latency_config *lat) {
  char *save = NULL;
  char *upper = strtok_r(text, " \t\r", &save);
  if (!upper || upper[0] == '#') return true;
  char *count = strtok_r(NULL, " \t\r", &save);
  char *extra = count ? strtok_r(NULL, " \t\r", &save) : NULL;
  if (!count || (extra && extra[0] != '#'))
    return config_fail_in(c, file, line, field,
                        "expected '<upper bound> <count>' (e.g. '10us 42'), got '%s%s%s'", upper,
                        count ? " " : "", count ? count : "");
  if (lat->n_bins == CONFIG_MAX_HISTOGRAM_BINS)
    return config_fail_in(c, file, line, field, "more than %d bins", CONFIG_MAX_HISTOGRAM_BINS);
  char why[256];
  uint64_t u, n;
  if (!value_parse(T_DURATION, 0, NULL, upper, &u, why, sizeof why))
    return config_fail_in(c, file, line, field, "upper bound %s", why);
  if (!value_parse(T_UINT, 0, NULL, count, &n, why, sizeof why))
    return config_fail_in(c, file, line, field, "count %s", why);
  lat->bins[lat->n_bins].upper_ns = u;
  lat->bins[lat->n_bins].count = n;
  lat->n_bins++;
  uint32_t bad;
  if (!histogram_check_bins(lat, &bad, why, sizeof why) && bad + 1 == lat->n_bins)
    return config_fail_in(c, file, line, field, "%s", why);
  return true;
}

bool histogram_read_file(struct load_ctx *c, xmlNode *node, const char *field, const char *file,
                         struct latency_config *lat) {
  char path[CONFIG_PATH_MAX];
  int n = snprintf(path, sizeof path, "%s%s", file[0] == '/' ? "" : c->base_dir, file);
  if (n < 0 || (size_t)n >= sizeof path) return config_fail(c, node, field, "path is too long");
  FILE *f = fopen(path, "rb");
  if (!f) return config_fail(c, node, field, "cannot read '%s': %s", path, strerror(errno));
  static const size_t cap = CONFIG_MAX_HISTOGRAM_FILE_BYTES;
  char *buf = malloc(cap + 1);
  if (!buf) {
    fclose(f);
    return config_fail(c, node, field, "out of memory");
  }
  size_t len = fread(buf, 1, cap + 1, f);
  bool read_error = ferror(f);
  fclose(f);
  bool ok = true;
  if (read_error)
    ok = config_fail(c, node, field, "cannot read '%s'", path);
  else if (len > cap)
    ok = config_fail(c, node, field, "'%s' is larger than 1 MiB", path);
  else if (memchr(buf, '\0', len))
    ok = config_fail(c, node, field, "'%s' is not a text file (it contains NUL bytes)", path);
  if (!ok) {
    free(buf);
    return false;
  }
  buf[len] = '\0';
  lat->n_bins = 0;
  memset(lat->bins, 0, sizeof lat->bins);
  long line = 1;
  for (char *p = buf; ok && *p; line++) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = '\0';
    ok = parse_line(c, path, line, field, p, lat);
    p = nl ? nl + 1 : p + strlen(p);
  }
  free(buf);
  if (!ok) return false;
  if (lat->n_bins == 0) return config_fail(c, node, field, "'%s' has no bins", path);
  uint32_t bad;
  char why[256];
  if (!histogram_check_bins(lat, &bad, why, sizeof why))
    return config_fail(c, node, field, "'%s': %s", path, why);
  return true;
}
