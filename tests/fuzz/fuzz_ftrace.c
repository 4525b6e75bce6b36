/* fuzz_ftrace.c — libFuzzer harness: the ftrace importer (sim/ftrace,
 * `apfsim import-ftrace`): text as `trace-cmd report` or the tracing `trace`
 * file prints it, parsed line by line, paired, and written out as a latency
 * histogram and a replay schedule.
 *
 * The input is the ftrace text (memfd). The pairing mode and bin count are
 * derived from the input's size (size % 3, 1 + size % 255) so every mode is
 * reached without changing the input format the seeds use.
 *
 * Oracles besides the sanitizers:
 *  - a failure is a one-line message; the bad-line reports are within bounds;
 *  - the histogram has strictly increasing bounds, at most bins + 1 entries,
 *    and counts adding up to the pairs;
 *  - the histogram file it writes is accepted by the config's histogram
 *    reader with the same bins (docs/ftrace-import.md: it "plugs into"
 *    dist="empirical"), and the schedule has one line per pair.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "config/internal.h"
#include "fuzz_common.h"
#include "ftrace/ftrace.h"

static void check_histogram(const struct ftrace_import *im, unsigned bins) {
  struct ftrace_hist_bin out[FTRACE_MAX_BINS + 1];
  size_t nb = ftrace_histogram(im, bins, out);
  if (nb == 0 || nb > (size_t)bins + 1) fuzz_fail("ftrace", "%zu bins for %u requested", nb, bins);
  uint64_t total = 0;
  for (size_t i = 0; i < nb; i++) {
    if (i && out[i].upper_ns <= out[i - 1].upper_ns) fuzz_fail("ftrace", "bin %zu bound not increasing", i);
    total += out[i].count;
  }
  if (total != im->n_pairs) fuzz_fail("ftrace", "bins count %llu of %zu pairs", (unsigned long long)total, im->n_pairs);

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) fuzz_fail("ftrace", "open_memstream failed");
  bool wrote = ftrace_write_histogram(f, im, bins, "fuzz\ninput.txt");
  fclose(f);
  if (!wrote) fuzz_fail("ftrace", "could not write the histogram");

  char path[64];
  int fd = fuzz_file((const uint8_t *)text, len, path);
  struct diag err = {{0}};
  struct load_ctx c = {.name = "fuzz.xml", .err = &err};
  struct latency_config *lat = calloc(1, sizeof *lat);
  if (!lat) fuzz_fail("ftrace", "out of memory");
  if (!histogram_read_file(&c, NULL, "histogram/@file", path, lat))
    fuzz_fail("ftrace", "the config rejects the written histogram: %s\n%s", err.msg, text);
  fuzz_file_close(fd);
  if (lat->n_bins != nb) fuzz_fail("ftrace", "histogram file has %u bins, ftrace_histogram %zu", lat->n_bins, nb);
  for (size_t i = 0; i < nb; i++)
    if (lat->bins[i].upper_ns != out[i].upper_ns || lat->bins[i].count != out[i].count)
      fuzz_fail("ftrace", "bin %zu reads back different", i);
  free(lat);
  free(text);
}

static void check_schedule(const struct ftrace_import *im) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) fuzz_fail("ftrace", "open_memstream failed");
  bool wrote = ftrace_write_schedule(f, im, "fuzz\rinput.txt");
  fclose(f);
  if (!wrote) fuzz_fail("ftrace", "could not write the schedule");
  size_t lines = 0;
  for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
  if (lines != im->n_pairs + 4) fuzz_fail("ftrace", "schedule has %zu lines for %zu pairs", lines, im->n_pairs);
  free(text);
}

static bool initialized;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!initialized) {
    initialized = true;
    atexit(xmlCleanupParser);
  }
  char path[64];
  int fd = fuzz_file(data, size, path);
  enum ftrace_pairing pairing = (enum ftrace_pairing)(size % 3);
  unsigned bins = 1 + (unsigned)(size % FTRACE_MAX_BINS);
  struct ftrace_import im;
  struct diag d = {{0}};
  bool ok = ftrace_import_file(path, pairing, &im, &d);
  fuzz_file_close(fd);
  if (im.n_bad > FTRACE_REPORTED_LINES || im.n_bad > im.unparseable) fuzz_fail("ftrace", "bad-line report out of range");
  for (size_t i = 0; i < im.n_bad; i++)
    if (!im.bad[i].why[0] || im.bad[i].line < 1 || im.bad[i].line > im.lines) fuzz_fail("ftrace", "bad line %zu", i);
  if (!ok) {
    fuzz_check_message("ftrace", &d);
  } else {
    fuzz_note("ftrace", "accepted: %llu events, %zu pairs, %llu unparseable", (unsigned long long)im.events,
              im.n_pairs, (unsigned long long)im.unparseable);
    if (im.pairing == FTRACE_PAIR_AUTO) fuzz_fail("ftrace", "pairing left at auto");
    for (size_t i = 0; i < im.n_pairs; i++) {
      if (im.pairs[i].latency_ns == 0) fuzz_fail("ftrace", "pair %zu has latency 0", i);
      if (i && im.pairs[i].start_ns < im.pairs[i - 1].start_ns) fuzz_fail("ftrace", "pairs not by start time");
    }
    if (im.n_pairs) {
      check_histogram(&im, bins);
      check_schedule(&im);
    }
  }
  ftrace_import_free(&im);
  return 0;
}
