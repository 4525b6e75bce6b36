/* cmd_plot.c — `apfsim plot RESULTS.csv -o FIG`: FIG.png and FIG.svg of one
 * metric against one parameter, a line per combination of the series
 * parameters, mean ± standard deviation over seeds and repetitions as error
 * bars. The grouping is sim/sweep/aggregate.h; drawing is gnuplot, run as a
 * subprocess on a generated script. Plots are not results: nothing here
 * needs to be deterministic beyond what gnuplot gives. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "sweep/aggregate.h"
#include "sweep/table.h"

static const char usage[] =
    "usage: apfsim plot RESULTS.csv -o FIG [options]\n"
    "\n"
    "Draws a metric of a sweep's results against one of its parameters into\n"
    "FIG.png and FIG.svg (gnuplot): one line per combination of the series\n"
    "parameters, each point the mean over the seeds and repetitions that share\n"
    "it, with ± one standard deviation as error bars. Rows without the metric\n"
    "(crashed runs) are left out and counted.\n"
    "\n"
    "options:\n"
    "  -o, --output FIG   write FIG.png and FIG.svg\n"
    "  --x COLUMN         the x axis (default: the first parameter)\n"
    "  --y COLUMN         the metric (default: window/ops_per_sec when the rows have\n"
    "                     it, else workload/ops_per_sec)\n"
    "  --series COLUMN    one line per value of COLUMN (repeatable; default: every\n"
    "                     other parameter; --series none: a single line)\n"
    "  --logx / --linx    x axis scale (default: log when x is numeric and spans\n"
    "                     two decades or more)\n"
    "  --logy             logarithmic y axis\n"
    "  --title TEXT       the title (default: METRIC vs PARAMETER)\n"
    "  -h, --help         this help\n"
    "\n"
    "exit status: 0 drawn, 2 bad input (CSV, column names, nothing to plot),\n"
    "4 gnuplot is not installed, 5 internal error (gnuplot failed).\n";

#define MAX_SERIES_COLS 16

/* A gnuplot single-quoted string: only '' needs escaping. */
static void gp_quote(FILE *f, const char *s) {
  fputc('\'', f);
  for (; *s; s++) {
    if (*s == '\'') fputc('\'', f);
    fputc(*s == '\n' ? ' ' : *s, f);
  }
  fputc('\'', f);
}

struct axis {
  bool log, logy;
  double scale; /* x values are divided by this (ns -> s) */
  const char *unit;
};

static void write_plot(FILE *f, const struct plot_data *d, const struct axis *ax) {
  for (size_t s = 0; s < d->n_series; s++) {
    fprintf(f, "$d%zu << EOD\n", s);
    const struct plot_series *ps = &d->series[s];
    for (size_t i = 0; i < ps->n_points; i++)
      fprintf(f, "%.17g %.17g %.17g %zu\n", ps->points[i].x / ax->scale, ps->points[i].mean,
              ps->points[i].sd, ps->points[i].n);
    fputs("EOD\n", f);
  }
  /* gnuplot's default colours repeat after 8 lines, and a sweep of 4 protocols x 3 vCPU
   * counts has 12: every line gets its own colour (12 well apart) and
   * a point shape, and the dash pattern changes beyond 12. */
  static const char *const colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                        "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8"};
  static const int shapes[] = {7, 5, 9, 11, 13, 15};
  const size_t n_colours = sizeof colours / sizeof *colours, n_shapes = sizeof shapes / sizeof *shapes;
  fputs("plot ", f);
  for (size_t s = 0; s < d->n_series; s++) {
    fprintf(f, "%s$d%zu using 1:2:3 with yerrorlines lw 1.5 lc rgb '%s' pt %d dt %zu ps 0.8 title ",
            s ? ", \\\n  " : "", s, colours[s % n_colours], shapes[s % n_shapes], 1 + (s / n_colours) % 4);
    gp_quote(f, d->series[s].label[0] ? d->series[s].label : "all runs");
  }
  fputc('\n', f);
}

static bool write_script(const char *path, const struct plot_data *d, const struct axis *ax,
                         const char *title, const char *xlabel, const char *ylabel,
                         const char *png, const char *svg) {
  FILE *f = fopen(path, "w");
  if (!f) return false;
  fputs("set encoding utf8\nset terminal pngcairo size 1100,700 noenhanced font 'DejaVu Sans,10'\n",
        f);
  fputs("set output ", f);
  gp_quote(f, png);
  fputs("\nset title ", f);
  gp_quote(f, title);
  fputs("\nset xlabel ", f);
  gp_quote(f, xlabel);
  fputs("\nset ylabel ", f);
  gp_quote(f, ylabel);
  fputs("\nset grid\nset key below\nset bars small\n", f);
  if (ax->logy) fputs("set logscale y 10\n", f);
  if (!d->numeric_x) {
    fputs("set xtics (", f);
    for (size_t i = 0; i < d->n_categories; i++) {
      fputs(i ? ", " : "", f);
      gp_quote(f, d->categories[i]);
      fprintf(f, " %zu", i);
    }
    fprintf(f, ")\nset xrange [-0.5:%g]\n", (double)d->n_categories - 0.5);
  } else if (ax->log) {
    fputs("set logscale x 10\nset autoscale xfix\n", f);
    if (ax->unit[0]) {
      fputs("set format x ", f);
      char fmt[32];
      snprintf(fmt, sizeof fmt, "%%.0s%%c%s", ax->unit);
      gp_quote(f, fmt);
      fputc('\n', f);
    }
  }
  write_plot(f, d, ax);
  fputs("set terminal svg size 1100,700 dynamic noenhanced font 'DejaVu Sans,10'\nset output ", f);
  gp_quote(f, svg);
  fputs("\nreplot\nunset output\n", f);
  return fclose(f) == 0;
}

/* Runs `gnuplot SCRIPT`; *exit_code gets its status (127: not found). The
 * last of its stderr goes to err. */
static bool run_gnuplot(const char *script, int *exit_code, char *err, size_t err_len) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return false;
  pid_t pid = fork();
  if (pid < 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    return false;
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(pipefd[1], 2) < 0) _exit(127);
    execlp("gnuplot", "gnuplot", script, (char *)NULL);
    _exit(127);
  }
  close(pipefd[1]);
  size_t n = 0;
  char buf[1024];
  for (;;) {
    ssize_t k = read(pipefd[0], buf, sizeof buf);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    for (ssize_t i = 0; i < k; i++) {
      if (n + 1 >= err_len) { /* keep the tail */
        memmove(err, err + err_len / 2, n - err_len / 2);
        n -= err_len / 2;
      }
      err[n++] = buf[i] == '\n' ? ' ' : buf[i];
    }
  }
  err[n] = '\0';
  close(pipefd[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return true;
}

static void list_columns(const struct sweep_table *t, size_t seed_col) {
  fprintf(stderr, "  parameters:");
  for (size_t i = 1; i < seed_col; i++) fprintf(stderr, " %s", t->header[i]);
  fprintf(stderr, "\n  other columns:");
  for (size_t i = seed_col; i < t->n_cols; i++) fprintf(stderr, " %s", t->header[i]);
  fputc('\n', stderr);
}

static long find_column(const struct sweep_table *t, const char *name, const char *option,
                        size_t seed_col) {
  long c = sweep_table_column(t, name);
  if (c < 0) {
    fprintf(stderr, "apfsim plot: %s: no column '%s' in the CSV; it has\n", option, name);
    list_columns(t, seed_col);
  }
  return c;
}

/* Throughput in the measurement window when the rows have it (guest runs: the
 * sweep's warm-up left out), else over the whole run (the smoke platform). */
static const char *default_metric(const struct sweep_table *t) {
  long c = sweep_table_column(t, "window/ops_per_sec");
  for (size_t i = 0; c >= 0 && i < t->n_rows; i++)
    if (t->cells[i * t->n_cols + (size_t)c][0]) return "window/ops_per_sec";
  return "workload/ops_per_sec";
}

int cmd_plot(int argc, char **argv) {
  enum { OPT_X = 256, OPT_Y, OPT_SERIES, OPT_LOGX, OPT_LINX, OPT_LOGY, OPT_TITLE };
  static const struct option opts[] = {
      {"output", required_argument, NULL, 'o'}, {"x", required_argument, NULL, OPT_X},
      {"y", required_argument, NULL, OPT_Y},    {"series", required_argument, NULL, OPT_SERIES},
      {"logx", no_argument, NULL, OPT_LOGX},    {"linx", no_argument, NULL, OPT_LINX},
      {"logy", no_argument, NULL, OPT_LOGY},
      {"title", required_argument, NULL, OPT_TITLE}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *output = NULL, *xname = NULL, *yname = NULL, *title = NULL;
  const char *series_names[MAX_SERIES_COLS];
  size_t n_series_names = 0;
  bool series_given = false;
  int logx = -1; /* -1: automatic */
  bool logy = false;
  int c;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
      case 'o': output = optarg; break;
      case OPT_X: xname = optarg; break;
      case OPT_Y: yname = optarg; break;
      case OPT_SERIES:
        series_given = true;
        if (!strcmp(optarg, "none")) break;
        if (n_series_names == MAX_SERIES_COLS) {
          fprintf(stderr, "apfsim plot: more than %d --series\n", MAX_SERIES_COLS);
          return EXIT_BAD_INPUT;
        }
        series_names[n_series_names++] = optarg;
        break;
      case OPT_LOGX: logx = 1; break;
      case OPT_LINX: logx = 0; break;
      case OPT_LOGY: logy = true; break;
      case OPT_TITLE: title = optarg; break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "apfsim plot: expected exactly one RESULTS.csv\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  if (!output) {
    fprintf(stderr, "apfsim plot: -o FIG is required (FIG.png and FIG.svg are written)\n");
    return EXIT_BAD_INPUT;
  }
  const char *csv = argv[optind];
  struct diag err = {{0}};
  struct sweep_table t;
  if (!sweep_table_read(csv, &t, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return EXIT_BAD_INPUT;
  }
  int status = EXIT_BAD_INPUT;
  struct plot_data d = {0};
  char *png = NULL, *svg = NULL, *png_tmp = NULL, *svg_tmp = NULL;
  char script[64] = "";
  long seed_col = sweep_table_column(&t, "seed");
  if (t.n_cols == 0 || strcmp(t.header[0], "point") != 0 || seed_col < 1) {
    fprintf(stderr, "%s:1: not a sweep results CSV (no point and seed columns)\n", csv);
    goto out;
  }
  if (!xname && seed_col == 1) {
    fprintf(stderr, "apfsim plot: the sweep has no parameters; name the x axis with --x\n");
    goto out;
  }
  long xc = find_column(&t, xname ? xname : t.header[1], "--x", (size_t)seed_col);
  if (!yname) yname = default_metric(&t);
  long yc = find_column(&t, yname, "--y", (size_t)seed_col);
  if (xc < 0 || yc < 0) goto out;
  size_t series_cols[MAX_SERIES_COLS], n_series = 0;
  if (series_given) {
    for (size_t i = 0; i < n_series_names; i++) {
      long sc = find_column(&t, series_names[i], "--series", (size_t)seed_col);
      if (sc < 0) goto out;
      series_cols[n_series++] = (size_t)sc;
    }
  } else {
    for (long i = 1; i < seed_col && n_series < MAX_SERIES_COLS; i++)
      if (i != xc) series_cols[n_series++] = (size_t)i;
  }
  char why[256];
  if (!plot_aggregate(&t, (size_t)xc, (size_t)yc, series_cols, n_series, &d, why, sizeof why)) {
    fprintf(stderr, "apfsim plot: %s\n", why);
    status = EXIT_INTERNAL;
    goto out;
  }
  if (d.n_series == 0) {
    fprintf(stderr, "apfsim plot: no row of %s has a number in '%s' (%zu rows)\n", csv, yname,
            t.n_rows);
    goto out;
  }
  struct axis ax = {.log = false, .logy = logy, .scale = 1, .unit = ""};
  if (d.numeric_x) {
    ax.log = logx == 1 || (logx == -1 && d.min_x > 0 && d.max_x >= 100 * d.min_x);
    if (ax.log && d.min_x <= 0) {
      fprintf(stderr, "apfsim plot: --logx: x values must be above 0\n");
      goto out;
    }
    if (d.x_family == QUANTITY_DURATION) { /* seconds, with SI prefixes on the tics */
      ax.scale = 1e9;
      ax.unit = "s";
    } else if (d.x_family != QUANTITY_PLAIN) {
      ax.unit = quantity_base_unit(d.x_family);
    }
  }
  char xlabel[512], default_title[512];
  /* A log axis carries the unit on its tics ("10us"); a linear one in the label. */
  if (d.numeric_x && ax.unit[0] && !ax.log)
    snprintf(xlabel, sizeof xlabel, "%s (%s)", t.header[xc], ax.unit);
  else
    snprintf(xlabel, sizeof xlabel, "%s", t.header[xc]);
  snprintf(default_title, sizeof default_title, "%s vs %s (mean ± sd over seeds and repetitions)",
           t.header[yc], t.header[xc]);

  size_t olen = strlen(output) + 64;
  png = malloc(olen);
  svg = malloc(olen);
  png_tmp = malloc(olen);
  svg_tmp = malloc(olen);
  if (!png || !svg || !png_tmp || !svg_tmp) {
    status = EXIT_INTERNAL;
    goto out;
  }
  snprintf(png, olen, "%s.png", output);
  snprintf(svg, olen, "%s.svg", output);
  /* gnuplot writes temporary names beside the targets; renamed when it
   * succeeded, so a failed plot leaves no half-written figure. */
  snprintf(png_tmp, olen, "%s.png.tmp-%ld", output, (long)getpid());
  snprintf(svg_tmp, olen, "%s.svg.tmp-%ld", output, (long)getpid());
  const char *tmpdir = getenv("TMPDIR");
  snprintf(script, sizeof script, "%s/apfsim-plot-XXXXXX",
           tmpdir && *tmpdir && strlen(tmpdir) < 40 ? tmpdir : "/tmp");
  int sfd = mkstemp(script);
  if (sfd < 0) {
    fprintf(stderr, "apfsim plot: cannot create a temporary script: %s\n", strerror(errno));
    script[0] = '\0';
    status = EXIT_INTERNAL;
    goto out;
  }
  close(sfd);
  if (!write_script(script, &d, &ax, title ? title : default_title, xlabel, t.header[yc], png_tmp,
                    svg_tmp)) {
    fprintf(stderr, "apfsim plot: cannot write %s\n", script);
    status = EXIT_INTERNAL;
    goto out;
  }
  int code;
  char gp_err[1024];
  if (!run_gnuplot(script, &code, gp_err, sizeof gp_err)) {
    fprintf(stderr, "apfsim plot: cannot start gnuplot: %s\n", strerror(errno));
    status = EXIT_INTERNAL;
    goto out;
  }
  if (code == 127) {
    fprintf(stderr, "apfsim plot: gnuplot is not installed (Debian: apt-get install gnuplot-nox)\n");
    status = EXIT_NOT_BUILT;
    goto out;
  }
  if (code != 0) {
    fprintf(stderr, "apfsim plot: gnuplot failed (status %d): %s\n", code, gp_err);
    status = EXIT_INTERNAL;
    goto out;
  }
  if (rename(png_tmp, png) != 0 || rename(svg_tmp, svg) != 0) {
    fprintf(stderr, "apfsim plot: cannot write %s: %s\n", output, strerror(errno));
    status = EXIT_INTERNAL;
    goto out;
  }
  fprintf(stderr, "plot: %s, %s: %zu line%s, %zu rows%s", png, svg, d.n_series,
          d.n_series == 1 ? "" : "s", t.n_rows - d.skipped_rows, d.skipped_rows ? "" : "\n");
  if (d.skipped_rows)
    fprintf(stderr, " (%zu rows without a number in %s left out)\n", d.skipped_rows, yname);
  status = 0;
out:
  if (script[0]) unlink(script);
  if (png_tmp) unlink(png_tmp);
  if (svg_tmp) unlink(svg_tmp);
  free(png);
  free(svg);
  free(png_tmp);
  free(svg_tmp);
  plot_data_free(&d);
  sweep_table_free(&t);
  return status;
}
