/* cmd_sweep.c — `apfsim sweep SWEEP`: run every point of a sweep file in
 * parallel child processes into a results CSV (docs/sweeps.md).
 *
 * This file is the command line and the progress display; the sweep
 * library (sim/sweep/) loads the file, checks every point, runs the pool
 * and writes the rows. stdout stays empty except for --dry-run's point list;
 * progress, notes and the final tally go to stderr. */
#define _GNU_SOURCE /* sched_getaffinity's CPU_COUNT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "platform.h"
#include "sweep/csv.h"
#include "sweep/plan.h"
#include "sweep/results.h"
#include "sweep/runner.h"

static const char usage[] =
    "usage: apfsim sweep SWEEP -o RESULTS.csv [options]\n"
    "\n"
    "Runs every point of the sweep file SWEEP (docs/sweeps.md) as `apfsim run` in\n"
    "parallel worker processes and writes one CSV row per run, in point order,\n"
    "each row synced to disk as it is written. The sweep file, its base config and\n"
    "every point's config are checked before anything runs.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE    the results CSV (must not exist, unless --resume)\n"
    "  -j, --jobs N         runs in parallel (default: the CPUs this process may use)\n"
    "  --resume             continue FILE: skip the points it has, drop an incomplete\n"
    "                       last line; refuses a file of another sweep\n"
    "  --shard K/N          run only points i with i mod N = K (0 <= K < N); merge the\n"
    "                       shards' files with `apfsim merge`\n"
    "  --dry-run            check everything, print the points (CSV) on stdout, run nothing\n"
    "  --run-timeout S      kill a run after S seconds of host time; its row says\n"
    "                       host_timeout (default: no limit)\n"
    "  --apfsim PATH        the apfsim binary that runs the points (default: this one)\n"
    "  --progress           progress on stderr: a bar on a terminal, else a line per row\n"
    "                       (default: on)\n"
    "  --quiet              no progress; errors only\n"
    "  -h, --help           this help\n"
    "\n"
    "exit status: 0 every point has its row (whatever its outcome, crashed runs\n"
    "included), 2 bad input (the sweep, a point's config, the CSV to resume),\n"
    "4 the points need a missing tool, 5 internal error. Interrupted by a\n"
    "signal, it stops its runs, keeps the rows written and dies of that signal.\n";

struct progress {
  bool bar, quiet;
  uint64_t shard_total, resumed;
  double last_draw;
  struct {
    char name[32];
    uint64_t n;
  } outcomes[16];
  size_t n_outcomes;
  bool drawn;
};

static void tally(struct progress *pr, const char *outcome) {
  size_t i = 0;
  while (i < pr->n_outcomes && strcmp(pr->outcomes[i].name, outcome) != 0) i++;
  if (i == pr->n_outcomes) {
    if (i == sizeof pr->outcomes / sizeof pr->outcomes[0]) return;
    snprintf(pr->outcomes[i].name, sizeof pr->outcomes[i].name, "%s", outcome);
    pr->n_outcomes++;
  }
  pr->outcomes[i].n++;
}

static void format_tally(const struct progress *pr, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < pr->n_outcomes && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s %" PRIu64, i ? ", " : "",
                             pr->outcomes[i].name, pr->outcomes[i].n);
}

static void format_eta(const struct sweep_event *ev, char *buf, size_t len) {
  if (ev->finished == 0 || ev->elapsed_s <= 0) {
    snprintf(buf, len, "ETA --:--");
    return;
  }
  double left = (double)(ev->remaining - ev->finished) * ev->elapsed_s / (double)ev->finished;
  unsigned long s = (unsigned long)(left + 0.5);
  if (s >= 3600)
    snprintf(buf, len, "ETA %lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
  else
    snprintf(buf, len, "ETA %lu:%02lu", s / 60, s % 60);
}

static void draw_bar(struct progress *pr, const struct sweep_event *ev) {
  enum { WIDTH = 30 };
  uint64_t done = pr->resumed + ev->written;
  unsigned fill = pr->shard_total ? (unsigned)(done * WIDTH / pr->shard_total) : WIDTH;
  char bar[WIDTH + 1], eta[32], counts[256];
  for (unsigned i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '-';
  bar[WIDTH] = '\0';
  format_eta(ev, eta, sizeof eta);
  format_tally(pr, counts, sizeof counts);
  fprintf(stderr, "\r\033[Ksweep [%s] %" PRIu64 "/%" PRIu64 " %3u%%  %s  running %u%s%s%s", bar,
          done, pr->shard_total,
          pr->shard_total ? (unsigned)(done * 100 / pr->shard_total) : 100u, eta, ev->running,
          counts[0] ? "  (" : "", counts, counts[0] ? ")" : "");
  fflush(stderr);
  pr->drawn = true;
  pr->last_draw = ev->elapsed_s;
}

static void clear_bar(struct progress *pr) {
  if (pr->drawn) fputs("\r\033[K", stderr);
  pr->drawn = false;
}

static void on_event(void *ctx, const struct sweep_event *ev) {
  struct progress *pr = ctx;
  if (ev->kind == SWEEP_EVENT_ROW) tally(pr, ev->outcome);
  if (pr->quiet) return;
  if (ev->kind == SWEEP_EVENT_FAILED) {
    clear_bar(pr);
    fprintf(stderr, "sweep: point %" PRIu64 " %s: %s\n", ev->point, ev->outcome, ev->detail);
  }
  if (pr->bar) {
    bool last = pr->resumed + ev->written == pr->shard_total;
    if (ev->kind == SWEEP_EVENT_TICK || last || ev->elapsed_s - pr->last_draw >= 0.1)
      draw_bar(pr, ev);
  } else if (ev->kind == SWEEP_EVENT_ROW) {
    char eta[32];
    format_eta(ev, eta, sizeof eta);
    fprintf(stderr, "sweep: %" PRIu64 "/%" PRIu64 " point %" PRIu64 " %s  %s\n",
            pr->resumed + ev->written, pr->shard_total, ev->point, ev->outcome, eta);
  }
}

/* CPUs this process may run on (a Slurm allocation or taskset narrows it). */
static unsigned default_jobs(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return (unsigned)CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1u;
}

static bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  if (*s < '0' || *s > '9') return false;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end || errno || v < min || v > max) return false;
  *out = v;
  return true;
}

static int dry_run(const struct sweep_plan *p, const struct sweep_shard *shard) {
  struct csv_line l = {0};
  for (size_t i = 0; i < 1 + p->n_param_columns; i++) csv_add(&l, p->columns[i]);
  csv_add(&l, "seed");
  csv_add(&l, "rep");
  csv_end(&l);
  fputs(l.s, stdout);
  uint64_t n = sweep_shard_size(shard, p->n_points);
  for (uint64_t i = 0; i < n && !l.oom; i++) {
    struct sweep_point pt;
    sweep_plan_point(p, sweep_shard_point(shard, i), &pt);
    char num[32];
    csv_line_reset(&l);
    snprintf(num, sizeof num, "%" PRIu64, pt.index);
    csv_add(&l, num);
    for (size_t d = 0; d < p->spec->n_dims; d++)
      for (size_t k = 0; k < p->spec->dims[d].n_params; k++)
        csv_add(&l, sweep_plan_value(p, pt.combo, d, k));
    snprintf(num, sizeof num, "%" PRIu64, pt.seed);
    csv_add(&l, num);
    snprintf(num, sizeof num, "%" PRIu32, pt.rep);
    csv_add(&l, num);
    csv_end(&l);
    fputs(l.s, stdout);
  }
  bool oom = l.oom;
  csv_line_free(&l);
  if (oom || fflush(stdout) != 0) {
    fprintf(stderr, "apfsim sweep: cannot write the point list\n");
    return EXIT_INTERNAL;
  }
  return EXIT_SIM_COMPLETED;
}

int cmd_sweep(int argc, char **argv) {
  enum { OPT_RESUME = 256, OPT_SHARD, OPT_DRY, OPT_TIMEOUT, OPT_EXE, OPT_PROGRESS, OPT_QUIET,
         OPT_STOP };
  static const struct option opts[] = {
      {"output", required_argument, NULL, 'o'},   {"jobs", required_argument, NULL, 'j'},
      {"resume", no_argument, NULL, OPT_RESUME},  {"shard", required_argument, NULL, OPT_SHARD},
      {"dry-run", no_argument, NULL, OPT_DRY},    {"run-timeout", required_argument, NULL, OPT_TIMEOUT},
      {"apfsim", required_argument, NULL, OPT_EXE}, {"progress", no_argument, NULL, OPT_PROGRESS},
      {"quiet", no_argument, NULL, OPT_QUIET},    {"stop-after", required_argument, NULL, OPT_STOP},
      {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
  const char *output = NULL, *exe = "/proc/self/exe";
  uint64_t jobs = 0, stop_after = 0;
  bool resume = false, dry = false, quiet = false;
  double run_timeout = 0;
  struct sweep_shard shard = {0, 1};
  char why[256];
  int c;
  while ((c = getopt_long(argc, argv, "o:j:h", opts, NULL)) != -1) {
    switch (c) {
      case 'o': output = optarg; break;
      case 'j':
        if (!parse_uint(optarg, 1, 1024, &jobs)) {
          fprintf(stderr, "apfsim sweep: -j: '%s' is not a number of jobs (1..1024)\n", optarg);
          return EXIT_BAD_INPUT;
        }
        break;
      case OPT_RESUME: resume = true; break;
      case OPT_SHARD:
        if (!sweep_shard_parse(optarg, &shard, why, sizeof why)) {
          fprintf(stderr, "apfsim sweep: --shard: %s\n", why);
          return EXIT_BAD_INPUT;
        }
        break;
      case OPT_DRY: dry = true; break;
      case OPT_TIMEOUT: {
        char *end;
        run_timeout = strtod(optarg, &end);
        if (*end || !(run_timeout > 0) || run_timeout > 1e9) {
          fprintf(stderr, "apfsim sweep: --run-timeout: '%s' is not a number of seconds above 0\n",
                  optarg);
          return EXIT_BAD_INPUT;
        }
        break;
      }
      case OPT_EXE: exe = optarg; break;
      case OPT_PROGRESS: quiet = false; break;
      case OPT_QUIET: quiet = true; break;
      case OPT_STOP:
        if (!parse_uint(optarg, 1, UINT64_MAX, &stop_after)) {
          fprintf(stderr, "apfsim sweep: --stop-after: '%s' is not a row count\n", optarg);
          return EXIT_BAD_INPUT;
        }
        break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "apfsim sweep: expected exactly one SWEEP file\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  if (!output && !dry) {
    fprintf(stderr, "apfsim sweep: -o RESULTS.csv is required (or --dry-run)\n");
    return EXIT_BAD_INPUT;
  }
  const char *sweep_path = argv[optind];

  struct diag err = {{0}};
  struct sweep_plan *plan;
  if (!sweep_plan_open(sweep_path, &plan, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return EXIT_BAD_INPUT;
  }
  if (!sweep_plan_check_points(plan, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    sweep_plan_free(plan);
    return EXIT_BAD_INPUT;
  }
  uint64_t shard_total = sweep_shard_size(&shard, plan->n_points);
  if (dry) {
    int st = dry_run(plan, &shard);
    if (!quiet)
      fprintf(stderr, "sweep: %s: %" PRIu64 " points%s, fingerprint %s; nothing run (--dry-run)\n",
              sweep_path, shard_total, shard.n > 1 ? " in this shard" : "", plan->fingerprint);
    sweep_plan_free(plan);
    return st;
  }

  /* The version of the binary that runs the points, for the provenance
   * column; asking it also proves it can run before any row depends on it. */
  char version[128];
  if (!strcmp(exe, "/proc/self/exe")) {
    snprintf(version, sizeof version, "%s", platform_apfsim_version());
  } else {
    char out[512];
    char *vargv[] = {(char *)exe, "--version", NULL};
    if (!sweep_capture(vargv, out, sizeof out) || strncmp(out, "apfsim ", 7) != 0) {
      fprintf(stderr, "apfsim sweep: --apfsim: '%s --version' does not answer as apfsim does\n",
              exe);
      sweep_plan_free(plan);
      return EXIT_BAD_INPUT;
    }
    snprintf(version, sizeof version, "%.*s", (int)strcspn(out + 7, " \n"), out + 7);
  }

  struct sweep_results results;
  char note[DIAG_MAX];
  if (!sweep_results_open(output, plan, &shard, resume, &results, note, sizeof note, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    sweep_plan_free(plan);
    return EXIT_BAD_INPUT;
  }
  if (note[0]) fprintf(stderr, "sweep: %s\n", note);
  struct progress pr = {.bar = !quiet && isatty(STDERR_FILENO),
                        .quiet = quiet,
                        .shard_total = shard_total,
                        .resumed = results.n_done};
  if (!quiet && results.n_done)
    fprintf(stderr, "sweep: %s has %" PRIu64 " of %" PRIu64 " rows; resuming\n", output,
            results.n_done, shard_total);

  struct sweep_runner runner = {.plan = plan,
                                .shard = &shard,
                                .out = &results,
                                .exe = exe,
                                .version = version,
                                .jobs = (unsigned)(jobs ? jobs : default_jobs()),
                                .run_timeout_s = run_timeout,
                                .stop_after = stop_after,
                                .on_event = on_event,
                                .ctx = &pr};
  struct sweep_report rep;
  sweep_run(&runner, &rep);
  clear_bar(&pr);
  sweep_results_close(&results);

  int status = EXIT_SIM_COMPLETED;
  uint64_t done = pr.resumed + rep.written;
  char counts[512];
  format_tally(&pr, counts, sizeof counts);
  switch (rep.end) {
    case SWEEP_END_DONE:
      if (!quiet)
        fprintf(stderr, "sweep: %" PRIu64 " of %" PRIu64 " points in %s (%" PRIu64 " resumed, %" PRIu64
                        " run%s%s)\n",
                done, shard_total, output, pr.resumed, rep.written, counts[0] ? ": " : "", counts);
      break;
    case SWEEP_END_SIGNAL:
      fprintf(stderr, "sweep: stopped by %s with %" PRIu64 " of %" PRIu64
                      " rows in %s; run again with --resume to continue\n",
              strsignal(rep.signo), done, shard_total, output);
      sweep_plan_free(plan);
      /* Die of the same signal, as a killed process would. */
      signal(rep.signo, SIG_DFL);
      raise(rep.signo);
      return 128 + rep.signo;
    case SWEEP_END_REFUSED:
      fprintf(stderr, "apfsim sweep: %s\n", rep.message);
      status = rep.child_exit;
      break;
    case SWEEP_END_ERROR:
      fprintf(stderr, "apfsim sweep: %s\n", rep.message);
      status = EXIT_INTERNAL;
      break;
  }
  sweep_plan_free(plan);
  return status;
}
