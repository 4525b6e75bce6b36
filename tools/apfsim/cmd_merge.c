/* cmd_merge.c — `apfsim merge A.csv B.csv ... -o ALL.csv`: join the results
 * of a sweep's shards into the CSV one unsharded run writes (sim/sweep/merge.h
 * does the checking and writing). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "sweep/merge.h"

static const char usage[] =
    "usage: apfsim merge SHARD.csv... -o ALL.csv [--partial]\n"
    "\n"
    "Joins the results CSVs of `apfsim sweep --shard K/N` runs into the CSV an\n"
    "unsharded run writes: one header, every point's row once, in point order.\n"
    "Refuses files of different sweeps (header or fingerprint differ), points\n"
    "present twice, and points missing — naming the files, lines and points.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE  the merged CSV (written whole or not at all)\n"
    "  --partial          merge even if points are missing (they are listed)\n"
    "  -h, --help         this help\n"
    "\n"
    "exit status: 0 merged, 2 bad input (unreadable, mismatched, overlapping or\n"
    "missing points), 5 internal error.\n";

int cmd_merge(int argc, char **argv) {
  enum { OPT_PARTIAL = 256 };
  static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                       {"partial", no_argument, NULL, OPT_PARTIAL},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *output = NULL;
  bool partial = false;
  int c;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
      case 'o': output = optarg; break;
      case OPT_PARTIAL: partial = true; break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "apfsim merge: expected one or more shard CSVs\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  if (!output) {
    fprintf(stderr, "apfsim merge: -o ALL.csv is required\n");
    return EXIT_BAD_INPUT;
  }
  struct diag err = {{0}};
  char note[2048];
  if (!sweep_merge((const char *const *)argv + optind, (size_t)(argc - optind), output, partial,
                   note, sizeof note, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return EXIT_BAD_INPUT;
  }
  if (note[0]) fprintf(stderr, "merge: %s\n", note);
  return 0;
}
