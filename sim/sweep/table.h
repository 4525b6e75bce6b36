/* table.h — a results CSV read back whole: the header, and every complete
 * row split into cells (an incomplete last line, left by an interrupted
 * sweep, is not a row; tail_len says it was there).
 *
 * Not for: resuming (results.h checks rows against the plan as it reads). */
#ifndef APFSIM_SWEEP_TABLE_H
#define APFSIM_SWEEP_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/diag.h"
#include "sweep/csv.h"

struct sweep_table {
  struct csv_file file; /* file.lines[0] the header, file.lines[1 + i] row i, unsplit */
  char *store;          /* the split copies the cells point into */
  char **header;
  size_t n_cols;
  char **cells; /* row-major: cells[i * n_cols + c] */
  size_t n_rows;
};

/* Every row must have as many cells as the header; "PATH:LINE: ..." if not. */
bool sweep_table_read(const char *path, struct sweep_table *t, struct diag *err);
void sweep_table_free(struct sweep_table *t);

/* Index of the column named `name`, or -1. */
long sweep_table_column(const struct sweep_table *t, const char *name);

static inline const char *sweep_table_cell(const struct sweep_table *t, size_t row, size_t col) {
  return t->cells[row * t->n_cols + col];
}

#endif
