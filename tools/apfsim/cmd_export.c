/* cmd_export.c — `apfsim export --perfetto TRACE -o FILE`: a trace as a
 * timeline for ui.perfetto.dev (sim/timeline; docs/perfetto.md). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "timeline/timeline.h"

static const char usage[] =
    "usage: apfsim export --perfetto TRACE -o FILE [--quiet]\n"
    "\n"
    "Writes TRACE as Chrome trace-event JSON, the format ui.perfetto.dev and\n"
    "chrome://tracing open: a track per vCPU (user / kernel / halted / blocked on\n"
    "host), per guest task, swap-device requests and outstanding APF tokens as async\n"
    "slices, and each APF token as an arrow from not-present to page-ready. Events\n"
    "outside the vocabulary (docs/trace-format.md) become instant events.\n"
    "\n"
    "  --perfetto   the output format (the only one, and the default)\n"
    "  -o FILE      where to write; written to a temporary file and renamed, so a\n"
    "               failed export leaves nothing under FILE; '-' writes to stdout\n"
    "  --quiet      no summary line on stderr\n"
    "\n"
    "exit status: 0 written, 2 bad argument or corrupt trace (FILE:LINE: field:\n"
    "problem; nothing written), 5 internal error (e.g. out of memory, disk full).\n";

int cmd_export(int argc, char **argv) {
  static const struct option opts[] = {{"perfetto", no_argument, NULL, 'P'},
                                       {"output", required_argument, NULL, 'o'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *output = NULL;
  int quiet = 0, c;
  while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
    switch (c) {
      case 'P': break;
      case 'o': output = optarg; break;
      case 'q': quiet = 1; break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "apfsim export: expected exactly one TRACE\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  if (!output) {
    fprintf(stderr, "apfsim export: expected -o FILE (or -o - for stdout)\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  const char *trace = argv[optind];
  struct timeline_stats st;
  struct diag err = {{0}};
  enum timeline_result res = timeline_export_perfetto(trace, output, &st, &err);
  if (res != TIMELINE_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return res == TIMELINE_BAD_INPUT ? EXIT_BAD_INPUT : EXIT_INTERNAL;
  }
  if (!quiet)
    fprintf(stderr,
            "apfsim export: %s: %" PRIu64 " events -> %" PRIu64 " vCPU and %" PRIu64
            " task tracks, %" PRIu64 " slices, %" PRIu64 " APF flows, %" PRIu64
            " instants (%" PRIu64 " outside the vocabulary, %" PRIu64 " malformed); %" PRIu64
            " tokens never ready, %" PRIu64 " requests unfinished\n",
            strcmp(output, "-") ? output : "stdout", st.events, st.vcpus, st.tasks, st.slices,
            st.flows, st.instants, st.unknown, st.malformed, st.tokens_never_ready,
            st.requests_unfinished);
  return 0;
}
