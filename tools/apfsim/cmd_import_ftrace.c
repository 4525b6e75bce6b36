/* cmd_import_ftrace.c — `apfsim import-ftrace FTRACE`: real KVM tracepoints
 * (ftrace text) -> a latency histogram for swap-device/latency
 * dist="empirical", or a replay schedule (sim/ftrace; docs/ftrace-import.md). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/atomic_file.h"
#include "ftrace/ftrace.h"

static const char usage[] =
    "usage: apfsim import-ftrace FTRACE [-o OUT] [--as histogram|schedule]\n"
    "                            [--pairs auto|get-page|token] [--bins N] [--quiet]\n"
    "\n"
    "Reads KVM tracepoints from ftrace text (as `trace-cmd report` prints it, or the\n"
    "tracing `trace` file), pairs each async page fault with its completion and writes\n"
    "the fault-to-completion latencies as an empirical histogram, which plugs into\n"
    "swap-device/latency dist=\"empirical\" (docs/config.md), or as a replay schedule.\n"
    "\n"
    "  -o OUT         output file (default: stdout); written to a temporary file and\n"
    "                 renamed, so a failed import leaves nothing under OUT\n"
    "  --as KIND      histogram (default) or schedule (OFFSET_NS GVA LATENCY_NS lines)\n"
    "  --pairs WHICH  get-page: kvm_try_async_get_page -> kvm_async_pf_completed by gva\n"
    "                 (the host's fetch, the device's latency); token:\n"
    "                 kvm_async_pf_not_present -> kvm_async_pf_ready by token (what the\n"
    "                 guest waits); auto (default): whichever gives more pairs\n"
    "  --bins N       histogram bins of about equal count, 1..255 (default 64)\n"
    "  --quiet        only problems on stderr, no summary\n"
    "\n"
    "Unparseable lines are counted and the first few reported on stderr with their line\n"
    "numbers; they are never fatal unless nothing parses. Unpaired events are counted.\n"
    "\n"
    "exit status: 0 written, 2 bad argument, unreadable input, nothing parses or no\n"
    "pairs (nothing written), 5 internal error.\n";

static void report(const char *path, const struct ftrace_import *im, bool quiet) {
  for (size_t i = 0; i < im->n_bad; i++)
    fprintf(stderr, "%s:%ld: %s\n", path, im->bad[i].line, im->bad[i].why);
  if (im->unparseable > im->n_bad)
    fprintf(stderr, "%s: ... and %" PRIu64 " more unparseable lines\n", path,
            im->unparseable - im->n_bad);
  if (quiet) return;
  fprintf(stderr, "apfsim import-ftrace: %s: %ld lines, %" PRIu64 " events (", path, im->lines,
          im->events);
  const char *sep = "";
  for (int k = FTRACE_EV_TRY_ASYNC_GET_PAGE; k < FTRACE_EV_COUNT; k++) {
    if (!im->by_kind[k]) continue;
    fprintf(stderr, "%s%s %" PRIu64, sep, ftrace_event_name((enum ftrace_event)k), im->by_kind[k]);
    sep = ", ";
  }
  fprintf(stderr, "%sother %" PRIu64 "), %" PRIu64 " unparseable, %" PRIu64 " skipped\n", sep,
          im->by_kind[FTRACE_EV_OTHER], im->unparseable, im->skipped);
  if (im->lost_notes)
    fprintf(stderr, "apfsim import-ftrace: %" PRIu64
                    " lost-events notes: the tracer dropped events, some pairs are missing\n",
            im->lost_notes);
}

static void report_pairs(const struct ftrace_import *im, bool quiet) {
  if (quiet) return;
  fprintf(stderr,
          "apfsim import-ftrace: %zu pairs by %s; unpaired: %" PRIu64 " starts, %" PRIu64
          " completions",
          im->n_pairs, ftrace_pairing_name(im->pairing), im->unpaired_starts, im->unpaired_ends);
  if (im->wake_all) fprintf(stderr, "; %" PRIu64 " wake-all page-ready (not paired)", im->wake_all);
  if (im->zero_latency)
    fprintf(stderr, "; %" PRIu64 " within one timestamp tick (counted as 1ns)", im->zero_latency);
  if (im->too_long) fprintf(stderr, "; %" PRIu64 " above 1000000s (left out)", im->too_long);
  fputc('\n', stderr);
}

int cmd_import_ftrace(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                       {"as", required_argument, NULL, 'a'},
                                       {"pairs", required_argument, NULL, 'p'},
                                       {"bins", required_argument, NULL, 'b'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *output = "-";
  bool schedule = false, quiet = false;
  enum ftrace_pairing pairing = FTRACE_PAIR_AUTO;
  unsigned bins = FTRACE_DEFAULT_BINS;
  int c;
  while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
    switch (c) {
      case 'o': output = optarg; break;
      case 'a':
        if (!strcmp(optarg, "histogram")) schedule = false;
        else if (!strcmp(optarg, "schedule")) schedule = true;
        else {
          fprintf(stderr, "apfsim import-ftrace: --as: '%s' is not histogram or schedule\n",
                  optarg);
          return EXIT_BAD_INPUT;
        }
        break;
      case 'p':
        if (!ftrace_pairing_parse(optarg, &pairing)) {
          fprintf(stderr, "apfsim import-ftrace: --pairs: '%s' is not auto, get-page or token\n",
                  optarg);
          return EXIT_BAD_INPUT;
        }
        break;
      case 'b': {
        char *end;
        unsigned long v = strtoul(optarg, &end, 10);
        if (*optarg < '0' || *optarg > '9' || *end || v < 1 || v > FTRACE_MAX_BINS) {
          fprintf(stderr, "apfsim import-ftrace: --bins: '%s' is out of range (1..%d)\n", optarg,
                  FTRACE_MAX_BINS);
          return EXIT_BAD_INPUT;
        }
        bins = (unsigned)v;
        break;
      }
      case 'q': quiet = true; break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "apfsim import-ftrace: expected exactly one FTRACE file\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  const char *path = argv[optind];
  struct ftrace_import im;
  struct diag err = {{0}};
  bool ok = ftrace_import_file(path, pairing, &im, &err);
  report(path, &im, quiet);
  if (!ok) {
    fprintf(stderr, "%s\n", err.msg);
    ftrace_import_free(&im);
    return strstr(err.msg, "out of memory") ? EXIT_INTERNAL : EXIT_BAD_INPUT;
  }
  report_pairs(&im, quiet);
  if (im.n_pairs == 0) {
    fprintf(stderr,
            "%s: no %s pairs: nothing to write (is the trace missing %s? try --pairs %s)\n",
            path, ftrace_pairing_name(im.pairing),
            im.pairing == FTRACE_PAIR_TOKEN ? "kvm_async_pf_not_present/kvm_async_pf_ready"
                                            : "kvm_try_async_get_page/kvm_async_pf_completed",
            im.pairing == FTRACE_PAIR_TOKEN ? "get-page" : "token");
    ftrace_import_free(&im);
    return EXIT_BAD_INPUT;
  }

  int status = 0;
  const char *what = schedule ? "schedule" : "histogram";
  if (!strcmp(output, "-")) {
    ok = schedule ? ftrace_write_schedule(stdout, &im, path)
                  : ftrace_write_histogram(stdout, &im, bins, path);
    if (!ok) {
      fprintf(stderr, "apfsim import-ftrace: writing the %s to stdout failed\n", what);
      status = EXIT_INTERNAL;
    }
  } else {
    struct atomic_file af = {0};
    if (!atomic_file_open(&af, output, what, &err)) {
      fprintf(stderr, "%s\n", err.msg);
      status = EXIT_BAD_INPUT;
    } else if (!(schedule ? ftrace_write_schedule(af.f, &im, path)
                          : ftrace_write_histogram(af.f, &im, bins, path))) {
      atomic_file_abort(&af);
      fprintf(stderr, "%s: writing the %s failed\n", output, what);
      status = EXIT_INTERNAL;
    } else if (!atomic_file_commit(&af, what, &err)) {
      fprintf(stderr, "%s\n", err.msg);
      status = EXIT_INTERNAL;
    } else if (!quiet) {
      fprintf(stderr, "apfsim import-ftrace: wrote %s %s\n", what, output);
    }
  }
  ftrace_import_free(&im);
  return status;
}
