/* main.c — the apfsim program: dispatches to one subcommand per file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "platform.h"

static const char usage[] =
    "usage: apfsim [--version] [--help] COMMAND [ARGS]\n"
    "\n"
    "A deterministic x86-64 system simulator for KVM asynchronous page faults.\n"
    "\n"
    "commands:\n"
    "  run CONFIG        run one simulation; prints its verdict\n"
    "  validate CONFIG   check a configuration against the schema and ranges\n"
    "  replay TRACE      re-run the run a trace describes and compare event by event\n"
    "  diff A B          compare two traces event by event\n"
    "  sweep SWEEP       run a parameter sweep into a CSV, in parallel\n"
    "  merge CSV...      join the CSVs of a sweep's shards\n"
    "  plot CSV          plot sweep results (PNG and SVG, gnuplot)\n"
    "  explore CONFIG    run once per NMI injection point in a window (race windows)\n"
    "  export TRACE      export a trace as a Perfetto timeline (JSON)\n"
    "  import-ftrace F   KVM ftrace text -> latency histogram or replay schedule\n"
    "\n"
    "`apfsim COMMAND --help` describes each command. Exit status: 0 simulation\n"
    "completed, 1 --expect mismatch, 2 bad input, 3 replay diverged, 4 command not\n"
    "built yet, 5 internal error.\n";

/* Timeline export and ftrace import (cmd_export.c, cmd_import_ftrace.c). */
int cmd_export(int argc, char **argv);
int cmd_import_ftrace(int argc, char **argv);

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
  /* '+' stops at the first non-option: the subcommand parses the rest. */
  int c;
  while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
    switch (c) {
      case 'h': fputs(usage, stdout); return 0;
      case 'V': platform_print_version(stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind >= argc) {
    fputs(usage, stderr);
    return EXIT_BAD_INPUT;
  }
  const char *cmd = argv[optind];
  int sub_argc = argc - optind;
  char **sub_argv = argv + optind;
  optind = 0; /* re-initialise getopt for the subcommand (glibc) */

  if (!strcmp(cmd, "run")) return cmd_run(sub_argc, sub_argv);
  if (!strcmp(cmd, "validate")) return cmd_validate(sub_argc, sub_argv);
  if (!strcmp(cmd, "replay")) return cmd_replay(sub_argc, sub_argv);
  if (!strcmp(cmd, "diff")) return cmd_diff(sub_argc, sub_argv);
  if (!strcmp(cmd, "sweep")) return cmd_sweep(sub_argc, sub_argv);
  if (!strcmp(cmd, "merge")) return cmd_merge(sub_argc, sub_argv);
  if (!strcmp(cmd, "plot")) return cmd_plot(sub_argc, sub_argv);
  if (!strcmp(cmd, "explore")) return cmd_explore(sub_argc, sub_argv);
  if (!strcmp(cmd, "export")) return cmd_export(sub_argc, sub_argv);
  if (!strcmp(cmd, "import-ftrace")) return cmd_import_ftrace(sub_argc, sub_argv);
  fprintf(stderr, "apfsim: unknown command '%s'\n\n%s", cmd, usage);
  return EXIT_BAD_INPUT;
}
