/* cmd_diff.c — `apfsim diff A B`: the first place two traces differ. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "trace/trace.h"

static const char usage[] =
    "usage: apfsim diff A B [--events-only]\n"
    "\n"
    "Compares two traces: the seed and config of their headers, then every event\n"
    "line. At the first difference prints both sides with up to 3 lines of context.\n"
    "\n"
    "  --events-only   compare event lines only, not the header\n"
    "\n"
    "exit status: 0 identical, 2 a trace is unreadable or corrupt, 3 they differ.\n";

int cmd_diff(int argc, char **argv) {
  static const struct option opts[] = {{"events-only", no_argument, NULL, 'E'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int events_only = 0, c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'E': events_only = 1; break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind + 2 != argc) {
    fprintf(stderr, "apfsim diff: expected two traces\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  static const char *const required[] = {"seed", "config"};
  struct diag err = {{0}};
  struct trace_divergence where;
  switch (trace_diff(argv[optind], argv[optind + 1], required, events_only ? 0 : 2, stdout, &where,
                     &err)) {
    case TRACE_DIFF_IDENTICAL:
      printf("identical\n");
      return 0;
    case TRACE_DIFF_DIVERGED: return EXIT_REPLAY_DIVERGED;
    case TRACE_DIFF_ERROR: break;
  }
  fprintf(stderr, "%s\n", err.msg);
  return EXIT_BAD_INPUT;
}
