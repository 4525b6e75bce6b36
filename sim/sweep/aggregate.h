/* aggregate.h — what `apfsim plot` draws: results grouped into series (one
 * per combination of the series columns) and, within a series, per x value
 * the mean, sample standard deviation and count of y over the rows that
 * share it (seeds and repetitions).
 *
 * x is numeric when every x cell parses as a number with the same kind of
 * unit (quantity.h; converted to the base unit: ns, bytes, ...), else
 * categorical (numbered in order of first appearance). Rows whose y cell is
 * empty or not a number (crashed runs, metrics the summary lacked) are
 * skipped and counted. Plotting is not part of the simulation's
 * determinism, so this uses doubles.
 *
 * Not for: drawing (cmd_plot.c writes the gnuplot script). */
#ifndef APFSIM_SWEEP_AGGREGATE_H
#define APFSIM_SWEEP_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>

#include "sweep/quantity.h"
#include "sweep/table.h"

struct plot_point {
  double x, mean, sd;
  size_t n;
};

struct plot_series {
  char *label; /* "apf/protocol=2020, machine/vcpus=2"; "" without series columns */
  struct plot_point *points; /* sorted by x */
  size_t n_points;
};

struct plot_data {
  bool numeric_x;
  enum quantity_family x_family; /* when numeric */
  char **categories;             /* when categorical: x = index */
  size_t n_categories;
  struct plot_series *series;
  size_t n_series;
  size_t skipped_rows; /* y missing or not a number */
  double min_x, max_x; /* numeric x over the plotted points */
};

bool plot_aggregate(const struct sweep_table *t, size_t x_col, size_t y_col,
                    const size_t *series_cols, size_t n_series_cols, struct plot_data *out,
                    char *why, size_t why_len);
void plot_data_free(struct plot_data *d);

#endif
