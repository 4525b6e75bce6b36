/* cmd_validate.c — `apfsim validate CONFIG`: schema and range checks only. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "config/config.h"

static const char usage[] =
    "usage: apfsim validate CONFIG [--set PATH=VALUE]...\n"
    "\n"
    "Checks CONFIG against configs/apfsim.xsd and the documented ranges, with the\n"
    "same --set overrides `run` takes, and runs nothing. Errors are reported as\n"
    "FILE:LINE: field: problem. Exit status 0 valid, 2 invalid.\n";

#define MAX_OVERRIDES 256

int cmd_validate(int argc, char **argv) {
  static const struct option opts[] = {
      {"set", required_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  const char *overrides[MAX_OVERRIDES];
  size_t n_overrides = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 'S':
        if (n_overrides == MAX_OVERRIDES) {
          fprintf(stderr, "apfsim validate: more than %d --set options\n", MAX_OVERRIDES);
          return EXIT_BAD_INPUT;
        }
        overrides[n_overrides++] = optarg;
        break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "apfsim validate: expected CONFIG\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  int status = 0;
  for (int i = optind; i < argc; i++) {
    struct sim_config *cfg = config_new();
    struct diag err = {{0}};
    if (!cfg) return EXIT_INTERNAL;
    if (config_load(argv[i], overrides, n_overrides, NULL, cfg, &err)) {
      printf("%s: valid\n", argv[i]);
    } else {
      fprintf(stderr, "%s\n", err.msg);
      status = EXIT_BAD_INPUT;
    }
    free(cfg);
  }
  return status;
}
