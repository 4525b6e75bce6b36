/* cmd_run.c — `apfsim run CONFIG`: one simulation, its verdict, its summary. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config/config.h"
#include "platform.h"
#include "report/report.h"

static const char usage[] =
    "usage: apfsim run CONFIG [options]\n"
    "\n"
    "Runs the simulation CONFIG describes and prints its verdict.\n"
    "\n"
    "options:\n"
    "  --seed N            seed of every random stream (overrides <seed>)\n"
    "  --set PATH=VALUE    override a config value, e.g. --set swap-device/latency/mean=20us\n"
    "                      (repeatable; see docs/config.md)\n"
    "  --trace FILE        write the event trace to FILE\n"
    "  --json FILE|-       write the JSON summary to FILE, or stdout with '-'\n"
    "                      (the verdict then goes to stderr)\n"
    "  --expect OUTCOME    exit 1 unless the outcome is OUTCOME (ok, hung_task, ...)\n"
    "  --console WHERE     the guest's console lines: stdout, stderr or none (default:\n"
    "                      stdout, or stderr with --json -); always in the trace\n"
    "  --progress          progress on stderr (default when stderr is a terminal)\n"
    "  --quiet             no progress\n"
    "  -h, --help          this help\n"
    "\n"
    "exit status: 0 simulation completed (whatever the guest's outcome), 1 --expect\n"
    "mismatch, 2 bad input (the config, or a guest kernel that does not load), 5 internal error.\n";

#define MAX_OVERRIDES 256

int cmd_run(int argc, char **argv) {
  static const struct option opts[] = {
      {"seed", required_argument, NULL, 's'},   {"set", required_argument, NULL, 'S'},
      {"trace", required_argument, NULL, 't'},  {"json", required_argument, NULL, 'j'},
      {"expect", required_argument, NULL, 'e'}, {"progress", no_argument, NULL, 'p'},
      {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
      {"console", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0}};
  const char *overrides[MAX_OVERRIDES + 1];
  size_t n_overrides = 0;
  char seed_override[64] = "";
  const char *trace_path = NULL, *json_path = NULL, *expect = NULL, *console = NULL;
  int progress = isatty(STDERR_FILENO);
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
      case 's': {
        char *end;
        strtoull(optarg, &end, 0);
        if (!*optarg || *end || optarg[0] == '-') {
          fprintf(stderr, "apfsim run: --seed: '%s' is not a non-negative integer\n", optarg);
          return EXIT_BAD_INPUT;
        }
        snprintf(seed_override, sizeof seed_override, "seed=%s", optarg);
        break;
      }
      case 'S':
        if (n_overrides == MAX_OVERRIDES) {
          fprintf(stderr, "apfsim run: more than %d --set options\n", MAX_OVERRIDES);
          return EXIT_BAD_INPUT;
        }
        overrides[n_overrides++] = optarg;
        break;
      case 't': trace_path = optarg; break;
      case 'j': json_path = optarg; break;
      case 'e': expect = optarg; break;
      case 'p': progress = 1; break;
      case 'q': progress = 0; break;
      case 'c': console = optarg; break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "apfsim run: expected exactly one CONFIG\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  enum run_outcome expected = OUTCOME_OK;
  if (expect && !outcome_parse(expect, &expected)) {
    fprintf(stderr, "apfsim run: --expect: unknown outcome '%s'\n", expect);
    return EXIT_BAD_INPUT;
  }
  bool json_on_stdout = json_path && !strcmp(json_path, "-");
  FILE *console_out = json_on_stdout ? stderr : stdout; /* stdout carries only the JSON then */
  if (console) {
    if (!strcmp(console, "stdout"))
      console_out = stdout;
    else if (!strcmp(console, "stderr"))
      console_out = stderr;
    else if (!strcmp(console, "none"))
      console_out = NULL;
    else {
      fprintf(stderr, "apfsim run: --console: '%s' is not stdout, stderr or none\n", console);
      return EXIT_BAD_INPUT;
    }
  }
  /* --seed is the last override, so it wins over a --set seed=. */
  if (seed_override[0]) overrides[n_overrides++] = seed_override;

  struct diag err = {{0}};
  struct sim_config *cfg = config_new();
  if (!cfg) {
    fprintf(stderr, "apfsim run: out of memory\n");
    return EXIT_INTERNAL;
  }
  if (!config_load(argv[optind], overrides, n_overrides, NULL, cfg, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    free(cfg);
    return EXIT_BAD_INPUT;
  }
  struct run_summary *summary = calloc(1, sizeof *summary);
  if (!summary) {
    free(cfg);
    return EXIT_INTERNAL;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0); /* host_seconds only: never enters the trace */
  bool bad_input = false;
  struct platform_run_request req = {
      .cfg = cfg, .trace_path = trace_path, .progress = progress, .console = console_out, .bad_input = &bad_input};
  bool ran = platform_run(&req, summary, &err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int status = EXIT_SIM_COMPLETED;
  if (!ran) {
    fprintf(stderr, bad_input ? "%s\n" : "apfsim run: %s\n", err.msg);
    status = bad_input ? EXIT_BAD_INPUT : EXIT_INTERNAL;
    goto out;
  }
  summary->host_ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
                     (uint64_t)t0.tv_nsec;
  fprintf(json_on_stdout ? stderr : stdout, "%s: %s\n", outcome_name(summary->outcome),
          summary->verdict);
  if (json_path && !report_write_json(summary, json_path, &err)) {
    fprintf(stderr, "apfsim run: %s\n", err.msg);
    status = EXIT_INTERNAL;
    goto out;
  }
  if (expect && summary->outcome != expected) {
    fprintf(stderr, "apfsim run: expected outcome %s, got %s\n", outcome_name(expected),
            outcome_name(summary->outcome));
    status = EXIT_EXPECT_MISMATCH;
  }
out:
  platform_summary_release(summary);
  free(summary);
  free(cfg);
  return status;
}
