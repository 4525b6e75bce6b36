/* cmd_replay.c — `apfsim replay TRACE`: re-runs the run a trace's header
 * describes (its effective config and seed, inlined) and compares the new
 * trace with the recorded one event by event. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config/config.h"
#include "platform.h"
#include "report/report.h"
#include "trace/trace.h"

static const char usage[] =
    "usage: apfsim replay TRACE [--output FILE]\n"
    "\n"
    "Re-runs the simulation recorded in TRACE from the config and seed inlined in its\n"
    "header (nothing else is read) and compares every event line.\n"
    "Must match: trace format version (checked on reading), seed and config (used as\n"
    "recorded). Reported when different but not required: apfsim, Unicorn and SystemC\n"
    "versions and the guest image hash, since a replay's point is to show where a\n"
    "changed simulator or guest first diverges.\n"
    "\n"
    "  --output FILE   keep the replayed trace in FILE (default: a temporary file,\n"
    "                  removed afterwards)\n"
    "\n"
    "exit status: 0 identical, 2 bad or corrupt trace, 3 diverged (the first divergent\n"
    "line is printed with its neighbours), 5 internal error.\n";

/* Header fields worth a note when the replaying build differs from the recording one. */
static void note_version_drift(const struct trace_reader *r) {
  char uc[32];
  platform_unicorn_version(uc, sizeof uc);
  const struct { const char *key, *now; } fields[] = {
      {"apfsim-version", platform_apfsim_version()}, {"unicorn-version", uc}};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
    const struct trace_kv *kv = trace_reader_header(r, fields[i].key);
    if (kv && strcmp(kv->value, fields[i].now))
      fprintf(stderr, "apfsim replay: note: recorded with %s %s, replaying with %s\n",
              fields[i].key, kv->value, fields[i].now);
  }
}

int cmd_replay(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *output = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
    switch (c) {
      case 'o': output = optarg; break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "apfsim replay: expected exactly one TRACE\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  const char *recorded = argv[optind];
  struct diag err = {{0}};
  struct trace_reader *reader = trace_reader_open(recorded, &err);
  if (!reader) {
    fprintf(stderr, "%s\n", err.msg);
    return EXIT_BAD_INPUT;
  }
  const struct trace_block *config_block = trace_reader_block(reader, "config");
  const struct trace_kv *seed_kv = trace_reader_header(reader, "seed");
  if (!config_block || !seed_kv) {
    fprintf(stderr, "%s: header: no %s recorded; cannot replay\n", recorded,
            config_block ? "seed" : "config block");
    trace_reader_close(reader);
    return EXIT_BAD_INPUT;
  }
  note_version_drift(reader);

  char name[CONFIG_PATH_MAX];
  snprintf(name, sizeof name, "%s[config block at line %ld]", recorded, config_block->line);
  char seed_set[96];
  snprintf(seed_set, sizeof seed_set, "seed=%s", seed_kv->value);
  const char *overrides[] = {seed_set};
  struct sim_config *cfg = config_new();
  struct run_summary *summary = calloc(1, sizeof *summary);
  int status = EXIT_INTERNAL;
  char tmp_path[] = "/tmp/apfsim-replay-XXXXXX";
  bool made_tmp = false;
  if (!cfg || !summary) goto out;
  if (!config_load_buffer(name, config_block->text, strlen(config_block->text), overrides, 1, NULL,
                          cfg, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    status = EXIT_BAD_INPUT;
    goto out;
  }
  if (!output) {
    int fd = mkstemp(tmp_path);
    if (fd < 0) {
      perror("apfsim replay: temporary file");
      goto out;
    }
    close(fd);
    made_tmp = true;
    output = tmp_path;
  }
  /* The guest's console is in the recorded trace already: the replay prints none. */
  bool bad_input = false;
  struct platform_run_request req = {
      .cfg = cfg, .trace_path = output, .progress = false, .console = NULL, .bad_input = &bad_input};
  if (!platform_run(&req, summary, &err)) {
    fprintf(stderr, "apfsim replay: %s\n", err.msg);
    if (bad_input) status = EXIT_BAD_INPUT;
    goto out;
  }
  static const char *const required[] = {"seed", "config"};
  struct trace_divergence where;
  switch (trace_diff(recorded, output, required, 2, stdout, &where, &err)) {
    case TRACE_DIFF_IDENTICAL:
      printf("replay identical: every event matches (trace sha256 %s)\n", summary->trace_sha256);
      status = 0;
      break;
    case TRACE_DIFF_DIVERGED: status = EXIT_REPLAY_DIVERGED; break;
    case TRACE_DIFF_ERROR:
      fprintf(stderr, "%s\n", err.msg);
      status = EXIT_BAD_INPUT;
      break;
  }
out:
  if (made_tmp) unlink(tmp_path);
  trace_reader_close(reader);
  if (summary) platform_summary_release(summary);
  free(summary);
  free(cfg);
  return status;
}
