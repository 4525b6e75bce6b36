/* aggregate.c — series, means and standard deviations for plots (see
 * aggregate.h). */
#include "sweep/aggregate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Running sums per (series, x): n, sum, sum of squares around a shift (the
 * first value) so that the variance of near-equal large values keeps its
 * precision. */
struct acc {
  double x;
  size_t n;
  double shift, sum, sum2;
};

struct series_acc {
  char *label;
  struct acc *accs;
  size_t n, cap;
};

void plot_data_free(struct plot_data *d) {
  for (size_t i = 0; i < d->n_categories; i++) free(d->categories[i]);
  free(d->categories);
  for (size_t i = 0; i < d->n_series; i++) {
    free(d->series[i].label);
    free(d->series[i].points);
  }
  free(d->series);
  memset(d, 0, sizeof *d);
}

static int by_x(const void *a, const void *b) {
  const struct plot_point *p = a, *q = b;
  return (p->x > q->x) - (p->x < q->x);
}

static bool parse_y(const char *s, double *y) {
  if (!*s) return false;
  char *end;
  *y = strtod(s, &end);
  return !*end && isfinite(*y);
}

static char *series_label(const struct sweep_table *t, size_t row, const size_t *cols, size_t n) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++)
    len += strlen(t->header[cols[i]]) + strlen(sweep_table_cell(t, row, cols[i])) + 3;
  char *l = malloc(len);
  if (!l) return NULL;
  size_t used = 0;
  l[0] = '\0';
  for (size_t i = 0; i < n; i++)
    used += (size_t)snprintf(l + used, len - used, "%s%s=%s", i ? ", " : "", t->header[cols[i]],
                             sweep_table_cell(t, row, cols[i]));
  return l;
}

bool plot_aggregate(const struct sweep_table *t, size_t x_col, size_t y_col,
                    const size_t *series_cols, size_t n_series_cols, struct plot_data *out,
                    char *why, size_t why_len) {
  memset(out, 0, sizeof *out);
  /* Numeric x only if every cell is a quantity of one family. */
  out->numeric_x = t->n_rows > 0;
  for (size_t r = 0; r < t->n_rows && out->numeric_x; r++) {
    struct quantity q;
    char w[256];
    if (!quantity_parse(sweep_table_cell(t, r, x_col), &q, w, sizeof w) ||
        (r > 0 && q.family != out->x_family))
      out->numeric_x = false;
    out->x_family = q.family;
  }
  size_t cap_cat = 0, cap_series = 0;
  struct series_acc *sa = NULL;
  size_t n_sa = 0;
  bool ok = true;
  for (size_t r = 0; r < t->n_rows && ok; r++) {
    double y;
    if (!parse_y(sweep_table_cell(t, r, y_col), &y)) {
      out->skipped_rows++;
      continue;
    }
    const char *xs = sweep_table_cell(t, r, x_col);
    double x;
    if (out->numeric_x) {
      struct quantity q;
      char w[256];
      quantity_parse(xs, &q, w, sizeof w);
      x = (double)q.milli / 1000.0;
    } else {
      size_t c = 0;
      while (c < out->n_categories && strcmp(out->categories[c], xs) != 0) c++;
      if (c == out->n_categories) {
        if (c == cap_cat) {
          cap_cat = cap_cat ? 2 * cap_cat : 16;
          char **nv = realloc(out->categories, cap_cat * sizeof *nv);
          if (!nv) {
            ok = false;
            break;
          }
          out->categories = nv;
        }
        if (!(out->categories[c] = strdup(xs))) {
          ok = false;
          break;
        }
        out->n_categories++;
      }
      x = (double)c;
    }
    char *label = series_label(t, r, series_cols, n_series_cols);
    if (!label) {
      ok = false;
      break;
    }
    size_t s = 0;
    while (s < n_sa && strcmp(sa[s].label, label) != 0) s++;
    if (s == n_sa) {
      if (n_sa == cap_series) {
        cap_series = cap_series ? 2 * cap_series : 8;
        struct series_acc *nv = realloc(sa, cap_series * sizeof *nv);
        if (!nv) {
          free(label);
          ok = false;
          break;
        }
        sa = nv;
      }
      sa[n_sa++] = (struct series_acc){.label = label};
    } else {
      free(label);
    }
    struct series_acc *ser = &sa[s];
    size_t a = 0;
    while (a < ser->n && ser->accs[a].x != x) a++;
    if (a == ser->n) {
      if (ser->n == ser->cap) {
        ser->cap = ser->cap ? 2 * ser->cap : 16;
        struct acc *nv = realloc(ser->accs, ser->cap * sizeof *nv);
        if (!nv) {
          ok = false;
          break;
        }
        ser->accs = nv;
      }
      ser->accs[ser->n++] = (struct acc){.x = x, .shift = y};
    }
    struct acc *ac = &ser->accs[a];
    double d = y - ac->shift;
    ac->n++;
    ac->sum += d;
    ac->sum2 += d * d;
  }
  if (ok) {
    out->series = calloc(n_sa ? n_sa : 1, sizeof *out->series);
    ok = out->series != NULL;
  }
  bool first = true;
  for (size_t s = 0; ok && s < n_sa; s++) {
    struct plot_series *ps = &out->series[out->n_series++];
    ps->label = sa[s].label;
    sa[s].label = NULL;
    ps->points = calloc(sa[s].n ? sa[s].n : 1, sizeof *ps->points);
    if (!ps->points) {
      ok = false;
      break;
    }
    for (size_t a = 0; a < sa[s].n; a++) {
      const struct acc *ac = &sa[s].accs[a];
      double mean_d = ac->sum / (double)ac->n;
      double var = ac->n > 1 ? (ac->sum2 - ac->sum * mean_d) / (double)(ac->n - 1) : 0;
      ps->points[ps->n_points++] =
          (struct plot_point){ac->x, ac->shift + mean_d, var > 0 ? sqrt(var) : 0, ac->n};
      if (first || ac->x < out->min_x) out->min_x = ac->x;
      if (first || ac->x > out->max_x) out->max_x = ac->x;
      first = false;
    }
    qsort(ps->points, ps->n_points, sizeof *ps->points, by_x);
  }
  for (size_t s = 0; s < n_sa; s++) {
    free(sa[s].label);
    free(sa[s].accs);
  }
  free(sa);
  if (!ok) {
    plot_data_free(out);
    snprintf(why, why_len, "out of memory");
  }
  return ok;
}
